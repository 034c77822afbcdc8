"""Rollback: put every changed component back from what apply kept aside, then prove the site is as before."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


from wpgate import artifacts, inventory, upgrader
from wpgate import backup as backups
from wpgate.backup import database, rows
from wpgate.bridge import Bridge
from wpgate.caches import CacheSite, PurgeFailed
from wpgate.caches import layers as cache_layers
from wpgate.caches.verify import Expectation
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import WpgateError
from wpgate.gates.apply import ASIDE_FOLDER
from wpgate.gates.completion import differences, site_answers
from wpgate.inventory import Inventory
from wpgate.run import Run
from wpgate.transports import Transport

# Moves each entry of the aside copy back into place with renames, keeping what it replaces in a
# trash folder beside the aside copy (same filesystem) until all moved, then removing the trash.
_PUT_BACK_FOLDER = 'set -e; trash="$2.replaced"; rm -rf "$trash"; ' \
                   'if [ -e "$1" ]; then mv "$1" "$trash"; fi; mv "$2" "$1"; rm -rf "$trash"'
_PUT_BACK_CORE = 'set -e; live="$1"; aside="$2"; trash="$2.replaced"; shift 2; rm -rf "$trash"; mkdir -p "$trash"; ' \
                 'for name in "$@"; do if [ -e "$live/$name" ]; then mv "$live/$name" "$trash/$name"; fi; ' \
                 'if [ -e "$aside/$name" ]; then mv "$aside/$name" "$live/$name"; fi; done; rm -rf "$trash"'


@dataclass
class Target:
    """The site being rolled back and the run whose changes are undone."""

    site_name: str
    site: SiteConfig
    transport: Transport
    bridge: Bridge
    run: Run
    before: Inventory
    say: Callable[[str], None]


def changed_updates(updates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The updates whose install began: what may differ from the pre-deployment state."""
    return [entry for entry in updates if entry.get("install_began")]


def roll_back(target: Target) -> list[str]:
    """Undo the run's changes in reverse order and prove the result; the problems left, if any."""
    run = target.run
    problems: list[str] = []
    with run.action("rollback") as done:
        for entry in reversed(changed_updates(run.updates)):
            label = f"{entry['type']} {entry['slug']}"
            target.say(f"  putting back {label} {entry['from']}")
            try:
                with run.action("put_back", type=entry["type"], slug=entry["slug"], aside=entry.get("aside")):
                    _put_back(target, entry)
                entry["status"] = "rolled_back"
            except WpgateError as error:
                problems.append(f"{label}: could not be put back: {error}")
        try:
            with run.action("maintenance_off"):
                upgrader.maintenance_off(target.bridge)
        except WpgateError as error:
            problems.append(f"maintenance mode could not be turned off: {error}")
        problems += _database(target)
        problems += purge_caches(target)
        problems += prove(target)
        done["problems"] = problems
        if not problems:  # proved: what was kept aside for this run is no longer needed
            workdir = f"{target.before.data['paths']['content']}/{ASIDE_FOLDER}/{run.id}"
            target.transport.run(Command.of("rm", "-rf", "--", workdir))
    run.write_report()
    return problems


def _put_back(target: Target, entry: dict[str, Any]) -> None:
    transport, live, aside = target.transport, entry["live"], entry.get("aside")
    if not aside or not transport.exists(aside):
        if target.before.version_of(entry["type"], entry["slug"]) == _version_now(target, entry):
            return  # put back already (a rollback that was interrupted and is run again)
        raise WpgateError(f"the copy kept aside ({aside}) is gone")
    if entry["type"] == "core":
        names = transport.check(Command.of("ls", "-A", "--", aside)).text().split()
        # Core files the new version added at the root go too: the old core did not have them.
        names += [n for n in artifacts.core_root_files(transport, live) if n not in names]
        transport.check(Command.of("sh", "-c", _PUT_BACK_CORE, "sh", live, aside, *names))
    else:
        transport.check(Command.of("sh", "-c", _PUT_BACK_FOLDER, "sh", live, aside))


def _version_now(target: Target, entry: dict[str, Any]) -> str | None:
    return inventory.read(target.bridge).version_of(entry["type"], entry["slug"])


def _database(target: Target) -> list[str]:
    """The database goes back to the run's backup when it changed during the run (its tables'
    checksums differ from the backup's). What it held just before is first saved, whole, as SQL in
    the run's folder; then the rows that differ from the backup (what visitors wrote meanwhile, and the
    run's own migrations) are found, exported on their own and named in the report: never lost."""
    record = target.run.backup or {}
    if not record.get("id"):
        was = target.before.data["core"]["db_version"]
        now = inventory.read(target.bridge).data["core"]["db_version"]
        if now != was:
            return [f"the database was upgraded during the run (db_version {was} → {now}) and the run has no "
                    "backup to restore it from: restore it by hand"]
        return []
    site, transport, bridge = target.site, target.transport, target.bridge
    backup = backups.find_one(record["id"], target.site_name, site, transport)
    tables_now = backups.table_checksums(site, transport, bridge)
    changed = backups.table_differences(backup.tables, tables_now, expected_label="the backup",
                                        found_label="the database", ignore=backup.changed_during_backup)
    if not changed:
        return []
    saved = target.run.folder / "database-before-rollback.sql"
    with target.run.action("save_database", to=str(saved)):
        _save_database(target, saved)
    target.say(f"  the database changed during the run; its state is saved in {saved}; restoring {backup.id}")
    facts = bridge.call("backup_facts", load_extensions=False)
    credentials = database.Credentials.from_facts(facts)
    client = database.find_client(transport, database.SQL_CLIENTS)
    prefix = str(facts.get("table_prefix") or "")
    tables = rows.changed_tables(backup.tables, tables_now, prefix)
    exported = target.run.folder / "rows-since-backup.sql"
    outcome: dict[str, Any] = {"file": str(exported)}
    found: list[rows.TableRows] = []
    with ExitStack() as stack:
        options = stack.enter_context(database.options_file(transport, credentials))
        try:  # the rows are compared in a side copy; without one, the whole saved database still holds them
            side = stack.enter_context(rows.side_copy(transport, client, options, credentials, tables,
                                                      backups.backup_config(target.site_name, site).verify_database,
                                                      prefix=prefix))
        except Exception as error:  # best effort: the restore goes on, the saved database holds every row
            side, outcome["error"] = None, f"the changed tables could not be copied aside to compare: {error}"
        with target.run.action("restore_database", backup=backup.id, changed=changed[:20]):
            backups.restore_database(backup, site, transport, bridge)
        if side:
            try:
                with target.run.action("export_rows", to=str(exported)) as done:
                    found = side.compare(set(backup.tables))
                    side.export(found, exported)
                    done["tables"] = [entry.table for entry in found]
            except Exception as error:  # best effort, as above: never in the way of the restore's proof
                outcome["error"] = f"the rows written since the backup could not be exported: {error}"
    outcome["tables"] = [entry.record() for entry in found]
    target.run.extra["database_rollback"] = {"backup": backup.id, "changed": changed[:50],
                                             "saved_before_restore": str(saved), "rows_since_backup": outcome}
    if "error" in outcome:
        target.say(f"  {outcome['error']}; they are all in {saved}")
    for entry in found:
        target.say(f"  {entry.describe()}")
    if found:
        target.say(f"  rows written since the backup are exported to {exported}")
    return []


def _save_database(target: Target, path: Path) -> None:
    facts = target.bridge.call("backup_facts", load_extensions=False)
    credentials = database.Credentials.from_facts(facts)
    client = database.find_client(target.transport, ("mariadb-dump", "mysqldump"))
    with database.options_file(target.transport, credentials) as options, open(path, "wb") as output:
        target.transport.check(Command.of(client, f"--defaults-extra-file={options}", *database.DUMP_OPTIONS,
                                          "--", credentials.name), stdout=output, timeout=3600)
    path.chmod(0o600)


def purge_caches(target: Target) -> list[str]:
    """Every cache layer purged, so that visitors get the site put back, not the release the
    caches kept; each page must show the versions put back. A failure is a problem to report,
    the rollback goes on to its proof."""
    site = CacheSite(target.site_name, target.site, target.transport, target.bridge, target.say)
    expectations = [Expectation(entry["type"], entry["slug"], entry["to"], entry["from"])
                    for entry in changed_updates(target.run.updates) if entry.get("status") == "rolled_back"]
    try:
        evidence = cache_layers.purge_and_verify(site, expectations, target.run.event)
    except PurgeFailed as failure:
        target.run.extra["rollback_caches"] = failure.evidence
        return [f"caches after the rollback: {failure.message}"]
    except WpgateError as error:
        return [f"caches after the rollback could not be purged: {error}"]
    target.run.extra["rollback_caches"] = evidence
    return []


def prove(target: Target) -> list[str]:
    """The site is back at its pre-deployment state: inventory, maintenance, and it answers."""
    now = inventory.read(target.bridge)
    target.run.save_json("inventory-after-rollback.json", now.data)
    problems = differences(target.before, now, {})
    state = upgrader.site_state(target.bridge)
    if state.get("maintenance"):
        problems.append("a .maintenance file is left")
    answers = site_answers(target.site.url)
    problems += [problem for problem in answers.values() if problem]
    return problems
