"""Gate 6.4 (order): core first, then plugins one at a time in manifest order, then themes (parent before child);
no bulk, no parallel work on the site. Proved from the run's own journal once the apply gate has passed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wpgate.gates import GateFailed, Plan
from wpgate.release import order_problems
from wpgate.run import read_journal

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

STEP, NAME = "6.4", "order"


def describe(deployment: "Deployment") -> Plan:
    """Nothing to show before the deploy: the order is proved from what apply journals (gate 6.1 already
    refuses a manifest out of order)."""
    return Plan()


def run(deployment: "Deployment") -> dict[str, Any]:
    """The manifest's order is the required one, and the journal shows each update's apply begun only after the
    one before it ended, in manifest order: one at a time, none left out, none twice."""
    updates = deployment.release.updates
    problems = list(order_problems(updates))
    applies = [event for event in read_journal(deployment.run.folder / "journal.jsonl")
               if event.get("event") in ("apply.begin", "apply.done")]
    begun = [event.get("index") for event in applies if event["event"] == "apply.begin"]
    one_at_a_time = all(first["event"] == "apply.begin" and second["event"] == "apply.done"
                        and first.get("index") == second.get("index")
                        for first, second in zip(applies[::2], applies[1::2])) and len(applies) % 2 == 0
    if begun != list(range(len(updates))):
        problems.append(f"the updates were begun in the order {begun}, not the manifest's")
    if not one_at_a_time:
        problems.append("an update began before the one before it had ended")
    evidence = {"order": [f"{u.type} {u.slug}" for u in updates], "one_at_a_time": one_at_a_time,
                "applied": len(begun)}
    if problems:
        raise GateFailed("; ".join(problems), evidence)
    return evidence


def summary(evidence: dict[str, Any]) -> str:
    return "core, then plugins one at a time, then themes"
