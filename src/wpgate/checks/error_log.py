"""The error-log check: new PHP fatal and parse errors in the site's log since the watch began.

The log is found once, before the first change, by the bridge (WP_DEBUG_LOG, else PHP's error_log),
unless `checks.error_log` names it. It is read through the site's transport from the offset recorded
then, so only lines written since count; a log rotated or truncated meanwhile is read from its start.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from wpgate.checks import Check, Problem, Result
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import WpgateError
from wpgate.words import plural

if TYPE_CHECKING:
    from wpgate.checks import Watch

FATAL = re.compile(r"PHP (?:Fatal error|Parse error|Compile error|Core error|Recoverable fatal error)\b|"
                   r"\bPHP message: PHP (?:Fatal|Parse) error\b")
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
        lines = fatal_lines(new)
        evidence["new_fatal_lines"] = lines[:20]
        distinct = list(dict.fromkeys(_short(line) for line in lines))  # the same error from many requests
        problems = [Problem(self.name, f"new PHP error in {path}: {message}", None, "fatal", message,
                            {"log": path, "log_line": next(line for line in lines if _short(line) == message),
                             "times": sum(1 for line in lines if _short(line) == message)})
                    for message in distinct[:5]]
        return Result(self.name, "failed" if problems else "passed",
                      f"{plural(len(lines), 'new fatal line')} in {path}", problems, evidence)

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
