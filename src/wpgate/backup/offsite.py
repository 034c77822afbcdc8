"""The second copy of a backup, off the site's host: a folder on the machine running wpgate.

Each part is streamed from the host through the site's transport (`cat` over ssh for a remote
site) and its sha256 checked here against the one the host computed while writing it. The copy is
written into `<id>.partial/` and renamed to `<id>/` only when every part verified, so a folder
named after a backup id is always a complete copy. Folders are 0700, files 0600.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from wpgate.backup.database import BackupError
from wpgate.release import sha256_file
from wpgate.transports import Transport


def folder(offsite: str, backup_id: str) -> Path:
    return Path(offsite) / backup_id


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def copy(transport: Transport, host_folder: str, offsite: str, backup_id: str, parts: dict[str, dict],
         small: dict[str, bytes], *, linkable: dict[str, Path] | None = None) -> Path:
    """Copy a backup into `offsite/<id>/`: each large part streamed from the host, the small ones wpgate
    wrote itself (`small`: inventory, tables, manifest) from memory; every sha256 checked; manifest last.
    A part in `linkable` (the same part of an earlier off-site copy) is hard-linked when its sha256 matches.
    Each streamed part shows its progress (wpgate.progress)."""
    base = Path(offsite)
    target = folder(offsite, backup_id)
    partial = target.with_name(target.name + ".partial")
    try:
        if not base.exists():
            _private_dir(base)
        if target.exists():
            raise BackupError(f"off-site copy {target} exists already")
        shutil.rmtree(partial, ignore_errors=True)
        _private_dir(partial)
        for name, part in parts.items():
            local = partial / name
            if name in small:
                _write_private(local, small[name])
            elif _linked(linkable or {}, name, local, part["sha256"]):
                continue
            else:
                transport.download(f"{host_folder}/{name}", local, progress=f"    copying {name} off-site",
                                   size=part["bytes"])
                local.chmod(0o600)
            actual = sha256_file(local)
            if actual != part["sha256"]:
                raise BackupError(f"off-site copy of {name} in {partial} has sha256 {actual[:12]}…, the host's "
                                  f"part has {part['sha256'][:12]}…: the copy was damaged on its way")
        _write_private(partial / "manifest.json", small["manifest.json"])
        partial.rename(target)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        reason = error.strerror or str(error)
        raise BackupError(f"cannot write the off-site copy in {offsite}: {reason}"
                          + (" (free space there or set backup.offsite to a bigger disk); the backup was removed"
                             if error.errno == errno.ENOSPC else "")) from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return target


def _linked(linkable: dict[str, Path], name: str, local: Path, sha256: str) -> bool:
    source = linkable.get(name)
    if source is None or not source.is_file():
        return False
    try:
        os.link(source, local)
    except OSError:
        return False
    if sha256_file(local) == sha256:
        return True
    local.unlink()
    return False


def _write_private(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def remove(offsite: str, backup_id: str) -> None:
    target = folder(offsite, backup_id)
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(target.with_name(target.name + ".partial"), ignore_errors=True)


def problems(offsite: str, backup_id: str, parts: dict[str, dict], manifest_sha256: str) -> list[str]:
    """Every part of the off-site copy present with the manifest's sha256, and the same manifest."""
    target = folder(offsite, backup_id)
    if not target.is_dir():
        return [f"no off-site copy at {target}"]
    found = []
    manifest = target / "manifest.json"
    if not manifest.is_file():
        found.append(f"off-site copy {target} has no manifest.json")
    elif sha256_file(manifest) != manifest_sha256:
        found.append(f"off-site manifest {manifest} differs from the host's")
    for name, part in parts.items():
        path = target / name
        if not path.is_file():
            found.append(f"off-site copy lacks {name} ({path})")
            continue
        actual = sha256_file(path)
        if actual != part["sha256"]:
            found.append(f"off-site {name} ({path}): sha256 {actual[:12]}… does not match the manifest's "
                         f"{part['sha256'][:12]}…")
    return found


def human_size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"
