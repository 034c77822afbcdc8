"""Finding a site's backups and proving them: sha256 in both places, a complete dump and archive, a scratch restore."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from wpgate import progress as progress_display
from wpgate.backup import database, files, offsite, remote
from wpgate.backup import scratch as scratch_tables
from wpgate.backup.database import BackupError, BackupNotFound, Credentials
from wpgate.backup.scratch import ScratchJournal
from wpgate.backup.model import (ARCHIVE, DUMP, ID, INDEX, INVENTORY, MANIFEST, TABLES, Backup, InBackground,
                                 Progress, backup_config, last_lines, tables_from, with_paths)
from wpgate.bridge import Bridge
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.transports import Transport
from wpgate.words import plural

_LIST = r"""
cd -- "$1" 2>/dev/null || exit 0
for folder in "$2"-*/; do
  folder=${folder%/}
  [ -f "$folder/manifest.json" ] || continue
  printf '%s\0' "$folder"
  cat -- "$folder/manifest.json"; printf '\0'
  cat -- "$folder/inventory.json" 2>/dev/null; printf '\0'
  cat -- "$folder/tables.json" 2>/dev/null; printf '\0'
done
"""


def find(site_name: str, site: SiteConfig, transport: Transport) -> list[Backup]:
    """The complete backups of the site in backup.dir on its host, newest first. `offsite` is the local
    copy's folder when one exists, else None. Folders whose manifest cannot be read are left out."""
    config = backup_config(site_name, site)
    result = transport.check(Command.of("sh", "-c", _LIST, "sh", config.dir, site_name))
    fields = result.stdout.split(b"\0")
    found = []
    for start in range(0, len(fields) - 4, 4):
        name = fields[start].decode("utf-8", "replace")
        match = ID.fullmatch(name)
        if not match or match.group("site") != site_name:
            continue
        try:
            manifest = json.loads(fields[start + 1])
            inventory_data = json.loads(fields[start + 2] or b"null")
            tables = json.loads(fields[start + 3] or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if not isinstance(manifest, dict) or manifest.get("id") != name or manifest.get("site") != site_name:
            continue
        if manifest.get("root") not in (None, site.path):
            continue  # another site of the same name, elsewhere on this host
        folder = f"{config.dir}/{name}"
        if remote.is_remote(config.offsite):
            copy = f"{config.offsite.rstrip('/')}/{name}"  # checked by verify_copies, not on every listing
        else:
            local = offsite.folder(config.offsite, name) if config.offsite else None
            copy = str(local) if local and local.is_dir() else None
        found.append(Backup(name, site_name, manifest.get("created_at", ""), folder, copy,
                            with_paths(manifest.get("parts", {}), folder), inventory_data or {},
                            tables_from(tables) if isinstance(tables, dict) else {}, manifest,
                            hashlib.sha256(fields[start + 1]).hexdigest()))
    found.sort(key=lambda backup: backup.created_at, reverse=True)
    return found


def find_one(backup_id: str, site_name: str, site: SiteConfig, transport: Transport) -> Backup:
    config = backup_config(site_name, site)
    for backup in find(site_name, site, transport):
        if backup.id == backup_id:
            return backup
    raise BackupNotFound(f"no backup {backup_id} in {config.dir} on {transport.name} "
                      "(or its manifest.json is missing: an unfinished backup)")


# --- checks -------------------------------------------------------------------------------------------------

def verify_copies(backup: Backup, site: SiteConfig, transport: Transport) -> list[str]:
    """The sha256 of every part, on the host and off-site, against the manifest; the problems found."""
    problems = []
    expected_parts = {DUMP, ARCHIVE, INDEX, INVENTORY, TABLES}
    if set(backup.parts) != expected_parts:
        problems.append(f"the manifest lists parts {sorted(backup.parts)}, not {sorted(expected_parts)}")
    names = [MANIFEST, *backup.parts]
    result = transport.run(Command.of("sh", "-c", 'cd -- "$1" && shift && sha256sum -- "$@"', "sh",
                                      backup.folder, *names))
    found = {}
    for line in result.text().splitlines():
        digest, _, name = line.partition("  ")
        found[name.strip()] = digest
    if found.get(MANIFEST) != backup.manifest_sha256:
        problems.append(f"on the host, {backup.folder}/{MANIFEST} changed since it was read")
    for name, part in backup.parts.items():
        actual = found.get(name)
        if actual is None:
            problems.append(f"on the host, {backup.folder}/{name} is missing or unreadable")
        elif actual != part.get("sha256"):
            problems.append(f"on the host, {name}: sha256 {actual[:12]}… does not match the manifest's "
                            f"{str(part.get('sha256'))[:12]}…")
    config = site.backup
    if config is None or not config.offsite:
        problems.append("there is no off-site copy: backup.offsite is not set")
    elif remote.is_remote(config.offsite):
        problems += remote.target(config).problems(backup.id, backup.parts, backup.manifest_sha256)
    else:
        problems += offsite.problems(config.offsite, backup.id, backup.parts, backup.manifest_sha256)
    return problems


# Reads a dump's SQL on stdin and prints `table CREATE TABLE …` for each table it creates, then `last` and
# its last non-empty line (200 characters at most): what dump_scan_problems reads. Both engines scan so.
SCAN_DUMP_SQL = r"""awk '/^CREATE TABLE /{ print "table " $0 } NF { last = $0 } END { print "last " substr(last, 1, 200) }'
"""
_TABLE_LINE = re.compile(r"^table CREATE TABLE `((?:[^`]|``)+)`")

_SCAN_DUMP = r"""
export LC_ALL=C
exec 3>&1
{ gzip -dc -- "$1"; echo "status gunzip $?" >&3; } |
  """ + SCAN_DUMP_SQL


def is_restic(backup: Backup) -> bool:
    """Whether the backup lies in a restic repository (backup/restic.py) rather than a folder of parts."""
    return backup.manifest.get("engine") == "restic"


def dump_problems(backup: Backup, transport: Transport, tables_now: dict[str, Any] | None = None) -> list[str]:
    """The dump decompresses, ends with the dump client's completion line, and creates every table of the
    backup (and of `tables_now`, production's tables, when given)."""
    result = transport.run(Command.of("sh", "-c", _SCAN_DUMP, "sh", backup.path(DUMP)))
    output = result.text()
    statuses = database.parse_statuses(output)
    problems = []
    if statuses.get("gunzip") != 0:
        problems.append(f"the dump {backup.path(DUMP)} does not decompress: {result.error_text() or 'damaged'}")
    return problems + dump_scan_problems(output, backup, tables_now)


def dump_scan_problems(output: str, backup: Backup, tables_now: dict[str, Any] | None = None) -> list[str]:
    """What a scan of the dump (SCAN_DUMP_SQL's lines in `output`) finds wrong: it does not end with the dump
    client's completion line, or lacks a table of the backup (or of `tables_now`, production's tables)."""
    problems = []
    dumped = set()
    last = ""
    for line in output.splitlines():
        match = _TABLE_LINE.match(line)
        if match:
            dumped.add(match.group(1).replace("``", "`"))
        elif line.startswith("last "):
            last = line[5:]
    if not last.startswith(database.COMPLETION_LINE):
        problems.append(f"the dump is incomplete: it does not end with the dump client's completion line "
                        f"(\"{database.COMPLETION_LINE} …\"); it ends with {last[:80]!r}")
    lacking = sorted(set(backup.tables) - dumped)
    if lacking:
        problems.append(f"the dump lacks table(s) the backup lists: {', '.join(lacking)}")
    if tables_now is not None:
        uncovered = sorted(set(tables_now) - dumped - set(lacking))
        if uncovered:
            problems.append(f"the dump does not cover production's table(s): {', '.join(uncovered)}")
    return problems


_LIST_ARCHIVE = r"""
export LC_ALL=C
exec 3>&1
count=$( { tar -tzf "$1"; echo "status list $?" >&3; } | wc -l )
echo "members $count"
echo "indexed $(wc -l < "$2")"
"""


def archive_problems(backup: Backup, transport: Transport) -> list[str]:
    """The files archive lists to its end without error, with as many members as its index."""
    result = transport.run(Command.of("sh", "-c", _LIST_ARCHIVE, "sh", backup.path(ARCHIVE), backup.path(INDEX)))
    statuses = database.parse_statuses(result.text())
    counts = dict(line.split() for line in result.text().splitlines()
                  if line.startswith(("members ", "indexed ")) and len(line.split()) == 2)
    if statuses.get("list") != 0:
        return [f"the files archive {backup.path(ARCHIVE)} does not list completely: "
                f"{last_lines(result.error_text()) or 'tar failed'}"]
    if counts.get("members") != counts.get("indexed"):
        return [f"the files archive lists {counts.get('members')} members, its index {counts.get('indexed')}"]
    return []


def table_checksums(site: SiteConfig, transport: Transport, bridge: Bridge) -> dict[str, dict[str, Any]]:
    """The site's tables now: {name: {"rows", "checksum"}} (exact COUNT(*) and CHECKSUM TABLE … EXTENDED)."""
    return tables_from(bridge.call("table_stats", load_extensions=False))


def table_differences(expected: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]], *,
                      expected_label: str, found_label: str, ignore: tuple[str, ...] | list[str] = ()) -> list[str]:
    """Tables missing, extra or different (row count, checksum) between two `tables` maps."""
    problems = []
    missing = sorted(set(expected) - set(found) - set(ignore))
    extra = sorted(set(found) - set(expected) - set(ignore))
    if missing:
        problems.append(f"{found_label} lacks table(s) {', '.join(missing)}")
    if extra:
        problems.append(f"{found_label} has table(s) {expected_label} lacks: {', '.join(extra)}")
    for name in sorted(set(expected) & set(found) - set(ignore)):
        want, got = expected[name], found[name]
        if want["rows"] != got["rows"]:
            problems.append(f"table {name}: {plural(want['rows'], 'row')} in {expected_label}, {got['rows']} in {found_label}")
        elif want.get("checksum") != got.get("checksum"):
            problems.append(f"table {name}: same {plural(got['rows'], 'row')} but another checksum in {found_label} "
                            f"than in {expected_label}")
    return problems


# Extracts the archive into a private scratch folder in backup.dir (removed however the script ends) and
# prints the archive's index, two NULs, then the restored tree as find(1) sees it.
_EXTRACT = r"""
export LC_ALL=C
umask 077
archive=$1 index=$2 dir=$3 id=$4
scratch=$(mktemp -d "$dir/.verify-$id-XXXXXX") || exit 2
trap 'chmod -R u+rwX -- "$scratch" 2>/dev/null; rm -rf -- "$scratch"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
tar -xzf "$archive" -C "$scratch" --no-same-owner || exit 3
cat -- "$index" || exit 4
printf '\0\0'
cd -- "$scratch" && find . -mindepth 1 -printf '%y %s %P\0'
"""


@dataclass
class RestoreCheck:
    """What `restore --verify` found: problems (none: restorable) and what it compared."""

    problems: list[str]
    compared: dict[str, Any]


def restore_check(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge, *,
                  journal: ScratchJournal | None = None) -> list[str]:
    """Restore the backup into a scratch database and a scratch folder on the host, compare row counts,
    checksums and files with the backup, remove both; the problems found (none: it is restorable)."""
    return check_restore(backup, site, transport, bridge, journal=journal).problems


def check_restore(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge,
                  progress: Progress | None = None, *, journal: ScratchJournal | None = None) -> RestoreCheck:
    """As restore_check. With a `journal`, a host whose database user may not create the scratch database
    gets the proof in the site's own database, under a scratch table prefix the journal records."""
    with progress_display.stage(f"    restore of {backup.id} into scratch copies"):
        return _check_restore(backup, site, transport, bridge, progress, journal)


def drop_scratch_leftovers(journal: ScratchJournal, transport: Transport, bridge: Bridge) -> list[str]:
    """Drop the scratch tables an earlier restore proof recorded and never saw dropped (it crashed, or
    its host command was killed); the tables dropped. Nothing is asked of the site when none is pending."""
    pending = journal.pending()
    if not pending:
        return []
    credentials = Credentials.from_facts(bridge.database_facts())
    dropped = []
    for entry in pending:
        if entry["database"] != credentials.name:
            continue  # wp-config.php names another database now: its tables are not this site's to drop
        dropped += database.drop_prefixed(transport, credentials, entry["prefix"])
        journal.dropped(entry["database"], entry["prefix"])
    return dropped


def dump_restore_problems(backup: Backup, dump: str, transport: Transport, credentials: Credentials, scratch: str, *,
                          configured: bool, journal: ScratchJournal | None, compared: dict[str, Any],
                          say: Progress | None = None) -> list[str]:
    """Restore the dump (`dump`: its path on the host, or restic:SNAPSHOT) into the scratch database `scratch`
    and compare its tables with the backup's; the problems, and in `compared` what was compared. Where the
    database user may not create that database and a `journal` is given, the proof uses scratch tables in the
    site's own database (`compared["scratch"]`; `say` tells). ScratchUnavailable and anything unexpected are
    raised. Both engines prove their dump so."""
    try:
        try:
            restored, cleanup = database.restore_into_scratch(transport, credentials, dump, scratch,
                                                              configured=configured)
        except database.ScratchDatabaseDenied as denied:
            if journal is None or configured:
                raise
            restored, cleanup, prefix = _restore_under_prefix(backup, dump, transport, credentials, journal, denied)
            scratch = f"scratch tables {prefix}* in {credentials.name}"
            if say:
                say(f"the database user may not create {credentials.name}{database.SCRATCH_SUFFIX}: restored into "
                    f"{scratch} instead, now dropped")
            compared["scratch"] = {"database": credentials.name, "prefix": prefix}
    except database.ScratchUnavailable:
        raise
    except BackupError as error:
        return [f"the dump does not restore: {error}"]
    problems = table_differences(backup.tables, restored, expected_label="the backup",
                                 found_label=f"the restored copy ({scratch})", ignore=backup.changed_during_backup)
    compared.update(tables=len(restored), rows=sum(t["rows"] or 0 for t in restored.values()))
    return problems + cleanup


def _restore_under_prefix(backup: Backup, dump: str, transport: Transport, credentials: Credentials,
                          journal: ScratchJournal, denied: database.ScratchDatabaseDenied
                          ) -> tuple[dict[str, dict[str, Any]], list[str], str]:
    prefix = scratch_tables.new_prefix()
    too_long = sorted(name for name in backup.tables if len(prefix + name) > scratch_tables.NAME_LIMIT)
    if too_long:
        raise database.ScratchUnavailable(
            f"{denied}; nor can the proof use scratch tables in {credentials.name}: table(s) "
            f"{', '.join(too_long)} would be longer than {scratch_tables.NAME_LIMIT} characters under the "
            f"prefix {prefix}") from denied
    journal.created(credentials.name, prefix)
    try:
        restored, problems = database.restore_into_scratch(transport, credentials, dump, credentials.name,
                                                           configured=True, prefix=prefix)
    except BaseException:
        _drop_now(transport, credentials, journal, prefix)
        raise
    if any(problem.startswith(f"the scratch tables {prefix}") for problem in problems):
        _drop_now(transport, credentials, journal, prefix)
    else:
        journal.dropped(credentials.name, prefix)
    return restored, problems, prefix


def _drop_now(transport: Transport, credentials: Credentials, journal: ScratchJournal, prefix: str) -> None:
    # The host script drops them however it ends; this is the second try, and the journal keeps the
    # prefix open (for the next command) when that fails too.
    try:
        database.drop_prefixed(transport, credentials, prefix)
    except BackupError:
        return
    journal.dropped(credentials.name, prefix)


def _check_restore(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge,
                   progress: Progress | None, journal: ScratchJournal | None) -> RestoreCheck:
    say = progress or (lambda text: None)
    config = backup_config(backup.site, site)
    problems = dump_problems(backup, transport)
    compared: dict[str, Any] = {}
    credentials = Credentials.from_facts(bridge.database_facts())
    scratch = database.scratch_name(credentials, config.verify_database)
    say(f"restoring into scratch database {scratch} and a scratch folder in {config.dir}")
    # The files and the database are restored side by side: two host commands, neither waits for the other.
    extraction = InBackground(lambda: transport.run(Command.of(
        "sh", "-c", _EXTRACT, "sh", backup.path(ARCHIVE), backup.path(INDEX), config.dir, backup.id)))
    try:
        problems += dump_restore_problems(backup, backup.path(DUMP), transport, credentials, scratch,
                                          configured=bool(config.verify_database), journal=journal,
                                          compared=compared, say=say)
    except BaseException:
        extraction.wait()
        raise
    if backup.changed_during_backup and "tables" in compared:
        compared["not_compared"] = backup.changed_during_backup
    extracted = extraction.result()
    if extracted.returncode == 3:
        problems.append(f"the files archive does not extract: {last_lines(extracted.error_text()) or 'tar failed'}")
    elif not extracted.ok:
        problems.append(f"the files archive could not be checked in a scratch folder in {config.dir}: "
                        f"{last_lines(extracted.error_text()) or f'exit {extracted.returncode}'}")
    else:
        index_text, _, tree_listing = extracted.stdout.partition(b"\0\0")
        tree = files.parse_tree(tree_listing)
        problems += files.compare(files.parse_index(index_text.decode("utf-8", "surrogateescape")), tree)
        compared.update(files.totals(tree))
    return RestoreCheck(problems, compared)
