"""What a backup needs before one is written, read without writing: a backup folder on the host that the
account can write with room for the restore proof, an off-site folder here that it can write, and a way
for the restore proof to load the dump (a scratch database, or scratch tables in the site's own one).

Gate 6.2 checks the two folders before it finds or takes a backup; `deploy --dry-run` checks all three.
Each check returns one precondition record ({"check", "status", "detail"}) or raises BackupError with one
line: what, where (the config key), what to do.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

from wpgate.backup import database
from wpgate.backup import scratch as scratch_tables
from wpgate.backup.database import BackupError, Credentials
from wpgate.backup.offsite import human_size
from wpgate.bridge import Bridge
from wpgate.command import Command
from wpgate.config import BackupConfig, SiteConfig
from wpgate.transports import Transport

# The folder, or the nearest folder above it that exists (where `mkdir -p` would make it); whether the
# account may write there; the free space on its disk; and the size of the site's files, which the restore
# proof unpacks into a scratch folder beside the archive. Nothing is written.
_HOST_FOLDER = r"""
export LC_ALL=C
dir=$1 root=$2
existing=$dir
while [ ! -e "$existing" ] && [ ! -L "$existing" ]; do existing=$(dirname -- "$existing"); done
printf 'existing %s\n' "$existing"
if [ -d "$existing" ]; then echo "folder yes"; else echo "folder no"; fi
if [ -w "$existing" ] && [ -x "$existing" ]; then echo "writable yes"; else echo "writable no"; fi
df -Pk -- "$existing" 2>/dev/null | awk 'NR == 2 { print "free_kb " $4 }'
du -sk -- "$root" 2>/dev/null | awk '{ print "files_kb " $1 }'
"""


def record(check: str, detail: str, status: str = "passed") -> dict[str, Any]:
    return {"check": check, "status": status, "detail": detail}


def host_folder(site_name: str, site: SiteConfig, transport: Transport) -> dict[str, Any]:
    """backup.dir is a folder the account can write (or can make), with room for at least the site's files."""
    config = _config(site_name, site)
    key = f"sites.{site_name}.backup.dir"
    result = transport.run(Command.of("sh", "-c", _HOST_FOLDER, "sh", config.dir, site.path))
    facts = dict(line.split(" ", 1) for line in result.text().splitlines() if " " in line)
    existing = facts.get("existing", config.dir)
    where = config.dir if existing == config.dir else f"{existing} (the folder above it that exists)"
    if facts.get("folder") != "yes":
        raise BackupError(f"{key} {config.dir}: {existing} on {transport.name} is not a folder: "
                          "set backup.dir to a folder")
    if facts.get("writable") != "yes":
        raise BackupError(f"{key} {config.dir}: {where} on {transport.name} is not writable by the account "
                          "wpgate uses: make it writable for that account, or set backup.dir to a folder it can write")
    free = int(facts["free_kb"]) * 1024 if facts.get("free_kb", "").isdigit() else None
    needed = int(facts["files_kb"]) * 1024 if facts.get("files_kb", "").isdigit() else None
    if free is not None and needed is not None and free < needed:
        raise BackupError(f"{key} {config.dir}: the disk holding {existing} on {transport.name} has "
                          f"{human_size(free)} free; a backup needs at least {human_size(needed)} there (the "
                          "site's files, which the restore proof unpacks beside the archive): free space there or "
                          "set backup.dir to a bigger disk")
    writable = "writable" if existing == config.dir else f"not there yet; {existing} is writable (a backup makes it)"
    room = (f"{human_size(free)} free, at least {human_size(needed)} needed (the site's files)"
            if free is not None and needed is not None else "free space unknown (no df or du on the host)")
    return record("backup folder", f"{config.dir} on {transport.name}: {writable}; {room}")


def offsite_folder(site_name: str, site: SiteConfig) -> dict[str, Any]:
    """backup.offsite, on this machine, is a folder this process can write (or can make)."""
    config = _config(site_name, site)
    key = f"sites.{site_name}.backup.offsite"
    if not config.offsite:
        raise BackupError(f"{key} is not set: set it to a folder on this machine for the backup's second copy")
    if config.offsite.startswith(("sftp://", "s3://")):
        return record("off-site store", f"{config.offsite}: each part is read back and checked after it lands")
    existing = Path(config.offsite)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    where = config.offsite if str(existing) == config.offsite else f"{existing} (the folder above it that exists)"
    if not existing.is_dir():
        raise BackupError(f"{key} {config.offsite}: {existing} is not a folder: set backup.offsite to a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BackupError(f"{key} {config.offsite}: {where} is not writable by this user: make it writable, or "
                          "set backup.offsite to a folder you can write")
    free = shutil.disk_usage(existing).free
    writable = ("writable" if str(existing) == config.offsite else
                f"not there yet; {existing} is writable (a backup makes it)")
    return record("off-site folder", f"{config.offsite} on this machine: {writable}; {human_size(free)} free")


# The privileges of the account WordPress connects as (its own, and its enabled roles'), the databases it
# can see, and its site's tables: enough to tell which way the restore proof will load the dump.
_GRANTS = """
SELECT 'me', CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''');
SELECT 'role', CONCAT('''', ROLE_NAME, '''') FROM information_schema.ENABLED_ROLES;
SELECT 'global', GRANTEE, PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES;
SELECT 'schema', GRANTEE, PRIVILEGE_TYPE, TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES;
SELECT 'database', SCHEMA_NAME FROM information_schema.SCHEMATA;
SELECT 'table', TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE();
"""


def restore_proof(site_name: str, site: SiteConfig, transport: Transport, bridge: Bridge) -> dict[str, Any]:
    """Which way the restore proof will load the dump, read from the database user's privileges: the
    configured `backup.verify_database`, the scratch database `<DB_NAME>_wpgate_verify`, or (with WordPress's
    own grants only) scratch tables under a prefix in the site's database. BackupError when none will do."""
    config = _config(site_name, site)
    credentials = Credentials.from_facts(bridge.database_facts())
    with database.options_file(transport, credentials) as options:
        client = database.find_client(transport, database.SQL_CLIENTS)
        result = transport.run(Command.of(client, f"--defaults-extra-file={options}", "--batch",
                                          "--skip-column-names", f"--database={credentials.name}"),
                               input=_GRANTS.encode())
    if not result.ok:
        raise BackupError(database.explain(result.error_text(), credentials, transport.name)
                          or f"{transport.name}: reading the database user's privileges failed: "
                             f"{result.error_text() or result.returncode}")
    grants = Grants.parse(result.text())
    user = credentials.user
    if config.verify_database:
        name = database.scratch_name(credentials, config.verify_database)
        missing = grants.missing(name, ("CREATE", "DROP", "INSERT", "SELECT"))
        if name not in grants.databases or missing:
            why = f"lacks {', '.join(missing)} on it" if missing and name in grants.databases else \
                "cannot see it (it does not exist, or the user has no right on it)"
            raise BackupError(f"sites.{site_name}.backup.verify_database {name}: the database user {user} {why}: "
                              f"create it and GRANT ALL ON `{name}`.* TO '{user}'@'…', or remove the key")
        return record("restore proof", f"into backup.verify_database {name}, which {user} may fill and empty")
    name = database.scratch_name(credentials, None)
    if not grants.missing(name, ("CREATE", "DROP")):
        return record("restore proof", f"into the scratch database {name}, which {user} may create")
    missing = grants.missing(credentials.name, ("CREATE", "DROP", "INSERT", "SELECT"))
    pattern = credentials.name.replace("_", "\\_") + "\\_wpgate\\_%"
    grant = f"GRANT ALL ON `{pattern}`.* TO '{user}'@'…'"
    if missing:
        raise BackupError(f"{transport.name}: the database user {user} may neither create the scratch database "
                          f"{name} nor {', '.join(missing)} tables in its own database {credentials.name}: the "
                          f"restore proof cannot load the dump anywhere: {grant}, or set backup.verify_database")
    longest = scratch_tables.NAME_LIMIT - len(scratch_tables.new_prefix())
    too_long = sorted(table for table in grants.tables if len(table) > longest)
    if too_long:
        raise BackupError(f"{transport.name}: the database user {user} may not create the scratch database {name}, "
                          f"and table(s) {', '.join(too_long)} would be longer than {scratch_tables.NAME_LIMIT} "
                          f"characters under a scratch prefix ({scratch_tables.PREFIX_START}…) in {credentials.name}: "
                          f"{grant}, or set backup.verify_database")
    return record("restore proof", f"into scratch tables under a prefix ({scratch_tables.PREFIX_START}…) in "
                                   f"{credentials.name}, dropped afterwards: {user} may not create the scratch "
                                   f"database {name} (WordPress's own grants are enough)")


class Grants:
    """The account's privileges: global ones, per database pattern (`wp\\_x\\_%`), the databases it sees."""

    def __init__(self) -> None:
        self.global_privileges: set[str] = set()
        self.schema_privileges: list[tuple[re.Pattern[str], str]] = []
        self.databases: set[str] = set()
        self.tables: list[str] = []

    @classmethod
    def parse(cls, text: str) -> "Grants":
        rows = [line.split("\t") for line in text.splitlines()]
        grantees = {row[1] for row in rows if row[0] in ("me", "role") and len(row) > 1}
        grantees |= {f"{grantee}@''" for grantee in grantees if "@" not in grantee}  # a role's own form
        grants = cls()
        for row in rows:
            kind = row[0]
            if kind == "global" and len(row) >= 3 and row[1] in grantees:
                grants.global_privileges.add(row[2].upper())
            elif kind == "schema" and len(row) >= 4 and row[1] in grantees:
                grants.schema_privileges.append((like_pattern(row[3]), row[2].upper()))
            elif kind == "database" and len(row) >= 2:
                grants.databases.add(row[1])
            elif kind == "table" and len(row) >= 2:
                grants.tables.append(row[1])
        return grants

    def missing(self, database_name: str, privileges: tuple[str, ...]) -> list[str]:
        """The privileges of `privileges` the account lacks on `database_name` (a grant on a matching pattern
        or a global one counts)."""
        held = set(self.global_privileges)
        held |= {privilege for pattern, privilege in self.schema_privileges if pattern.fullmatch(database_name)}
        if "ALL PRIVILEGES" in held:
            return []
        return [privilege for privilege in privileges if privilege not in held]


def like_pattern(pattern: str) -> re.Pattern[str]:
    """A grant's database pattern as MariaDB and MySQL match it: `%` any run, `_` any character, `\\x` x."""
    parts = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if character == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if character == "%" else "." if character == "_" else re.escape(character))
        index += 1
    return re.compile("".join(parts), re.S)


def _config(site_name: str, site: SiteConfig) -> BackupConfig:
    if site.backup is None:
        raise BackupError(f"site {site_name} has no `backup:` settings: set backup.dir (on the site's host) and "
                          "backup.offsite (on this machine) in the config")
    return site.backup
