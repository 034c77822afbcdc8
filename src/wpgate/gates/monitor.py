"""Gate 6.6 (monitor): the site is watched from outside before the first change, after each single update
(a quick probe that names the update that broke it) and through the watch window once caches are purged.
`wpgate check SITE` runs the same checks on their own."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from wpgate import checks
from wpgate.checks import Watch
from wpgate.config import Settings
from wpgate.errors import GateRefused
from wpgate.gates import GateFailed, Plan
from wpgate.output import Output, console_say, say_marked
from wpgate.release import Update
from wpgate.session import SiteSession
from wpgate.words import plural

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

STEP, NAME = "6.6", "monitor"


def describe(deployment: "Deployment") -> Plan:
    """All `deploy --dry-run` runs of the gate: what its checks need, checked as the baseline before the first
    change will (the monitor account logs in and out, the browser is there), and what it would watch."""
    with Watch(deployment.session, deployment.settings, None) as watch:
        held = watch.preconditions()
    window = deployment.site.checks.window
    return Plan(f"dry run: would watch the site for {window:g}s: " + "; ".join(checks.describe(deployment.site)),
                {"preconditions": held})


def baseline(deployment: "Deployment") -> None:
    """Before the first change: the pages as they are, the error log's end, screenshots where the layout is
    checked. What is already wrong now is noted and never blamed on the release."""
    watch = Watch(deployment.session, deployment.settings, deployment.run.folder)
    deployment.monitor = watch
    started = time.monotonic()
    recorded = watch.baseline()
    recorded["known_problems"] = sorted(watch.known)
    recorded["seconds"] = round(time.monotonic() - started, 2)
    deployment.run.save_json("monitor-baseline.json", recorded)


def watch_again(deployment: "Deployment") -> None:
    """For `resume`: the process that took the baseline is gone. The problems it found before the first
    change stay known (monitor-baseline.json); the error log counts from now; the layout is not compared,
    its screenshots' state having gone with that process, and says so."""
    watch = Watch(deployment.session, deployment.settings, deployment.run.folder)
    saved = deployment.run.load_json("monitor-baseline.json") or {}
    watch.known = set(saved.get("known_problems") or [])
    watch.mark_log_position()
    deployment.monitor = watch


def probe(deployment: "Deployment", index: int, update: Update) -> dict[str, Any]:
    """The quick checks right after one update: pages, admin_init, new error-log lines, and the layout when
    it is checked. A problem stops the run here, naming this update."""
    watch: Watch | None = getattr(deployment, "monitor", None)
    if watch is None:
        return {}
    started = time.monotonic()
    results = watch.run(f"after-{index + 1}-{update.type}-{update.slug}", quick=True)
    seconds = round(time.monotonic() - started, 2)
    problems = Watch.problems(results)
    if problems:
        first = problems[0]
        raise GateFailed(f"{update.label} broke the site: {checks.headline(problems)}", {
            "update": index, "culprit": update.label, "check": first.check, "page": first.page,
            "problem": first.what, "problems": [problem.as_dict() for problem in problems],
            "probe": checks.summary(results), "detected_in_seconds": seconds})
    return {"seconds": seconds, **{result.check: result.status for result in results}}


def run(deployment: "Deployment") -> dict[str, Any]:
    """Gate 6.6: every check, again and again, until the watch window has passed."""
    watch: Watch | None = getattr(deployment, "monitor", None)
    if watch is None:
        raise GateFailed("monitor: no baseline was taken before the first change")
    window = deployment.site.checks.window
    interval = min(10.0, max(1.0, window / 6))
    started = time.monotonic()
    passes = 0
    labels = [update.label for update in deployment.release.updates]
    try:
        while True:
            passes += 1
            results = watch.run(f"monitor-{passes}")
            elapsed = time.monotonic() - started
            problems = Watch.problems(results)
            if problems:
                first = problems[0]
                raise GateFailed(
                    f"monitor: {elapsed:.0f}s into the {window:g}s watch window after the release's "
                    f"{plural(len(labels), 'update')}: {checks.headline(problems)}", {
                        "culprit": f"the release as a whole (last update: {labels[-1]})" if labels else None,
                        "check": first.check, "page": first.page, "problem": first.what,
                        "problems": [problem.as_dict() for problem in problems], "pass": passes,
                        "checks": checks.summary(results), "window": window})
            remaining = window - elapsed
            if remaining <= 0 and passes >= 2:  # the last pass starts once the window has passed
                break
            time.sleep(max(0.0, min(interval, remaining)))
    finally:
        watch.close()
    return {"window": window, "passes": passes, "seconds": round(time.monotonic() - started, 2),
            "baseline": "monitor-baseline.json", "checks": checks.summary(results)}


def summary(evidence: dict[str, Any]) -> str:
    statuses = ", ".join(f"{name} {found['status']}" for name, found in evidence.get("checks", {}).items())
    return f"{plural(evidence.get('passes'), 'pass', 'passes')} over {evidence.get('window'):g}s: {statuses}"


def check_site(settings: Settings, site_name: str, console: Output) -> dict[str, Any]:
    """`wpgate check SITE`: one pass of the checks, now. The error log counts from the check's start (so the
    fatal errors its own requests cause); the layout needs screenshots from before a change and is skipped."""
    site = settings.site(site_name)
    settings.require_secrets(site_name)

    started = time.monotonic()
    with SiteSession.open(site_name, site, console_say(console)) as session, Watch(session, settings, None) as watch:
        watch.bridge.require_wordpress()
        watch.mark_log_position()
        results = watch.run("check")
    problems = Watch.problems(results)
    report = {"site": site_name, "url": site.url, "status": "failing" if problems else "healthy",
              "seconds": round(time.monotonic() - started, 2), "checks": checks.summary(results),
              "problems": [problem.as_dict() for problem in problems]}
    for result in results:
        say_marked(console, result.status, f"{result.check}: {result.status}", result.detail)
        for problem in result.problems:
            console.print(f"    {problem.line()}", markup=False, soft_wrap=True)
    if problems:
        refusal = GateRefused(f"site {site_name} ({site.url}) fails its checks: {checks.headline(problems)}")
        refusal.report = report
        raise refusal
    return report
