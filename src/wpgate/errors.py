"""The one exception hierarchy of wpgate; the command line maps it to DESIGN.md's exit codes."""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from wpgate import redact


class ExitStatus(IntEnum):
    """How a command ended, as DESIGN.md's exit codes: the one table of them."""

    COMPLETE = 0
    ERROR = 1                 # unexpected: a bug, its traceback written to a file
    BAD_INPUT = 2             # config, manifest, arguments, a site that cannot be read
    REFUSED = 3               # a gate refused before production changed
    ROLLED_BACK = 4           # failed after a change, rolled back and proved
    ROLLBACK_INCOMPLETE = 5   # failed after a change, the rollback not proved: a person must act
    INTERRUPTED = 130         # Ctrl-C, SIGTERM


class WpgateError(Exception):
    """An expected failure: one clear line for the user, and the exit code it stands for."""

    exit_code = ExitStatus.BAD_INPUT

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.report: dict | None = None  # a run's report, when the error ended a run

    def __str__(self) -> str:
        text = f"{self.message} ({self.hint})" if self.hint else self.message
        return redact.text(text)  # whatever layer wrote the message, a known secret never shows


class BadInput(WpgateError):
    """Config, manifest, QA record or arguments are wrong: exit 2."""

    exit_code = ExitStatus.BAD_INPUT


class ConfigError(BadInput):
    """The config file is unreadable or invalid; carries every problem found, with its key path."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {listing(problems)}")


class SiteError(BadInput):
    """A site cannot be read: no WordPress there, a broken wp-config.php, a host out of reach.

    Outside a deploy this is bad input (exit 2); a deploy turns it into a refusal or a rollback.
    """


class TransportError(SiteError):
    """A command could not be run on a site's host (ssh failed, connection dropped, timed out)."""


class BridgeError(SiteError):
    """WordPress, loaded by the PHP bridge, failed: a fatal error, wp_die(), no answer."""

    def __init__(self, message: str, *, kind: str = "error", file: str | None = None,
                 line: int | None = None, output: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.kind = kind
        self.file = file
        self.line = line
        self.output = output


class GateRefused(WpgateError):
    """A gate refused before production changed: exit 3."""

    exit_code = ExitStatus.REFUSED


class GateFailed(WpgateError):
    """A gate's condition does not hold: what failed, and the evidence that shows it. Inside a deploy the
    pipeline turns it into a refusal (3) or a rollback (4, 5); met on its own it is a refusal."""

    exit_code = ExitStatus.REFUSED

    def __init__(self, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or {}


class RolledBack(WpgateError):
    """Failed after a change; production was rolled back and verified: exit 4."""

    exit_code = ExitStatus.ROLLED_BACK


class RollbackIncomplete(WpgateError):
    """Failed after a change and the rollback is not proved: a person must act. Exit 5."""

    exit_code = ExitStatus.ROLLBACK_INCOMPLETE


def yaml_problem(error: Exception) -> str:
    """Where and what a YAML parser found wrong, as one line."""
    mark = getattr(error, "problem_mark", None)
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    return f"not valid YAML{at}: {getattr(error, 'problem', None) or 'syntax error'}"


MAX_LISTED = 20        # a hostile file may hold thousands of problems: the first ones say enough
MAX_PROBLEM_CHARS = 300  # and one problem may quote a huge value


def listing(problems: list[str], what: str = "problems") -> str:
    """One problem on its own, several as a counted list (the first 20): how every error that finds many reads."""
    shown = [_shorten(problem) for problem in problems[:MAX_LISTED]]
    if len(problems) == 1:
        return shown[0]
    more = len(problems) - len(shown)
    tail = [f"  … and {more} more"] if more else []
    return f"{len(problems)} {what}:\n" + "\n".join([f"  - {problem}" for problem in shown] + tail)


def _shorten(problem: str) -> str:
    problem = str(problem)
    return problem if len(problem) <= MAX_PROBLEM_CHARS else problem[:MAX_PROBLEM_CHARS] + "…"
