"""Taking a backup: the files archive and the database dump written side by side on the host, then copied off-site.

The archive, the long part, starts first and runs on its own host command while wpgate reads the
database settings, dumps the database and reads the tables and inventory again; every part is
compressed and hashed on its way to disk. Should anything fail, the archive is stopped (its shell
records its process id; TERM stops its whole process group) and what was written is removed.

When no file under the root changed since the newest backup (same digest of every entry's kind, size,
ctime, mtime and inode), that backup's archive is hard-linked instead of made again, on the host and
off-site, once its sha256 is checked; the database is always dumped afresh.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from datetime import datetime, timezone
from typing import Any

from wpgate import inventory
from wpgate import progress as progress_display
from wpgate.backup import database, files, offsite, remote
from wpgate.backup.checks import find, table_checksums
from wpgate.backup.database import BackupError, Credentials
from wpgate.backup.model import (ARCHIVE, DUMP, FORMAT, INDEX, INVENTORY, MANIFEST, PARTS, TABLES, Backup, Progress,
                                 InBackground, backup_config, is_disk_full, json_bytes, last_lines, new_id,
                                 remove_on_host, stamp, tables_from, with_paths)
from wpgate.bridge import Bridge
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import BridgeError, WpgateError
from wpgate.execute import Result
from wpgate.transports import LocalTransport, Transport

# gzip -3: faster than the default -6 for a slightly larger archive. On the photos that make up most
# of a site gzip spends the same time at any level; on code and text -3 saves a third of it.
GZIP_LEVEL = "3"
PID_FILE = ".archive.pid"

# The writing scripts report every stage's exit status on fd 3, so that a failure anywhere in a pipe is
# seen, and write with umask 077 into the backup's `.partial` folder, which any of them may create.
_COMMON = r"""
export LC_ALL=C
umask 077
exec 3>&1 >/dev/null
part() {
  { gzip -"$level" -c; echo "status $1:gzip $?" >&3; } |
    { tee -- "$folder/$1"; echo "status $1:write $?" >&3; } |
    { sum=$(sha256sum) && echo "sha256 $1 ${sum%% *}" >&3; }
  if [ -f "$folder/$1" ]; then echo "bytes $1 $(wc -c < "$folder/$1")" >&3; fi
}
{ mkdir -p -- "$dir" && mkdir -p -- "$folder"; } || { echo "failed mkdir" >&3; exit 1; }
"""

_TOTALS = r"""
  awk 'NF >= 6 && !(NF == 6 && $6 == "./") { entries++ } /^-/ { files++; bytes += $3 }
       END { printf "totals %d %d %.0f\n", entries, files, bytes }' "$folder/files.index" >&3
"""

# The files under the root, less the exclusions given as arguments; tar's verbose listing is the index.
_WRITE_ARCHIVE = r"""
dir=$1 folder=$2 root=$3 level=$4
shift 4
""" + _COMMON + r"""
echo $$ > "$folder/.archive.pid"
trap 'trap - TERM; kill 0' TERM
{ tar -C "$root" --create --file=- -vv --numeric-owner --quoting-style=escape --index-file="$folder/files.index" \
    "$@" .; echo "status files.tar.gz:tar $?" >&3; } | part files.tar.gz &
wait
if [ -f "$folder/files.index" ]; then
  echo "bytes files.index $(wc -c < "$folder/files.index")" >&3
  sum=$(sha256sum < "$folder/files.index") && echo "sha256 files.index ${sum%% *}" >&3
""" + _TOTALS + r"""
fi
"""

# The previous backup's archive and index, hard-linked (same folder tree, so same filesystem; copied
# otherwise) into the new backup when the tree has not changed since; hashed again all the same.
_REUSE_ARCHIVE = r"""
dir=$1 folder=$2 previous=$3 level=
""" + _COMMON + r"""
echo "status files.tar.gz:tar 0" >&3
echo "status files.tar.gz:gzip 0" >&3
for name in files.tar.gz files.index; do
  if ln -- "$previous/$name" "$folder/$name" 2>/dev/null || cp -- "$previous/$name" "$folder/$name"; then
    echo "status $name:write 0" >&3
  else
    echo "status $name:write 1" >&3
    continue
  fi
  sum=$(sha256sum < "$folder/$name") && echo "sha256 $name ${sum%% *}" >&3
  echo "bytes $name $(wc -c < "$folder/$name")" >&3
done
if [ -f "$folder/files.index" ]; then
""" + _TOTALS + r"""
fi
"""

# What would make the archive differ: every entry's kind, size, change and modification times and inode,
# less what the archive leaves out. ctime changes on any write and cannot be set back.
_TREE = r"""
export LC_ALL=C
root=$1
shift
cd -- "$root" && find . "$@" -printf '%y %s %C@ %T@ %i %P\0' | sort -z | sha256sum
"""

# The whole database through the dump client (its options file arrives on stdin: database.DUMP_CLIENT).
_WRITE_DUMP = r"""
dir=$1 folder=$2 database=$3 level=$4
""" + _COMMON + database.DUMP_CLIENT + r"""
{ dump_database "$database"; echo "status database.sql.gz:dump $?" >&3; } | part database.sql.gz
"""

# The small parts arrive as a tar stream on stdin; then everything is forced to disk and the folder
# takes its final name.
_FINISH = r"""
umask 077
rm -f -- "$1/.archive.pid"
tar -xf - -C "$1" --no-same-owner || exit 1
sync -- "$1"/* "$1" 2>/dev/null
mv -- "$1" "$2"
"""

_STOP_ARCHIVE = 'if [ -f "$1" ]; then kill -TERM "$(cat "$1")" 2>/dev/null; fi; exit 0'


def take_archive(site_name: str, site: SiteConfig, transport: Transport, bridge: Bridge, *,
                 progress: Progress | None = None) -> Backup:
    """Back the site up on its host and copy it off-site, every part's sha256 verified there.

    Anything that fails removes what was written (on the host and off-site) and raises BackupError;
    the site itself is only read.
    """
    config = backup_config(site_name, site)
    if not config.offsite:
        raise BackupError(f"site {site_name}: backup.offsite is not set: set backup.offsite to a folder on this "
                          "machine for the backup's second copy")
    say = progress or (lambda text: None)
    started = time.monotonic()
    created = datetime.now(timezone.utc)
    backup_id = new_id(site_name, created)
    label = f"site {site_name} ({transport.name})"
    host_folder = f"{config.dir}/{backup_id}"
    partial = f"{host_folder}.partial"
    local_offsite = config.offsite if isinstance(transport, LocalTransport) and not remote.is_remote(config.offsite) \
        else None
    excluded = files.exclusions(site.path, config.dir, local_offsite)
    tree = _tree_digest(transport, site.path, files.prune(site.path, config.dir, local_offsite), label)
    previous = _reusable(site_name, site, transport, tree)

    def write_archive() -> Result:
        return transport.run(Command.of("sh", "-c", _WRITE_ARCHIVE, "sh", config.dir, partial, site.path,
                                        GZIP_LEVEL, *excluded))

    if previous:
        say(f"the files have not changed since backup {previous.id}: reusing its archive; dumping the database")
        archive = InBackground(lambda: transport.run(Command.of("sh", "-c", _REUSE_ARCHIVE, "sh", config.dir,
                                                                partial, previous.folder)))
    else:
        say(f"archiving {site.path} and dumping the database")
        archive = InBackground(write_archive)
    try:
        with progress_display.stage("    archive and database dump on the host"):
            facts = _facts(bridge, label)
            credentials = Credentials.from_facts(facts)
            tables_before = tables_from(facts["tables"])
            dumped = _dump(transport, config.dir, partial, credentials, label)
            tables_after = table_checksums(site, transport, bridge)
            found_inventory = inventory.read(bridge)
            archived = _archived(archive.result(), label, site.path, config.dir)
        if previous and any(archived["parts"][name]["sha256"] != previous.parts[name]["sha256"]
                            for name in (ARCHIVE, INDEX)):
            say(f"backup {previous.id}'s archive no longer matches its manifest: archiving afresh")
            previous = None
            remove_on_host(transport, f"{partial}/{ARCHIVE}", f"{partial}/{INDEX}")
            archived = _archived(write_archive(), label, site.path, config.dir)
    except BaseException:
        _stop(transport, archive, partial)
        remove_on_host(transport, partial)
        raise
    try:
        changed = sorted(name for name in set(tables_before) | set(tables_after)
                         if tables_before.get(name) != tables_after.get(name))
        parts = {**dumped["parts"], **archived["parts"]}
        small = {INVENTORY: json_bytes(found_inventory.data), TABLES: json_bytes(tables_before)}
        for name, content in small.items():
            parts[name] = {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
        manifest = {
            "wpgate_backup": FORMAT, "id": backup_id, "site": site_name, "created_at": stamp(created),
            "finished_at": stamp(datetime.now(timezone.utc)), "seconds": round(time.monotonic() - started, 2),
            "host": transport.name, "root": site.path,
            "database": {"name": credentials.name, "server": facts.get("server"), "client": dumped["client"],
                         "options": list(database.DUMP_OPTIONS), "tables": len(tables_before),
                         "rows": sum(t["rows"] for t in tables_before.values()),
                         "changed_during_backup": changed},
            "files": {**archived["totals"], "excluded": [option.split("=", 1)[1] for option in excluded
                                                         if option.startswith("--exclude=")],
                      "warnings": archived["warnings"], "tree_sha256": tree,
                      "reused_from": previous.id if previous else None},
            "parts": {name: parts[name] for name in PARTS},
        }
        small[MANIFEST] = manifest_bytes = json_bytes(manifest)
        result = transport.run(Command.of("sh", "-c", _FINISH, "sh", partial, host_folder),
                               input=_tar_stream(small))
        if not result.ok:
            raise BackupError(_disk_full(label, config.dir) if is_disk_full(result.error_text())
                              else f"{label}: cannot finish the backup folder {host_folder}: {result.error_text()}")
    except BaseException:
        remove_on_host(transport, partial)
        raise
    try:
        if remote.is_remote(config.offsite):
            say(f"copying {backup_id} off-site to {config.offsite}, each part read back and checked")
            location = remote.target(config).copy(transport, host_folder, backup_id, manifest["parts"], small)
        else:
            linkable = {name: offsite.folder(config.offsite, previous.id) / name for name in (ARCHIVE, INDEX)} \
                if previous else {}
            location = str(offsite.copy(transport, host_folder, config.offsite, backup_id, manifest["parts"], small,
                                        linkable=linkable))
    except WpgateError as error:
        remove_on_host(transport, host_folder)
        if isinstance(error, BackupError):
            raise
        if is_disk_full(str(error)):
            raise BackupError(f"cannot write the off-site copy in {config.offsite}: No space left on device "
                              "(free space there or set backup.offsite to a bigger disk); the backup was "
                              "removed") from None
        raise BackupError(f"cannot copy backup {backup_id} off-site to {config.offsite}: {error}; "
                          "the backup was removed") from None
    except BaseException:
        remove_on_host(transport, host_folder)
        raise
    return Backup(backup_id, site_name, manifest["created_at"], host_folder,
                  location, with_paths(manifest["parts"], host_folder),
                  found_inventory.data, tables_before, manifest, hashlib.sha256(manifest_bytes).hexdigest())


def _tree_digest(transport: Transport, root: str, prune: list[str], label: str) -> str | None:
    """A digest of the tree's metadata (see _TREE); None when it cannot be read (then nothing is reused)."""
    result = transport.run(Command.of("sh", "-c", _TREE, "sh", root, *prune))
    digest = result.text()[:64]
    return digest if result.ok and len(digest) == 64 and not result.stderr.strip() else None


def _reusable(site_name: str, site: SiteConfig, transport: Transport, tree: str | None) -> Backup | None:
    """The newest backup whose archive the new one may share: made from this very tree, without warnings."""
    if tree is None:
        return None
    for found in find(site_name, site, transport)[:1]:
        described = found.manifest.get("files", {})
        if described.get("tree_sha256") == tree and not described.get("warnings"):
            return found
    return None


def _facts(bridge: Bridge, label: str) -> dict[str, Any]:
    try:
        return bridge.call("backup_facts", load_extensions=False)
    except BridgeError as error:
        if "database connection" in error.message.lower():
            raise BackupError(f"{label}: cannot back up: the database server refuses connections "
                              "(WordPress: Error establishing a database connection)",
                              hint="check DB_HOST in wp-config.php and that the database server runs") from None
        raise


def _disk_full(label: str, where: str) -> str:
    return (f"{label}: the disk holding {where} is full (No space left on device) while writing the backup; "
            "the partial backup was removed: free space there or set backup.dir to a bigger disk")


def _report(result: Result) -> dict[str, Any]:
    """What a writing script said: statuses, sha256 and bytes of each part, and its other facts."""
    report: dict[str, Any] = {"statuses": database.parse_statuses(result.text()), "sha256": {}, "bytes": {},
                              "stderr": result.error_text(limit=2000)}
    for line in result.text().splitlines():
        words = line.split(" ", 2)
        if len(words) == 3 and words[0] == "sha256":
            report["sha256"][words[1]] = words[2]
        elif len(words) == 3 and words[0] == "bytes" and words[2].isdigit():
            report["bytes"][words[1]] = int(words[2])
        elif len(words) >= 2 and words[0] in ("client", "failed", "totals"):
            report[words[0]] = line.split(" ", 1)[1]
    return report


def _parts(report: dict[str, Any], names: tuple[str, ...], label: str, result: Result) -> dict[str, Any]:
    missing = [name for name in names if name not in report["sha256"] or name not in report["bytes"]]
    if missing or not result.ok:
        raise BackupError(f"{label}: the backup script ended without writing {', '.join(missing) or 'everything'}"
                          f": {last_lines(report['stderr']) or f'exit {result.returncode}'}")
    return {name: {"sha256": report["sha256"][name], "bytes": report["bytes"][name]} for name in names}


def _check_writes(report: dict[str, Any], part: str, folder: str, label: str) -> None:
    for step in ("gzip", "write"):
        if report["statuses"].get(f"{part}:{step}") != 0:
            raise BackupError(f"{label}: writing {part} in {folder} failed at {step}: "
                              f"{last_lines(report['stderr']) or 'no message'}")


def _dump(transport: Transport, backup_dir: str, folder: str, credentials: Credentials, label: str) -> dict[str, Any]:
    result = transport.run(Command.of("sh", "-c", _WRITE_DUMP, "sh", backup_dir, folder, credentials.name, GZIP_LEVEL),
                           input=credentials.options_file().value.encode())
    report = _report(result)
    stderr = report["stderr"]
    if report.get("failed") == "options-file":
        raise BackupError(f"{label}: cannot write the database client's private options file in a temporary "
                          f"folder: {last_lines(stderr) or 'mktemp failed'}")
    if report.get("failed") == "dump-client":
        raise BackupError(f"{label}: neither mariadb-dump nor mysqldump is installed: install the MariaDB client "
                          "(Debian: mariadb-client) or the MySQL client on the site's host")
    _check_folder(report, label, backup_dir)
    status = report["statuses"].get(f"{DUMP}:dump")
    if status != 0:
        raise BackupError(database.explain(stderr, credentials, label) or
                          f"{label}: the dump client {report.get('client', '')} failed (exit {status}): "
                          f"{last_lines(stderr)}")
    _check_writes(report, DUMP, folder, label)
    return {"parts": _parts(report, (DUMP,), label, result), "client": report.get("client")}


def _archived(result: Result, label: str, root: str, backup_dir: str) -> dict[str, Any]:
    report = _report(result)
    stderr = report["stderr"]
    _check_folder(report, label, backup_dir)
    status = report["statuses"].get(f"{ARCHIVE}:tar")
    if status not in (0, 1):  # 1: a file changed while tar read it; the archive is whole all the same
        raise BackupError(f"{label}: archiving {root} failed (tar exit {status}): {last_lines(stderr)}")
    _check_writes(report, ARCHIVE, backup_dir, label)
    totals = report.get("totals", "").split()
    if len(totals) != 3:
        raise BackupError(f"{label}: tar wrote no index of the archive: {last_lines(stderr) or 'no message'}")
    warnings = [line for line in stderr.splitlines() if line.startswith("tar:")] if status == 1 else []
    return {"parts": _parts(report, (ARCHIVE, INDEX), label, result), "warnings": warnings[:20],
            "totals": {"entries": int(totals[0]), "files": int(totals[1]), "bytes": int(totals[2])}}


def _check_folder(report: dict[str, Any], label: str, backup_dir: str) -> None:
    if is_disk_full(report["stderr"]):
        raise BackupError(_disk_full(label, backup_dir))
    if report.get("failed") == "mkdir":
        raise BackupError(f"{label}: cannot create the backup folder in {backup_dir}: {last_lines(report['stderr'])}")


def _stop(transport: Transport, archive: "InBackground", folder: str) -> None:
    """Stop the archive's host command, if it still runs, and wait for it to end."""
    if archive.running():
        try:
            transport.run(Command.of("sh", "-c", _STOP_ARCHIVE, "sh", f"{folder}/{PID_FILE}"))
        except WpgateError:
            pass  # the error that stopped the backup is the one to report
    archive.wait()


def _tar_stream(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o600, int(time.time())
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
