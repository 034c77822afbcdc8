"""The QA record of staging: checks run, issues found and resolved, notes left for later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wpgate.errors import BadInput, listing
from wpgate.release import QaLoader, load_yaml

CHECK_STATUSES = ("passed", "failed", "pending", "skipped")
ISSUE_STATUSES = ("resolved", "open", "wontfix", "pending")
NOTE_STATUSES = ("open", "closed")

_CHECK_KEYS = ({"name", "status"}, {"required", "details", "by", "url"})
_ISSUE_KEYS = ({"id", "title", "status"}, {"resolution", "url", "by"})
_NOTE_KEYS = ({"text", "status"}, {"by"})


def load(path: Path) -> dict[str, Any]:
    """Read a QA record and check its shape (exit 2 on a malformed one, every problem listed)."""
    data = load_yaml(path, "QA record", QaLoader)
    problems = shape_problems(data)
    if problems:
        raise BadInput(f"{path}: {listing(problems)}")
    return {"checks": data.get("checks") or [], "issues": data.get("issues") or [],
            "notes": data.get("notes") or []}


def shape_problems(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["the QA record must be a mapping with checks, issues and notes"]
    problems = [f"{key}: unknown key" for key in data if key not in ("checks", "issues", "notes")]
    if "checks" not in data:
        problems.append("checks: required key is missing (the staging QA results)")
    for section, keys, statuses in (("checks", _CHECK_KEYS, CHECK_STATUSES),
                                    ("issues", _ISSUE_KEYS, ISSUE_STATUSES),
                                    ("notes", _NOTE_KEYS, NOTE_STATUSES)):
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            problems.append(f"{section}: must be a list")
            continue
        required, optional = keys
        for index, entry in enumerate(entries):
            where = f"{section}[{index}]"
            if not isinstance(entry, dict):
                problems.append(f"{where}: must be a mapping")
                continue
            problems += [f"{where}.{key}: unknown key" for key in entry if key not in required | optional]
            problems += [f"{where}.{key}: required key is missing" for key in sorted(required - set(entry))]
            if "status" in entry and entry["status"] not in statuses:
                problems.append(f"{where}.status: {entry['status']!r} is not one of {', '.join(statuses)}")
            if "required" in entry and not isinstance(entry["required"], bool):
                problems.append(f"{where}.required: must be true or false")
    return problems


def refusals(qa: dict[str, Any]) -> list[str]:
    """Why this QA record cannot be approved: DESIGN.md's rules, every reason listed."""
    reasons = []
    for check in qa.get("checks", []):
        if check.get("required", True) and check.get("status") != "passed":
            reasons.append(f"required check {check.get('name')!r} is {check.get('status')}, not passed")
    for issue in qa.get("issues", []):
        label = f"staging issue {issue.get('id')} ({issue.get('title')})"
        if issue.get("status") != "resolved":
            reasons.append(f"{label} is {issue.get('status')}, not resolved")
        elif not str(issue.get("resolution") or "").strip():
            reasons.append(f"{label} is marked resolved but says nothing of how (no resolution)")
    for note in qa.get("notes", []):
        if note.get("status") == "open":
            reasons.append(f"note {note.get('text')!r} is still open (to be checked later)")
    if not qa.get("checks"):
        reasons.append("the QA record holds no checks: nothing says staging was tested")
    return reasons
