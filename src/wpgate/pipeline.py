"""`wpgate deploy`: runs the gates of DESIGN.md in order, and always finishes the run's record."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from wpgate import rollback_database
from wpgate.backup import snapshot
from wpgate.config import Settings
from wpgate.deployment import Confirm, Deployment
from wpgate.errors import BadInput, WpgateError
from wpgate.gates import Gate, GateFailed, apply, approval, completion, monitor, order
from wpgate.gates import backup as backup_gate
from wpgate.gates import caches as caches_gate
from wpgate.ending import ending, fail
from wpgate.output import Output, console_say, say_done, say_marked
from wpgate.release import Release, save as save_release
from wpgate.run import Run, UpdateRecord
from wpgate.session import SiteSession

# DESIGN.md's gates, in its order: each a module of the shape of gates.Gate.
GATES = (approval, backup_gate, apply, order, caches_gate, monitor, completion)
# The gates after the last change: what `resume` runs too, when every update is in place (recovery.py).
FINISHING = (caches_gate, monitor, completion)


def deploy(settings: Settings, release: Release, site_name: str, *, dry_run: bool, auto_rollback: bool,
           console: Output, confirm: Confirm | None = None, break_lock: bool = False,
           require_existing_backup: bool = False, run_id: str | None = None,
           notify: bool = True) -> dict[str, Any]:
    """Run gates 6.1 to 6.7 against `site_name`; return the report, or raise with the exit code. With `confirm`,
    the plan is said and `confirm` asked before the first change; without, nothing is asked. A rollout names the
    run's id before it starts (its ledger finds the run again after a crash) and sends one notification for all
    its sites (`notify=False`)."""
    site = settings.site(site_name)
    release = release.for_site(site_name)  # of a group release, exactly what this site's entry names
    settings.require_secrets(site_name)
    if site_name == release.staging_site:
        raise BadInput(f"site {site_name} is the release's staging site: deploy to production")
    state_dir = settings.state_dir
    scratch = tempfile.TemporaryDirectory(prefix="wpgate-dry-run-") if dry_run else None
    run = Run(Path(scratch.name) if scratch else state_dir, site_name, release.id, run_id)
    run.updates = [UpdateRecord(u.type, u.slug, u.from_version, u.to_version) for u in release.updates]
    run.backup = {"id": None, "path": None, "offsite": None, "sha256": None, "status": "pending"}
    run.extra["auto_rollback"] = auto_rollback
    run.extra["dry_run"] = dry_run
    if not dry_run:
        save_release(release, run.folder / "release.yml")  # what `resume` finishes, exactly as approved
        console.print(f"run {run.id}: deploying release {release.id} to {site_name} ({site.url})")
    try:
        with SiteSession.open(site_name, site, console_say(console)) as session:
            deployment = Deployment(settings, session, release, run, console, break_lock=break_lock,
                                    require_existing_backup=require_existing_backup)
            with ending(deployment, fail=lambda error: fail(deployment, error, auto_rollback=auto_rollback),
                        notify=notify and not dry_run):  # however the run ends
                if dry_run:
                    _dry_run(deployment)
                    return run.report() | {"status": "dry_run", "plan": apply.plan(deployment)}
                _run_gates(deployment, confirm=confirm)
                run.finish("complete")
                deployment.release_lock()  # retention takes the site's lock in its turn
                _retention(settings, run, console)
                say_done(console, f"production holds release {release.id}. Report: {run.folder / 'report.json'}")
        return run.report()
    finally:
        if scratch:
            scratch.cleanup()


def _retention(settings: Settings, run: Run, console: Output) -> None:
    """The last step of a complete run, when the site sets a retention (backup.keep_last or keep_daily): backup
    retention and unneeded artifacts, as `wpgate prune` does. Its failure is a warning in
    the output and the report, never a failed run: production is complete either way."""
    from wpgate.backup import prune

    site = settings.site(run.site)
    if site.backup is None or (site.backup.keep_last is None and site.backup.keep_daily is None):
        return  # no retention set: nothing changes for those who have not asked for it
    try:
        result = prune.prune(settings, run.site, dry_run=False)
    except Exception as error:  # noqa: BLE001 (a retention that fails must not turn a complete run into a failure)
        message = f"{type(error).__name__}: {error}" if not isinstance(error, WpgateError) else str(error)
        run.extra["retention"] = {"warnings": [f"retention not applied: {message}"]}
    else:
        removed = [entry["name"] for entry in [*result["backups"], *result["artifacts"]] if entry.get("removed")]
        run.extra["retention"] = {"removed": removed, "warnings": result["problems"]}
    for warning in run.extra["retention"]["warnings"]:
        console.print(f"  warning: {warning}", markup=False, soft_wrap=True)
    removed = run.extra["retention"].get("removed")
    if removed:
        console.print(f"  retention: removed {', '.join(removed)}", markup=False, soft_wrap=True)
    run.write_report()


def _run_gates(deployment: Deployment, *, confirm: Confirm | None) -> None:
    _gate(deployment, approval)
    _caches_reachable(deployment)
    if confirm is not None:
        _confirm(deployment, confirm)
    _gate(deployment, backup_gate)
    monitor.baseline(deployment)  # the site as it is before the first change
    # The database's rows just before the first change and right after the last: what the release itself
    # changed there decides whether a rollback must restore it (rollback_database.py).
    rollback_database.take_snapshot(deployment.run, deployment.transport, deployment.bridge, snapshot.BEFORE,
                                    deployment.say)
    _gate(deployment, apply)
    rollback_database.after_changes(deployment.run, deployment.transport, deployment.bridge, deployment.say)
    _gate(deployment, order, begin=False)
    run_gates(deployment, FINISHING)
    apply.clean_up(deployment)


def run_gates(deployment: Deployment, gates: tuple[Gate, ...], *, skip: set[str] = frozenset(),
              resumed: bool = False) -> None:
    """The gates, in order, each recorded and its line said (_gate), but those whose step is in `skip`. For
    `resume` (`resumed`), each one's evidence says it ran in the resume."""
    for gate in gates:
        if gate.STEP not in skip:
            _gate(deployment, gate, resumed=resumed)


def _caches_reachable(deployment: Deployment) -> None:
    """Before the backup and the first change: each CDN's credentials by its provider's read-only call. A token
    refused only at gate 6.5 would roll back a healthy release; refused now, gate 6.5 fails and nothing changed."""
    try:
        held = caches_gate.check_access(deployment)
    except GateFailed as failure:
        deployment.run.gate(caches_gate.STEP, caches_gate.NAME, "failed",
                            failure.evidence | {"error": failure.message, "before_change": True})
        _say_gate(deployment, caches_gate.STEP, caches_gate.NAME, "failed", "")
        raise
    deployment.run.event("caches.access", checks=held)


def _gate(deployment: Deployment, gate: Gate, *, begin: bool = True, resumed: bool = False) -> dict[str, Any]:
    """Run one gate and record how it went: its evidence, passed or failed, and its line."""
    if begin:  # gate 6.4 reads what apply journaled: it has no begin of its own
        deployment.run.event("gate.begin", step=gate.STEP, name=gate.NAME)
    marked = {"resumed": True} if resumed else {}
    evidence = _recorded(deployment, gate, lambda: gate.run(deployment) | marked, marked)
    deployment.run.gate(gate.STEP, gate.NAME, "passed", evidence)
    _say_gate(deployment, gate.STEP, gate.NAME, "passed", gate.summary(evidence))
    return evidence


def _dry_run(deployment: Deployment) -> None:
    """All a dry run does: each gate's describe(), in order. Gate 6.1 runs in full (without the lock); each later
    gate checks the preconditions it can read without a change, as the deploy will need them, and says what it
    would do; it is recorded skipped, each precondition listed. A precondition that does not hold fails its
    gate: the dry run refuses (exit 3), as the deploy would."""
    for gate in GATES:
        deployment.run.event("gate.begin", step=gate.STEP, name=gate.NAME, dry_run=True)
        plan = _recorded(deployment, gate, lambda: gate.describe(deployment), {"dry_run": True})
        if plan.lines:
            deployment.say(plan.heading)
            for line in plan.lines:
                deployment.say(f"  {line}")
        if plan.reason is None:
            continue
        evidence = plan.evidence if plan.status == "passed" else {"reason": plan.reason, **plan.evidence}
        deployment.run.gate(gate.STEP, gate.NAME, plan.status, evidence)
        _say_gate(deployment, gate.STEP, gate.NAME, plan.status, plan.reason)
        for held in plan.evidence.get("preconditions", []):
            mark = "✔" if held["status"] == "passed" else "–"
            deployment.say(f"    {mark} {held['check']}: {held['detail']}")
    deployment.say("dry run: nothing was changed, and every precondition above holds.")


def _recorded(deployment: Deployment, gate: Gate, body: Callable[[], Any], marked: dict[str, Any]) -> Any:
    """`body`'s result; when it fails, the gate is recorded failed with its evidence (and `marked`: a dry run's,
    a resume's) and its line said (why is said once, as the run ends: ending.fail)."""
    try:
        return body()
    except BaseException as error:
        if isinstance(error, GateFailed):
            evidence = error.evidence | {"error": error.message}
        else:
            evidence = {"error": str(error) or type(error).__name__}
        deployment.run.gate(gate.STEP, gate.NAME, "failed", evidence | marked)
        _say_gate(deployment, gate.STEP, gate.NAME, "failed", "")
        raise


def _say_gate(deployment: Deployment, step: str, name: str, status: str, detail: str) -> None:
    say_marked(deployment.console, status, f"{step} {name}: {status}", detail)


def _confirm(deployment: Deployment, confirm: Confirm) -> None:
    deployment.say(f"About to change {deployment.site_name} ({deployment.site.url}), in this order:")
    for line in apply.plan(deployment):
        deployment.say(f"  {line}")
    if not confirm("Deploy now?"):
        raise GateFailed("not confirmed: nothing was changed")
