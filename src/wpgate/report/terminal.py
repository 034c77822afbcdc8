"""`wpgate status`: a run's state on the terminal, finished or still running, from its record and journal."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from wpgate.report.facts import Facts, clock, duration
from wpgate.report.view import database_summary, gate_view, update_label

_MARKS = {"passed": "[green]✔[/]", "failed": "[red]✘[/]", "skipped": "[yellow]–[/]", "not reached": "[dim]·[/]",
          "running": "[cyan]…[/]"}
_STATUS_STYLE = {"complete": "bold green", "refused": "bold yellow", "rolled_back": "bold yellow",
                 "rollback_failed": "bold red", "running": "bold cyan"}


def render(facts: Facts, console: Console) -> None:
    report = facts.report
    status = facts.status
    console.print(f"run {escape(str(report.get('run')))}: release {escape(str(report.get('release')))} to "
                  f"{escape(str(report.get('site')))}: [{_STATUS_STYLE.get(status, 'bold')}]{escape(status)}[/]")
    headline, meaning, _ = facts.outcome
    took = "so far" if status == "running" else "in all"
    said = f"{headline}. {meaning}" if facts.requested_rollback() else meaning
    console.print(f"  started {clock(report.get('started_at'))}, {duration(report.get('seconds'))} {took}. "
                  f"{said}", markup=False, soft_wrap=True)
    running = _running_step(facts) if status == "running" else None
    seconds = facts.gate_seconds()
    console.print("gates")
    for gate in facts.gates():
        view = gate_view(gate, report.get("updates"))
        state = "running" if gate["step"] == running and view.status == "not reached" else view.status
        said = "see the error below" if view.error else (view.summary if view.status != "not reached" else "")
        took_gate = f" ({duration(seconds[view.step])})" if view.step in seconds else ""
        console.print(f"  {_MARKS.get(state, '·')} {view.step} {view.name}: {state}{took_gate}", end="")
        console.print(f" — {said}" if said else "", markup=False, soft_wrap=True)
    times = facts.update_times()
    console.print("updates")
    for index, update in enumerate(report.get("updates", [])):
        timing = times.get(index, {})
        when = f"applied at {clock(timing['ended'])[11:19]}" if timing.get("ended") and not timing.get("failed") else ""
        if timing.get("rolled_back") and update.get("status") == "rolled_back":
            when += (", " if when else "") + f"rolled back at {clock(timing['rolled_back'])[11:19]}"
        console.print(f"  {update_label(update)}: {str(update.get('status', '')).replace('_', ' ')}"
                      + (f" ({when})" if when else ""), markup=False)
    backup = report.get("backup") or {}
    if backup.get("id"):
        console.print(f"backup {backup['id']} ({backup.get('status', 'recorded')})", markup=False)
    rollback = report.get("rollback")
    if rollback:
        if not rollback.get("attempted"):
            console.print(f"rollback: not attempted ({rollback.get('reason')})", markup=False)
        elif rollback.get("problems"):
            console.print("rollback: NOT proved; a person must act:", markup=False)
            for problem in rollback["problems"]:
                console.print(f"  - {problem}", markup=False, soft_wrap=True)
        else:
            took = facts.rollback_seconds()
            console.print("rollback: every change undone, production proved back at its pre-deployment state"
                          + (f" (took {duration(took)})" if took is not None else ""), markup=False)
        for line in database_summary(report.get("database_rollback")):
            console.print(f"  {line}", markup=False, soft_wrap=True)
        if rollback.get("undo"):
            console.print("to put back by hand:", markup=False)
            for line in rollback["undo"]:
                console.print(f"  {line}", markup=False, soft_wrap=True)
    if len(facts.history) > 1:
        console.print("history", markup=False)
        for line in facts.history_lines():
            console.print(f"  {line}", markup=False)
    culprit = facts.culprit()
    if culprit:
        console.print(f"culprit: {update_label(culprit)} (the fatal error comes from its code)", markup=False)
    if report.get("error"):
        console.print(f"error: {report['error']}", markup=False, soft_wrap=True)
    for note in report.get("notifications", []):
        said = f"sent to {note.get('to')}" if note.get("sent") else f"NOT sent: {note.get('error')}"
        console.print(f"notification by {note.get('notifier')}: {said}", markup=False, soft_wrap=True)
    if status == "running":
        last = facts.events[-1] if facts.events else {}
        console.print(f"last journal event: {last.get('event', 'none')} at {clock(last.get('at'))}. If no wpgate "
                      f"process is working on it, `wpgate resume {report.get('run')}` finishes or rolls it back.",
                      markup=False, soft_wrap=True)
    else:
        console.print(f"report: wpgate report {report.get('run')} --html report.html", markup=False)


def _running_step(facts: Facts) -> str | None:
    """The gate begun and not yet recorded, in a running run's journal."""
    step = None
    for event in facts.events:
        if event.get("event") == "gate.begin":
            step = event.get("step")
        elif event.get("event") == "gate" and event.get("step") == step:
            step = None
    return step
