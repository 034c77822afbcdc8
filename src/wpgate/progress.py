"""Progress of long steps, as the engine reports it: a step begins, moves and ends; what shows it is not here.

Three shapes cover wpgate's long steps:

- `transfer(label, total, position)`: bytes moving (artifact upload, off-site copy); `position()` is polled;
- `stage(label)`: a step whose end cannot be measured (archiving on the host, restoring into scratch copies);
- `countdown(label, seconds)`: a fixed window (the monitor gate's watch), with `note()` for what it sees.

A `Display` shows them: the command line hands its own to `use()` (progress_view.py: live bars on a terminal,
plain lines in a log, on stderr). Without one (the library on its own) nothing is shown and no thread ticks.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Protocol

POLL = 0.2


class Step:
    """One long step: what it is (`kind`: bytes, stage or time), how far it is, since when."""

    def __init__(self, label: str, total: float | None, kind: str) -> None:
        self.label, self.total, self.kind = label, total, kind
        self.started = time.monotonic()
        self.completed = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Display(Protocol):
    """What shows steps: told when one begins, each time it moves (from a thread), and when it ends."""

    def begin(self, step: Step) -> None: ...

    def update(self, step: Step) -> None: ...

    def end(self, step: Step, failed: bool) -> None: ...


_display: Display | None = None


def use(display: Display | None) -> None:
    """Show every step on `display` from now on (None: show nothing)."""
    global _display
    _display = display


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


@contextmanager
def _running(step: Step, poll: Callable[[], None] | None = None) -> Iterator[Step]:
    """Keep the step moving on the display from a thread while the body runs (a transfer polls, a stage's clock
    ticks); with no display, the body just runs."""
    display = _display
    if display is None:
        yield step
        return
    display.begin(step)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(POLL):
            try:
                if poll:
                    poll()
                display.update(step)
            except Exception:  # a progress display never breaks the step it shows
                pass

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    failed = True
    try:
        yield step
        failed = False
    finally:
        stop.set()
        thread.join()
        display.end(step, failed)


@contextmanager
def transfer(label: str, total: int, position: Callable[[], int]) -> Iterator[None]:
    """Bytes moving: `position()` says how many have moved so far (it is polled from a thread)."""
    step = Step(label, float(total), "bytes")

    def poll() -> None:
        step.completed = float(min(position(), total))

    with _running(step, poll):
        yield


@contextmanager
def stage(label: str) -> Iterator[None]:
    """A step whose end cannot be measured: its time so far."""
    with _running(Step(label, None, "stage")):
        yield


class Countdown:
    """A fixed window: `remaining()` seconds are left; `note(text)` says what the window has seen so far."""

    def __init__(self, step: Step, label: str, seconds: float) -> None:
        self._step, self._label, self.seconds = step, label, seconds

    def elapsed(self) -> float:
        return self._step.elapsed()

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def note(self, text: str) -> None:
        self._step.label = f"{self._label}: {text}"


@contextmanager
def countdown(label: str, seconds: float) -> Iterator[Countdown]:
    """A window of `seconds` (the monitor gate's watch): a bar filling up as time passes."""
    step = Step(label, float(seconds), "time")
    clock = Countdown(step, label, seconds)

    def poll() -> None:
        step.completed = min(clock.elapsed(), seconds)

    with _running(step, poll):
        yield clock
