"""`wpgate rollout` and `wpgate resume ROLLOUT_ID`: the controller. It alone decides the waves, starts sites,
halts after the first site that ends other than complete (no new site starts, running ones finish) and writes
the ledger."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from wpgate import release as release_module
from wpgate.config import Settings
from wpgate.errors import BadInput, ExitStatus, GateRefused, RollbackIncomplete, RolledBack, WpgateError
from wpgate.fleet import engines, waves as waves_module
from wpgate.fleet.ledger import FINAL_ROLLOUT, FINAL_SITE, Ledger, new_rollout_id
from wpgate.output import Output, say_done
from wpgate.release import Release
from wpgate.run import new_run_id, read_journal, utc_now
from wpgate.words import plural

POLL = 0.5


def rollout(settings: Settings, release_path: Path, group: str, *, waves: str | None, parallel: int | None,
            engine: str | None, dry_run: bool, console: Output,
            confirm: Callable[[str], bool] | None = None) -> dict[str, Any]:
    """Check everything a rollout needs (bad input: exit 2, nothing written), then deploy the group's sites in
    waves; return the ledger, or raise with the rollout's exit code. With `confirm`, asked before the first site."""
    members = settings.group(group)
    parallel = settings.model.fleet.parallel if parallel is None else parallel
    if parallel < 1:
        raise BadInput(f"--parallel {parallel}: deploy at least 1 site at once")
    engine = engine or settings.model.fleet.engine
    release = release_module.load(release_path)
    if release.sites is None:
        raise BadInput(f"{release_path}: release {release.id} is for one site, not a group: plan it with "
                       f"`wpgate plan --from STAGING --to {group}`")
    strangers = [name for name in [*release.sites, *(release.skipped or {})] if name not in members]
    if strangers:
        raise BadInput(f"{release_path}: release {release.id} names sites outside group {group}: "
                       f"{', '.join(strangers)}")
    targets = [name for name in members if name in release.sites]
    not_planned = [name for name in members if name not in release.sites and name not in (release.skipped or {})]
    if not_planned:
        raise BadInput(f"{release_path}: release {release.id} was not planned for {', '.join(not_planned)} of "
                       f"group {group}: plan the group again")
    if not targets:
        raise BadInput(f"release {release.id} updates no site of group {group}")
    planned = waves_module.plan(targets, waves or waves_module.DEFAULT)
    settings.require_secrets(*targets)
    if engine == "celery":
        from wpgate.fleet import celery_engine

        celery_engine.check_broker(settings)
    _say_plan(console, release, group, planned, parallel, engine)
    if dry_run:
        console.print("dry run: nothing was changed.")
        return {"rollout": None, "release": release.id, "group": group, "status": "dry_run",
                "waves": planned, "skipped": release.skipped or {}}
    if confirm is not None and not confirm(f"Deploy release {release.id} to {plural(len(targets), 'site')}?"):
        raise GateRefused("not confirmed: nothing was changed")
    rollout_id = new_rollout_id()
    ledger = Ledger.create(settings.state_dir, rollout_id, {
        "rollout": rollout_id, "release": release.id, "group": group, "status": "running", "waves": planned,
        "sites": {name: {"wave": number, "run": None, "status": "pending", "worker": None}
                  for number, wave in enumerate(planned, 1) for name in wave},
        "skipped": release.skipped or {}, "engine": engine, "parallel": parallel,
        "started_at": utc_now(), "finished_at": None})
    shutil.copyfile(release_path, ledger.folder / "release.yml")  # what resume deploys, exactly as approved
    console.print(f"rollout {rollout_id}: release {release.id} to group {group}", markup=False)
    if release.approval is None:
        return _end(settings, ledger, console, refused=f"release {release.id} is not approved: run `wpgate "
                                                       "approve` first")
    return _drive(settings, ledger, release, console)


def resume(settings: Settings, rollout_id: str, console: Output) -> dict[str, Any]:
    """Finish an interrupted rollout: a site that ended keeps its outcome, a site that was running is taken
    over through its own run, and the waves go on (or the rollout halts) as the rule says."""
    ledger = Ledger.load(settings.state_dir, rollout_id)
    if ledger.data["status"] in FINAL_ROLLOUT:
        console.print(f"rollout {rollout_id} already ended: {ledger.data['status']}; nothing to resume")
        return _end(settings, ledger, console, notify=False)
    release = release_module.load(ledger.folder / "release.yml")
    console.print(f"rollout {rollout_id}: resuming release {release.id} to group {ledger.data['group']}",
                  markup=False)
    return _drive(settings, ledger, release, console)


def _drive(settings: Settings, ledger: Ledger, release: Release, console: Output) -> dict[str, Any]:
    engine = engines.make(ledger.data["engine"], settings, release, ledger.id, ledger.folder)
    parallel = int(ledger.data["parallel"])
    sites = ledger.sites
    halted = _halted_by(ledger)
    seen_gates: dict[str, str] = {}
    try:
        for number, wave in enumerate(ledger.data["waves"], 1):
            queue = [name for name in wave if sites[name]["status"] not in FINAL_SITE]
            if halted or not queue:
                continue
            console.print(f"wave {number}/{len(ledger.data['waves'])}: {', '.join(wave)}", markup=False)
            while queue or engine.running:
                while queue and not halted and len(engine.running) < parallel:
                    name = queue.pop(0)
                    run_id = sites[name]["run"] or new_run_id()
                    again = sites[name]["run"] is not None
                    ledger.site(name, run=run_id, status="running", started_at=sites[name].get("started_at")
                                or utc_now())
                    worker = engine.start(name, run_id)
                    if worker:
                        ledger.site(name, worker=worker)
                    console.print(f"  {name}: {'taken over' if again else 'started'} (run {run_id}"
                                  f"{', ' + worker if worker else ', sent to the broker'})", markup=False)
                if halted:
                    queue = []
                for result in engine.ended():
                    name = result["site"]
                    ledger.site(name, status=result["status"], worker=result["worker"] or sites[name]["worker"],
                                seconds=result.get("seconds"), finished_at=utc_now(), error=result.get("error"),
                                culprit=result.get("culprit"))
                    console.print(f"  {name}: {result['status'].replace('_', ' ')} (run {result['run']})",
                                  markup=False)
                    if result["status"] != "complete" and not halted:
                        halted = name
                        console.print(f"  halting: {name} ended {result['status'].replace('_', ' ')}; no new site "
                                      "starts, the running ones finish", markup=False)
                for name in list(engine.running):
                    known = getattr(engine, "worker_of", lambda site: None)(name)
                    if known and sites[name]["worker"] != known:
                        ledger.site(name, worker=known)
                        console.print(f"  {name}: taken by worker {known}", markup=False)
                _say_progress(settings, ledger, engine, seen_gates, console)
                if engine.running or queue:
                    time.sleep(POLL)
    finally:
        engine.close()
    return _end(settings, ledger, console)


def _halted_by(ledger: Ledger) -> str | None:
    for name, entry in ledger.sites.items():
        if entry["status"] in FINAL_SITE and entry["status"] != "complete":
            return name
    return None


def _say_progress(settings: Settings, ledger: Ledger, engine: Any, seen: dict[str, str], console: Output) -> None:
    """One line per running site each time it enters a gate (read from its run's journal, on this machine)."""
    for name in list(engine.running):
        run_id = ledger.sites[name]["run"]
        journal = settings.state_dir / "runs" / run_id / "journal.jsonl"
        if not journal.exists():
            continue
        gates = [event for event in read_journal(journal) if event.get("event") == "gate.begin"]
        if gates:
            where = f"{gates[-1].get('step')} {gates[-1].get('name')}"
            if seen.get(name) != where:
                seen[name] = where
                console.print(f"  {name}: {where}", markup=False)


def conclusion(ledger: Ledger) -> tuple[str, ExitStatus]:
    statuses = [entry["status"] for entry in ledger.sites.values()]
    if all(status == "complete" for status in statuses):
        return "complete", ExitStatus.COMPLETE
    if any(status in ("rollback_failed", "running") for status in statuses):
        return "halted", ExitStatus.ROLLBACK_INCOMPLETE
    if not any(status in ("complete", "rolled_back") for status in statuses):
        return "refused", ExitStatus.REFUSED
    return "halted", ExitStatus.ROLLED_BACK


def _end(settings: Settings, ledger: Ledger, console: Output, *, refused: str | None = None,
         notify: bool = True) -> dict[str, Any]:
    """Write the rollout's final status, say it, send one notification; raise with its exit code unless complete."""
    if refused:
        status, code = "refused", ExitStatus.REFUSED
        ledger.data["error"] = refused
    elif ledger.data["status"] in FINAL_ROLLOUT:
        status, code = ledger.data["status"], conclusion(ledger)[1]
        refused = ledger.data.get("error")
    else:
        status, code = conclusion(ledger)
    if ledger.data["status"] not in FINAL_ROLLOUT:
        ledger.data.update(status=status, finished_at=utc_now())
        halter = _halted_by(ledger)
        if halter:
            ledger.data["halted_by"] = halter
        ledger.save()
        if notify:
            from wpgate.fleet import notify as fleet_notify

            fleet_notify.send(settings, ledger, console)
    counts = summary(ledger)
    line = f"rollout {ledger.id}: {status}; {counts}"
    if ledger.data.get("halted_by"):
        entry = ledger.sites[ledger.data["halted_by"]]
        line += f"; halted by {ledger.data['halted_by']} ({entry['status'].replace('_', ' ')}, run {entry['run']})"
    if code == ExitStatus.COMPLETE:
        say_done(console, line)
        return ledger.data
    error: WpgateError
    if code == ExitStatus.REFUSED:
        error = GateRefused(f"{line}: {refused or 'no site was changed'}")
    elif code == ExitStatus.ROLLED_BACK:
        error = RolledBack(f"{line}: the failed site is rolled back and proved, the sites not reached are untouched")
    else:
        error = RollbackIncomplete(f"{line}: a site's rollback is not proved; a person must act "
                                   f"(`wpgate status {ledger.id}`)")
    error.report = ledger.data
    raise error


def summary(ledger: Ledger) -> str:
    counts: dict[str, int] = {}
    for entry in ledger.sites.values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    words = [f"{count} {status.replace('_', ' ').replace('pending', 'not reached')}"
             for status, count in sorted(counts.items())]
    if ledger.data.get("skipped"):
        words.append(f"{len(ledger.data['skipped'])} skipped")
    return ", ".join(words)


def _say_plan(console: Output, release: Release, group: str, planned: list[list[str]], parallel: int,
              engine: str) -> None:
    console.print(f"release {release.id} to group {group}: {plural(sum(map(len, planned)), 'site')} in "
                  f"{plural(len(planned), 'wave')}, up to {parallel} at once ({engine} engine)", markup=False)
    for number, wave in enumerate(planned, 1):
        console.print(f"  wave {number}: {', '.join(wave)}", markup=False)
    for name, reason in (release.skipped or {}).items():
        console.print(f"  skipped {name}: {reason}", markup=False, soft_wrap=True)
