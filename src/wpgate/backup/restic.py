"""Backups in restic repositories (`backup.engine: restic`): restic runs on the site's host, through its transport.

A backup is three snapshots in `backup.repository`, each tagged `wpgate`, `site=<site>`, `backup=<id>`,
`part=<part>` and, when a deploy takes it, `run=<run>` and `release=<release>`:

    files          the WordPress root, less wpgate's `wpgate-aside` folders and anything of the backup's
                   own inside it; incremental (restic reads only what changed since the newest snapshot
                   of the same root, and stores only new chunks)
    database.sql   the dump client's dump, streamed into `restic backup --stdin`: no dump is written to disk
    manifest.json  id, site, time, the inventory and every table's rows and checksum, the other two
                   snapshots' ids

Then `restic copy` copies the three into `backup.offsite` (any restic repository), `restic check
--read-data-subset` reads a share of the off-site data back, and the copies are listed there by their
originals' ids.

Secrets (the repositories' password, the off-site repository's keys) reach restic through its environment
only: they travel to the host on standard input, ahead of whatever else the command reads there, and the
host's shell exports them (`_PRELUDE`). `restic copy` reads the source repository's password from a 0600
file in a private folder, removed however the command ends. No secret is ever an argument.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import IO, Any

from wpgate import inventory
from wpgate import progress as progress_display
from wpgate.backup import checks, database, files
from wpgate.backup.database import BackupError, Credentials
from wpgate.backup.model import (FORMAT, ID, Backup, InBackground, Progress, backup_config, is_disk_full, json_bytes,
                                 last_lines, new_id, stamp, tables_from)
from wpgate.bridge import Bridge
from wpgate.command import Command, Secret
from wpgate.config import SiteConfig
from wpgate.errors import WpgateError
from wpgate.execute import Result
from wpgate.transports import Transport

MINIMUM_VERSION = (0, 14)  # `copy --from-repo`, repository format 2
FILES, DATABASE, MANIFEST = "files", "database.sql", "manifest.json"
PARTS = (FILES, DATABASE, MANIFEST)
SNAPSHOT_TAG = "wpgate"

# Reads `NAME=value` lines from stdin up to an empty line and exports them, then runs the script ($1) with
# the rest of stdin. With WPGATE_FROM_PASSWORD set, that password goes into a private 0600 file that
# `restic copy` reads (restic takes the source repository's password from a file or a command only).
_PRELUDE = r"""
while IFS= read -r line && [ -n "$line" ]; do export "$line"; done
script=$1
shift
private=
cleanup() { [ -z "$private" ] || rm -rf -- "$private"; }
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
if [ -n "${WPGATE_FROM_PASSWORD:-}" ]; then
  umask 077
  private=$(mktemp -d "${TMPDIR:-/tmp}/wpgate-restic-XXXXXX") || { echo "wpgate: cannot make a private folder" >&2; exit 125; }
  printf '%s' "$WPGATE_FROM_PASSWORD" > "$private/password" || exit 125
  unset WPGATE_FROM_PASSWORD
  export RESTIC_FROM_PASSWORD_FILE="$private/password"
fi
sh -c "$script" sh "$@"
"""

_VERSION = 'command -v restic >/dev/null 2>&1 || { echo "missing"; exit 127; }; restic version'

_RESTIC = 'exec restic "$@"'

# The database through the dump client, straight into restic: the client options file arrives on stdin
# (after the prelude's secrets: database.DUMP_CLIENT).
_BACKUP_DUMP = r"""
export LC_ALL=C
umask 077
exec 3>&1 >/dev/null
database=$1
shift
""" + database.DUMP_CLIENT + r"""
{ dump_database "$database"; echo "status dump $?" >&3; } |
  { restic backup --json --quiet --stdin --stdin-filename database.sql "$@" >&3; echo "status restic $?" >&3; }
"""

# The files snapshot restored into a private scratch folder beside the repository (or in backup.dir), with
# restic's own check of every restored file's content; then the restored root as find(1) sees it.
_RESTORE_FILES = r"""
export LC_ALL=C
umask 077
dir=$1 snapshot=$2 root=$3
scratch=$(mktemp -d "$dir/.wpgate-verify-XXXXXX") || exit 2
trap 'chmod -R u+rwX -- "$scratch" 2>/dev/null; rm -rf -- "$scratch"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
restic restore --quiet --verify --target "$scratch" "$snapshot" >&2 || exit 3
cd -- "$scratch$root" || exit 4
find . -mindepth 1 -printf '%y %s %P\0'
"""


def _version(text: str) -> tuple[int, ...] | None:
    match = re.search(r"restic (\d+)\.(\d+)(?:\.(\d+))?", text)
    return tuple(int(part or 0) for part in match.groups()) if match else None


@dataclass
class Restic:
    """restic on one site's host, with that site's repositories and secrets."""

    site_name: str
    site: SiteConfig
    transport: Transport

    @property
    def config(self):
        return backup_config(self.site_name, self.site)

    @property
    def label(self) -> str:
        return f"site {self.site_name} ({self.transport.name})"

    # --- running restic ----------------------------------------------------------------------------------

    def _password(self) -> Secret:
        value = os.environ.get(self.config.password_env or "", "")
        if not value:
            raise BackupError(f"site {self.site_name}: backup.password_env: environment variable "
                              f"{self.config.password_env} is not set (the restic repositories' password)")
        return Secret(value)

    def _header(self, *, offsite: bool = False, repository: str | None = None, copy: bool = False) -> bytes:
        """The prelude's secrets: the repository and its password, for the off-site repository its
        variables, and for `restic copy` (`copy`) the primary's password too."""
        password = self._password()
        values: dict[str, str] = {"RESTIC_PASSWORD": password.value,
                                  "RESTIC_REPOSITORY": repository or self.config.repository or ""}
        if offsite:
            for variable, env in self.config.offsite_env.items():
                value = os.environ.get(env, "")
                if not value:
                    raise BackupError(f"site {self.site_name}: backup.offsite_env.{variable}: environment "
                                      f"variable {env} is not set")
                Secret(value)  # masked wherever text leaves wpgate
                values[variable] = value
            values["RESTIC_REPOSITORY"] = repository or self.config.offsite or ""
        if copy:
            values["WPGATE_FROM_PASSWORD"] = password.value
        for name, value in values.items():
            if "\n" in value or "\0" in value:
                raise BackupError(f"site {self.site_name}: the value of {name} holds a line break: restic "
                                  "cannot be given it")
        return "".join(f"{name}={value}\n" for name, value in values.items()).encode() + b"\n"

    def run(self, script: str, *args: str, offsite: bool = False, repository: str | None = None,
            input: bytes = b"", stdin: IO[bytes] | None = None, timeout: float | None = None,
            copy: bool = False) -> Result:
        """Run `script` (a POSIX shell script; restic finds its repository and password in the environment)
        on the host, the secrets on stdin ahead of `input`."""
        command = Command.of("sh", "-c", _PRELUDE, "sh", script, *args)
        header = self._header(offsite=offsite, repository=repository, copy=copy)
        return self.transport.run(command, input=header + input, timeout=timeout)

    def restic(self, *args: str, offsite: bool = False, input: bytes = b"", timeout: float | None = None) -> Result:
        options = [f"--option={key}={value}" for key, value in self.config.restic_options.items()] if offsite else []
        return self.run(_RESTIC, *options, *args, offsite=offsite, input=input, timeout=timeout,
                        copy=args[:1] == ("copy",))  # only `restic copy` reads the primary's password too

    def failure(self, result: Result, what: str, *, offsite: bool = False) -> BackupError:
        """One line for a restic command that failed: what, where, what to do."""
        where = self.config.offsite if offsite else self.config.repository
        name = "the off-site repository" if offsite else "the repository"
        text = result.error_text(limit=4000)
        if result.returncode == 127 and "restic" in text + result.text():
            return BackupError(missing_message(self.label))
        if "wrong password" in text:
            return BackupError(f"{self.label}: {what}: the password in {self.config.password_env} does not open "
                               f"{name} {where} (wrong password or no key found): set {self.config.password_env} "
                               "to that repository's password; nothing was changed")
        if is_disk_full(text) or "no space left on device" in text.lower():
            return BackupError(f"{self.label}: {what}: the disk holding {name} {where} is full (No space left on "
                               "device): free space there or move the repository to a bigger disk")
        if re.search(r"connection refused|dial tcp|no such host|i/o timeout|network is unreachable|"
                     r"Connection closed by|ssh: connect to host|subprocess ssh", text, re.IGNORECASE):
            return BackupError(f"{self.label}: {what}: cannot reach {name} {where}: {_fatal_line(text)}: is it "
                               "reachable from the site's host?")
        locked = re.search(r"repository is already locked (exclusively )?by (PID \d+ on \S+)", text)
        if locked:
            return BackupError(f"{self.label}: {what}: {name} {where} is locked by another restic process "
                               f"({locked.group(2)}{', exclusively' if locked.group(1) else ''}): wait for it to "
                               "finish; if that process is gone, remove the stale lock with `restic unlock`; "
                               "nothing was changed")
        if "Is there a repository at the following location?" in text or "unable to open config file" in text:
            return BackupError(f"{self.label}: {what}: there is no restic repository at {where} "
                               f"({_fatal_line(text)}): create it with `restic init` (see the README)")
        return BackupError(f"{self.label}: {what} failed (restic exit {result.returncode}): "
                           f"{_fatal_line(text) or 'no message'}")

    # --- facts -------------------------------------------------------------------------------------------

    def version(self) -> str:
        """restic's version on the host; BackupError (one line) when it is missing or too old."""
        result = self.transport.run(Command.of("sh", "-c", _VERSION))
        if result.returncode == 127 or "missing" in result.text():
            raise BackupError(missing_message(self.label))
        found = _version(result.text())
        if not result.ok or found is None:
            raise BackupError(f"{self.label}: `restic version` failed: {result.error_text() or result.text()}")
        if found[:2] < MINIMUM_VERSION:
            raise BackupError(f"{self.label}: restic {'.'.join(map(str, found))} is too old: wpgate needs restic "
                              f"{'.'.join(map(str, MINIMUM_VERSION))} or newer on the site's host")
        return ".".join(map(str, found))

    def opens(self, *, offsite: bool = False) -> None:
        """The repository exists and the password opens it (`restic cat config`); BackupError otherwise."""
        result = self.restic("cat", "config", offsite=offsite, timeout=300)
        if not result.ok:
            raise self.failure(result, "opening " + ("the off-site repository" if offsite else "the repository"),
                               offsite=offsite)

    def snapshots(self, *tags: str, offsite: bool = False, lock: bool = True) -> list[dict[str, Any]]:
        """The site's snapshots with these tags. `lock=False` lists them beside a command that holds the
        repository's exclusive lock (`restic check`)."""
        args = ["snapshots", "--json", "--tag", ",".join((SNAPSHOT_TAG, f"site={self.site_name}", *tags))]
        args = args if lock else ["--no-lock", *args]
        result = self.restic(*args, offsite=offsite, timeout=600)
        if not result.ok:
            raise self.failure(result, "listing snapshots", offsite=offsite)
        try:
            listed = json.loads(result.text() or "[]")
        except json.JSONDecodeError:
            raise BackupError(f"{self.label}: restic snapshots gave no JSON: {result.text()[:200]}") from None
        return listed or []

    def scratch_dir(self) -> str:
        """Where restore proofs unpack: backup.dir when set, else beside the repository (same disk)."""
        return self.config.dir or posixpath.dirname(self.config.repository.rstrip("/")) or "/"


def missing_message(label: str) -> str:
    return (f"{label}: restic is not installed on the site's host (backup.engine: restic): install the "
            "distribution's package (Debian: apt install restic), or set backup.engine: archive")


def _fatal_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    for line in lines:
        if line.startswith("Fatal:"):
            return line.removeprefix("Fatal:").strip()
    return lines[-1] if lines else ""


def _tags(site_name: str, backup_id: str, part: str, labels: dict[str, str]) -> list[str]:
    tags = [SNAPSHOT_TAG, f"site={site_name}", f"backup={backup_id}", f"part={part}"]
    tags += [f"{key}={re.sub(r'[^A-Za-z0-9._:+-]', '_', value)}" for key, value in labels.items() if value]
    return ["--tag", ",".join(tags)]


def _summary(output: str) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        if line.startswith("{") and '"summary"' in line:
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    return {}


# --- taking a backup ---------------------------------------------------------------------------------------

def take(site_name: str, site: SiteConfig, transport: Transport, bridge: Bridge, *,
         progress: Progress | None = None, labels: dict[str, str] | None = None) -> Backup:
    """Back the site up into its restic repository and copy it to the off-site one, checked there.

    Anything that fails forgets the snapshots written (in both repositories) and raises BackupError; the
    site itself is only read."""
    from wpgate.backup.checks import table_checksums
    from wpgate.backup.take import _facts

    restic = Restic(site_name, site, transport)
    config = restic.config
    if not config.offsite:
        raise BackupError(f"site {site_name}: backup.offsite is not set: set it to the restic repository that "
                          "holds the backup's second copy")
    say = progress or (lambda text: None)
    labels = labels or {}
    restic.version()
    started = time.monotonic()
    created = datetime.now(timezone.utc)
    backup_id = new_id(site_name, created)
    label = restic.label
    excluded = ["--exclude", files.ASIDE_NAME]
    for path in (config.dir, config.repository):
        if path and files.inside(site.path, path):
            excluded += ["--exclude", path]
    written: list[str] = []

    def backup_files() -> Result:
        return restic.run(_RESTIC, "backup", "--json", "--quiet", *_tags(site_name, backup_id, FILES, labels),
                          *excluded, site.path, timeout=6 * 3600)

    say(f"backing up {site.path} (incremental) and streaming the database dump into {config.repository}")
    archive = InBackground(backup_files)
    try:
        with progress_display.stage("    restic backup of the files and the database on the host"):
            facts = _facts(bridge, label)
            credentials = Credentials.from_facts(facts)
            tables_before = tables_from(facts["tables"])
            dumped = restic.run(_BACKUP_DUMP, credentials.name, *_tags(site_name, backup_id, DATABASE, labels),
                                input=credentials.options_file().value.encode(), timeout=6 * 3600)
            dump_report = _dump_report(dumped)
            if dump_report["snapshot"]:
                written.append(dump_report["snapshot"])
            _check_dump(restic, dumped, dump_report, credentials)
            tables_after = table_checksums(site, transport, bridge)
            found_inventory = inventory.read(bridge)
            archived = archive.result()
            summary = _summary(archived.text())
            if summary.get("snapshot_id"):
                written.append(summary["snapshot_id"])
            if not archived.ok and not (archived.returncode == 3 and summary.get("snapshot_id")):
                raise restic.failure(archived, f"backing up {site.path}")
        changed = sorted(name for name in set(tables_before) | set(tables_after)
                         if tables_before.get(name) != tables_after.get(name))
        warnings = [line for line in archived.error_text().splitlines() if line.strip()][:20] \
            if archived.returncode == 3 else []
        manifest = {
            "wpgate_backup": FORMAT, "engine": "restic", "id": backup_id, "site": site_name,
            "created_at": stamp(created), "host": transport.name, "root": site.path,
            "repository": config.repository, "labels": labels,
            "database": {"name": credentials.name, "server": facts.get("server"), "client": dump_report["client"],
                         "options": list(database.DUMP_OPTIONS), "tables": len(tables_before),
                         "rows": sum(t["rows"] for t in tables_before.values()), "changed_during_backup": changed,
                         "bytes": dump_report["summary"].get("total_bytes_processed"),
                         "bytes_added": dump_report["summary"].get("data_added")},
            "files": {"files": summary.get("total_files_processed"), "bytes": summary.get("total_bytes_processed"),
                      "new": summary.get("files_new"), "changed": summary.get("files_changed"),
                      "unmodified": summary.get("files_unmodified"), "bytes_added": summary.get("data_added"),
                      "excluded": excluded[1::2], "warnings": warnings},
            "snapshots": {FILES: summary["snapshot_id"], DATABASE: dump_report["snapshot"]},
            "inventory": found_inventory.data, "tables": tables_before,
        }
        manifest["finished_at"] = stamp(datetime.now(timezone.utc))
        manifest["seconds"] = round(time.monotonic() - started, 2)
        manifest_bytes = json_bytes(manifest)
        result = restic.run(_RESTIC, "backup", "--json", "--quiet", "--stdin", "--stdin-filename", MANIFEST,
                            *_tags(site_name, backup_id, MANIFEST, labels), input=manifest_bytes, timeout=600)
        manifest_summary = _summary(result.text())
        if manifest_summary.get("snapshot_id"):
            written.append(manifest_summary["snapshot_id"])
        if not result.ok or not manifest_summary.get("snapshot_id"):
            raise restic.failure(result, "writing the backup's manifest")
        short_ids = {FILES: summary["snapshot_id"], DATABASE: dump_report["snapshot"],
                     MANIFEST: manifest_summary["snapshot_id"]}
        say(f"copying {backup_id} to the off-site repository {config.offsite}")
        with progress_display.stage("    restic copy to the off-site repository, and check there"):
            ids = copy_offsite(restic, backup_id, short_ids)
    except BaseException:
        archive.wait()
        _forget(restic, backup_id)
        raise
    found = _backup(restic, manifest, manifest_bytes, ids)
    return found


def _dump_report(result: Result) -> dict[str, Any]:
    output = result.text()
    report: dict[str, Any] = {"statuses": database.parse_statuses(output), "summary": _summary(output),
                              "client": None, "failed": None}
    for line in output.splitlines():
        if line.startswith("client "):
            report["client"] = line[7:]
        elif line.startswith("failed "):
            report["failed"] = line[7:]
    report["snapshot"] = report["summary"].get("snapshot_id")
    return report


def _check_dump(restic: Restic, result: Result, report: dict[str, Any], credentials: Credentials) -> None:
    label = restic.label
    stderr = result.error_text(limit=4000)
    if report["failed"] == "options-file":
        raise BackupError(f"{label}: cannot write the database client's private options file in a temporary "
                          f"folder: {last_lines(stderr) or 'mktemp failed'}")
    if report["failed"] == "dump-client":
        raise BackupError(f"{label}: neither mariadb-dump nor mysqldump is installed: install the MariaDB client "
                          "(Debian: mariadb-client) or the MySQL client on the site's host")
    status = report["statuses"].get("dump")
    if status != 0:
        raise BackupError(database.explain(stderr, credentials, label) or
                          f"{label}: the dump client {report['client'] or ''} failed (exit {status}): "
                          f"{last_lines(stderr)}")
    if report["statuses"].get("restic") != 0 or not report["snapshot"]:
        raise restic.failure(result, "streaming the database dump into restic")


def copy_offsite(restic: Restic, backup_id: str, snapshot_ids: dict[str, str]) -> dict[str, str]:
    """`restic copy` of the snapshots ({part: id}, short ids will do) into the off-site repository, then
    at once `restic check --read-data-subset` there and the list of the copies, each found by its
    original's id. The originals' full ids, {part: id}; BackupError when a copy is missing."""
    config = restic.config
    result = restic.restic("copy", "--from-repo", config.repository, *snapshot_ids.values(), offsite=True,
                           timeout=6 * 3600)
    if not result.ok:
        raise restic.failure(result, f"copying backup {backup_id} off-site", offsite=True)
    checking = InBackground(lambda: check_offsite(restic))
    try:
        full, problems = _copies(restic, backup_id, snapshot_ids)
    except BaseException:
        checking.wait()
        raise
    checking.result()
    if problems:
        raise BackupError(f"{restic.label}: the off-site copy of {backup_id} is incomplete: " + "; ".join(problems))
    _CHECKED_AFTER_COPY.add((restic.config.offsite, backup_id))
    return full


# Backups whose off-site copies this process listed and checked right after copying them: gate 6.2's
# verification of the backup it has just taken does not read the same data again.
_CHECKED_AFTER_COPY: set[tuple[str | None, str]] = set()


def check_offsite(restic: Restic) -> None:
    """`restic check --read-data-subset` of the off-site repository; BackupError, one line, when it fails."""
    config = restic.config
    result = restic.restic("check", f"--read-data-subset={config.check_subset}", offsite=True, timeout=6 * 3600)
    if not result.ok:
        if re.search(r"wrong password|unable to open config|connection refused|dial tcp|no such host",
                     result.error_text(limit=4000), re.IGNORECASE):
            raise restic.failure(result, "checking the off-site repository", offsite=True)
        raise BackupError(f"{restic.label}: `restic check --read-data-subset={config.check_subset}` found the "
                          f"off-site repository {config.offsite} damaged: {_check_problem(result)}: repair it "
                          "(restic's `rebuild-index`, `prune`, or a new repository) before deploying")


def _check_problem(result: Result) -> str:
    text = result.text() + "\n" + result.error_text(limit=4000)
    for line in text.splitlines():
        if re.search(r"error|damaged|does not match|hash mismatch|Pack ID does not match", line, re.IGNORECASE):
            return line.strip()[:200]
    return _fatal_line(text) or f"restic exit {result.returncode}"


def _copies(restic: Restic, backup_id: str, snapshot_ids: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The backup's copies in the off-site repository, matched to their originals' ids (full or short):
    {part: the original's full id} of those found, and a problem for each one missing."""
    copies = restic.snapshots(f"backup={backup_id}", offsite=True, lock=False)
    originals = [snapshot.get("original") or snapshot.get("id") or "" for snapshot in copies]
    full, problems = {}, []
    for part, snapshot_id in snapshot_ids.items():
        found = [original for original in originals if snapshot_id and original.startswith(snapshot_id)]
        if found:
            full[part] = found[0]
        else:
            problems.append(f"snapshot {(snapshot_id or '?')[:8]} has no copy in {restic.config.offsite}")
    return full, problems


def offsite_problems(restic: Restic, backup_id: str, snapshot_ids: list[str]) -> list[str]:
    return _copies(restic, backup_id, {str(number): value for number, value in enumerate(snapshot_ids)})[1]


def _forget(restic: Restic, backup_id: str) -> None:
    """Forget every snapshot of an unfinished backup, in both repositories (best effort: the error that
    stopped the backup is the one reported)."""
    for offsite in (False, True):
        if offsite and not restic.config.offsite:
            continue
        try:
            listed = restic.snapshots(f"backup={backup_id}", offsite=offsite)
            if listed:
                restic.restic("forget", "--quiet", *[snapshot["id"] for snapshot in listed], offsite=offsite,
                              timeout=600)
        except WpgateError:
            pass


def forget(backups: list[Backup], site: SiteConfig, transport: Transport) -> dict[str, list[str]]:
    """Retention: these backups' snapshots forgotten, and the data no snapshot needs any more removed, with one
    `restic forget --prune` per repository for them all (prune reads the index and rewrites packs: the
    expensive part); each backup's problems (none: it is gone from both). Off-site first: a backup whose copy
    there cannot go stays whole in the repository, where the next prune finds it (wpgate reads backups from
    the repository only, so a copy left off-site after its original went would be named by nothing)."""
    problems: dict[str, list[str]] = {backup.id: [] for backup in backups}
    if not backups:
        return problems
    restic = Restic(backups[0].site, site, transport)
    for offsite in (True, False):
        if offsite and not restic.config.offsite:
            continue
        where = restic.config.offsite if offsite else restic.config.repository
        going = {name for name, found in problems.items() if not found}  # off-site failed: the original stays
        if not offsite:
            for name in set(problems) - going:
                problems[name].append(f"its snapshots in {where} were left whole: run `wpgate prune` again once "
                                      "the off-site repository can be changed")
        if not going:
            continue
        try:
            listed = [snapshot for snapshot in restic.snapshots(offsite=offsite)
                      if _tag_value(snapshot, "backup") in going]
        except BackupError as error:
            for name in going:
                problems[name].append(f"cannot remove {name} from {where}: {error}")
            continue
        if not listed:
            continue
        result = restic.restic("forget", "--prune", "--quiet", *[snapshot["id"] for snapshot in listed],
                               offsite=offsite, timeout=6 * 3600)
        if not result.ok:
            failure = restic.failure(result, "restic forget", offsite=offsite)
            for name in sorted({_tag_value(snapshot, "backup") or "" for snapshot in listed}):
                problems[name].append(f"cannot remove {name} from {where}: {failure}")
    return problems


def _tag_value(snapshot: dict[str, Any], key: str) -> str | None:
    for tag in snapshot.get("tags") or []:
        if tag.startswith(f"{key}="):
            return tag.split("=", 1)[1]
    return None


def _parts(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """A Backup's parts from its snapshots' ids, {part: id}."""
    return {part: {"path": f"restic:{ids[part]}", "snapshot": ids[part], "sha256": ids[part]} for part in PARTS}


def _complete(snapshots: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The listed snapshots of each backup that has all three parts: {backup id: {part: snapshot}}."""
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for snapshot in snapshots:
        name, part = _tag_value(snapshot, "backup"), _tag_value(snapshot, "part")
        if name and part in PARTS:
            groups.setdefault(name, {})[part] = snapshot
    return {name: parts for name, parts in groups.items() if set(parts) == set(PARTS)}


def _backup(restic: Restic, manifest: dict[str, Any], manifest_bytes: bytes, ids: dict[str, str]) -> Backup:
    config = restic.config
    parts = _parts(ids)
    parts[MANIFEST]["sha256"] = hashlib.sha256(manifest_bytes).hexdigest()
    return Backup(manifest["id"], manifest["site"], manifest["created_at"], config.repository, config.offsite,
                  parts, manifest.get("inventory") or {}, tables_from(manifest.get("tables")),
                  manifest, hashlib.sha256(manifest_bytes).hexdigest())


# --- finding and proving -----------------------------------------------------------------------------------

_DUMP_MANIFESTS = r"""
for snapshot in "$@"; do
  printf '%s\0' "$snapshot"
  restic dump --quiet "$snapshot" /manifest.json
  printf '\0'
done
"""


def find(site_name: str, site: SiteConfig, transport: Transport, *, limit: int | None = None,
         backup_id: str | None = None) -> list[Backup]:
    """The site's complete backups in its repository, newest first (`limit`: only the newest ones read)."""
    restic = Restic(site_name, site, transport)
    restic.version()
    tags = [f"backup={backup_id}"] if backup_id else []
    listed = _complete(restic.snapshots(*tags))
    groups = {name: {part: snapshot["id"] for part, snapshot in parts.items()} for name, parts in listed.items()}
    complete = sorted(listed, key=lambda name: max(snapshot.get("time", "") for snapshot in listed[name].values()),
                      reverse=True)
    if limit is not None:
        complete = complete[:limit]
    if not complete:
        return []
    result = restic.run(_DUMP_MANIFESTS, *[groups[name][MANIFEST] for name in complete], timeout=600)
    fields = result.stdout.split(b"\0")
    found = []
    for start in range(0, len(fields) - 1, 2):
        snapshot_id, content = fields[start].decode(errors="replace"), fields[start + 1]
        try:
            manifest = json.loads(content)
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        name = manifest.get("id") if isinstance(manifest, dict) else None
        if name not in groups or groups[name][MANIFEST] != snapshot_id or manifest.get("site") != site_name:
            continue
        if manifest.get("root") not in (None, site.path):
            continue  # another site of the same name, elsewhere
        found.append(_backup(restic, manifest, content, groups[name]))
    found.sort(key=lambda backup: backup.created_at, reverse=True)
    return found


def listed(site_name: str, site: SiteConfig, transport: Transport) -> list[Backup]:
    """The site's complete backups as the repository's snapshot list gives them, newest first, no manifest
    read: one restic process however many backups there are (`find` runs one per manifest), for retention,
    which needs only ids and times. A backup whose files snapshot holds another root (another site of the
    same name) is left out, as `find` leaves it out; its time is the one in its id, its manifest's
    `created_at`."""
    restic = Restic(site_name, site, transport)
    restic.version()
    found = []
    for name, parts in _complete(restic.snapshots()).items():
        match = ID.fullmatch(name)
        root = [posixpath.normpath(path) for path in parts[FILES].get("paths") or []]
        if not match or match.group("site") != site_name or root != [posixpath.normpath(site.path)]:
            continue
        ids = {part: snapshot["id"] for part, snapshot in parts.items()}
        created = datetime.strptime(match.group("stamp"), "%Y%m%d-%H%M%S").replace(tzinfo=timezone.utc)
        manifest = {"id": name, "site": site_name, "engine": "restic", "created_at": stamp(created),
                    "root": site.path, "snapshots": ids}
        found.append(Backup(name, site_name, manifest["created_at"], restic.config.repository, restic.config.offsite,
                            _parts(ids), {}, {}, manifest))
    found.sort(key=lambda backup: backup.created_at, reverse=True)
    return found


def verify_copies(backup: Backup, site: SiteConfig, transport: Transport) -> list[str]:
    """The backup's three snapshots in the repository, and their copies off-site; the problems found."""
    restic = Restic(backup.site, site, transport)
    problems = []
    ids = {part: backup.parts.get(part, {}).get("snapshot") for part in PARTS}
    if backup.manifest.get("snapshots", {}).get(FILES, "")[:8] != (ids[FILES] or "")[:8]:
        problems.append(f"the manifest of {backup.id} names another files snapshot than the repository holds")
    if not restic.config.offsite:
        return problems + ["there is no off-site copy: backup.offsite is not set"]
    if (restic.config.offsite, backup.id) in _CHECKED_AFTER_COPY:
        return problems  # copied, listed and checked off-site by this process a moment ago
    try:
        problems += offsite_problems(restic, backup.id, [value for value in ids.values() if value])
        check_offsite(restic)
    except BackupError as error:
        problems.append(str(error))
    return problems


_SCAN_DUMP = r"""
export LC_ALL=C
exec 3>&1
{ restic dump --quiet "$1" /database.sql; echo "status dump $?" >&3; } |
  """ + checks.SCAN_DUMP_SQL


def dump_problems(backup: Backup, transport: Transport, site: SiteConfig,
                  tables_now: dict[str, Any] | None = None) -> list[str]:
    """The dump in its snapshot ends with the dump client's completion line and creates every table."""
    restic = Restic(backup.site, site, transport)
    result = restic.run(_SCAN_DUMP, backup.parts[DATABASE]["snapshot"], timeout=3600)
    output = result.text()
    problems = []
    if database.parse_statuses(output).get("dump") != 0:
        problems.append(f"the dump in snapshot {backup.parts[DATABASE]['snapshot'][:8]} does not read back: "
                        f"{_fatal_line(result.error_text()) or 'restic dump failed'}")
    return problems + checks.dump_scan_problems(output, backup, tables_now)


class _WithSecrets(Transport):
    """The site's transport, each command run behind the prelude: restic, wherever a shared database script
    calls it (`read_dump`), finds its repository and password in its environment."""

    def __init__(self, restic: Restic) -> None:
        self._restic = restic
        self.name = restic.transport.name

    def run(self, command: Command, *, input: bytes | None = None, stdin=None, stdout=None,
            timeout: float | None = None) -> Result:
        if stdin is not None or stdout is not None:
            raise TypeError("restic's database scripts take their input as bytes")
        wrapped = Command.of("sh", "-c", _PRELUDE, "sh", "exec \"$@\"", *command.argv)
        return self._restic.transport.run(wrapped, input=self._restic._header() + (input or b""), timeout=timeout)


def database_reader(restic: Restic) -> Transport:
    return _WithSecrets(restic)


def check_restore(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge,
                  progress: Progress | None = None, *, journal=None):
    """Restore the backup's files into a scratch folder (restic verifies each file's content) and its dump
    into a scratch database or scratch tables (as the archive engine's proof does), compared with the
    backup; both removed. A RestoreCheck."""
    restic = Restic(backup.site, site, transport)
    say = progress or (lambda text: None)
    config = restic.config
    problems: list[str] = []
    compared: dict[str, Any] = {}
    credentials = Credentials.from_facts(bridge.database_facts())
    scratch = database.scratch_name(credentials, config.verify_database)
    where = restic.scratch_dir()
    say(f"restoring into scratch database {scratch} and a scratch folder in {where}")
    scan = InBackground(lambda: dump_problems(backup, transport, site))  # beside the restore: it reads the dump too
    extraction = InBackground(lambda: restic.run(_RESTORE_FILES, where, backup.parts[FILES]["snapshot"],
                                                 backup.manifest.get("root") or site.path, timeout=6 * 3600))
    reader = database_reader(restic)
    dump = f"restic:{backup.parts[DATABASE]['snapshot']}"
    with progress_display.stage(f"    restore of {backup.id} into scratch copies"):
        try:
            problems += checks.dump_restore_problems(backup, dump, reader, credentials, scratch,
                                                     configured=bool(config.verify_database), journal=journal,
                                                     compared=compared)
        except BaseException:
            extraction.wait()
            scan.wait()
            raise
        extracted = extraction.result()
        problems = scan.result() + problems
    if extracted.returncode == 3:
        problems.append(f"the files snapshot does not restore: {_fatal_line(extracted.error_text()) or 'restic failed'}")
    elif not extracted.ok:
        problems.append(f"the files snapshot could not be restored into a scratch folder in {where}: "
                        f"{last_lines(extracted.error_text()) or f'exit {extracted.returncode}'}")
    else:
        tree = files.parse_tree(extracted.stdout)
        totals = files.totals(tree)
        expected = backup.manifest.get("files", {})
        if expected.get("files") is not None and totals.get("files") != expected.get("files"):
            problems.append(f"the restored files number {totals.get('files')}, the backup holds {expected.get('files')}")
        if expected.get("bytes") is not None and totals.get("bytes") != expected.get("bytes"):
            problems.append(f"the restored files hold {totals.get('bytes')} bytes, the backup {expected.get('bytes')}")
        compared.update(totals)
    return checks.RestoreCheck(problems, compared)
