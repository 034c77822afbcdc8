"""What a run's report shows, read from its folder: report.json, the journal's times, the screenshots."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from wpgate import redact, run as run_module
from wpgate.aside import PATH_IN_ASIDE

GATES = (("6.1", "approval"), ("6.2", "backup"), ("6.3", "apply"), ("6.4", "order"),
         ("6.5", "caches"), ("6.6", "monitor"), ("6.7", "completion"))

# status -> (headline, what it means for the site, tone)
OUTCOMES = {
    "complete": ("Complete", "Production holds the release: every gate passed.", "good"),
    "refused": ("Refused", "A gate refused before anything changed: production was not touched.", "warn"),
    "rolled_back": ("Rolled back", "A check failed after production changed. Every change was undone and "
                                   "production is proved back at its pre-deployment state.", "warn"),
    "rollback_failed": ("Rollback failed", "A check failed after production changed and the rollback is not "
                                           "proved: a person must act now.", "bad"),
    "running": ("Running", "The run has not ended (or was stopped without finishing its record).", "info"),
}

_KINDS = ("before", "after", "diff")
_KIND_IN_NAME = re.compile(r"(?:^|[-_.])(before|after|diff)(?:$|[-_.])")


@dataclass
class Screenshot:
    path: Path
    page: str
    kind: str | None  # before, after, diff, or None when the name does not say


@dataclass
class Facts:
    """One run, as its report tells it."""

    report: dict[str, Any]
    folder: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    screenshots: list[Screenshot] = field(default_factory=list)

    @property
    def status(self) -> str:
        return self.report.get("status", "running")

    @property
    def history(self) -> list[dict[str, Any]]:
        """Every status the run ended in, in order (report.json's `history`)."""
        return [entry for entry in self.report.get("history") or [] if isinstance(entry, dict)]

    def requested_rollback(self) -> dict[str, Any] | None:
        """The rollback that ended the run when a person asked for it (`wpgate rollback`), else None."""
        last = self.history[-1] if self.history else None
        if last and last.get("status") == self.status and last.get("reason") == "requested":
            return last
        return None

    def completed(self) -> dict[str, Any] | None:
        return next((entry for entry in self.history if entry.get("status") == "complete"), None)

    @property
    def outcome(self) -> tuple[str, str, str]:
        asked = self.requested_rollback()
        if asked:
            completed = self.completed()
            first = (f"The run completed at {clock(completed.get('at'))} and production held the release until then. "
                     if completed else "A check failed after production changed, and the run's own rollback did "
                                       "not finish it. ")
            by = f" by {asked['by']}" if asked.get("by") else ""
            if self.status == "rolled_back":
                return ("Rolled back on request", f"{first}Rolled back on request{by} at {clock(asked.get('at'))}: "
                        "every change was undone and production is proved back at its pre-deployment state.", "warn")
            return ("Rollback failed", f"{first}A rollback asked for{by} at {clock(asked.get('at'))} is not proved: "
                    "a person must act now.", "bad")
        return OUTCOMES.get(self.status, (self.status, "", "info"))

    def history_lines(self) -> list[str]:
        """The history in words: `2026-11-26 10:14:27 UTC: complete`, `…: rolled back (requested by ana@laptop)`."""
        lines = []
        for entry in self.history:
            why = entry.get("reason")
            if why == "requested":
                why = "requested" + (f" by {entry['by']}" if entry.get("by") else "")
            elif why and why not in ("interrupted", "error"):
                why = f"gate {why} failed"
            lines.append(f"{clock(entry.get('at'))}: {str(entry.get('status')).replace('_', ' ')}"
                         + (f" ({why})" if why else ""))
        return lines

    @property
    def reason(self) -> str | None:
        return self.report.get("error")

    def culprit(self) -> dict[str, Any] | None:
        """The update whose own code the run's error points at (a PHP fatal in its folder), when one does:
        the update that broke the site may not be the one whose step failed."""
        updates = self.report.get("updates", [])
        for gate in self.report.get("gates", []):  # the monitor's probe names the update it caught breaking the site
            evidence = gate.get("evidence") or {}
            index = evidence.get("update")
            if gate.get("status") == "failed" and evidence.get("culprit") and isinstance(index, int) \
                    and 0 <= index < len(updates):
                return updates[index]
        texts = [self.reason or ""] + [str((gate.get("evidence") or {}).get("error", ""))
                                       for gate in self.report.get("gates", []) if gate.get("status") == "failed"]
        # Only a fatal error says whose code ran; wpgate's own aside copies are not the live component.
        texts = [PATH_IN_ASIDE.sub("", text) for text in texts if "fatal" in text.lower()]
        for update in updates:
            if update.get("type") not in ("plugin", "theme"):
                continue
            folder = re.compile(rf"/{update['type']}s/{re.escape(str(update.get('slug')))}/")
            if any(folder.search(text) for text in texts):
                return update
        return None

    def gates(self) -> list[dict[str, Any]]:
        """Every gate of the procedure in order; one the run did not reach is `not reached`."""
        recorded = {gate["step"]: gate for gate in self.report.get("gates", [])}
        return [recorded.get(step, {"step": step, "name": name, "status": "not reached", "evidence": {}})
                for step, name in GATES]

    def gate(self, step: str) -> dict[str, Any] | None:
        return next((gate for gate in self.report.get("gates", []) if gate["step"] == step), None)

    def gate_seconds(self) -> dict[str, float]:
        """Each gate's duration: from its `gate.begin` event to the `gate` event that recorded its result."""
        begun: dict[str, datetime] = {}
        seconds: dict[str, float] = {}
        for event in self.events:
            at = _time(event.get("at"))
            if at is None:
                continue
            if event.get("event") == "gate.begin":
                begun[event.get("step")] = at
            elif event.get("event") == "gate" and event.get("step") in begun:
                seconds[event["step"]] = (at - begun.pop(event["step"])).total_seconds()
        return seconds

    def update_times(self) -> dict[int, dict[str, Any]]:
        """Per update (by index): when its `apply` action began and ended, and how it ended."""
        times: dict[int, dict[str, Any]] = {}
        for event in self.events:
            name = event.get("event", "")
            if not name.startswith("apply.") or not isinstance(event.get("index"), int):
                continue
            entry = times.setdefault(event["index"], {})
            if name == "apply.begin":
                entry["began"] = event.get("at")
            elif name in ("apply.done", "apply.failed"):
                entry["ended"] = event.get("at")
                entry["failed"] = name == "apply.failed"
                if name == "apply.failed":
                    entry["error"] = event.get("error")
        for entry in times.values():
            began, ended = _time(entry.get("began")), _time(entry.get("ended"))
            if began and ended:
                entry["seconds"] = (ended - began).total_seconds()
        # When each was put back: a rollback's own time, never its apply time.
        updates = self.report.get("updates", [])
        for event in self.events:
            if event.get("event") != "put_back.done":
                continue
            for index, update in enumerate(updates):
                if (update.get("type"), update.get("slug")) == (event.get("type"), event.get("slug")):
                    times.setdefault(index, {})["rolled_back"] = event.get("at")
        return times

    def rollback_seconds(self) -> float | None:
        began = ended = None
        for event in self.events:
            if event.get("event") == "rollback.begin":
                began = _time(event.get("at"))
            elif event.get("event") in ("rollback.done", "rollback.failed"):
                ended = _time(event.get("at"))
        return (ended - began).total_seconds() if began and ended else None

    def screenshot_groups(self) -> list[tuple[str, list[Screenshot]]]:
        """Screenshots by page, each page's in the order before, after, diff, then any other."""
        pages: dict[str, list[Screenshot]] = {}
        for shot in self.screenshots:
            pages.setdefault(shot.page, []).append(shot)
        order = {kind: number for number, kind in enumerate(_KINDS)}
        return [(page, sorted(shots, key=lambda s: (order.get(s.kind, len(order)), s.path.name)))
                for page, shots in pages.items()]


def load(state_dir: Path, run_id: str) -> Facts:
    report = run_module.load_report(state_dir, run_id)
    folder = run_module.record_folder(state_dir, run_id)
    # Masked again as read: a record written before a secret was known to this wpgate shows none either.
    return Facts(redact.value(report), folder, redact.value(read_journal(folder / "journal.jsonl")),
                 find_screenshots(folder / "screenshots"))


read_journal = run_module.read_journal  # the notifiers read a run's journal from here


def find_screenshots(folder: Path) -> list[Screenshot]:
    """Every PNG under the run's `screenshots/` folder; its page and kind read from its name (`home-before.png`,
    `home_diff.png`) or its folder (`before/home.png`)."""
    if not folder.is_dir():
        return []
    shots = []
    for path in sorted(folder.rglob("*.png")):
        if not path.is_file():
            continue
        parent = path.parent.name.lower() if path.parent != folder else ""
        kind, page = None, path.stem
        match = _KIND_IN_NAME.search(path.stem.lower())
        if match:
            kind = match.group(1)
            start, end = match.span(1)
            page = (path.stem[:start] + path.stem[end:]).strip("-_.")
        elif parent in _KINDS:
            kind = parent
        if not page:  # `home/before.png`: the folder names the page
            page = path.parent.name if parent else "page"
        shots.append(Screenshot(path, page, kind))
    return shots


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def duration(seconds: float | None) -> str:
    """`0.4` → `under 1 s`, `75` → `1 min 15 s`: how long something took, for people."""
    if seconds is None:
        return "—"
    if seconds < 1:
        return "under 1 s"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def clock(text: Any) -> str:
    """An ISO time from the journal as `2026-11-26 10:14:27 UTC`."""
    at = _time(text)
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "—"
