"""`wpgate resume` and `wpgate rollback`: bring a site back from an interrupted or failed run, proved."""

from __future__ import annotations

from typing import Any

from wpgate import aside as asides
from wpgate import artifacts, inventory, pipeline, release as release_module, rollback, rollback_database, upgrader
from wpgate import backup as backups
from wpgate.backup import engines
from wpgate.backup.files import inside
from wpgate.bridge import Bridge
from wpgate.config import Settings
from wpgate.errors import BadInput, GateRefused, RollbackIncomplete, RolledBack, WpgateError
from wpgate.gates import GateFailed, apply, completion, monitor
from wpgate.inventory import Inventory
from wpgate.lock import SiteLock
from wpgate.output import Output, console_say, say_done
from wpgate.deployment import Confirm, Deployment
from wpgate.ending import ending
from wpgate.run import Run, UpdateStatus, who
from wpgate.session import SiteSession
from wpgate.transports import for_site

ENDED = ("complete", "refused", "rolled_back")


def resume(settings: Settings, run_id: str, console: Output, *, break_lock: bool = False) -> dict[str, Any]:
    """Finish a run that stopped half-way (a crash, a kill, a lost connection): complete it when
    every update is in place and proved, else roll it back. Never leaves the site half-updated."""
    run = Run.reopen(settings.state_dir, run_id)
    if run.status in ENDED:
        console.print(f"run {run.id} already ended: {run.status}; nothing to resume")
        run.close()
        return run.report()
    _require_secrets(settings, run)
    if run.status == "rollback_failed":
        run.close()
        raise BadInput(f"run {run.id} ended with its rollback incomplete: use `wpgate rollback {run.id}`")
    with _session(settings, run, console, break_lock) as deployment, ending(deployment):
        run.event("resume.begin")
        # Scratch tables of a restore proof the crash cut short (gate 6.2) go first, whatever happens next.
        backups.drop_scratch_leftovers(
            backups.ScratchJournal(settings.state_dir, run.site, on_event=lambda name, data: run.event(name, **data)),
            deployment.transport, deployment.bridge)
        if deployment.before is None or not run.changed:
            if deployment.before is not None:
                apply.clean_up(deployment)  # the copies apply made before it stopped; nothing else changed
            message = "interrupted before the first change; resumed: production was not changed"
            run.finish("refused", message)
            console.print(f"run {run.id}: {message}")
            return run.report()
        _maintenance_off(deployment)
        problem = _complete_if_proved(deployment)
        if problem is None:
            run.finish("complete")
            say_done(console, f"run {run.id} finished; production holds release {run.release_id}")
            return run.report()
        console.print(f"run {run.id} cannot be completed ({problem}): rolling back", markup=False)
        requested = bool(run.extra.get("rollback_requested"))
        _roll_back_or_raise(deployment, None if requested else problem, rolled_back_error=True,
                            reason="requested" if requested else "interrupted")
    raise AssertionError("unreachable")


def roll_back_run(settings: Settings, run_id: str, console: Output, *, confirm: Confirm | None = None,
                  dry_run: bool = False, database_mode: str | None = None, break_lock: bool = False) -> dict[str, Any]:
    """`wpgate rollback RUN_ID`: return the site to the run's pre-deployment state, proved. Before it asks (or
    with `dry_run`, instead of doing anything) it says what will happen: the components put back, the backup
    and its age, whether the database goes back and why, and the rows visitors wrote since, per table.
    `database_mode` (rollback_database.KEEP or RESTORE) overrides what the run's snapshots decide. With
    `confirm`, the plan is said and `confirm` asked before the first change; without, nothing is asked."""
    run = Run.reopen(settings.state_dir, run_id)
    if run.status in ("refused", "rolled_back"):
        console.print(f"run {run.id} ended {run.status}: production is at its pre-deployment state already")
        run.close()
        return run.report()
    _require_secrets(settings, run)
    complete = run.status == "complete"
    if dry_run:
        return _dry_run(settings, run, console, database_mode)
    with _session(settings, run, console, break_lock) as deployment, ending(deployment):
        if deployment.before is None:
            run.finish("refused", "the run stopped before reading production: nothing to roll back")
            return run.report()
        target = _target(deployment, database_mode)
        if complete:
            rollback.check_record(target)  # before its paths are used to take files from the backup
            _refuse_if_changed_since(deployment)
        target.database_plan = _database_plan(target, target.database_mode, console)
        if confirm is not None:
            for line in _plan_lines(deployment, target.database_plan):
                deployment.say(line)
            if not confirm("Roll back now?"):
                raise GateRefused("not confirmed: nothing was changed")
        if database_mode:  # kept in the run's record: a rollback resumed after a kill decides the same
            run.extra[DATABASE_MODE] = database_mode
            run.write_report()
        if complete:
            # Running again from here: a rollback killed half-way is then finished by `wpgate rollback`.
            run.keep_duration()  # the time the release was live is no part of how long the run took
            run.status = "running"
            run.extra["rollback_requested"] = True  # `resume` finishes this rollback, never the run
            run.event("rollback_of_complete_run.begin", by=who())
            run.write_report()
            try:
                _aside_from_backup(deployment)
            except BaseException:
                apply.clean_up(deployment)  # no old code left in the web root; production untouched
                run.extra.pop("rollback_requested", None)
                run.extra.pop(DATABASE_MODE, None)
                run.status = "complete"  # as it was: its history already says when it completed
                run.event("rollback_of_complete_run.abandoned")
                run.write_report()
                run.close()
                raise
        else:
            run.keep_duration()
        _roll_back_or_raise(deployment, None if complete else run.error, rolled_back_error=False, target=target,
                            reason="requested", by=who())
        return run.report()


def _database_plan(target: rollback.Target, mode: str | None, console: Output) -> rollback_database.Plan | None:
    """The database's plan, read now; None when the site cannot be read yet (WordPress does not load
    before its files are put back): the rollback decides once they are."""
    try:
        return rollback_database.plan(target, mode)
    except WpgateError as error:
        console.print(f"whether the database goes back cannot be told now ({error}); it is decided once the files "
                      "are put back", markup=False, soft_wrap=True)
        return None


def _plan_lines(deployment: Deployment, decided: rollback_database.Plan | None) -> list[str]:
    run = deployment.run
    ended = run.history[-1] if run.history else {"status": run.status}
    lines = [f"Rollback of run {run.id}: release {run.release_id} on {run.site} ({deployment.site.url}), "
             f"{str(ended.get('status')).replace('_', ' ')}" + (f" since {ended['at']}" if ended.get("at") else "")]
    changed = rollback.changed_updates(run.updates)
    lines += [f"  puts back {entry.type} {entry.slug} {entry.from_version} (now {entry.to_version})"
              for entry in reversed(changed) if entry.status != UpdateStatus.ROLLED_BACK]
    if decided is not None:
        lines += [f"  {line}" for line in rollback_database.describe(decided)]
    return lines


def _dry_run(settings: Settings, run: Run, console: Output, database_mode: str | None) -> dict[str, Any]:
    """`rollback --dry-run`: every check the rollback makes before its first change, and its plan in words;
    nothing changes on the site or in the run's record (no lock taken: it only reads)."""
    try:
        with _session(settings, run, console, break_lock=False, lock=False) as deployment:
            if deployment.before is None:
                console.print(f"run {run.id} stopped before reading production: nothing to roll back")
                return run.report() | {"rollback_plan": {"nothing_to_do": True}}
            target = _target(deployment, database_mode)
            rollback.check_record(target)
            if run.status == "complete":
                _refuse_if_changed_since(deployment)
                _backup_verifies(deployment)
            decided = _database_plan(target, target.database_mode, console)
            for line in _plan_lines(deployment, decided):
                deployment.say(line)
            blocker = dry_run_blocker(decided)
            plan_record: dict[str, Any] = {"could_proceed": blocker is None}
            if decided is not None:
                plan_record.update(decided.record())
                if decided.backup is not None:
                    plan_record["backup"] = {"id": decided.backup.id, "created_at": decided.backup.created_at,
                                             "age_seconds": round(decided.backup.age_seconds())}
            if blocker:
                plan_record["why_not"] = blocker
                refused = GateRefused(f"dry run: nothing was changed; the rollback could not complete: {blocker}")
                refused.report = run.report() | {"rollback_plan": plan_record}
                raise refused
            deployment.say("dry run: nothing was changed; the rollback could proceed")
            return run.report() | {"rollback_plan": plan_record}
    finally:
        run.close()


def dry_run_blocker(decided: rollback_database.Plan | None) -> str | None:
    """Why a rollback of the plan `decided` would not end proved (exit 5), so its dry run does not exit 0;
    None when it could proceed. Without a plan (the site cannot be read now), that is not known."""
    if decided is None:
        return "whether the database goes back cannot be told before the files are put back"
    if decided.problem:
        return f"the database must go back, but {decided.problem}"
    return None


def _backup_verifies(deployment: Deployment) -> None:
    """A complete run's files come back from its backup: it must be there and verify."""
    run = deployment.run
    record = run.backup or {}
    if not record.get("id"):
        raise GateRefused(f"run {run.id} has no backup to take the old files from; nothing was changed")
    backup = backups.find_one(record["id"], run.site, deployment.site, deployment.transport)
    problems = backups.verify_copies(backup, deployment.site, deployment.transport)
    if problems:
        raise GateRefused(f"the run's backup {backup.id} does not verify: {'; '.join(problems)}; nothing was changed")


def _require_secrets(settings: Settings, run: Run) -> None:
    """The caches are purged on the way (a CDN's token, say) and the site watched (the monitor's password):
    those secrets set before anything runs. A notifier's are not waited on: without one, it only warns."""
    try:
        settings.require_secrets(run.site, skip=("notify.",))
    except WpgateError:
        run.close()
        raise


class _session:
    """The site of a run, reached again, its lock taken over, its pre-deployment state loaded."""

    def __init__(self, settings: Settings, run: Run, console: Output, break_lock: bool, lock: bool = True) -> None:
        self.settings, self.run, self.console, self.break_lock = settings, run, console, break_lock
        self.lock = lock

    def __enter__(self) -> Deployment:
        run = self.run
        site = self.settings.site(run.site)
        # A run killed at its very first event has no copy of its release: it changed nothing.
        copy = run.folder / "release.yml"
        release = release_module.load(copy).for_site(run.site) if copy.exists() else None
        self.transport = for_site(site).__enter__()
        session = SiteSession(run.site, site, self.transport, Bridge(run.site, site, self.transport),
                              console_say(self.console))
        before = run.load_json("inventory-before.json")
        deployment = Deployment(self.settings, session, release, run, self.console,
                                before=Inventory(before) if before else None,
                                state_before=run.load_json("state-before.json"))
        self.deployment = deployment
        if deployment.before is not None:
            paths = deployment.before.data["paths"]
            try:
                deployment.aside = asides.of_run(run.extra, run.id, run.site, site, paths)
                if self.lock:  # a dry run only reads: it takes no lock
                    lock = SiteLock.of_site(self.transport, deployment.aside, run.id, run.site, site, paths)
                    lock.acquire(break_lock=self.break_lock)
                    deployment.lock = lock
            except BaseException:
                self.__exit__()
                raise
        return deployment

    def __exit__(self, *exc_info: object) -> None:
        self.transport.close()  # the lock is ending()'s to release (a dry run takes none)
        if self.run.status == "running":
            self.run.close()


def _refuse_if_changed_since(deployment: Deployment) -> None:
    """A complete run is put back only onto the site it left: anything changed since (another run, an
    update by hand) would be undone blindly, so it refuses instead, changing nothing."""
    after = deployment.run.load_json("inventory-after.json")
    if after is None:
        raise GateRefused(f"run {deployment.run.id} has no inventory-after.json: it cannot tell what changed since; "
                          "nothing was changed")
    changes = completion.differences(Inventory(after), inventory.read(deployment.bridge), {})
    if changes:
        raise GateRefused(f"production changed since run {deployment.run.id} completed: {'; '.join(changes)}; "
                          "nothing was changed (restore a backup by hand, or deploy a release that reverts it)")


def _aside_from_backup(deployment: Deployment) -> None:
    """A complete run removed its aside copies: take them again from the run's backup (its archive, or its
    restic snapshot), where rollback expects them, so that putting back is the same renames as after a
    failed run. Only the changed components' folders (and core's files) are taken."""
    run, transport = deployment.run, deployment.transport
    _backup_verifies(deployment)
    backup = backups.find_one(run.backup["id"], run.site, deployment.site, transport)
    root = deployment.before.data["paths"]["abspath"].rstrip("/")
    apply.prepare(deployment)
    with deployment.aside.opened(transport, run.id):
        extract_asides(deployment, backup, root)
    run.write_report()


def extract_asides(deployment: "Deployment | rollback.Target", backup: Any, root: str) -> None:
    """Each changed component of the run (`install_began`) taken from `backup` into where rollback expects
    its copy kept aside: a plugin's or theme's folder, or core's folders and root files (recorded as its
    `aside_names`). Shared by the rollback of a complete run and `wpgate restore`."""
    run, transport = deployment.run, deployment.transport
    engine = engines.of_backup(backup, deployment.site)  # the engine that took it, whatever the config says now
    for entry in rollback.changed_updates(run.updates):
        live, aside = entry.live, entry.aside
        if entry.type == "core":
            names = engine.root_names(backup, deployment.site, transport)
            members = list(artifacts.CORE_FOLDERS) + [name for name in names if artifacts.is_core_root_file(name)]
            source = ""
            entry.aside_names = members
        else:
            relative = inside(root, live)
            if relative is None:
                raise GateRefused(f"{entry.type} {entry.slug} lives outside the WordPress root ({live}), "
                                  f"so backup {backup.id} does not hold it; nothing was changed")
            members, source = [relative], relative
        with run.action("aside_from_backup", type=entry.type, slug=entry.slug, backup=backup.id,
                        engine=engine.name):
            engine.extract(backup, deployment.site, transport, members, source, aside)


def _maintenance_off(deployment: Deployment) -> None:
    # The run may have stopped between an update's files and the web server's OPcache reset: no
    # visitor leaves the maintenance page for old compiled code mixed with new files. A reset that
    # fails here fails again, and stops the run, at gate 6.5.
    try:
        apply.web_opcache(deployment, None)
    except WpgateError:
        pass
    with deployment.run.action("maintenance_off"):
        upgrader.maintenance_off(deployment.bridge, deployment.before.content_dir if deployment.before else None)


def _complete_if_proved(deployment: Deployment) -> str | None:
    """None when every update is in place, each file as its artifact, and completion passes;
    else what stands in the way."""
    run = deployment.run
    if run.extra.get("rollback_requested"):
        return "`wpgate rollback` had begun putting the run back"
    failed = [gate for gate in run.gates if gate["status"] == "failed"]
    if failed:  # the run had already failed a gate when it stopped: that stands, whatever the site shows now
        gate = failed[0]
        return f"gate {gate['step']} {gate['name']} had failed: {gate['evidence'].get('error', 'see the report')}"
    try:
        for index, update in enumerate(deployment.release.updates):
            apply.verify(deployment, index, update)
            run.updates[index].status = UpdateStatus.APPLIED
        # Every update is in place: what the release changed in the database, before visitors' later writes
        # mix in, when the run stopped before it took that snapshot.
        rollback_database.after_changes(run, deployment.transport, deployment.bridge, deployment.say)
        # The gates after the last change, as the deploy runs them: those the run passed before it stopped are
        # not run again (the caches purged, the site watched), but completion, which proves the site as it is now.
        passed = {gate["step"] for gate in run.gates if gate["status"] == "passed"} - {completion.STEP}
        if monitor.STEP not in passed:
            monitor.watch_again(deployment)
        pipeline.run_gates(deployment, pipeline.FINISHING, skip=passed, resumed=True)
    except (GateFailed, WpgateError) as failure:
        return getattr(failure, "message", str(failure))
    apply.clean_up(deployment)
    return None


DATABASE_MODE = "rollback_database_mode"


def database_mode(extra: dict[str, Any], given: str | None) -> str | None:
    """The person's decision for the database (--keep-database, --restore-database): the one given now,
    else the one an earlier rollback of the run was given (in its record), so that a rollback resumed
    after a kill honours it."""
    return given or extra.get(DATABASE_MODE)


def _target(deployment: Deployment, database_mode_given: str | None = None) -> rollback.Target:
    mode = database_mode(deployment.run.extra, database_mode_given)
    return rollback.Target(deployment.session, deployment.run, deployment.before, deployment.aside, database_mode=mode)


def _roll_back_or_raise(deployment: Deployment, cause: str | None, *, rolled_back_error: bool,
                        target: rollback.Target | None = None, reason: str | None = None, by: str | None = None) -> None:
    """Roll the run back and end it: rolled back (proved), or rollback_failed. `cause` is the run's error
    (None for a complete run rolled back on request: nothing failed); `reason` and `by` go into its history."""
    run = deployment.run
    target = target or _target(deployment)
    rollback.check_record(target)  # the run's record was read back from disk: its paths must be the site's
    problems = rollback.attempt(target)
    if reason == "requested":
        run.extra["rollback"]["requested_by"] = by
    if problems:
        run.finish("rollback_failed", cause, reason=reason, by=by)
        error: WpgateError = RollbackIncomplete(f"run {run.id}: the rollback is NOT complete; a person must act:\n"
                                                + "\n".join(f"  - {problem}" for problem in problems))
        error.report = run.report()
        raise error
    run.finish("rolled_back", cause, reason=reason, by=by)
    message = f"run {run.id}: rolled back; production is proved back at its pre-deployment state"
    if rolled_back_error:
        error = RolledBack(message)  # resume exits 4 when it had to roll back
        error.report = run.report()
        raise error
    deployment.say(message)
