"""Which journal events the crash matrices kill a deploy at: every event that changes production's
state, in every run, plus a seeded sample of the rest, so coverage accumulates over runs.

The seed differs from run to run and is printed in the header of the test session; set
`WPGATE_CRASH_SEED=N` to replay a run, or `WPGATE_CRASH_FULL=1` (what `make test-crash` does) to
kill at every event.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

# Within the first update of each type: the events after which a kill leaves production in a
# state no other kill point produces (old files aside, new files in, database upgraded, maintenance
# lifted, the update recorded). The events in between (the copy aside, uploads, checks) leave the same state
# as their neighbours: they are left to the seeded sample.
_BOUNDARIES = ("install.begin", "install.done", "upgrade_database.done", "maintenance_off.begin", "apply.done")
# Outside the updates: the first change, each gate after apply starting, the clean-up.
_MILESTONES = ("prepare.begin", "clean_up.begin", "clean_up.done")
_GATES_AFTER_APPLY = ("6.5", "6.7")  # 6.6 only reads: a kill there leaves what one at 6.5's end does


def crash_seed() -> int:
    """This session's seed: `WPGATE_CRASH_SEED`, which conftest sets once per session."""
    value = os.environ.get("WPGATE_CRASH_SEED", "")
    if not value.isdigit():
        raise RuntimeError("WPGATE_CRASH_SEED is not set: tests/conftest.py sets it for each session")
    return int(value)


def full_matrix() -> bool:
    return os.environ.get("WPGATE_CRASH_FULL") == "1"


@dataclass(frozen=True)
class KillPoints:
    """Kill points (1-based journal event numbers): those before production changes, which can share
    one site, and those after, each of which needs a fresh one."""

    before_change: list[int]
    after_change: list[int]


def first_change(events: list[dict]) -> int:
    """The number of the first event after which production may differ (the aside folder made)."""
    for number, event in enumerate(events, 1):
        if event["event"] == "prepare.begin":
            return number
    raise ValueError("the journal has no prepare.begin: no update was applied")


def state_changing(events: list[dict]) -> set[int]:
    """Every kill point that must be hit in every run."""
    chosen: set[int] = set()
    types_seen: dict[str, int] = {}  # update type -> the index of its first update
    for number, event in enumerate(events, 1):
        name = event["event"]
        if name in _MILESTONES:
            chosen.add(number)
        elif name == "gate.begin" and event.get("step") in _GATES_AFTER_APPLY:
            chosen.add(number)
        elif name == "apply.begin":
            types_seen.setdefault(event["type"], event["index"])
    current: int | None = None
    for number, event in enumerate(events, 1):
        if event["event"] == "apply.begin":
            current = event["index"]
        elif event["event"] == "apply.done":
            if current in types_seen.values():
                chosen.add(number)
            current = None
        elif current in types_seen.values() and event["event"] in _BOUNDARIES:
            chosen.add(number)
    chosen.add(first_change(events) - 1)  # the last event before any change
    return chosen


def kill_points(events: list[dict], seed: int, *, extra: int, extra_before: int = 2,
                full: bool = False, only: set[int] | None = None) -> KillPoints:
    """The kill points of one run: the state-changing ones (`only` narrows them), then `extra`
    seeded picks among the other events after the first change and `extra_before` before it."""
    change = first_change(events)
    everything = range(1, len(events) + 1)
    if full:
        return KillPoints([n for n in everything if n < change], [n for n in everything if n >= change])
    must = state_changing(events)
    if only is not None:
        must &= only
    rng = random.Random(seed)
    rest_after = [n for n in everything if n >= change and n not in must]
    rest_before = [n for n in everything if n < change and n not in must]
    picked = set(rng.sample(rest_after, min(extra, len(rest_after))))
    picked |= set(rng.sample(rest_before, min(extra_before, len(rest_before))))
    chosen = sorted(must | picked)
    return KillPoints([n for n in chosen if n < change], [n for n in chosen if n >= change])


def describe(events: list[dict], number: int) -> str:
    """`17 aside.done (core)`: a kill point as a failure message names it."""
    event = events[number - 1]
    detail = event.get("type") or event.get("step") or ""
    return f"{number} {event['event']}" + (f" ({detail})" if detail else "")
