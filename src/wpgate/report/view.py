"""Each gate's evidence in words: a summary line, labelled values, lists and tables, shared by the
Markdown and HTML reports. Evidence this module does not know (a gate added later, a new key) is shown
as compact labelled values, never dropped."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from wpgate.report.facts import duration
from wpgate.words import plural


class Code(str):
    """A value shown in a monospace face: a checksum, a path, a URL."""


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]


@dataclass
class GateView:
    step: str
    name: str
    status: str
    summary: str = ""
    error: str | None = None
    rows: list[tuple[str, str]] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


# Evidence that only wpgate's own machinery reads (folders on the host for the aside copies).
_INTERNAL = {"aside", "workdir", "error", "problems", "live", "undo", "install_began", "sha256_of", "partly_applied"}


def gate_view(gate: dict[str, Any], updates: list[dict[str, Any]] | None = None) -> GateView:
    """`updates` (the report's) lets evidence that names an update by its index name it in words."""
    evidence = dict(gate.get("evidence") or {})
    index = evidence.get("update")
    if isinstance(index, int) and updates and 0 <= index < len(updates):
        evidence["update"] = update_label(updates[index])
    view = GateView(gate["step"], gate["name"], gate["status"], error=evidence.get("error"))
    if gate["status"] == "skipped":
        reason = str(evidence.pop("reason", "skipped"))
        view.summary = reason[:1].upper() + reason[1:]
    elif gate["status"] == "not reached":
        view.summary = "not reached: the run ended before this gate"
    describe = _DESCRIBERS.get(gate["name"])
    if describe and gate["status"] != "skipped":
        describe(evidence, view)
    if gate["status"] == "failed" and evidence.get("problems"):
        view.items = [str(problem) for problem in evidence["problems"]] + view.items
    add_generic(evidence, view)
    return view


def add_generic(evidence: dict[str, Any], view: GateView) -> None:
    """What is left of the evidence, as labelled values (lists of records as tables)."""
    for key, value in evidence.items():
        if key in _INTERNAL or value is None or value == [] or value == {}:
            continue
        if isinstance(value, list) and all(isinstance(item, dict) for item in value):
            headers = [h for h in dict.fromkeys(k for item in value for k in item) if h not in _INTERNAL]
            view.tables.append(Table(label(key), [label(h) for h in headers],
                                     [[compact(item.get(h)) for h in headers] for item in value]))
        else:
            view.rows.append((label(key), compact(value)))


def rows_since_backup(database_rollback: dict[str, Any] | None) -> tuple[Table | None, str | None]:
    """What a rollback exported of the rows written since the backup: a table per database table, and the
    problem when they could not be exported."""
    outcome = (database_rollback or {}).get("rows_since_backup") or {}
    records = [record for record in outcome.get("tables") or [] if isinstance(record, dict)]
    table = None
    if records:
        headers = [key for key in dict.fromkeys(k for record in records for k in record)]
        name = str(outcome.get("file") or "rows-since-backup.sql").rsplit("/", 1)[-1]
        table = Table(f"Rows written since the backup; those not put back are exported to {name} in the run's folder",
                      [label(h) for h in headers],
                      [["; ".join(map(str, record[h])) if isinstance(record.get(h), list) else compact(record.get(h))
                        for h in headers] for record in records])
    return table, outcome.get("error")


def database_summary(database_rollback: dict[str, Any] | None) -> list[str]:
    """What the rollback did with the database, in sentences: kept or restored, why, and visitors' rows."""
    if not database_rollback:
        return []
    lines = []
    why = database_rollback.get("why")
    if database_rollback.get("database") == "kept":
        lines.append("The database was kept as it was, with every row written since" + (f": {why}." if why else "."))
    else:
        lines.append(f"The database was restored from backup {database_rollback.get('backup')}"
                     + (f": {why}." if why else "") + " Tables that differed from it: "
                     + (", ".join(dict.fromkeys(re.sub(r"^table (\S+?):? .*", r"\1", str(change))
                                                 for change in database_rollback.get("changed") or [])) or "none") + ".")
    fates = {"stay": "stayed live", "are put back": "put back", "leave the live site": "left the live site (exported)"}
    for entry in database_rollback.get("visitors_rows") or []:
        if isinstance(entry, dict):
            counted = [f"{entry.get(k)} {k}" for k in ("new", "changed", "removed") if entry.get(k)]
            lines.append(f"Visitors' rows in {entry.get('table')} ({', '.join(counted)}): "
                         f"{fates.get(str(entry.get('fate')), entry.get('fate'))}"
                         + (f" ({entry['why']})" if entry.get("why") else ""))
    return lines


def update_label(update: dict[str, Any]) -> str:
    return f"{update.get('type')} {update.get('slug')} {update.get('from')} → {update.get('to')}"


_ACRONYMS = {"php": "PHP", "sapi": "SAPI"}


def label(key: str) -> str:
    text = " ".join(_ACRONYMS.get(word, word) for word in str(key).replace("_", " ").split(" "))
    return text[:1].upper() + text[1:]


def compact(value: Any) -> str:
    """A value on one line: scalars as they are, lists joined, mappings as `key: value`."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        text = str(value)
        return Code(text) if _looks_like_code(text) else text
    if isinstance(value, list):
        if all(not isinstance(item, (dict, list)) for item in value):
            return ", ".join(compact(item) for item in value) or "none"
        return json.dumps(value, default=str, separators=(", ", ": "))
    if isinstance(value, dict):
        return "; ".join(f"{key}: {compact(item) if not isinstance(item, (dict, list)) else json.dumps(item, default=str)}"
                         for key, item in value.items()) or "none"
    return str(value)


def _looks_like_code(text: str) -> bool:
    return (text.startswith(("/", "sha256:", "http://", "https://"))
            or (len(text) >= 32 and all(c in "0123456789abcdef" for c in text)))


def _approval(evidence: dict[str, Any], view: GateView) -> None:
    by, at = evidence.pop("approved_by", None), evidence.pop("approved_at", None)
    verified = evidence.pop("artifacts_verified", None)
    drift = evidence.pop("drift", None)
    digest = evidence.pop("digest", None)
    signature = evidence.pop("signature", None)
    signed = evidence.pop("signed", None)
    evidence.pop("release", None)
    if view.status == "passed":
        how = "signed" if signed else "unsigned"
        view.summary = (f"Approved by {by} ({how}), unchanged since approval, {plural(verified, 'artifact')} "
                        "verified, production as planned (no drift)")
    for name, value in (("Approved by", by), ("Approved at", at), ("Signature", signature),
                        ("Digest", Code(digest) if digest else None), ("Artifacts verified", verified)):
        if value is not None:
            view.rows.append((name, value if isinstance(value, Code) else str(value)))
    if drift:
        view.items += [f"drift: {compact(item)}" for item in drift]


def _backup(evidence: dict[str, Any], view: GateView) -> None:
    record = evidence.pop("backup", None) or {}
    taken = evidence.pop("taken", None)
    checks = evidence.pop("checks", None) or []
    for key in ("dir", "offsite", "existing"):
        evidence.pop(key, None)
    max_age = evidence.pop("max_age_seconds", None)
    if record.get("id"):
        how = "taken by this run" if taken else "an existing backup"
        if view.status == "passed":
            view.summary = f"{record['id']} ({how}): verified on the host and off-site, restorable"
        view.rows += [("Backup", Code(record["id"])), ("Created", str(record.get("created_at", "—"))),
                      ("Where", Code(record.get("path") or "—")), ("Off-site copy", Code(record.get("offsite") or "—"))]
    if max_age:
        view.rows.append(("Accepted age", f"up to {duration(max_age)}"))
    view.items += [f"✓ {check}" for check in checks]


def _apply(evidence: dict[str, Any], view: GateView) -> None:
    applied = evidence.pop("applied", None) or []
    if applied:
        rows = []
        for item in applied:
            database = item.get("database") or {}
            upgraded = (f"{database.get('from')} → {database.get('to')}" if database.get("upgraded")
                        else "unchanged" if database else "—")
            rows.append([str(item.get("type")), str(item.get("slug")), str(item.get("to")),
                         installed_with(item), upgraded])
        view.tables.append(Table("Installed and re-read", ["Type", "Component", "Version read back",
                                                           "Installed with", "Database"], rows))
        if view.status == "passed":
            view.summary = (f"{plural(len(applied), 'update')} installed from their own artifacts, each version "
                            "and file re-read from the site")


def installed_with(item: dict[str, Any]) -> str:
    """What installed one update, in the procedure's words: the bridge's method names WordPress's call
    (its `bulk_upgrade()` is the Dashboard's Update now, here given one component, never several)."""
    kind, method = str(item.get("type") or "component"), item.get("method")
    if method == "bulk_upgrade":
        return f"WordPress's {kind} upgrader, this {kind} alone"
    if method == "install":
        return f"WordPress's {kind} installer (the {kind} was not on the site)"
    if method == "core_upgrade":
        return "WordPress's core upgrader"
    return str(method or "—")


def _order(evidence: dict[str, Any], view: GateView) -> None:
    order = evidence.pop("order", None) or []
    one = evidence.pop("one_at_a_time", None)
    count = evidence.pop("applied", None)
    if view.status == "passed":
        view.summary = "Core first, then plugins one at a time in manifest order, then themes (parent before child)"
    if order:
        view.rows.append(("Order", " → ".join(order)))
    if one is not None:
        view.rows.append(("One at a time", compact(one)))
    if count is not None:
        view.rows.append(("Applied", str(count)))


def _completion(evidence: dict[str, Any], view: GateView) -> None:
    state = evidence.pop("state", None) or {}
    http = evidence.pop("http", None) or {}
    evidence.pop("inventory_after", None)
    if view.status == "passed":
        view.summary = ("Production holds exactly the release; no maintenance file, lock or upgrade leftover; "
                        "the site answers visitors and admins")
    if state:
        view.rows += [("Maintenance file", "present" if state.get("maintenance") else "none"),
                      ("Core update lock", "present" if state.get("core_updater_lock") else "none"),
                      ("Upgrade leftovers", compact(state.get("upgrade_leftovers") or []))]
    for page, result in http.items():
        view.rows.append((f"Fetch {page}", compact(result)))


def _caches(evidence: dict[str, Any], view: GateView) -> None:
    if view.status == "passed" and not view.summary:
        purged = evidence.get("purged") or evidence.get("layers") or evidence.get("caches")
        view.summary = (f"{plural(len(purged), 'cache layer')} purged, then a fresh fetch" if isinstance(purged, list)
                        else "Caches purged, then a fresh fetch")
    verify = evidence.pop("verify", None)
    if isinstance(verify, dict) and isinstance(verify.get("pages"), dict):
        rows = [[Code(page), compact(found.get("status")), ", ".join(found.get("shows") or []) or "—",
                 ", ".join(found.get("not_shown") or []) or "—", compact(found.get("assets"))]
                for page, found in verify["pages"].items() if isinstance(found, dict)]
        view.tables.append(Table("Fetched afresh through every layer", [
            "Page", "Status", "New versions seen", "Updated, no marker on the page", "Assets answering 200"], rows))
        for key, value in verify.items():
            if key not in ("pages", "assets_checked"):
                evidence[f"verify_{key}"] = value


def _monitor(evidence: dict[str, Any], view: GateView) -> None:
    if view.status == "passed" and not view.summary:
        view.summary = "The site stayed healthy through the monitoring window"
    window = evidence.pop("window", None)
    if isinstance(window, (int, float)):
        passes = evidence.pop("passes", None)
        view.rows.append(("Watched", f"{duration(window)}" + (f", {passes} pass{'' if passes == 1 else 'es'} of every check"
                                                              if isinstance(passes, int) else "")))
        evidence.pop("seconds", None)
    evidence.pop("baseline", None)
    found = evidence.pop("checks", None)
    if isinstance(found, dict):
        rows = []
        for name, result in found.items():
            if not isinstance(result, dict):
                continue
            steps = [f"{label(key)}: {compact(value)}" for key, value in result.items()
                     if key in ("login_page", "admin_init", "dashboard")]
            details = steps or [str(result.get("detail") or "")]
            pages = result.get("pages")
            if isinstance(pages, dict):
                details += [f"{page} {compact(page_found.get('status'))}" for page, page_found in pages.items()
                            if isinstance(page_found, dict)]
            rows.append([label(name), compact(result.get("status")), "; ".join(d for d in details if d)])
        view.tables.append(Table("Checks, last pass", ["Check", "Result", "What it saw"], rows))


_DESCRIBERS: dict[str, Callable[[dict[str, Any], GateView], None]] = {
    "approval": _approval, "backup": _backup, "apply": _apply, "order": _order, "completion": _completion,
    "caches": _caches, "monitor": _monitor,
}
