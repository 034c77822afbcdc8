"""What a notification says about a finished run: a headline, a few facts, and (email) the Markdown report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEADLINES = {
    "complete": ("✅", "deployed"),
    "refused": ("⛔", "refused, production unchanged"),
    "rolled_back": ("↩️", "failed and rolled back, production is back as it was"),
    "rollback_failed": ("🚨", "failed and the rollback is NOT proved: a person must act"),
}
COLORS = {"complete": "#1f7a4d", "refused": "#9a5b00", "rolled_back": "#9a5b00", "rollback_failed": "#b42318"}


@dataclass
class Message:
    status: str
    subject: str
    text: str
    fields: list[tuple[str, str]]
    summary: dict[str, Any]
    markdown: str

    @classmethod
    def of(cls, report: dict[str, Any], markdown: str) -> "Message":
        status = report.get("status", "")
        icon, said = HEADLINES.get(status, ("", status))
        last = (report.get("history") or [{}])[-1]
        if isinstance(last, dict) and last.get("reason") == "requested" and status == "rolled_back":
            said = "rolled back on request" + (f" by {last['by']}" if last.get("by") else "") + \
                ", production is back as it was"
        release, site = report.get("release"), report.get("site")
        subject = f"wpgate: release {release} to {site}: {said}"
        text = f"{icon} {subject}".strip()
        if report.get("error"):
            text += f"\nWhy: {report['error']}"
        updates = report.get("updates", [])
        fields = [("Site", str(site)), ("Release", str(release)), ("Run", str(report.get("run"))),
                  ("Outcome", status.replace("_", " ")),
                  ("Updates", "\n".join(f"{u.get('type')} {u.get('slug')} {u.get('from')} → {u.get('to')}: "
                                        f"{str(u.get('status', '')).replace('_', ' ')}" for u in updates) or "none")]
        backup = (report.get("backup") or {}).get("id")
        if backup:
            fields.append(("Backup", str(backup)))
        summary = {"run": report.get("run"), "site": site, "release": release, "status": status,
                   "error": report.get("error"), "seconds": report.get("seconds"), "history": report.get("history"),
                   "updates": [{key: u.get(key) for key in ("type", "slug", "from", "to", "status")} for u in updates],
                   "gates": [{key: g.get(key) for key in ("step", "name", "status")} for g in report.get("gates", [])]}
        return cls(status, subject, text, fields, summary, markdown)
