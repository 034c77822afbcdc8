"""`wpgate qa`: staging checked by gate 6.6's own checks, compared with production, and the QA record written.

The checks are those gate 6.6 runs on production (`checks.Watch`), with the `--baseline` site's `checks`
config (else staging's own): the pages, wp-admin with the monitor account, and the PHP error log looked back on
from staging's updates. With `--baseline` each page's screenshot is compared with that site's (the layout
check, production's screenshots standing for the "before"), the release is the two inventories' difference
(`planning.compare`), and each of its components must be active on staging as it is on production.

The results become `wpgate: …` entries of the QA record, beside people's own, with the staging inventory's
digest so that `approve` can tell when staging changed since. Screenshots, diff images and the whole result
(`qa.json`) are kept in STATE_DIR/qa/STAGING-ID/.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wpgate import browser, checks, inventory, planning, qa as qa_record, redact
from wpgate.artifacts import component_location
from wpgate.bridge import Bridge
from wpgate.checks import Problem, Result, Watch
from wpgate.checks.error_log import ErrorLogCheck
from wpgate.checks.layout import BrowserFailed, LayoutCheck, capture, page_names
from wpgate.command import Command
from wpgate.config import ChecksConfig, Settings, SiteConfig
from wpgate.errors import BadInput, ConfigError, GateRefused, WpgateError
from wpgate.inventory import Inventory
from wpgate.output import Output, say_marked
from wpgate.run import new_run_id, utc_now
from wpgate.transports import Transport, for_site
from wpgate.words import plural
from wpgate.session import SiteSession

# The newest file time under the paths given, as seconds since the epoch (empty when there is no file).
_NEWEST = "find \"$@\" -type f -printf '%T@\\n' 2>/dev/null | sort -n | tail -n 1"


def run(settings: Settings, staging_name: str, baseline_name: str | None, output: Path,
        html_path: Path | None, console: Output) -> dict[str, Any]:
    """Check staging, write the QA record (and the page for a reviewer); the result as a dict. A failed check
    raises GateRefused (exit 3) once the record is written; bad input (exit 2) leaves every file as it was."""
    staging = settings.site(staging_name)
    baseline = settings.site(baseline_name) if baseline_name else None
    if baseline_name == staging_name:
        raise BadInput(f"--baseline names staging ({staging_name}) itself: name the site staging is compared with")
    config = (baseline or staging).checks
    _require_admin_password(settings, baseline_name or staging_name, config)
    _require_writable(output, "the QA record")
    if output.exists():
        qa_record.load(output)  # a malformed record is refused now, before anything runs, and left as it is
    if html_path is not None:
        _require_writable(html_path, "the page (--html)")

    def say(text: str) -> None:
        console.print(text, markup=False, soft_wrap=True)

    at = utc_now()
    # Where PHP logs is a fact of each site: staging's own `checks.error_log`, whichever site's checks run.
    checked = staging.model_copy(update={"checks": config.model_copy(update={"error_log": staging.checks.error_log})})
    with ExitStack() as stack:
        stack.enter_context(browser.kept_open())  # one Chromium for both sites' screenshots
        transport = stack.enter_context(for_site(staging))
        bridge = Bridge(staging_name, staging, transport)
        staging_inventory = _read(bridge, "staging", staging_name, staging)
        release: list[tuple[str, str, str, str]] = []
        not_replicated: list[str] = []
        baseline_inventory = None
        if baseline is not None and baseline_name is not None:
            baseline_transport = stack.enter_context(for_site(baseline))
            baseline_bridge = Bridge(baseline_name, baseline, baseline_transport)
            baseline_inventory = _read(baseline_bridge, "baseline", baseline_name, baseline)
            difference = planning.compare(staging_inventory, baseline_inventory)
            release, not_replicated = difference.updates, difference.not_replicated
        folder = _evidence_folder(settings, staging_name)  # once both sites could be read
        say(f"QA of {staging_name} ({staging.url}) with {baseline_name or staging_name}'s checks"
            + (f", compared with {baseline_name} ({baseline.url})" if baseline else "") + ":")
        for kind, slug, from_version, to_version in release:
            say(f"  release: {kind} {slug} {from_version} → {to_version}")
        for line in not_replicated:
            say(f"  not replicated: {line}")
        since = updated_at(transport, staging_inventory, [(kind, slug) for kind, slug, _, _ in release])
        watch = stack.enter_context(Watch(SiteSession(staging_name, checked, transport, bridge, say), settings, folder))
        known: set[str] = set()
        if baseline is not None and baseline_name is not None:
            with Watch(SiteSession(baseline_name, baseline, baseline_transport, baseline_bridge, say), settings,
                       None) as other:
                known = ErrorLogCheck().messages(other)
        for check in watch.checks:
            if isinstance(check, ErrorLogCheck):
                watch.state[check.name] = check.since_updates(watch, since, known)
            elif isinstance(check, LayoutCheck) and baseline is not None:
                watch.state[check.name] = {"before": _screenshots(baseline, config, folder, baseline_name)}
        results = watch.run("staging")
    if baseline_inventory is not None:
        results.append(components(release, staging_inventory, baseline_inventory))
    entries, skipped = record_entries(results, config, baseline_name, at)
    if baseline is not None and not LayoutCheck.configured(checked):  # the reviewer expects screenshots: say why not
        skipped.setdefault(LayoutCheck.name, f"{baseline_name}'s checks set no visual_threshold: "
                                             f"{LayoutCheck.unconfigured}")
    document = {
        "staging": staging_name, "url": staging.url, "baseline": baseline_name, "at": at,
        "status": "failed" if any(entry["status"] == "failed" for entry in entries) else "passed",
        "inventory": staging_inventory.digest(), "since_updates": _iso(since),
        "release": [{"type": kind, "slug": slug, "from": from_version, "to": to_version}
                    for kind, slug, from_version, to_version in release],
        "not_replicated": not_replicated, "checks": entries, "skipped": skipped,
        "results": checks.summary(results), "record": str(output), "evidence": str(folder),
    }
    section: dict[str, Any] = {"at": at, "staging": {"site": staging_name, "url": staging.url,
                                                      "inventory": document["inventory"]}}
    if baseline is not None:
        section["baseline"] = {"site": baseline_name, "url": baseline.url}
    section.update(checks=qa_record.checks_digest(entries), evidence=str(folder))
    (folder / "qa.json").write_text(_json(document))
    qa_record.write(output, entries, section)
    if html_path is not None:
        from wpgate.report import qa_page

        qa_page.write(document, html_path)
    _show(document, console)
    failed = [entry for entry in entries if entry["status"] == "failed"]
    if failed:
        refusal = GateRefused(f"staging {staging_name} fails {len(failed)} of {plural(len(entries), 'QA check')} "
                              f"({failed[0]['name']}: {failed[0]['evidence']}); the QA record is written to {output}")
        refusal.report = document
        raise refusal
    return document


def _require_admin_password(settings: Settings, owner: str, config: ChecksConfig) -> None:
    if config.admin and not os.environ.get(config.admin.password_env):
        raise ConfigError(str(settings.path), [f"sites.{owner}.checks.admin.password_env: environment variable "
                                               f"{config.admin.password_env} is not set"])


def _require_writable(path: Path, what: str) -> None:
    """Refused before anything runs: a folder that is not there or not writable, a path that is a folder."""
    folder = path.parent
    if path.is_dir():
        raise BadInput(f"{path}: is a folder; name a file for {what}")
    if not folder.is_dir():
        raise BadInput(f"{path}: the folder {folder} does not exist; create it or name another place for {what}")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise BadInput(f"{path}: not writable; name another place for {what}")


def _evidence_folder(settings: Settings, staging_name: str) -> Path:
    folder = settings.state_dir / "qa" / f"{staging_name}-{new_run_id()}"
    try:
        folder.mkdir(parents=True)
    except OSError as error:
        raise BadInput(f"{folder}: cannot create the folder for QA evidence: {error.strerror} "
                       "(check state_dir in the config)") from None
    return folder


def _read(bridge: Bridge, role: str, name: str, site: SiteConfig) -> Inventory:
    """The site's inventory; a site that cannot be read is bad input, said in one line."""
    try:
        return inventory.read(bridge)
    except WpgateError as error:
        first = (str(error).strip().splitlines() or ["no answer"])[0]
        raise BadInput(f"{role} site {name} ({site.path}) cannot be read: {first}") from None


def updated_at(transport: Transport, found: Inventory, release: list[tuple[str, str]]) -> float:
    """When staging's updates happened, as its files tell: the first-updated of the release's components
    (each one's newest file). Without a release (no baseline, or nothing differs), the newest change to any
    component's files: the last update made there."""
    def newest(paths: list[str]) -> float:
        result = transport.check(Command.of("sh", "-c", _NEWEST, "sh", *paths), timeout=120)
        text = result.text().strip()
        return float(text) if text else 0.0

    def paths(kind: str, slug: str) -> list[str]:
        base, entries = component_location(found, kind, slug)
        return [f"{base}/{entry}" for entry in entries]

    if release:
        return min(newest(paths(kind, slug)) for kind, slug in release)
    everything = paths("core", "wordpress")
    everything += [path for slug, plugin in found.plugins.items() if "/" in plugin["file"]
                   for path in paths("plugin", slug)]
    everything += [path for slug in found.themes for path in paths("theme", slug)]
    return newest(everything)


def _screenshots(baseline: SiteConfig, config: ChecksConfig, folder: Path, name: str | None) -> dict[str, str]:
    """The baseline site's pages, captured as the layout check captures staging's: they stand for "before"."""
    urls = {shot: baseline.url + path for path, shot in page_names(config.pages).items()}
    try:
        shots = capture(urls, config.visual_mask, folder / "screenshots" / "production")
    except BrowserFailed as error:
        raise BadInput(f"screenshots of the baseline site {name}: {error}") from None
    return {shot: str(path) for shot, path in shots.items()}


def components(release: list[tuple[str, str, str, str]], staging: Inventory, production: Inventory) -> Result:
    """The release's components are active on staging as they are on production: an update QA never ran
    (a plugin left inactive, another theme active) was not tested."""
    problems: list[Problem] = []
    states: dict[str, str] = {}

    def problem(what: str, subject: str) -> None:
        problems.append(Problem("components", what, None, "inactive", subject))

    if staging.data.get("load_error"):
        problem(f"WordPress fails to load with its plugins and theme: {staging.data['load_error']}", "load")
    behind = staging.database_behind()
    if behind:
        problem(f"core: {behind} (the database update has not run on staging)", "core")
    active_theme = {site: next((theme for theme in found.themes.values() if theme["active"]), {})
                    for site, found in (("staging", staging), ("production", production))}
    for kind, slug, from_version, to_version in release:
        label = f"{kind} {slug} {from_version} → {to_version}"
        if kind == "plugin":
            ours, theirs = staging.plugins[slug], production.plugins[slug]
            for key, state in (("active", "active"), ("network_active", "network active")):
                if theirs.get(key) and not ours.get(key):
                    problem(f"{label} is {state} on production but not on staging: QA did not run its new code",
                            slug)
            states[label] = "active" if ours["active"] else "inactive on both sites"
        elif kind == "theme":
            used = active_theme["production"]
            if slug in (used.get("slug"), used.get("parent")) and active_theme["staging"].get("slug") != used["slug"]:
                problem(f"{label}: production shows theme {used['slug']}, staging shows "
                        f"{active_theme['staging'].get('slug') or 'none'}: QA did not see it as visitors will", slug)
            states[label] = "in use" if slug in (used.get("slug"), used.get("parent")) else "not in use on production"
        else:
            states[label] = "running"
    detail = "; ".join(f"{label} {state}" for label, state in states.items()) or "no component differs"
    return Result("components", "failed" if problems else "passed", detail, problems, {"components": states})


# The record's entries: a stable name for each thing checked, its status and a short evidence text.
def record_entries(results: list[Result], config: ChecksConfig, baseline: str | None,
                   at: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    entries: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}

    def entry(name: str, problems: list[Problem], evidence: str) -> None:
        text = "; ".join(problem.what for problem in problems) if problems else evidence
        entries.append({"name": f"{qa_record.MACHINE} {name}", "required": True,
                        "status": "failed" if problems else "passed", "evidence": text, "at": at})

    for result in results:
        if result.status == "skipped":
            skipped[result.check] = ("no --baseline to compare screenshots with" if result.check == "layout"
                                     and baseline is None else result.detail)
            continue
        if result.check == "pages":
            for path in config.all_pages:
                found = result.evidence.get("pages", {}).get(path, {})
                texts, assets = len(config.content.get(path, [])), found.get("assets", 0)
                entry(f"page {path} answers", [p for p in result.problems if p.page == path],
                      f"{found.get('status')}, a whole page of {found.get('bytes')} bytes without error text"
                      + (f", {plural(texts, 'expected text')} present" if texts else "")
                      + f", {plural(assets, 'same-site asset')} answer{'s' if assets == 1 else ''} 200")
        elif result.check == "admin":
            evidence = result.evidence
            dashboard = evidence.get("dashboard", "")
            account = f" as {config.admin.user}" if config.admin and dashboard == "ok" else ""
            entry("wp-admin works", result.problems, f"login page {evidence.get('login_page')}, admin_init hooks "
                                                     f"{evidence.get('admin_init')}, dashboard {dashboard}{account}")
        elif result.check == "error_log":
            entry("no new PHP error in the log", result.problems, result.detail)
        elif result.check == "layout":
            threshold = result.evidence.get("threshold", config.visual_threshold or 0.0)
            for path, shot in result.evidence.get("pages", {}).items():
                entry(f"page {path} looks as on {baseline}", [p for p in result.problems if p.page == path],
                      f"{shot['changed']:.2%} of pixels differ (threshold {threshold:.2%}); diff image {shot['diff']}")
            if not result.evidence.get("pages"):
                entry(f"pages look as on {baseline}", result.problems, result.detail)
        elif result.check == "components":
            entry("release components active as planned", result.problems, result.detail)
    return entries, skipped


def _show(document: dict[str, Any], console: Output) -> None:
    for entry in document["checks"]:
        say_marked(console, "passed" if entry["status"] == "passed" else "failed", f"{entry['name']}: {entry['evidence']}")
    for check, reason in document["skipped"].items():
        say_marked(console, "skipped", f"{check}: not checked ({reason})")
    failed = sum(1 for entry in document["checks"] if entry["status"] == "failed")
    console.print(f"QA record written to {document['record']}: {plural(len(document['checks']), 'check')} by wpgate"
                  f" ({failed} failed), staging inventory {document['inventory'][:19]}…; evidence in "
                  f"{document['evidence']}", markup=False, soft_wrap=True)


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _json(document: dict[str, Any]) -> str:
    return json.dumps(redact.value(document), indent=2, default=str)
