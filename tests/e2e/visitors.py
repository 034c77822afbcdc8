"""Visitors during a deploy: several concurrent clients request pages and a static asset of a site at about
20 requests a second, and every answer is classified as a complete page of one release, WordPress's planned
maintenance 503, or unplanned. Used by the deploy tests and by bench/visitors.py.

"One release" is a state a deploy passes through: the updates are applied one at a time in manifest order,
so a page may show the first k components at their new version and the rest at their old one, nothing else.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx

from wpgate.testbed import fixtures

RELEASE, MAINTENANCE, UNPLANNED = "release", "maintenance", "unplanned"
_GENERATOR = re.compile(r'<meta name="generator" content="WordPress ([^"]+)"')
_MAINTENANCE_TEXT = "Briefly unavailable for scheduled maintenance"
_CRITICAL_TEXT = "critical error"


@dataclass(frozen=True)
class Component:
    """A component the pages show, with its version before and after the release."""

    type: str  # core, plugin or theme
    slug: str
    old: str
    new: str

    def found(self, text: str) -> list[str]:
        """The versions of this component the page shows."""
        if self.type == "core":
            return _GENERATOR.findall(text)
        marker = fixtures.plugin_marker if self.type == "plugin" else fixtures.theme_marker
        return [version for version in (self.old, self.new) if marker(self.slug, version) in text]


@dataclass(frozen=True)
class Target:
    """A URL path a visitor requests. A page must show every component of the release; an asset must hold
    exactly one of its `markers` (version -> text), at the version of its `component`."""

    path: str
    markers: dict[str, str] | None = None
    component: str | None = None  # the asset's component slug


@dataclass
class Answer:
    at: float  # seconds since the visitors started
    path: str
    status: int | None
    verdict: str
    detail: str = ""
    wall: float = 0.0  # time.time() when asked: to find the deploy's journal events around it
    asset: bool = False


@dataclass
class Tally:
    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> Counter:
        return Counter(answer.verdict for answer in self.answers)

    @property
    def unplanned(self) -> list[Answer]:
        return [answer for answer in self.answers if answer.verdict == UNPLANNED]

    def maintenance_seconds(self) -> float:
        """How long visitors saw the maintenance page: each run of maintenance answers to page requests (in
        the order they were asked) lasts from its first request to the next page request answered otherwise.
        Static assets are left out: the web server serves them without asking WordPress."""
        ordered = sorted((answer for answer in self.answers if not answer.asset), key=lambda answer: answer.at)
        total, began = 0.0, None
        for answer in ordered:
            if answer.verdict == MAINTENANCE and began is None:
                began = answer.at
            elif answer.verdict != MAINTENANCE and began is not None:
                total += answer.at - began
                began = None
        if began is not None:
            total += self.seconds - began
        return total

    def summary(self) -> str:
        counts = self.counts
        line = (f"{len(self.answers)} answers in {self.seconds:.1f}s: {counts[RELEASE]} release, "
                f"{counts[MAINTENANCE]} maintenance ({self.maintenance_seconds():.2f}s), {counts[UNPLANNED]} unplanned")
        for answer in self.unplanned[:5]:
            line += f"\n  {answer.at:7.2f}s {answer.path} {answer.status}: {answer.detail}"
        return line


class Visitors:
    """`clients` threads, each with its own connection, together about `rate` requests a second over the
    targets in turn. Use as a context manager around the deploy; `tally` holds every answer afterwards."""

    def __init__(self, base_url: str, components: list[Component], targets: list[Target], *,
                 clients: int = 4, rate: float = 20.0, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.components = components
        self.targets = targets
        self.clients = clients
        self.interval = clients / rate
        self.timeout = timeout
        self.tally = Tally()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._started = 0.0
        # The states a healthy deploy passes through, components in manifest order.
        self.states = [tuple(c.new if i < k else c.old for i, c in enumerate(components))
                       for k in range(len(components) + 1)]

    def maintenance_after(self, applied: int) -> list[Answer]:
        """The maintenance answers asked after a page had shown the release's first `applied` updates in place.
        Updates are applied in manifest order: when only the first `applied` of them may put the maintenance
        page up (core's, say), there are none."""
        reached = [answer.at for answer in self.tally.answers
                   if answer.verdict == RELEASE and not answer.asset
                   and self.states.index(tuple(answer.detail.split())) >= applied]
        if not reached:
            return []
        return [answer for answer in self.tally.answers if answer.verdict == MAINTENANCE and answer.at > min(reached)]

    def __enter__(self) -> "Visitors":
        self._started = time.monotonic()
        for number in range(self.clients):
            thread = threading.Thread(target=self._client, args=(number,), daemon=True, name=f"visitor-{number}")
            self._threads.append(thread)
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        self.tally.seconds = time.monotonic() - self._started

    def _client(self, number: int) -> None:
        turn = number
        with httpx.Client(timeout=self.timeout, follow_redirects=False) as http:
            while not self._stop.is_set():
                began = time.monotonic()
                target = self.targets[turn % len(self.targets)]
                turn += 1
                answer = self.visit(http, target, began - self._started)
                with self._lock:
                    self.tally.answers.append(answer)
                self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def visit(self, http: httpx.Client, target: Target, at: float) -> Answer:
        wall = time.time()
        try:
            response = http.get(self.base_url + target.path)
        except httpx.HTTPError as error:
            return Answer(at, target.path, None, UNPLANNED, f"{type(error).__name__}: {error}", wall)
        verdict, detail = self.classify(target, response)
        return Answer(at, target.path, response.status_code, verdict, detail, wall, target.markers is not None)

    def classify(self, target: Target, response: httpx.Response) -> tuple[str, str]:
        text = response.text
        if response.status_code == 503:
            if "retry-after" in response.headers and _MAINTENANCE_TEXT in text:
                return MAINTENANCE, ""
            return UNPLANNED, f"503 without WordPress's maintenance page: {text[:200]!r}"
        if response.status_code != 200:
            return UNPLANNED, f"status {response.status_code}: {_excerpt(text)}"
        if target.markers is not None:
            found = [version for version, marker in target.markers.items() if marker in text]
            if len(found) != 1:
                return UNPLANNED, f"the asset holds versions {found}, not one of {list(target.markers)}"
            return RELEASE, found[0]
        if _CRITICAL_TEXT in text:
            return UNPLANNED, f"WordPress's critical-error page: {_excerpt(text)}"
        if not text.rstrip().endswith("</html>"):
            return UNPLANNED, f"the page is cut off: …{text[-200:]!r}"
        state = []
        for component in self.components:
            versions = component.found(text)
            if len(versions) != 1:
                return UNPLANNED, f"{component.type} {component.slug}: the page shows versions {versions}"
            state.append(versions[0])
        if tuple(state) not in self.states:
            return UNPLANNED, f"a mix no release has: {dict(zip((c.slug for c in self.components), state))}"
        return RELEASE, " ".join(state)


def journal_near(journal: Path, answers: list[Answer], seconds: float = 1.5) -> list[str]:
    """The deploy's journal events (stamped to the second) around each of these answers: what the deploy
    was doing when a visitor got an unplanned answer."""
    events = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    lines = []
    for answer in answers[:5]:
        near = [event["event"] for event in events
                if abs(datetime.strptime(event["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
                       + 0.5 - answer.wall) <= seconds]
        lines.append(f"{answer.path} at {answer.at:.2f}s: {', '.join(near)}")
    return lines


def _excerpt(text: str) -> str:
    for pattern in (r"PHP (?:Fatal|Parse) error:[^\n<]*", r"<title>[^<]*</title>", r"<p>[^<]{0,200}"):
        match = re.search(pattern, text)
        if match:
            return match.group(0)
    return repr(text[:200])
