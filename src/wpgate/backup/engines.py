"""The two ways a site's backups are kept, behind one interface: wpgate's own archive (`backup.engine: archive`,
a folder of parts on the host and a copy on this machine) and restic repositories (`engine: restic`, restic.py).

Gate 6.2, rollback, resume and `wpgate restore` ask `of(site)` for the site's engine and call it; neither knows
how the engine keeps a backup. Each engine:

    take(site_name, site, transport, bridge, progress, labels)   a new backup, copied off-site and verified there
    find(site_name, site, transport)                             the site's backups, newest first
    listed(site_name, site, transport)                           the same, with ids and times only (retention)
    find_one(backup_id, site_name, site, transport)              one of them, or BackupNotFound
    verify_copies(backup, site, transport)                       both copies there and intact: the problems
    content_problems(backup, site, transport, tables_now)        the dump complete (and the archive whole)
    check_restore(backup, site, transport, bridge, ...)          restored into scratch copies, equal to the backup
    restore_database(backup, site, transport, bridge)            the site's own database put back (rollback)
    root_names(backup, site, transport)                          the names directly under the root, in the backup
    extract(backup, site, transport, members, source, target)    members of the root (relative paths) put into
                                                                 `target` (only `source` of them, when set)
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from wpgate.backup import checks, restore, take as archive_take
from wpgate.backup.database import BackupError, BackupNotFound
from wpgate.backup.files import parse_index
from wpgate.backup.model import ARCHIVE, INDEX, Backup, Progress, backup_config
from wpgate.bridge import Bridge
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.transports import Transport

# Extracts members of a backup's files archive into a private folder beside where they go, then moves
# the one asked for into place (the folder itself when `from` is empty).
_FROM_ARCHIVE = r"""
set -e
archive=$1 unpack=$2 from=$3 to=$4
shift 4
rm -rf -- "$unpack" "$to"
mkdir -m 700 -- "$unpack"
tar -xzpf "$archive" -C "$unpack" -- "$@"
if [ -z "$from" ]; then mv -- "$unpack" "$to"; else mv -- "$unpack/$from" "$to"; rm -rf -- "$unpack"; fi
"""

# The same from a restic snapshot: restic restores the included paths under their absolute path.
_FROM_SNAPSHOT = r"""
set -e
snapshot=$1 unpack=$2 root=$3 from=$4 to=$5
shift 5
rm -rf -- "$unpack" "$to"
mkdir -m 700 -- "$unpack"
restic restore --quiet --target "$unpack" "$snapshot" "$@"
if [ -z "$from" ]; then mv -- "$unpack$root" "$to"; else mv -- "$unpack$root/$from" "$to"; fi
rm -rf -- "$unpack"
"""


class ArchiveEngine:
    name = "archive"

    def take(self, site_name: str, site: SiteConfig, transport: Transport, bridge: Bridge, *,
             progress: Progress | None = None, labels: dict[str, str] | None = None) -> Backup:
        return archive_take.take_archive(site_name, site, transport, bridge, progress=progress)

    def find(self, site_name: str, site: SiteConfig, transport: Transport, limit: int | None = None) -> list[Backup]:
        found = checks.find(site_name, site, transport)  # one host command reads every manifest
        return found if limit is None else found[:limit]

    def find_one(self, backup_id: str, site_name: str, site: SiteConfig, transport: Transport) -> Backup:
        return checks.find_one(backup_id, site_name, site, transport)

    def listed(self, site_name: str, site: SiteConfig, transport: Transport) -> list[Backup]:
        return self.find(site_name, site, transport)

    def verify_copies(self, backup: Backup, site: SiteConfig, transport: Transport) -> list[str]:
        return checks.verify_copies(backup, site, transport)

    def content_problems(self, backup: Backup, site: SiteConfig, transport: Transport,
                         tables_now: dict[str, Any] | None = None) -> list[str]:
        return checks.dump_problems(backup, transport, tables_now) + checks.archive_problems(backup, transport)

    def check_restore(self, backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge,
                      progress: Progress | None = None, *, journal=None) -> checks.RestoreCheck:
        return checks.check_restore(backup, site, transport, bridge, progress, journal=journal)

    def restore_database(self, backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge) -> None:
        restore.restore_database(backup, site, transport, bridge)

    def root_names(self, backup: Backup, site: SiteConfig, transport: Transport) -> list[str]:
        index = parse_index(transport.check(Command.of("cat", "--", backup.path(INDEX))).text())
        return sorted(name.decode("utf-8", "replace") for name in index if b"/" not in name)

    def extract(self, backup: Backup, site: SiteConfig, transport: Transport, members: list[str], source: str,
                target: str) -> None:
        transport.check(Command.of("sh", "-c", _FROM_ARCHIVE, "sh", backup.path(ARCHIVE), f"{target}.unpack", source,
                                   target, *[f"./{member}" for member in members]), timeout=3600)


class ResticEngine:
    name = "restic"

    def take(self, site_name: str, site: SiteConfig, transport: Transport, bridge: Bridge, *,
             progress: Progress | None = None, labels: dict[str, str] | None = None) -> Backup:
        from wpgate.backup import restic

        return restic.take(site_name, site, transport, bridge, progress=progress, labels=labels)

    def find(self, site_name: str, site: SiteConfig, transport: Transport, limit: int | None = None) -> list[Backup]:
        from wpgate.backup import restic

        return restic.find(site_name, site, transport, limit=limit)  # one `restic dump` per manifest read

    def listed(self, site_name: str, site: SiteConfig, transport: Transport) -> list[Backup]:
        from wpgate.backup import restic

        return restic.listed(site_name, site, transport)  # the snapshot list alone: no manifest read

    def find_one(self, backup_id: str, site_name: str, site: SiteConfig, transport: Transport) -> Backup:
        from wpgate.backup import restic

        for backup in restic.find(site_name, site, transport, backup_id=backup_id):
            return backup
        raise BackupNotFound(f"no backup {backup_id} in the restic repository {backup_config(site_name, site).repository} "
                          f"on {transport.name} (or one of its three snapshots is missing: an unfinished backup)")

    def verify_copies(self, backup: Backup, site: SiteConfig, transport: Transport) -> list[str]:
        from wpgate.backup import restic

        return restic.verify_copies(backup, site, transport)

    def content_problems(self, backup: Backup, site: SiteConfig, transport: Transport,
                         tables_now: dict[str, Any] | None = None) -> list[str]:
        from wpgate.backup import restic

        return restic.dump_problems(backup, transport, site, tables_now)

    def check_restore(self, backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge,
                      progress: Progress | None = None, *, journal=None) -> checks.RestoreCheck:
        from wpgate.backup import restic

        return restic.check_restore(backup, site, transport, bridge, progress, journal=journal)

    def restore_database(self, backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge) -> None:
        from wpgate.backup import restic

        problems = restic.dump_problems(backup, transport, site)
        if problems:
            raise BackupError(f"{transport.name}: not restoring the dump of {backup.id}: " + "; ".join(problems))
        tool = restic.Restic(backup.site, site, transport)
        restore.load_and_prove(backup, site, transport, bridge, restic.database_reader(tool),
                               f"restic:{backup.parts[restic.DATABASE]['snapshot']}")

    def root_names(self, backup: Backup, site: SiteConfig, transport: Transport) -> list[str]:
        import json

        from wpgate.backup import restic

        tool = restic.Restic(backup.site, site, transport)
        root = backup.manifest.get("root") or site.path
        result = tool.restic("ls", "--json", backup.parts[restic.FILES]["snapshot"], root, timeout=600)
        if not result.ok:
            raise tool.failure(result, f"listing {root} in backup {backup.id}")
        names = []
        for line in result.text().splitlines():
            try:
                node = json.loads(line)
            except json.JSONDecodeError:
                continue
            if node.get("struct_type") == "node" and posixpath.dirname(node.get("path", "")) == root:
                names.append(node["name"])
        return sorted(names)

    def extract(self, backup: Backup, site: SiteConfig, transport: Transport, members: list[str], source: str,
                target: str) -> None:
        from wpgate.backup import restic

        tool = restic.Restic(backup.site, site, transport)
        root = backup.manifest.get("root") or site.path
        includes = [argument for member in members
                    for argument in ("--include", _pattern(posixpath.join(root, member)))]
        result = tool.run(_FROM_SNAPSHOT, backup.parts[restic.FILES]["snapshot"], f"{target}.unpack", root, source,
                          target, *includes, timeout=3600)
        if not result.ok:
            raise tool.failure(result, f"restoring {', '.join(members[:3])} from backup {backup.id}")


def _pattern(path: str) -> str:
    """A path as a restic include pattern, its wildcard characters taken literally."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", path)


ENGINES = {"archive": ArchiveEngine(), "restic": ResticEngine()}


def of(site_name: str, site: SiteConfig) -> ArchiveEngine | ResticEngine:
    """The engine that keeps the site's backups."""
    return ENGINES[backup_config(site_name, site).engine]


def of_backup(backup: Backup, site: SiteConfig) -> ArchiveEngine | ResticEngine:
    """The engine that took `backup` (a rollback after the config changed engines still finds its way)."""
    return ENGINES["restic" if checks.is_restic(backup) else "archive"]


# What `wpgate.backup` exports: each call goes to the site's (or the backup's) engine.

def take(site_name: str, site: SiteConfig, transport: Transport, bridge: Bridge, *,
         progress: Progress | None = None, labels: dict[str, str] | None = None) -> Backup:
    return of(site_name, site).take(site_name, site, transport, bridge, progress=progress, labels=labels)


def find(site_name: str, site: SiteConfig, transport: Transport, *, limit: int | None = None) -> list[Backup]:
    """The site's backups, newest first; with `limit`, only that many of the newest (restic reads each one's
    manifest out of the repository: gate 6.2 needs the newest only)."""
    return of(site_name, site).find(site_name, site, transport, limit)


def listed(site_name: str, site: SiteConfig, transport: Transport) -> list[Backup]:
    """The site's backups, newest first, with what retention needs (ids and times); restic reads no manifest."""
    return of(site_name, site).listed(site_name, site, transport)


def find_one(backup_id: str, site_name: str, site: SiteConfig, transport: Transport) -> Backup:
    return of(site_name, site).find_one(backup_id, site_name, site, transport)


def verify_copies(backup: Backup, site: SiteConfig, transport: Transport) -> list[str]:
    return of_backup(backup, site).verify_copies(backup, site, transport)


def content_problems(backup: Backup, site: SiteConfig, transport: Transport,
                     tables_now: dict[str, Any] | None = None) -> list[str]:
    return of_backup(backup, site).content_problems(backup, site, transport, tables_now)


def check_restore(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge,
                  progress: Progress | None = None, *, journal=None) -> checks.RestoreCheck:
    return of_backup(backup, site).check_restore(backup, site, transport, bridge, progress, journal=journal)


def restore_check(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge, *,
                  journal=None) -> list[str]:
    return check_restore(backup, site, transport, bridge, journal=journal).problems


def restore_database(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge) -> None:
    of_backup(backup, site).restore_database(backup, site, transport, bridge)
