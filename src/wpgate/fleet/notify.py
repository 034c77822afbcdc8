"""One notification at the end of a rollout: its outcome and counts, through the notifiers the group's sites
configure (each distinct channel once). A notifier that fails is a warning line, never a change of outcome."""

from __future__ import annotations

import json
from typing import Any

from wpgate import notify
from wpgate.config import Settings
from wpgate.notify.message import Message
from wpgate.output import Output

# A rollout's outcome, in the words `notify.on` filters by.
OUTCOME = {"complete": "complete", "refused": "refused"}


def message(ledger: Any) -> Message:
    from wpgate.fleet.controller import conclusion, summary

    data = ledger.data
    status = data["status"]
    outcome = OUTCOME.get(status) or ("rollback_failed" if conclusion(ledger)[1] == 5 else "rolled_back")
    subject = f"wpgate: rollout {data['rollout']} of release {data['release']} to group {data['group']}: " \
              f"{status} ({summary(ledger)})"
    text = subject
    if data.get("halted_by"):
        entry = data["sites"][data["halted_by"]]
        text += f"\nHalted by {data['halted_by']}: {entry['status'].replace('_', ' ')} (run {entry['run']})"
        if entry.get("error"):
            text += f"\nWhy: {entry['error']}"
    counts: dict[str, int] = {}
    for entry in data["sites"].values():
        counts[entry["status"]] = counts.get(entry["status"], 0) + 1
    fields = [("Rollout", data["rollout"]), ("Release", str(data["release"])), ("Group", data["group"]),
              ("Outcome", status), ("Sites", "\n".join(f"{name}: wave {entry['wave']}, "
                                                      f"{entry['status'].replace('_', ' ')}"
                                                      for name, entry in data["sites"].items()))]
    summary_data = {"rollout": data["rollout"], "release": data["release"], "group": data["group"],
                    "status": status, "counts": counts, "halted_by": data.get("halted_by"),
                    "skipped": len(data.get("skipped") or {})}
    return Message(outcome, subject, text, fields, summary_data, text + "\n")


def send(settings: Settings, ledger: Any, console: Output) -> None:
    note = message(ledger)
    channels: dict[str, tuple[str, Any]] = {}
    for name in ledger.sites:
        config = settings.site(name).notify
        if config is None or note.status not in config.on:
            continue
        for kind, options in notify.channels(config):
            channels.setdefault(kind + json.dumps(options.model_dump(), sort_keys=True, default=str), (kind, options))
    results = notify.send(settings, channels.values(), note, console, ending="rollout")
    if results:
        ledger.data["notifications"] = results
        ledger.save()
