"""Rollback's database: whether it goes back to the backup, and what becomes of the rows visitors wrote.

A deploy snapshots the database just before its first change and right after its last (snapshot.py).
What the release itself changed decides: nothing that matters (caches, cron and sessions aside), and
the database stays as it is, with every row visitors wrote since; a migration, a new table, a changed
option of an updated component, and it goes back to the run's backup, then the rows visitors wrote are
put back into the tables whose schema the release did not change (backup/rows.py). The person asking
may decide otherwise (`--keep-database`, `--restore-database`). A run recorded without snapshots has its
database restored whenever it differs from the backup, as wpgate always did.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from wpgate import backup as backups, inventory, upgrader
from wpgate.backup import database, rows, snapshot
from wpgate.backup.snapshot import Snapshot, VisitorRows
from wpgate.bridge import Bridge
from wpgate.command import Command
from wpgate.errors import WpgateError
from wpgate.report.facts import duration
from wpgate.run import Run, open_private, private_folder
from wpgate.transports import Transport
from wpgate.words import plural

if TYPE_CHECKING:
    from wpgate.rollback import Target

KEEP, RESTORE = "keep", "restore"
NOT_COUNTED = "caches, cron and sessions not counted"


def take_snapshot(run: Run, transport: Transport, bridge: Bridge, name: str, say: Callable[[str], None]) -> Snapshot | None:
    """The database's rows as fingerprints, saved as `name` in the run's folder. Best effort: without it a
    rollback restores the database whenever it differs from the backup, as before; never in the way of
    the deploy."""
    snapshots = run.extra.setdefault("database_snapshots", {})
    try:
        with run.action("database_snapshot", file=name) as done:
            with snapshot.connect(transport, bridge) as connection:
                taken = connection.snapshot()
            snapshot.save(taken, run.folder / name)
            done.update(taken.record())
    except (WpgateError, OSError) as error:
        snapshots[name] = {"error": str(error)}
        say(f"  note: the database could not be snapshotted ({error}); a rollback of this run restores it "
            "whenever it differs from the backup")
        return None
    snapshots[name] = taken.record()
    return taken


def after_changes(run: Run, transport: Transport, bridge: Bridge, say: Callable[[str], None]) -> None:
    """Right after apply, or when the run stops after a change: the second snapshot (once), and what the
    release changed in the database, recorded for the report and the rollback."""
    if (run.folder / snapshot.AFTER).exists() or not (run.folder / snapshot.BEFORE).exists():
        return
    before = snapshot.load(run.folder / snapshot.BEFORE)
    after = take_snapshot(run, transport, bridge, snapshot.AFTER, say)
    if before is None or after is None:
        return
    changes = [change.describe() for change in snapshot.release_changes(before, after)]
    run.extra["database_changes"] = changes
    if changes:
        say(f"  the release changed the database: {'; '.join(changes[:5])}")
    else:
        say("  the release changed nothing in the database (caches, cron and sessions aside)")


@dataclass
class Plan:
    """What a rollback does with the database, and why, before it does anything."""

    restore: bool
    why: str
    release_changes: list[str] = field(default_factory=list)
    visitors: list[VisitorRows] = field(default_factory=list)
    before: Snapshot | None = None
    after: Snapshot | None = None
    backup: Any = None  # the run's Backup, when it has one
    counted: bool = False  # visitors' rows were counted (the run has its snapshots)
    uncounted: str | None = None  # why visitors' rows cannot be told from the run's, when the run has a snapshot
    problem: str | None = None  # why the database cannot go back (no backup)
    new_rows_only: bool = False  # a restore: only rows the backup lacks come back (rows.SideCopy.put_back)

    def fate(self, rows_of: VisitorRows) -> str:
        if not self.restore:
            return "stay"
        return "leave the live site" if rows_of.unsafe else "are put back"

    def record(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"database": "restored" if self.restore else "kept", "why": self.why}
        if self.release_changes:
            entry["release_changes"] = self.release_changes
        if self.uncounted:
            entry["visitors_rows_not_counted"] = self.uncounted
        if self.counted:
            entry["visitors_rows"] = [{"table": r.table, "new": r.new, "changed": r.changed, "removed": r.removed,
                                       "fate": self.fate(r), **({"why": r.unsafe} if r.unsafe and self.restore else {})}
                                      for r in self.visitors]
        return entry


def plan(target: "Target", mode: str | None) -> Plan:
    """Decide, reading only: from the run's snapshots (what the release changed), else by comparing the
    database with the backup; `mode` KEEP or RESTORE is the person's own decision."""
    run = target.run
    before, after = snapshot.load(run.folder / snapshot.BEFORE), snapshot.load(run.folder / snapshot.AFTER)
    record = run.backup or {}
    backup, missing = None, None
    if record.get("id"):
        try:
            backup = backups.find_one(record["id"], target.site_name, target.site, target.transport)
        except backups.BackupError as error:  # pruned, say: a rollback that keeps the database does not need it
            missing = str(error)
    result = Plan(False, "", before=before, after=after, backup=backup)
    if before is not None:
        with snapshot.connect(target.transport, target.bridge) as connection:
            now = connection.snapshot()
        result.release_changes = [c.describe() for c in snapshot.release_changes(before, after or now)]
        result.visitors, result.uncounted = count_visitors(before, after, now)
        result.counted = result.uncounted is None
        matters = bool(result.release_changes)
        stopped = "" if after else " (the run stopped before its snapshot after apply: every change since it began counts as the run's)"
        if matters:
            why = f"the release changed the database: {'; '.join(result.release_changes[:5])}{stopped}"
        else:
            why = f"the release changed nothing in the database that matters (caches, cron and sessions aside){stopped}"
    else:
        differs = _differs_from_backup(target, backup) if backup else []
        matters = bool(differs)
        why = ("the run has no snapshot of the database before its first change, and the database differs from "
               f"the backup ({'; '.join(differs[:3])})" if differs else
               "the run has no snapshot of the database before its first change, and the database equals the backup")
    if mode == KEEP:
        result.restore, result.why = False, "kept on request (--keep-database)" + (f"; {why}" if matters else "")
    elif mode == RESTORE:
        result.restore, result.why = True, f"restored on request (--restore-database); {why}"
    else:
        result.restore, result.why = matters, why
    if result.restore and backup is None:
        result.problem = missing or "the run has no backup to restore the database from"
    return result


def count_visitors(before: Snapshot, after: Snapshot | None, now: Snapshot) -> tuple[list[VisitorRows], str | None]:
    """The rows visitors wrote since the run began, per table; without the snapshot after apply they cannot
    be told from the run's own: none counted, and why (never "none")."""
    if after is None:
        return [], ("cannot tell which rows are visitors': the run stopped before its snapshot after apply, so "
                    "every row written since it began may be its own")
    return snapshot.visitors_rows(before, after, now), None


def _differs_from_backup(target: "Target", backup: Any) -> list[str]:
    now = backups.table_checksums(target.site, target.transport, target.bridge)
    return backups.table_differences(backup.tables, now, expected_label="the backup", found_label="the database",
                                     ignore=backup.changed_during_backup)


def describe(result: Plan) -> list[str]:
    """The plan in words, for the prompt and `--dry-run`: the backup and its age, whether the database
    goes back and why, and the rows visitors wrote since, per table, and what becomes of them."""
    lines = []
    if result.backup is not None:
        age = duration(result.backup.age_seconds())
        lines.append(f"backup: {result.backup.id}, taken {result.backup.created_at.replace('T', ' ').replace('Z', ' UTC')} "
                     f"({age} ago)")
    else:
        lines.append("backup: none recorded for this run")
    if result.restore:
        lines.append(f"database: goes back to the backup: {result.why}")
    else:
        lines.append(f"database: stays as it is, nothing in it is restored: {result.why}")
    if result.problem:
        lines.append(f"  but {result.problem}")
    if not result.counted:
        if result.uncounted:
            lines.append(f"rows visitors wrote since the run began: {result.uncounted}")
        if result.restore:
            lines.append("rows written since the backup: they leave the live site; all of them are exported to the "
                         "run's folder (the run has no snapshots to tell visitors' rows from its own)")
        elif result.uncounted:
            lines.append("  every row written since stays live")
        return lines
    if not result.visitors:
        lines.append(f"rows visitors wrote since the run began: none ({NOT_COUNTED})")
    else:
        lines.append(f"rows visitors wrote since the run began ({NOT_COUNTED}):")
        for entry in result.visitors:
            fate = result.fate(entry)
            why = f" ({entry.unsafe}; exported to the run's folder)" if result.restore and entry.unsafe else ""
            lines.append(f"  {entry.table}: {entry.words()}: {'they ' if fate != 'stay' else ''}{fate}{why}".replace(
                ": stay", ": they stay"))
    if result.restore and result.backup is not None and result.before is not None:
        gap = (_time(result.before.taken_at) - result.backup.created).total_seconds() if _time(result.before.taken_at) else 0
        if gap > 120:
            lines.append(f"  the backup is {duration(gap)} older than the run: rows written in between are found when the "
                         "database goes back, put back on the same terms, or exported")
    return lines


def _time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def roll_back(target: "Target", mode: str | None = None, decided: Plan | None = None) -> list[str]:
    """The database of a rollback: kept, or restored from the run's backup with visitors' rows put back
    where safe; the problems left (none: done). What it held before a restore is first saved, whole, as
    SQL in the run's folder, and the rows that leave the live site are exported beside it: never lost."""
    record = target.run.backup or {}
    if not record.get("id"):
        was = target.before.data["core"]["db_version"]
        now = inventory.read(target.bridge).data["core"]["db_version"]
        if now != was:
            return [f"the database was upgraded during the run (db_version {was} → {now}) and the run has no "
                    "backup to restore it from: restore it by hand"]
        return []
    result = decided or plan(target, mode)
    if target.run.extra.get(PENDING) and not result.restore and result.backup is not None:
        # An earlier attempt began restoring: its copy of visitors' rows must go back in, whatever is decided now.
        result.restore, result.why = True, f"an earlier rollback began restoring the database; {result.why}"
    outcome = result.record()
    earlier = target.run.extra.get("database_rollback")
    if earlier:  # an earlier attempt's record stays: where it saved the database, what it found
        target.run.extra.setdefault("database_rollback_attempts", []).append(earlier)
    target.run.extra["database_rollback"] = outcome
    if result.restore and result.backup is None:
        return [f"the database must go back ({result.why}), but {result.problem}: restore it by hand"]
    if not result.restore:
        target.say(f"  the database stays as it is: {result.why}")
        kept = sum(entry.count for entry in result.visitors)
        if kept:
            target.say(f"  {plural(kept, 'row')} visitors wrote since the run began stay live: "
                       + "; ".join(f"{e.table} {e.words()}" for e in result.visitors))
        return []
    site, transport, bridge = target.site, target.transport, target.bridge
    backup = result.backup
    tables_now = backups.table_checksums(site, transport, bridge)
    changed = backups.table_differences(backup.tables, tables_now, expected_label="the backup",
                                        found_label="the database", ignore=backup.changed_during_backup)
    outcome.update(backup=backup.id, changed=changed[:50])
    # An attempt killed between its side copy and its put-back left the side copy and its saved dump: this
    # attempt goes on from them (the database as it is now may be the backup already, or half loaded).
    pending = target.run.extra.get(PENDING)
    if not changed and not pending:
        target.say(f"  the database equals backup {backup.id} already")
        return []
    private_folder(target.run.folder)  # a run recorded by an earlier wpgate may have a folder others can read
    # Nobody writes from the save to the put-back: a row written in between would be in neither (the
    # caller turns maintenance off once this returns, however it ends).
    with target.run.action("maintenance_on") as done:
        done["drain"] = upgrader.maintenance_on_drained(bridge, target.drain, target.before.content_dir)
    if pending:
        saved = Path(pending["saved"])
        target.say(f"  an earlier rollback was cut short after it copied the changed tables aside: going on from "
                   f"its copy; the database as it was before any restore is in {saved}")
    else:
        saved = _new_file(target.run.folder, "database-before-rollback")
        with target.run.action("save_database", to=str(saved)):
            _save_database(target, saved)
    outcome["saved_before_restore"] = str(saved)
    target.say(f"  {result.why}; its state is saved in {saved}; restoring {backup.id}")
    facts = bridge.database_facts()
    credentials = database.Credentials.from_facts(facts)
    client = database.find_client(transport, database.SQL_CLIENTS)
    prefix = str(facts.get("table_prefix") or "")
    tables = pending["tables"] if pending else rows.changed_tables(backup.tables, tables_now, prefix)
    exported = _new_file(target.run.folder, "rows-since-backup")
    since: dict[str, Any] = {"file": str(exported)}
    outcome["rows_since_backup"] = since
    found: list[rows.TableRows] = []
    state_dir = target.run.folder.parent.parent
    journal = backups.ScratchJournal(state_dir, target.site_name,
                                     on_event=lambda name, data: target.run.event(name, **data))
    with ExitStack() as stack:
        options = stack.enter_context(database.options_file(transport, credentials))
        try:  # the rows are compared in a side copy; without one, the whole saved database still holds them
            side = stack.enter_context(rows.side_copy(transport, client, options, credentials, tables,
                                                      backups.backup_config(target.site_name, site).verify_database,
                                                      prefix=prefix, journal=journal, reuse=pending))
            # Journaled until the put-back is done: a kill before then leaves the copy for the next attempt.
            target.run.extra[PENDING] = {"saved": str(saved), "tables": side.tables, "side": side.name,
                                         "scratch_prefix": side.scratch_prefix}
            target.run.write_report()
            stack.callback(_not_pending, target.run)  # however this ends but killed: the copy is dropped
        except Exception as error:  # without it the rows visitors wrote could not be put back: no restore
            since["error"] = f"the changed tables could not be copied aside to compare: {error}"
            outcome["database"] = "not restored"
            return [f"the database was not restored from {backup.id}: {since['error']}; it is as it was, and "
                    f"saved in {saved}; roll back again once the cause is fixed, or restore it by hand"]
        if changed:
            with target.run.action("restore_database", backup=backup.id, changed=changed[:20]):
                backups.restore_database(backup, site, transport, bridge)
        if side:
            try:
                found = side.compare(set(backup.tables))
            except Exception as error:  # best effort, as below: never in the way of the restore's proof
                since["error"] = f"the rows written since the backup could not be compared: {error}"
        if side and found and result.before is not None:
            try:
                with target.run.action("put_back_rows") as done:
                    side.put_back(found, result.before, result.after, new_only=result.new_rows_only)
                    done["tables"] = {entry.table: entry.put_back for entry in found if entry.put_back}
            except Exception as error:
                since["put_back_error"] = f"visitors' rows could not be put back: {error}"
        elif found:
            for entry in found:
                entry.not_put_back = "the run has no snapshots to tell visitors' rows from its own"
        if side and found:
            try:
                with target.run.action("export_rows", to=str(exported)) as done:
                    side.export(found, exported)
                    done["tables"] = [entry.table for entry in found]
            except Exception as error:
                since["error"] = f"the rows written since the backup could not be exported: {error}"
    since["tables"] = [entry.record() for entry in found]
    problems = [f"{since[key]}: the database went back to {backup.id}; every row written since is in {saved}: "
                "load what is missing from it by hand" for key in ("error", "put_back_error") if key in since]
    for entry in found:
        target.say(f"  {entry.describe()}")
    if found:
        target.say(f"  rows written since the backup that are not live again are exported to {exported}")
    return problems


PENDING = "database_rollback_pending"


def _not_pending(run: Run) -> None:
    run.extra.pop(PENDING, None)
    run.write_report()


def _new_file(folder: Path, stem: str) -> Path:
    """A name no earlier attempt used: a rollback run again after a kill never writes over what the first
    one saved (the database as it was before any restore, with every row visitors wrote)."""
    path, number = folder / f"{stem}.sql", 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}.sql"
    return path


def _save_database(target: "Target", path: Path) -> None:
    facts = target.bridge.database_facts()
    credentials = database.Credentials.from_facts(facts)
    client = database.find_client(target.transport, ("mariadb-dump", "mysqldump"))
    with database.options_file(target.transport, credentials) as options, open_private(path) as output:
        target.transport.check(Command.of(client, f"--defaults-extra-file={options}", *database.DUMP_OPTIONS,
                                          "--", credentials.name), stdout=output, timeout=3600)
