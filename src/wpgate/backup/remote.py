"""The archive engine's off-site copy in a remote store: `sftp://user@host[:port]/path` (OpenSSH's sftp, with the
user's ssh setup, host keys always checked) or `s3://bucket/prefix` (boto3; endpoint and keys from `offsite_env`).

Each part is streamed from the site's host into a private temporary file here, uploaded into `<id>.partial/`
(sftp) or under `<prefix>/<id>/` (S3), then read back and its size and sha256 checked against the host's;
the manifest goes last (sftp: the folder is renamed to `<id>` after it), so a copy that has a manifest is
complete. The secrets (S3 keys) are read from the environment and handed to boto3 in memory only.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

from wpgate.backup.database import BackupError
from wpgate.command import Secret
from wpgate.config import BackupConfig
from wpgate.release import sha256_file
from wpgate.transports import Transport

CHUNK = 1 << 20
_SFTP = re.compile(r"sftp://(?:(?P<user>[^@/:\s]+)@)?(?P<host>[^@/:\s\[\]]+|\[[0-9a-fA-F:]+\])(?::(?P<port>\d{1,5}))?"
                   r"(?P<path>/[^\s]*)")
_S3 = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[^\s]*))?")


def is_remote(offsite: str | None) -> bool:
    return bool(offsite) and offsite.startswith(("sftp://", "s3://"))


def valid(offsite: str) -> str | None:
    """Why `offsite` is not a remote target wpgate can use, or None."""
    if offsite.startswith("sftp://"):
        match = _SFTP.fullmatch(offsite)
        if not match or (match.group("port") and not 0 < int(match.group("port")) < 65536):
            return f"{offsite!r} is not an sftp target: use sftp://user@host[:port]/absolute/path"
        if "\n" in offsite or "\\" in offsite or '"' in offsite:
            return f"{offsite!r}: the path may not hold quotes or backslashes"
        return None
    if offsite.startswith("s3://"):
        if not _S3.fullmatch(offsite):
            return f"{offsite!r} is not an S3 target: use s3://bucket/prefix"
        return None
    return f"{offsite!r} is neither sftp:// nor s3://"


class _Store:
    """What the two remote stores share: the copy, part by part, each uploaded, read back and checked."""

    def location(self, backup_id: str) -> str:
        raise NotImplementedError

    def _begin(self, backup_id: str) -> None:
        """Ready the place the parts go to (nothing, for a store that needs nothing)."""

    def _upload(self, path: Path, backup_id: str, name: str) -> None:
        raise NotImplementedError

    def _uploaded(self, backup_id: str, name: str, scratch: Path) -> tuple[int, str]:
        """The size and sha256 of the part as the store gives it back."""
        raise NotImplementedError

    def _where(self, backup_id: str, name: str) -> str:
        """The uploaded part, as an error message names it."""
        raise NotImplementedError

    def _finish(self, backup_id: str) -> None:
        """Make the copy complete, once every part is checked (nothing, for a store that needs nothing)."""

    def copy(self, transport: Transport, host_folder: str, backup_id: str, parts: dict[str, dict],
             small: dict[str, bytes]) -> str:
        """Every part (the host's, or one of `small`, written here), the manifest last: streamed from the host
        into a private temporary file, uploaded, read back and its size and sha256 checked against the host's."""
        with tempfile.TemporaryDirectory(prefix="wpgate-offsite-") as scratch:
            local = Path(scratch)
            self._begin(backup_id)
            names = [name for name in parts if name != "manifest.json"] + ["manifest.json"]
            for name in names:
                path = local / name
                if name in small:
                    path.write_bytes(small[name])
                else:
                    transport.download(f"{host_folder}/{name}", path, progress=f"    copying {name} off-site",
                                       size=parts[name]["bytes"])
                expected = parts[name]["sha256"] if name in parts else hashlib.sha256(small[name]).hexdigest()
                self._upload(path, backup_id, name)
                if self._uploaded(backup_id, name, local) != (path.stat().st_size, expected):
                    raise BackupError(f"the off-site copy of {name} at {self._where(backup_id, name)} does not read "
                                      "back with the host's size and sha256: the copy was damaged on its way")
                path.unlink()
            self._finish(backup_id)
        return self.location(backup_id)


class Sftp(_Store):
    """An off-site folder reached with OpenSSH's sftp."""

    def __init__(self, offsite: str, ssh_config: str | None) -> None:
        match = _SFTP.fullmatch(offsite)
        assert match is not None
        self.offsite = offsite
        self.user, self.host = match.group("user"), match.group("host").strip("[]")
        self.port = match.group("port")
        self.path = match.group("path").rstrip("/") or "/"
        self.ssh_config = os.path.expanduser(ssh_config) if ssh_config else None

    def location(self, backup_id: str) -> str:
        return f"{self.offsite.rstrip('/')}/{backup_id}"

    def _batch(self, commands: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = ["sftp", "-q", "-b", "-", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        if self.port:
            argv += ["-P", self.port]
        argv.append((f"{self.user}@" if self.user else "") + self.host)
        try:
            result = subprocess.run(argv, input="\n".join(commands) + "\n", capture_output=True, text=True,
                                    timeout=6 * 3600, stdin=None)
        except OSError as error:
            raise BackupError(f"cannot run sftp for the off-site copy: {error.strerror}") from None
        if check and result.returncode != 0:
            raise BackupError(f"off-site copy over sftp to {self.host}: {_last(result.stderr) or 'sftp failed'}")
        return result

    # The parts go into `<id>.partial/`, renamed to `<id>` once all are checked: a folder named after a
    # backup is a complete copy.
    def _partial(self, backup_id: str) -> str:
        return f"{self.path}/{backup_id}.partial"

    def _begin(self, backup_id: str) -> None:
        partial = self._partial(backup_id)
        self._batch([f'-mkdir "{self.path}"', f'-rm "{partial}/*"', f'-rmdir "{partial}"', f'mkdir "{partial}"'])

    def _upload(self, path: Path, backup_id: str, name: str) -> None:
        partial = self._partial(backup_id)
        self._batch([f'put "{path}" "{partial}/{name}"', f'chmod 600 "{partial}/{name}"'])

    def _uploaded(self, backup_id: str, name: str, scratch: Path) -> tuple[int, str]:
        back = scratch / f"{name}.back"
        self._batch([f'get "{self._partial(backup_id)}/{name}" "{back}"'])
        try:
            return back.stat().st_size, sha256_file(back)
        finally:
            back.unlink(missing_ok=True)

    def _where(self, backup_id: str, name: str) -> str:
        return self.location(backup_id)

    def _finish(self, backup_id: str) -> None:
        self._batch([f'rename "{self._partial(backup_id)}" "{self.path}/{backup_id}"'])

    def problems(self, backup_id: str, parts: dict[str, dict], manifest_sha256: str) -> list[str]:
        target = f"{self.path}/{backup_id}"
        listing = self._batch([f'ls -ln "{target}"'], check=False)
        if listing.returncode != 0:
            return [f"no off-site copy at {self.location(backup_id)}: {_last(listing.stderr)}"]
        sizes = {}
        for line in listing.stdout.splitlines():
            fields = line.split(None, 8)
            if len(fields) == 9 and fields[4].isdigit():
                sizes[fields[8].rsplit("/", 1)[-1]] = int(fields[4])
        found = []
        with tempfile.TemporaryDirectory(prefix="wpgate-offsite-") as scratch:
            manifest = Path(scratch) / "manifest.json"
            got = self._batch([f'get "{target}/manifest.json" "{manifest}"'], check=False)
            if got.returncode != 0 or sha256_file(manifest) != manifest_sha256:
                found.append(f"off-site manifest at {self.location(backup_id)} differs from the host's")
        for name, part in parts.items():
            if sizes.get(name) != part.get("bytes"):
                found.append(f"off-site {name} at {self.location(backup_id)}: {sizes.get(name)} bytes, the manifest "
                             f"says {part.get('bytes')}")
        return found

    def exists(self, backup_id: str) -> bool:
        return self._batch([f'ls "{self.path}/{backup_id}/manifest.json"'], check=False).returncode == 0

    def remove(self, backup_id: str, names: list[str]) -> list[str]:
        """The copy's files wpgate wrote, then its folder; the problems. A copy that is not there (never made, or
        removed by an earlier prune) is no problem; files someone else put in the folder are left, and named."""
        target = f"{self.path}/{backup_id}"
        result = self._batch([f'-rm "{target}/{name}"' for name in names] + [f'rmdir "{target}"'], check=False)
        if result.returncode == 0:
            return []
        listing = self._batch([f'ls -1a "{target}"'], check=False)
        if listing.returncode != 0 and "not found" in listing.stderr:
            return []
        left = {line.strip().rsplit("/", 1)[-1] for line in listing.stdout.splitlines()
                if line.strip() and not line.startswith("sftp>")} - {".", ".."}
        if listing.returncode != 0 or left & set(names):
            return [f"off-site, cannot remove {self.location(backup_id)}: {_last(result.stderr) or 'sftp failed'}"]
        return [f"off-site, {self.location(backup_id)} holds files wpgate did not write: the backup's own files "
                "were removed, the folder and those files were left"]


class S3(_Store):
    """An off-site prefix in an S3 bucket (or an S3-compatible store: `AWS_ENDPOINT_URL` in `offsite_env`)."""

    def __init__(self, offsite: str, env: dict[str, str]) -> None:
        match = _S3.fullmatch(offsite)
        assert match is not None
        self.offsite = offsite
        self.bucket = match.group("bucket")
        self.prefix = (match.group("prefix") or "").strip("/")
        values = {}
        for variable, name in env.items():
            value = os.environ.get(name, "")
            if not value:
                raise BackupError(f"backup.offsite_env.{variable}: environment variable {name} is not set")
            if variable != "AWS_ENDPOINT_URL":
                Secret(value)  # masked wherever text leaves wpgate
            values[variable] = value
        import boto3
        from botocore.config import Config

        self.client = boto3.client(
            "s3", endpoint_url=values.get("AWS_ENDPOINT_URL"), region_name=values.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=values.get("AWS_ACCESS_KEY_ID"), aws_secret_access_key=values.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=values.get("AWS_SESSION_TOKEN"),
            config=Config(retries={"max_attempts": 2}, connect_timeout=10, read_timeout=300))

    def _key(self, backup_id: str, name: str) -> str:
        return "/".join(part for part in (self.prefix, backup_id, name) if part)

    def location(self, backup_id: str) -> str:
        return f"s3://{self.bucket}/{self._key(backup_id, '')}".rstrip("/")

    def _call(self, what: str, call, *args, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call(*args, **kwargs)
        except ClientError as error:
            raise BackupError(f"off-site copy in {self.offsite}: {what}: {error.response.get('Error', {}).get('Code')}: "
                              f"{error.response.get('Error', {}).get('Message')}") from None
        except BotoCoreError as error:
            raise BackupError(f"off-site copy in {self.offsite}: {what}: {error}") from None

    def _read_back(self, key: str) -> tuple[int, str]:
        body = self._call(f"reading {key} back", self.client.get_object, Bucket=self.bucket, Key=key)["Body"]
        digest, size = hashlib.sha256(), 0
        for chunk in iter(lambda: body.read(CHUNK), b""):
            digest.update(chunk)
            size += len(chunk)
        return size, digest.hexdigest()

    def _upload(self, path: Path, backup_id: str, name: str) -> None:
        with open(path, "rb") as stream:
            self._call(f"uploading {name}", self.client.put_object, Bucket=self.bucket,
                       Key=self._key(backup_id, name), Body=stream)

    def _uploaded(self, backup_id: str, name: str, scratch: Path) -> tuple[int, str]:
        return self._read_back(self._key(backup_id, name))

    def _where(self, backup_id: str, name: str) -> str:
        return f"s3://{self.bucket}/{self._key(backup_id, name)}"

    def problems(self, backup_id: str, parts: dict[str, dict], manifest_sha256: str) -> list[str]:
        found = []
        try:
            if self._read_back(self._key(backup_id, "manifest.json"))[1] != manifest_sha256:
                found.append(f"off-site manifest at {self.location(backup_id)} differs from the host's")
        except BackupError as error:
            return [f"no off-site copy at {self.location(backup_id)}: {error}"]
        for name, part in parts.items():
            try:
                head = self._call(f"reading {name}", self.client.head_object, Bucket=self.bucket,
                                  Key=self._key(backup_id, name))
            except BackupError as error:
                found.append(str(error))
                continue
            if head.get("ContentLength") != part.get("bytes"):
                found.append(f"off-site {name} at {self.location(backup_id)}: {head.get('ContentLength')} bytes, the "
                             f"manifest says {part.get('bytes')}")
        return found

    def exists(self, backup_id: str) -> bool:
        try:
            self._call("reading the manifest", self.client.head_object, Bucket=self.bucket,
                       Key=self._key(backup_id, "manifest.json"))
        except BackupError:
            return False
        return True

    def remove(self, backup_id: str, names: list[str]) -> list[str]:
        for name in names:  # the manifest first: a copy without it is no backup to anyone
            try:
                self._call(f"removing {name}", self.client.delete_object, Bucket=self.bucket,
                           Key=self._key(backup_id, name))
            except BackupError as error:
                return [f"off-site, cannot remove {name}: {error}"]  # the rest stay with their manifest
        return []


def target(config: BackupConfig) -> Sftp | S3:
    assert config.offsite is not None
    if config.offsite.startswith("sftp://"):
        return Sftp(config.offsite, config.offsite_ssh_config)
    return S3(config.offsite, dict(config.offsite_env))


def _last(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
