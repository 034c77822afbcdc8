"""Putting a site's database back from a backup: what rollback uses when a run changed the database."""

from __future__ import annotations

from wpgate.backup import database
from wpgate.backup.checks import dump_problems, table_checksums, table_differences
from wpgate.backup.database import BackupError, Credentials
from wpgate.backup.model import DUMP, Backup
from wpgate.bridge import Bridge
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.transports import Transport


def restore_database(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge) -> None:
    """Load the backup's dump into the site's own database (rollback), drop the WordPress tables created
    since, and prove every table equals the backup's. Refuses a dump whose sha256 or content is wrong."""
    dump = backup.path(DUMP)
    result = transport.run(Command.of("sha256sum", "--", dump))
    if not result.ok or result.text()[:64] != backup.parts[DUMP]["sha256"]:
        raise BackupError(f"{transport.name}: {dump} does not match its sha256 in the manifest: not restoring it")
    problems = dump_problems(backup, transport)
    if problems:
        raise BackupError(f"{transport.name}: not restoring {dump}: " + "; ".join(problems))
    load_and_prove(backup, site, transport, bridge, transport, dump)


def load_and_prove(backup: Backup, site: SiteConfig, transport: Transport, bridge: Bridge, reader: Transport,
                   dump: str) -> None:
    """Load the dump (read by `reader`: the transport itself, or one that gives restic its secrets) into the
    site's database, drop the WordPress tables created since, prove every table equals the backup's."""
    facts = bridge.database_facts()
    credentials = Credentials.from_facts(facts)
    prefix = str(facts.get("table_prefix") or "")
    client = database.find_client(transport, database.SQL_CLIENTS)
    with database.options_file(transport, credentials) as options:
        database.load_dump(reader, client, options, dump, credentials.name)
        now = table_checksums(site, transport, bridge)
        created_since = [name for name in now if name not in backup.tables and prefix and name.startswith(prefix)]
        database.drop_tables(transport, client, options, credentials.name, created_since)
    now = table_checksums(site, transport, bridge)
    # Tables outside WordPress's prefix that appeared since belong to something else: left alone.
    foreign = [name for name in now if name not in backup.tables]
    problems = table_differences(backup.tables, now, expected_label="the backup", found_label="the database",
                                 ignore=[*backup.changed_during_backup, *foreign])
    if problems:
        raise BackupError(f"{transport.name}: the database was loaded from {backup.id} but does not equal it: "
                          + "; ".join(problems))
