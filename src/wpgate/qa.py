"""The QA record of staging: checks run, issues found and resolved, notes left for later.

People write their own checks, issues and notes; `wpgate qa` writes its checks beside them (names that start
with `wpgate:`) and a `wpgate:` section that says when, on which staging inventory, and the digest of its
own entries. A re-run replaces only wpgate's entries and keeps the rest of the file as it was, comments too.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from wpgate.errors import BadInput, listing
from wpgate.release import QaLoader, load_yaml

CHECK_STATUSES = ("passed", "failed", "pending", "skipped")
ISSUE_STATUSES = ("resolved", "open", "wontfix", "pending")
NOTE_STATUSES = ("open", "closed")
MACHINE = "wpgate:"  # the start of every check `wpgate qa` writes

_CHECK_KEYS = ({"name", "status"}, {"required", "details", "by", "url", "evidence", "at"})
_ISSUE_KEYS = ({"id", "title", "status"}, {"resolution", "url", "by"})
_NOTE_KEYS = ({"text", "status"}, {"by"})
# The `wpgate:` section: when `wpgate qa` ran, the staging inventory it checked, the digest of its entries.
_SECTION_KEYS = ({"at", "staging", "checks"}, {"baseline", "evidence"})


def load(path: Path) -> dict[str, Any]:
    """Read a QA record and check its shape (exit 2 on a malformed one, every problem listed)."""
    data = load_yaml(path, "QA record", QaLoader)
    problems = shape_problems(data)
    if problems:
        raise BadInput(f"{path}: {listing(problems)}")
    record = {"checks": data.get("checks") or [], "issues": data.get("issues") or [],
              "notes": data.get("notes") or []}
    if data.get("wpgate") is not None:
        record["wpgate"] = data["wpgate"]
    return record


def is_machine(check: dict[str, Any]) -> bool:
    return str(check.get("name", "")).startswith(MACHINE)


def checks_digest(checks: list[dict[str, Any]]) -> str:
    """`sha256:…` over wpgate's own entries, as text (YAML may read `evidence: 200` back as a number)."""
    entries = [{key: value if isinstance(value, bool) else str(value) for key, value in check.items()}
               for check in checks if is_machine(check)]
    canonical = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def machine_summary(qa: dict[str, Any]) -> str | None:
    """Which checks `wpgate qa` made and when, for the person approving; None when it made none."""
    section = qa.get("wpgate")
    machine = [check for check in qa.get("checks", []) if is_machine(check)]
    if not section or not machine:
        return None
    people = len(qa.get("checks", [])) - len(machine)
    staging = section.get("staging") or {}
    baseline = section.get("baseline") or {}
    against = f" against {baseline.get('site')}" if baseline else ""
    return (f"{len(machine)} machine-made checks by `wpgate qa` on {staging.get('site')}{against} at "
            f"{section.get('at')} (staging inventory {str(staging.get('inventory'))[:19]}…), "
            f"{people} by people: " + "; ".join(f"{check['name']} {check.get('status')}" for check in machine))


def shape_problems(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["the QA record must be a mapping with checks, issues and notes"]
    problems = [f"{key}: unknown key" for key in data if key not in ("checks", "issues", "notes", "wpgate")]
    problems += _section_problems(data.get("wpgate"))
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


def _section_problems(section: Any) -> list[str]:
    if section is None:
        return []
    if not isinstance(section, dict):
        return ["wpgate: must be a mapping (written by `wpgate qa`)"]
    required, optional = _SECTION_KEYS
    problems = [f"wpgate.{key}: unknown key" for key in section if key not in required | optional]
    problems += [f"wpgate.{key}: required key is missing" for key in sorted(required - set(section))]
    for key, needed in (("staging", {"site", "url", "inventory"}), ("baseline", {"site", "url"})):
        value = section.get(key)
        if value is not None and (not isinstance(value, dict) or not needed <= set(value)):
            problems.append(f"wpgate.{key}: must be a mapping with {', '.join(sorted(needed))}")
    return problems


def refusals(qa: dict[str, Any]) -> list[str]:
    """Why this QA record cannot be approved: DESIGN.md's rules, every reason listed."""
    reasons = []
    machine = [check for check in qa.get("checks", []) if is_machine(check)]
    section = qa.get("wpgate")
    if machine and not section:
        reasons.append("the record holds wpgate's checks without the `wpgate:` section written with them: "
                       "run `wpgate qa` again")
    elif section and section.get("checks") != checks_digest(machine):
        reasons.append(f"wpgate's own checks were changed by hand since `wpgate qa` wrote them at "
                       f"{section.get('at')}: run `wpgate qa` again")
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


def write(path: Path, checks: list[dict[str, Any]], section: dict[str, Any]) -> None:
    """Put wpgate's `checks` and `section` into the record at `path` (made when missing): wpgate's earlier
    entries go, every other check, issue, note and comment stays as written. The file is replaced whole,
    so a failure leaves it as it was. Call `load` first: a malformed record is refused, not rewritten."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import YAMLError

    yaml = YAML()
    yaml.width = 200
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    document = None
    if path.exists():
        try:
            document = yaml.load(path.read_text(encoding="utf-8"))
        except (OSError, YAMLError) as error:  # changed since `load` read it
            raise BadInput(f"{path}: cannot rewrite the QA record: {str(error).splitlines()[0]}") from None
    if document is None:
        document = CommentedMap(checks=CommentedSeq(), issues=CommentedSeq(), notes=CommentedSeq())
    entries = document.get("checks")
    if entries is None:
        entries = document["checks"] = CommentedSeq()
    for index in reversed(range(len(entries))):
        if isinstance(entries[index], dict) and is_machine(entries[index]):
            del entries[index]
    entries.fa.set_block_style()
    entries.extend(CommentedMap(check) for check in checks)
    document["wpgate"] = CommentedMap(section)
    stream = io.StringIO()
    yaml.dump(document, stream)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    partial = None
    try:
        descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(stream.getvalue())
        os.chmod(partial, mode)
        os.replace(partial, path)
    except OSError as error:
        if partial is not None and os.path.exists(partial):
            os.unlink(partial)
        raise BadInput(f"{path}: cannot write the QA record: {error.strerror or error}") from None
