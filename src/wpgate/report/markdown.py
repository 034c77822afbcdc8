"""The run's report as Markdown, to paste into a ticket: the outcome first, then updates, gates, backup, rollback."""

from __future__ import annotations

from wpgate.report.facts import Facts, clock, duration
from wpgate.report.view import Code, database_summary, gate_view, rows_since_backup, update_label


def render(facts: Facts) -> str:
    report = facts.report
    headline, meaning, _ = facts.outcome
    lines = [f"# wpgate: release {text(report.get('release'))} to {text(report.get('site'))}", "",
             f"**Outcome: {headline}.** {meaning}"]
    culprit = facts.culprit()
    if culprit:
        lines += ["", f"**Culprit:** {text(update_label(culprit))}: the fatal error comes from its code."]
    if facts.reason:
        lines += ["", f"**Why:** {text(facts.reason)}"]
    lines += ["", f"Run `{code(report.get('run'))}` · started {clock(report.get('started_at'))} · "
                  f"took {duration(report.get('seconds'))}"]
    if facts.history:
        lines += ["", "**History:**", ""] + [f"- {text(line)}" for line in facts.history_lines()]

    times = facts.update_times()
    lines += ["", "## Updates", "", "| Type | Component | From | To | Status | Applied at | Took |",
              "|---|---|---|---|---|---|---|"]
    for index, update in enumerate(report.get("updates", [])):
        timing = times.get(index, {})
        status = update.get("status", "").replace("_", " ")
        if timing.get("rolled_back") and update.get("status") == "rolled_back":
            status += f" at {clock(timing['rolled_back'])[11:]}"
        lines.append("| " + " | ".join(cell(value) for value in (
            update.get("type"), update.get("slug"), update.get("from"), update.get("to"),
            status, clock(timing.get("ended"))[11:] if timing.get("ended") else "—",
            duration(timing.get("seconds")) if "seconds" in timing else "—")) + " |")

    seconds = facts.gate_seconds()
    lines += ["", "## Gates", "", "| Step | Gate | Result | Took | Evidence |", "|---|---|---|---|---|"]
    views = [gate_view(gate, report.get("updates")) for gate in facts.gates()]
    for view in views:
        said = view.error or view.summary
        lines.append(f"| {view.step} | {view.name} | {mark(view.status)} {view.status} | "
                     f"{duration(seconds.get(view.step)) if view.step in seconds else '—'} | {cell(said)} |")
    for view in views:
        if view.status == "failed" and view.items:
            lines += ["", f"Gate {view.step} {view.name} found:"] + [f"- {text(item)}" for item in view.items]

    backup = report.get("backup") or {}
    if backup.get("id"):
        lines += ["", "## Backup", "", f"- **Id:** `{code(backup['id'])}`",
                  f"- **Where:** `{code(backup.get('path'))}`", f"- **Off-site copy:** `{code(backup.get('offsite'))}`",
                  f"- **Manifest sha256:** `{code(backup.get('sha256'))}`"]
        for name, digest in (backup.get("parts") or {}).items():
            lines.append(f"  - {text(name)}: `{code(digest)}`")

    lines += _rollback(facts)
    lines += ["", f"Run folder: `{code(facts.folder.name)}` in the state folder's `runs/`. "
                  f"HTML report: `wpgate report {code(report.get('run'))} --html report.html`"]
    return "\n".join(lines) + "\n"


def _rollback(facts: Facts) -> list[str]:
    rollback = facts.report.get("rollback")
    if not rollback:
        return []
    lines = ["", "## Rollback", ""]
    if not rollback.get("attempted"):
        lines.append(f"Not attempted ({text(rollback.get('reason', 'no reason recorded'))}).")
    elif rollback.get("problems"):
        lines.append("Attempted, **not proved**: a person must act.")
        lines += [f"- {text(problem)}" for problem in rollback["problems"]]
    else:
        took = facts.rollback_seconds()
        lines.append("Every change was undone in reverse order; production's inventory equals the pre-deployment "
                     f"one and the site answers{f' (took {duration(took)})' if took is not None else ''}.")
    database = facts.report.get("database_rollback")
    if database:
        lines += [f"- {text(line)}" for line in database_summary(database)]
        rows, problem = rows_since_backup(database)
        if rows:
            lines += ["", f"{text(rows.title)}:", "", "| " + " | ".join(rows.headers) + " |",
                      "|" + "---|" * len(rows.headers)]
            lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows.rows]
        if problem:
            lines.append(f"- {text(problem)}; every row is in database-before-rollback.sql in the run's folder")
    if rollback.get("undo"):
        lines += ["", "To undo by hand:", "", "```"] + [str(line) for line in rollback["undo"]] + ["```"]
    return lines


def mark(status: str) -> str:
    return {"passed": "✅", "failed": "❌", "skipped": "➖"}.get(status, "⏸")


def text(value: object) -> str:
    """Run data inside Markdown: no markup of its own survives (a plugin name can hold some)."""
    return (str(value if value is not None else "—").replace("\\", "\\\\").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "\\`").replace("*", "\\*").replace("\r", " ").replace("\n", " "))


def cell(value: object) -> str:
    if isinstance(value, Code):
        return f"`{code(value)}`"
    return text(value).replace("|", "\\|")


def code(value: object) -> str:
    """Inside backticks nothing is markup; only a backtick or a line break could break out."""
    return str(value if value is not None else "—").replace("`", "'").replace("\n", " ").replace("|", "\\|")

