"""`wpgate restore BACKUP_ID`: put a site back to one of its backups (files and database), keeping the rows
written since, and prove it.

A restore is a rollback whose "before" is the backup: each component whose version differs from the backup's
inventory is taken from the backup (archive or restic snapshot) into an aside folder and put back the way a
rollback puts it back (recovery.extract_asides, rollback.roll_back); the database goes back through rollback's
own restore (rollback_database.roll_back: the database saved first, the changed tables copied aside, the
rows the backup lacks put back, everything written since exported). No run tells visitors' rows from anyone
else's here, so the rows added since the backup come back, and the rows changed or removed since are as the
backup has them (both in the export). It takes the site's lock and keeps a record beside the runs,
`STATE_DIR/restores/RESTORE_ID/` (journal.jsonl, report.json).
"""

from __future__ import annotations

from typing import Any

from wpgate import aside as asides
from wpgate import backup as backups
from wpgate import inventory, recovery, rollback, rollback_database, upgrader
from wpgate.backup import snapshot
from wpgate.command import Command
from wpgate.config import Settings
from wpgate.deployment import Confirm
from wpgate.errors import BadInput, GateRefused, RollbackIncomplete, WpgateError
from wpgate.gates import apply
from wpgate.inventory import Inventory
from wpgate.lock import SiteLock
from wpgate.output import Output, console_say, say_done
from wpgate.release import SLUG
from wpgate.report.facts import duration
from wpgate.run import RESTORES_FOLDER, Run, UpdateRecord, who
from wpgate.session import SiteSession

KEEPS_ROWS = ("rows added since the backup are put back after it; rows changed or removed since are as the "
              "backup has them; every row written since is exported, and the database is saved whole first")


class RestoreRecord(Run):
    """A restore's journal and report.json, in `STATE_DIR/restores/RESTORE_ID/`: a run's record, apart from
    the runs (no `resume` or `rollback` takes it for a deploy)."""

    FOLDER = RESTORES_FOLDER
    STATUSES = ("complete", "refused", "failed", "running")


class Plan:
    """What a restore would change, read before anything changes."""

    def __init__(self, backup: backups.Backup, now: Inventory, tables: list[str]) -> None:
        self.backup, self.now, self.tables = backup, now, tables
        self.was = Inventory(backup.inventory)
        for where, found in (("backup " + backup.id, self.was), ("the site", now)):
            strange = [slug for slug in [*found.plugins, *found.themes] if not SLUG.fullmatch(str(slug))]
            if strange:  # slugs become paths on the host: only a component's folder name is one
                raise GateRefused(f"the inventory of {where} names a component {strange[0]!r}, which is not a "
                                  "folder name: nothing was changed")
        self.put_back: list[tuple[str, str, str, str | None]] = []  # (type, slug, backup's version, now's)
        self.removed: list[tuple[str, str, str]] = []  # (type, slug, now's version): the backup lacks them
        if self.was.core_version != now.core_version:
            self.put_back.append(("core", "wordpress", self.was.core_version, now.core_version))
        for kind, was, is_now in (("plugin", self.was.plugins, now.plugins), ("theme", self.was.themes, now.themes)):
            for slug in sorted(was):
                version = is_now[slug]["version"] if slug in is_now else None
                if version != was[slug]["version"]:
                    self.put_back.append((kind, slug, was[slug]["version"], version))
            self.removed += [(kind, slug, is_now[slug]["version"]) for slug in sorted(set(is_now) - set(was))]

    @property
    def nothing_to_do(self) -> bool:
        return not (self.put_back or self.removed or self.tables)

    def lines(self, site_name: str, url: str) -> list[str]:
        backup = self.backup
        lines = [f"Restore of backup {backup.id} onto site {site_name} ({url}), taken "
                 f"{backup.created_at.replace('T', ' ').replace('Z', ' UTC')} ({duration(backup.age_seconds())} ago)"]
        lines += [f"  puts back {kind} {slug} {version} (now {now or 'missing'})"
                  for kind, slug, version, now in self.put_back]
        lines += [f"  removes {kind} {slug} {now} (the backup does not have it)" for kind, slug, now in self.removed]
        if self.tables:
            lines.append(f"  database: goes back to the backup; these tables differ: {'; '.join(self.tables[:10])}"
                         + (f"; and {len(self.tables) - 10} more" if len(self.tables) > 10 else ""))
            lines.append(f"  {KEEPS_ROWS}")
        else:
            lines.append("  database: equals the backup")
        if self.nothing_to_do:
            lines.append("  nothing differs from the backup")
        return lines

    def record(self) -> dict[str, Any]:
        return {"put_back": [{"type": kind, "slug": slug, "to": version, "now": now}
                             for kind, slug, version, now in self.put_back],
                "removed": [{"type": kind, "slug": slug, "now": now} for kind, slug, now in self.removed],
                "tables": self.tables}


def restore(settings: Settings, backup_id: str, console: Output, *, confirm: Confirm | None = None,
            dry_run: bool = False, break_lock: bool = False) -> dict[str, Any]:
    """Put backup `backup_id` onto its site and prove it: the restore's report. Refuses (GateRefused, exit 3,
    nothing changed) when the backup fails its checks or `confirm` says no; RollbackIncomplete (exit 5)
    when it changed the site and the result is not proved. With `dry_run`, says what would change and
    changes nothing; `confirm` is asked, once the plan is said, before the first change."""
    site_name = backups.site_of(backup_id)
    if site_name not in settings.model.sites:
        raise BadInput(f"backup {backup_id} belongs to site {site_name}, which {settings.path} does not configure")
    site = settings.site(site_name)
    backups.backup_config(site_name, site)
    settings.require_secrets(site_name, skip=("notify.",))
    with SiteSession.open(site_name, site, console_say(console)) as session:
        backup = _checked(backup_id, session)
        now = inventory.read(session.bridge)
        tables_now = backups.table_checksums(site, session.transport, session.bridge)
        tables = backups.table_differences(backup.tables, tables_now, expected_label="the backup",
                                           found_label="the database", ignore=backup.changed_during_backup)
        plan = Plan(backup, now, tables)
        for line in plan.lines(site_name, site.url):
            session.say(line)
        report = {"backup": backup.id, "site": site_name, "plan": plan.record()}
        if dry_run:
            session.say("dry run: nothing was changed; the restore could proceed")
            return report | {"status": "dry_run", "could_proceed": True}
        if plan.nothing_to_do:
            say_done(console, f"site {site_name} equals backup {backup.id} already: nothing to restore")
            return report | {"status": "complete", "nothing_to_do": True}
        if confirm is not None and not confirm(f"Restore {site_name} from {backup.id} now?"):
            raise GateRefused("not confirmed: nothing was changed")
        return _restore(settings, session, backup, plan, now, break_lock, console)


def _checked(backup_id: str, session: SiteSession) -> backups.Backup:
    """The backup, found and intact in both copies (sha256 of every part, the dump complete, the files archive
    whole); else GateRefused, nothing changed."""
    site, transport = session.site, session.transport
    try:
        backup = backups.find_one(backup_id, session.name, site, transport)
        problems = backups.verify_copies(backup, site, transport)
        problems += [] if problems else backups.content_problems(backup, site, transport)
    except backups.BackupNotFound:
        raise  # a wrong id, exit 2, as with --verify
    except WpgateError as error:
        raise GateRefused(f"backup {backup_id} cannot be restored: {error}; nothing was changed") from None
    if problems:
        raise GateRefused(f"backup {backup_id} cannot be restored: {'; '.join(problems)}; nothing was changed")
    return backup


def _restore(settings: Settings, session: SiteSession, backup: backups.Backup, plan: Plan, now: Inventory,
             break_lock: bool, console: Output) -> dict[str, Any]:
    site_name, site, transport = session.name, session.site, session.transport
    paths = now.data["paths"]
    record = RestoreRecord(settings.state_dir, site_name, f"restore {backup.id}")
    aside = asides.choose(transport, site_name, site, paths, site.url)
    record.backup = backup.record()
    record.extra.update(aside=aside.record(), restore={"backup": backup.id, "by": who(), **plan.record()})
    record.updates = [UpdateRecord(kind, slug, version, now_version or "missing", live=_live(paths, kind, slug),
                                   aside=aside.kept(record.id, kind, slug), install_began=True)
                      for kind, slug, version, now_version in plan.put_back]
    record.write_report()
    lock = SiteLock.of_site(transport, aside, record.id, site_name, site, paths)
    try:
        lock.acquire(break_lock=break_lock)
    except BaseException as error:
        record.finish("refused", str(error))
        raise
    try:
        target = rollback.Target(session, record, Inventory(backup.inventory), aside,
                                 database_mode=rollback_database.RESTORE)
        problems = _put_back(target, backup, plan, paths)
    except BaseException as error:
        record.finish("refused" if isinstance(error, GateRefused) else "failed", str(error) or type(error).__name__)
        raise
    finally:
        lock.release()
    if problems:
        record.finish("failed", "; ".join(problems))
        failed = RollbackIncomplete(f"restore {record.id} of {backup.id} onto {site_name} is NOT proved; a person "
                                    "must act:\n" + "\n".join(f"  - {problem}" for problem in problems))
        failed.report = record.report()
        raise failed
    record.finish("complete")
    say_done(console, f"restore {record.id}: site {site_name} is proved back at backup {backup.id} "
             f"(record in {record.folder})")
    return record.report()


def _put_back(target: rollback.Target, backup: backups.Backup, plan: Plan, paths: dict[str, Any]) -> list[str]:
    """Everything the plan changes: the database's snapshot and the components out of the backup first, while
    visitors are served as usual; then, behind the maintenance page once the requests under way finished, the
    ones the backup lacks moved aside, the components and the database put back, and rollback's own purge and
    proof. The problems left (none: proved). What fails before the first change to the site refuses, the site
    as it was."""
    record, transport = target.run, target.transport
    turned_on = False  # a maintenance file the site had before is not this restore's to remove
    try:
        target.database_plan = _database_plan(target, backup) if plan.tables else \
            rollback_database.Plan(False, "the database equals the backup", backup=backup)
        apply.prepare(target)
        with target.aside.opened(transport, record.id):
            recovery.extract_asides(target, backup, backup.inventory["paths"]["abspath"].rstrip("/"))
        turned_on = True
        with record.action("maintenance_on") as done:
            done["drain"] = upgrader.maintenance_on_drained(target.bridge, target.drain, target.before.content_dir)
    except BaseException as error:
        try:
            if turned_on:
                upgrader.maintenance_off(target.bridge, target.before.content_dir)
        finally:
            target.aside.remove_run_folder(transport, record.id)
        if isinstance(error, WpgateError):
            raise GateRefused(f"restore of {backup.id}: {error}; nothing was changed") from None
        raise
    problems = []
    with target.aside.opened(transport, record.id):
        for kind, slug, version in plan.removed:
            target.say(f"  removing {kind} {slug} {version} (the backup does not have it)")
            try:
                with record.action("remove", type=kind, slug=slug):
                    transport.check(Command.of("mv", "--", _live(paths, kind, slug),
                                               f"{target.aside.run_folder(record.id)}/removed-{kind}-{slug}"))
            except WpgateError as error:
                problems.append(f"{kind} {slug}: could not be removed: {error}")
    return problems + rollback.roll_back(target)


def _database_plan(target: rollback.Target, backup: backups.Backup) -> rollback_database.Plan:
    """Rollback's database restore, told that nothing was a run's: the snapshot of now stands for both of a
    run's snapshots, so every row written since the backup is nobody's release; only the rows the backup
    lacks are put back (`new_rows_only`)."""
    with snapshot.connect(target.transport, target.bridge) as connection:
        now = connection.snapshot()
    return rollback_database.Plan(True, f"restored from backup {backup.id} on request", before=now, after=now,
                                  backup=backup, new_rows_only=True)


def _live(paths: dict[str, Any], kind: str, slug: str) -> str:
    return str(paths["abspath"]) if kind == "core" else f"{paths[kind + 's']}/{slug}"
