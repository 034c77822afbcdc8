"""Which backups and artifacts retention keeps, and why: decisions only, from dates, runs and releases (no I/O).

Backups (per site, newest first):
  - the newest backup is always kept;
  - `keep_last` N: the N newest backups are kept, and the backups of the N newest complete runs
    (`wpgate rollback RUN` of a complete run restores from its backup);
  - `keep_daily` D: the newest backup of each of the D most recent days (UTC) that have a backup;
  - a run that has not ended (running or interrupted: `resume` may roll it back) or whose rollback failed
    (a person may ask for it again) keeps its backup, whatever its age;
  - with neither key set, every backup is kept (retention is off).
Artifacts (zips in state_dir/artifacts):
  - kept when a saved release that has no complete run refers to it (it may still be deployed), or a run that
    has not ended or whose rollback failed refers to it (resume or a retried rollback may need it);
  - kept when nothing wpgate saved refers to it (a release kept elsewhere may): wpgate cannot tell;
  - removed when every release and run referring to it is done (deployed complete, or ended).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable

OPEN_STATUSES = ("running", "rollback_failed")  # a run whose backup and artifacts may still be needed


@dataclass(frozen=True)
class RunFacts:
    """What retention needs to know of a run: its id, site, status, backup and the artifacts its release uses."""

    id: str
    site: str
    status: str
    release: str = ""
    backup: str | None = None
    artifacts: tuple[str, ...] = ()
    ended_at: str = ""  # when it last ended (its history's last entry), for ordering complete runs


@dataclass(frozen=True)
class ReleaseFacts:
    id: str
    artifacts: tuple[str, ...]


@dataclass
class Decision:
    """One backup or artifact: kept (with every reason) or removed (with why nothing keeps it)."""

    name: str
    keep: bool
    reasons: list[str] = field(default_factory=list)
    created_at: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "keep": self.keep, "reasons": list(self.reasons), "created_at": self.created_at}


def backups(found: Iterable[tuple[str, datetime]], runs: Iterable[RunFacts], *, keep_last: int | None,
            keep_daily: int | None) -> list[Decision]:
    """Decisions for one site's backups, given as (id, created) pairs; newest first in the result."""
    ordered = sorted(found, key=lambda item: (item[1], item[0]), reverse=True)
    decisions = {name: Decision(name, False, created_at=created.strftime("%Y-%m-%dT%H:%M:%SZ"))
                 for name, created in ordered}
    retention = keep_last is not None or keep_daily is not None
    for index, (name, _) in enumerate(ordered):
        if index == 0:
            decisions[name].reasons.append("the newest backup")
        if not retention:
            decisions[name].reasons.append("no retention set (backup.keep_last, backup.keep_daily)")
        elif keep_last and index < keep_last:
            decisions[name].reasons.append(f"among the {keep_last} newest (keep_last {keep_last})")
    if keep_daily:
        days: list[str] = []
        for name, created in ordered:
            day = created.strftime("%Y-%m-%d")
            if day in days:
                continue
            days.append(day)
            if len(days) > keep_daily:
                break
            decisions[name].reasons.append(f"the newest of {day} (keep_daily {keep_daily})")
    runs = list(runs)
    for run in runs:
        if run.backup in decisions and run.status in OPEN_STATUSES:
            why = "has not ended" if run.status == "running" else "failed to roll back"
            decisions[run.backup].reasons.append(f"run {run.id} {why}: it may still roll back to it")
    complete = sorted((run for run in runs if run.status == "complete" and run.backup in decisions),
                      key=lambda run: (run.ended_at, run.id), reverse=True)
    for run in complete[:keep_last or 1]:
        assert run.backup is not None
        decisions[run.backup].reasons.append(f"run {run.id} is complete: `wpgate rollback {run.id}` restores it")
    result = [decisions[name] for name, _ in ordered]
    for decision in result:
        decision.keep = bool(decision.reasons)
        if not decision.keep:
            decision.reasons.append("beyond keep_last and keep_daily, and no run may still roll back to it")
    return result


def artifacts(names: Iterable[str], releases: Iterable[ReleaseFacts], runs: Iterable[RunFacts],
              unreadable: Iterable[str] = ()) -> list[Decision]:
    """Decisions for the zips in state_dir/artifacts (`names`: paths relative to state_dir, as manifests
    write them). `unreadable`: saved releases or runs that could not be read; while there is one, every
    artifact is kept, since what it refers to is unknown."""
    runs = list(runs)
    unreadable = list(unreadable)
    deployed = {run.release for run in runs if run.status == "complete"}
    referred: dict[str, list[str]] = {}
    needed: dict[str, list[str]] = {}
    for release in releases:
        for path in release.artifacts:
            referred.setdefault(path, []).append(f"release {release.id}")
            if release.id not in deployed:
                needed.setdefault(path, []).append(f"release {release.id} has no complete run: it may still be deployed")
    for run in runs:
        for path in run.artifacts:
            referred.setdefault(path, []).append(f"run {run.id}")
            if run.status in OPEN_STATUSES:
                why = "has not ended" if run.status == "running" else "failed to roll back"
                needed.setdefault(path, []).append(f"run {run.id} {why}: resume or rollback may need it")
    result = []
    for name in sorted(names):
        if unreadable:
            result.append(Decision(name, True, [f"cannot read {', '.join(unreadable)}: kept, to be safe"]))
        elif name in needed:
            result.append(Decision(name, True, needed[name]))
        elif name not in referred:
            result.append(Decision(name, True, ["no saved release or run refers to it: kept (a release kept "
                                                "elsewhere may); remove it by hand if none does"]))
        else:
            result.append(Decision(name, False, [f"only {', '.join(sorted(set(referred[name])))}, all done, refer to it"]))
    return result
