"""The error-log check: new PHP fatal and parse errors in the site's log since the watch began.

The log is found once, before the first change, by the bridge (WP_DEBUG_LOG, else PHP's error_log),
unless `checks.error_log` names it. It is read through the site's transport from the offset recorded
then, so only lines written since count; a log rotated or truncated meanwhile is read from its start.

`wpgate qa` looks back instead (`since_updates`): the lines PHP stamped since staging's updates, where a
new warning or deprecation counts too; a message the log held before the updates, or that the baseline
site's log holds, is the site's own and not new.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wpgate.checks import Check, Problem, Result
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import WpgateError
from wpgate.words import plural

if TYPE_CHECKING:
    from wpgate.checks import Watch

FATAL = re.compile(r"PHP (?:Fatal error|Parse error|Compile error|Core error|Recoverable fatal error)\b|"
                   r"\bPHP message: PHP (?:Fatal|Parse) error\b")
WARNING = re.compile(r"\bPHP (?:Warning|Deprecated):")
# The time stamp PHP writes before each line of its log (error_log, WP_DEBUG_LOG): [26-Nov-2026 10:00:00 UTC].
_STAMP = re.compile(r"\[(\d{2}-[A-Za-z]{3}-\d{4} \d{2}:\d{2}:\d{2}) ([^\]]{1,64})\]")
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
# More than this many new bytes in one read is a log being flooded: the rest is read on the next pass.
READ_LIMIT = 4 * 1024 * 1024
# The command that reads from OFFSET: "<size> <inode>" on the first line, then the bytes from there.
_READ = ('if [ ! -e "$1" ]; then echo missing; elif [ ! -r "$1" ]; then echo unreadable; '
         'else stat -L -c "%s %i" -- "$1" && tail -c +"$2" -- "$1" | head -c "$3"; fi')


class Unreadable(Exception):
    """The log exists, but the account wpgate reaches the site with may not read it."""


def fatal_lines(text: str) -> list[str]:
    """The log lines that report a PHP fatal or parse error."""
    return [line.strip() for line in text.splitlines() if FATAL.search(line)]


def level(line: str) -> str | None:
    """`fatal`, `warning` (a warning or a deprecation) or None for any other line."""
    if FATAL.search(line):
        return "fatal"
    return "warning" if WARNING.search(line) else None


def stamped_at(line: str) -> float | None:
    """When PHP logged this line (seconds since the epoch), from its time stamp; None without one."""
    match = _STAMP.match(line)
    if not match:
        return None
    day, month, rest = match[1].split("-", 2)
    try:
        moment = datetime.strptime(f"{day}-{_MONTHS[month.title()]:02d}-{rest}", "%d-%m-%Y %H:%M:%S")
        zone = match[2].strip()
        return moment.replace(tzinfo=timezone.utc if zone in ("UTC", "GMT") else ZoneInfo(zone)).timestamp()
    except (KeyError, ValueError, ZoneInfoNotFoundError):
        return None


def split_at(text: str, moment: float) -> tuple[list[str], list[str]]:
    """The log's lines logged before `moment` and those logged at or after it (to the second). A line without
    a stamp (a stack trace's) goes with the line above it; lines before any stamp count as after (unknown)."""
    before: list[str] = []
    after: list[str] = []
    at: float | None = None
    for line in text.splitlines():
        at = stamped_at(line) or at
        (before if at is not None and at < int(moment) else after).append(line.strip())
    return before, after


def message(line: str, root: str) -> str:
    """A log line as the message it reports, whichever site logged it and when: no time stamp, the site's
    root folder written ABSPATH."""
    return _short(line).replace(root.rstrip("/") + "/", "ABSPATH/")


class ErrorLogCheck(Check):
    name = "error_log"

    def describe(self, site: SiteConfig) -> str:
        where = site.checks.error_log or "the site's WP_DEBUG_LOG, else PHP's error_log"
        return f"error log ({where}): no new PHP fatal or parse error"

    def baseline(self, watch: "Watch") -> dict[str, Any]:
        path, source = watch.config.error_log, "checks.error_log"
        facts: dict[str, Any] = {}
        if path is None:
            try:
                # Without plugins and theme: the log's place is known even while one of them is broken.
                facts = watch.bridge.call("log_facts", load_extensions=False, timeout=120) or {}
            except WpgateError as error:
                facts = {"error": str(error)}
            path, source = facts.get("path"), facts.get("source")
        state: dict[str, Any] = {"path": path, "source": source, "offset": 0, "inode": None}
        if path:
            try:
                size, inode, _ = self._read(watch, path, None)
                state.update(offset=size or 0, inode=inode)
            except Unreadable:
                state.update(path=None, reason=f"{path} exists but the account wpgate uses may not read it: "
                                               "give it read access, or name a log it can read in checks.error_log")
        elif "error" in facts:
            state["reason"] = f"the bridge could not tell where PHP logs: {facts['error']}"
        else:
            state["reason"] = "the site logs PHP errors nowhere wpgate can read (set WP_DEBUG_LOG, or checks.error_log)"
        return state

    def since_updates(self, watch: "Watch", since: float, known: set[str]) -> dict[str, Any]:
        """For `wpgate qa`: the log looked back on from the moment of staging's updates (its last READ_LIMIT
        bytes), new warnings and deprecations counted as `checks.php_warnings` says; `known` are messages
        (see `message`) that are not new, such as the baseline site's."""
        state = self.baseline(watch)
        if state.get("path"):
            state.update(offset=max(0, int(state["offset"]) - READ_LIMIT), inode=None)
        state.update(since=since, since_updates=since, known=sorted(known), warnings=watch.config.php_warnings)
        return state

    def messages(self, watch: "Watch") -> set[str]:
        """Every fatal, warning and deprecation message in the log's last READ_LIMIT bytes (see `message`):
        what a baseline site logs on its own."""
        state = self.baseline(watch)
        if not state.get("path"):
            return set()
        offset = max(0, int(state["offset"]) - READ_LIMIT)
        try:
            size, _, text = self._read(watch, state["path"], {"offset": offset, "inode": None})
        except Unreadable:
            return set()
        return {message(line, watch.site.path) for line in text.splitlines() if level(line)} if size else set()

    def run(self, watch: "Watch", label: str, quick: bool = False) -> Result:
        state = watch.state.get(self.name)
        if state is None:  # no baseline (`wpgate check`): only what this check's own requests caused
            state = watch.state[self.name] = self.baseline(watch)
        path = state.get("path")
        if not path:
            return Result(self.name, "skipped", state.get("reason", "no error log"))
        watch.settle()
        try:
            size, inode, text = self._read(watch, path, state)
        except Unreadable:
            return Result(self.name, "skipped", f"{path} can no longer be read by the account wpgate uses")
        evidence: dict[str, Any] = {"log": path, "source": state.get("source"), "offset": state["offset"]}
        if size is None:
            return Result(self.name, "passed", f"{path} does not exist (nothing logged)", [], evidence)
        rotated = state["inode"] is not None and (inode != state["inode"] or size < state["offset"])
        if rotated:
            evidence["rotated"] = True
        consumed = text.rfind("\n") + 1  # whole lines only: a line being written is read next time
        new = text[:consumed]
        state.update(offset=(0 if rotated else state["offset"]) + len(new.encode("utf-8", "surrogateescape")),
                     inode=inode)
        if "since" in state:
            return self._since_updates(watch, state, new, evidence)
        lines = fatal_lines(new)
        evidence["new_fatal_lines"] = lines[:20]
        problems = self._problems(path, lines, "fatal", "new PHP error")
        return Result(self.name, "failed" if problems else "passed",
                      f"{plural(len(lines), 'new fatal line')} in {path}", problems, evidence)

    def _problems(self, path: str, lines: list[str], kind: str, what: str) -> list[Problem]:
        """One problem per distinct message (the same error from many requests is one), the first five."""
        distinct = list(dict.fromkeys(_short(line) for line in lines))
        return [Problem(self.name, f"{what} in {path}: {text}", None, kind, text,
                        {"log": path, "log_line": next(line for line in lines if _short(line) == text),
                         "times": sum(1 for line in lines if _short(line) == text)})
                for text in distinct[:5]]

    def _since_updates(self, watch: "Watch", state: dict[str, Any], text: str,
                       evidence: dict[str, Any]) -> Result:
        path = state["path"]
        before, after = split_at(text, state["since"])
        known = set(state.get("known", [])) | {message(line, watch.site.path) for line in before if level(line)}
        state["known"] = sorted(known)
        state["since"] = 0  # what the next pass reads was logged after the updates
        found = [(level(line), line) for line in after if level(line)]
        new = [(kind, line) for kind, line in found if message(line, watch.site.path) not in known]
        fatal = [line for kind, line in new if kind == "fatal"]
        warnings = [line for kind, line in new if kind == "warning"]
        evidence.update(new_fatal_lines=fatal[:20], new_warning_lines=warnings[:20],
                        known_before=len(found) - len(new), php_warnings=state["warnings"])
        problems = self._problems(path, fatal, "fatal", "new PHP error")
        if state["warnings"] == "fail":
            problems += self._problems(path, warnings, "warning", "new PHP warning")
        moment = datetime.fromtimestamp(state["since_updates"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        detail = (f"{plural(len(fatal), 'new fatal error line')}, {plural(len(warnings), 'new warning line')} "
                  f"(warnings and deprecations) in {path} since staging's updates ({moment})")
        if evidence["known_before"]:
            detail += (f"; {plural(evidence['known_before'], 'line')} repeat what the log held before or the "
                       "baseline site logs")
        if warnings and state["warnings"] == "warn":
            detail += "; warnings are reported only (checks.php_warnings: warn)"
        return Result(self.name, "failed" if problems else "passed", detail, problems, evidence)

    @staticmethod
    def _read(watch: "Watch", path: str, state: dict[str, Any] | None) -> tuple[int | None, int | None, str]:
        """(size, inode, the text from the recorded offset): the whole file when it was rotated."""
        offset = 0 if state is None else state["offset"]
        result = watch.transport.check(Command.of("sh", "-c", _READ, "sh", path, str(offset + 1), str(READ_LIMIT)),
                                       timeout=60)
        head, _, rest = result.stdout.partition(b"\n")
        if head.strip() == b"missing":
            return None, None, ""
        if head.strip() == b"unreadable":
            raise Unreadable(path)
        size_text, inode_text = head.decode().split()
        size, inode = int(size_text), int(inode_text)
        if state is None:
            return size, inode, ""
        if state["inode"] is not None and (inode != state["inode"] or size < state["offset"]):
            again = watch.transport.check(Command.of("sh", "-c", _READ, "sh", path, "1", str(READ_LIMIT)), timeout=60)
            rest = again.stdout.partition(b"\n")[2]
        return size, inode, rest.decode("utf-8", "surrogateescape")


def _short(line: str, limit: int = 300) -> str:
    line = re.sub(r"^\[[^\]]{6,40}\]\s*", "", line)  # the timestamp
    return line if len(line) <= limit else line[:limit] + "…"
