"""The monitor's checks: a site seen from outside, as a visitor and an admin see it, and through its error log.

Each kind of check is a small class in a module of its own (pages, admin, error_log, layout) and one line
in `REGISTRY`; only the configured ones run. A `Watch` runs them against one site: `baseline()` before the
first change records what the site looks like then (its known problems, the log's end, screenshots), and
each later `run()` reports what is new since.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from wpgate import web
from wpgate.config import Settings, SiteConfig
from wpgate.session import SiteSession

# A site in WordPress's planned maintenance (the .maintenance file of an update) is given this long to
# come back before it counts as a failure.
MAINTENANCE_GRACE = 10.0
# How long after its last request the monitor reads the error log.
SETTLE = 0.3


@dataclass
class Problem:
    """One thing wrong: which check saw it, on which page, what it is, and the evidence."""

    check: str
    what: str
    page: str | None = None
    kind: str = ""          # what is compared with the baseline: the same kind and subject were known before
    subject: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return "|".join((self.check, self.page or "", self.kind, self.subject))

    def line(self) -> str:
        where = f"page {self.page}" if self.page else self.check.replace("_", " ")
        return f"{where}: {self.what} ({self.check} check)"

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "page": self.page, "problem": self.what, **self.evidence}


@dataclass
class Result:
    """What one check found in one pass."""

    check: str
    status: str  # passed | failed | skipped
    detail: str = ""
    problems: list[Problem] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"status": self.status, "detail": self.detail, **self.evidence}
        if self.problems:
            document["problems"] = [problem.as_dict() for problem in self.problems]
        return document


class Check:
    """One kind of check: a name, whether the site's config turns it on, a baseline and a pass."""

    name = ""
    unconfigured = ""  # why it does not run when `configured()` is false

    @classmethod
    def configured(cls, site: SiteConfig) -> bool:
        return True

    def describe(self, site: SiteConfig) -> str:
        return self.name

    def precondition(self, watch: "Watch") -> dict[str, Any] | None:
        """What the check needs to run at all, read without changing the site ({"check", "status", "detail"},
        or None when it needs nothing): all `deploy --dry-run` runs of it. Raises what its baseline would."""
        return None

    def baseline(self, watch: "Watch") -> dict[str, Any]:
        """What the site is like before the first change; kept in `watch.state[self.name]`."""
        return {}

    def run(self, watch: "Watch", label: str, quick: bool = False) -> Result:
        """One pass; `label` names it (screenshots are kept under it), `quick` is the per-update probe."""
        raise NotImplementedError


def registry() -> list[type[Check]]:
    """Every kind of check, in the order a pass runs them: the log last, so it sees what the others caused."""
    from wpgate.checks import admin, error_log, layout, pages

    return [pages.PagesCheck, admin.AdminCheck, layout.LayoutCheck, error_log.ErrorLogCheck]


def describe(site: SiteConfig) -> list[str]:
    """What the checks look at on this site, one line per kind: all that a dry run says."""
    return [kind().describe(site) if kind.configured(site) else f"{kind.name}: not checked ({kind.unconfigured})"
            for kind in registry()]


class Watch:
    """One site, watched from here: an HTTP client, the site's transport for its log, and what each
    check recorded before the first change. `folder` is where screenshots go (None: not kept)."""

    def __init__(self, session: SiteSession, settings: Settings, folder: Path | None) -> None:
        self.session = session
        self.site_name = session.name
        self.site = session.site
        self.config = session.site.checks
        self.transport = session.transport
        self.bridge = session.bridge
        self.settings = settings
        self.folder = folder
        self.say = session.say
        self.checks = [kind() for kind in registry() if kind.configured(session.site)]
        self.state: dict[str, dict[str, Any]] = {}
        self.known: set[str] = set()  # problems the site had before the first change
        self.last_request = 0.0
        self.client = web.client(timeout=httpx.Timeout(20.0), follow_redirects=True,
                                 headers={"User-Agent": "wpgate-monitor"})

    def url(self, path: str) -> str:
        return self.site.url + path

    def get(self, path_or_url: str, **kwargs: Any) -> httpx.Response:
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        try:
            return self.client.get(url, **kwargs)
        finally:
            self.last_request = time.monotonic()

    def settle(self) -> None:
        """Give the web server a moment to finish what it does after a response (a shutdown hook that
        dies logs its fatal error then)."""
        wait = SETTLE - (time.monotonic() - self.last_request)
        if wait > 0:
            time.sleep(wait)

    def mark_log_position(self) -> None:
        """Without a baseline (`wpgate check`): the error log counts from here on."""
        for check in self.checks:
            if check.name == "error_log" and check.name not in self.state:
                self.state[check.name] = check.baseline(self)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> "Watch":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def preconditions(self) -> list[dict[str, Any]]:
        """What the configured checks need to run, read without changing the site (a dry run's part)."""
        return [found for check in self.checks if (found := check.precondition(self)) is not None]

    def baseline(self) -> dict[str, Any]:
        """Record the site before the first change; the problems it has now are known, not new."""
        for check in self.checks:
            self.state[check.name] = check.baseline(self)
        return {name: {k: v for k, v in state.items() if not k.startswith("_")} for name, state in self.state.items()}

    def run(self, label: str, *, quick: bool = False) -> list[Result]:
        """One pass of the checks (only the quick ones for a per-update probe). WordPress's planned
        maintenance page is waited out for MAINTENANCE_GRACE seconds before it counts."""
        deadline = time.monotonic() + MAINTENANCE_GRACE
        while True:
            results = [check.run(self, label, quick) for check in self.checks]
            in_maintenance = any(p.kind == "maintenance" for r in results for p in r.problems)
            if not in_maintenance or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        for result in results:
            known = [problem for problem in result.problems if problem.key in self.known]
            if known:
                result.problems = [problem for problem in result.problems if problem.key not in self.known]
                result.evidence["known_before"] = [problem.line() for problem in known]
            if result.status == "failed" and not result.problems:
                result.status = "passed"
        return results

    def remember(self, problems: list[Problem]) -> None:
        """Problems the site has before the first change: reported, never blamed on the release."""
        self.known |= {problem.key for problem in problems}
        for problem in problems:
            self.say(f"  note: before any change, {problem.line()}")

    @staticmethod
    def problems(results: list[Result]) -> list[Problem]:
        return [problem for result in results for problem in result.problems]


def summary(results: list[Result]) -> dict[str, Any]:
    return {result.check: result.as_dict() for result in results}


def headline(problems: list[Problem]) -> str:
    """The first problem as the headline, and how many more there are."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0].line() + more
