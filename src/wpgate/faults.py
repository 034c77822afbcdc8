"""Fault injection for the crash-safety tests, installed as a journal observer only when its variables are set.

WPGATE_TEST_KILL_AT=N kills this process with SIGKILL right after the Nth journal event it writes;
WPGATE_TEST_FAIL_AT=N raises an error there instead, as a lost connection would. WPGATE_TEST_PAUSE_AFTER=EVENT
stops it (SIGSTOP) right after the first EVENT, so that a test can damage the site or a file at that exact
point and let it go on (SIGCONT). Never set in normal use: then no observer is installed at all.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable

from wpgate.errors import WpgateError

VARIABLES = ("WPGATE_TEST_KILL_AT", "WPGATE_TEST_FAIL_AT", "WPGATE_TEST_PAUSE_AFTER")


def observers_from_environment() -> list[Callable[[dict[str, Any]], None]]:
    """The fault hook when one of its variables is set, else nothing."""
    if not any(os.environ.get(name) for name in VARIABLES):
        return []
    return [FaultHook(os.environ.get("WPGATE_TEST_KILL_AT"), os.environ.get("WPGATE_TEST_FAIL_AT"),
                      os.environ.get("WPGATE_TEST_PAUSE_AFTER"))]


class FaultHook:
    """Counts the journal events this process writes and strikes at the one asked for."""

    def __init__(self, kill_at: str | None, fail_at: str | None, pause_after: str | None) -> None:
        self.kill_at = int(kill_at) if kill_at else None
        self.fail_at = int(fail_at) if fail_at else None
        self.pause_after = pause_after or None
        self.written = 0
        self.paused = False

    def __call__(self, event: dict[str, Any]) -> None:
        name = event.get("event")
        if self.pause_after and name == self.pause_after and not self.paused:
            self.paused = True
            os.kill(os.getpid(), signal.SIGSTOP)
        if self.kill_at is None and self.fail_at is None:
            return
        self.written += 1
        if self.written == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.written == self.fail_at:
            raise WpgateError(f"a failure injected after event {self.written} ({name}) by WPGATE_TEST_FAIL_AT")
