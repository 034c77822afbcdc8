"""Progress of long steps: live bars on a terminal, plain lines when stderr is not one; always on stderr,
so stdout keeps only what `--json` prints.

Three shapes cover wpgate's long steps:

- `transfer(label, total, position)`: bytes moving (artifact upload, off-site copy); `position()` is polled;
- `stage(label)`: a step whose end cannot be measured (archiving on the host, restoring into scratch copies);
- `countdown(label, seconds)`: a fixed window (the monitor gate's watch), with `note()` for what it sees.

On a terminal every step is a line of one shared rich display. Otherwise (a CI log) a step prints a line every
`PLAIN_EVERY` seconds while it lasts and one when it ends, with its size and time; a countdown also says when it
starts, and a small transfer that is over at once says nothing. The command line hands its console to
`use()`, so that the display and wpgate's other output share one stream; without it (the library
on its own) nothing is shown.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.text import Text

PLAIN_EVERY = 10.0  # seconds between two plain lines of one long step
QUIET_BELOW = 1 << 20  # in plain lines, a transfer smaller than this (and quick) is not mentioned
POLL = 0.2

_console: Console | None = None
_lock = threading.Lock()
_display: Progress | None = None
_active = 0


def use(console: Console) -> None:
    """The console progress is shown on (the command line's, on stderr)."""
    global _console
    _console = console


def console() -> Console:
    """The command line's console; none handed in (the library on its own), a quiet one: nothing is shown."""
    global _console
    if _console is None:
        _console = Console(quiet=True)
    return _console


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


def _seconds(value: float) -> str:
    return f"{value:.1f}s" if value < 60 else f"{int(value) // 60}m{int(value) % 60:02d}s"


class _Detail(ProgressColumn):
    """Bytes and speed for a transfer, time left for a countdown, time so far for a stage."""

    def render(self, task: Task) -> Text:
        kind = task.fields.get("kind")
        if kind == "bytes":
            speed = f"  {human_bytes(task.speed)}/s" if task.speed else ""
            return Text(f"{human_bytes(task.completed)} of {human_bytes(task.total or 0)}{speed}", style="dim")
        if kind == "time":
            return Text(f"{_seconds(max(0.0, (task.total or 0) - task.completed))} left", style="dim")
        return Text(_seconds(task.elapsed or 0.0), style="dim")


def _start_display() -> Progress:
    global _display, _active
    with _lock:
        if _display is None:
            _display = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=30), _Detail(),
                                console=console(), transient=True, refresh_per_second=8)
            _display.start()
        _active += 1
        return _display


def _stop_display() -> None:
    global _display, _active
    with _lock:
        _active -= 1
        if _active == 0 and _display is not None:
            _display.stop()
            _display = None


def _say(text: str) -> None:
    console().print(text, markup=False, soft_wrap=True, highlight=False)


class _Step:
    """One step on the display or in plain lines; `update(completed)` moves it."""

    def __init__(self, label: str, total: float | None, kind: str) -> None:
        self.label, self.total, self.kind = label, total, kind
        self.started = time.monotonic()
        self.completed = 0.0
        self.terminal = console().is_terminal
        self._last_line = self.started
        self._task = None
        if self.terminal:
            self._progress = _start_display()
            self._task = self._progress.add_task(label, total=total, kind=kind)
        elif kind == "time":  # a window is long by design: say at once what is being waited for
            _say(f"{label}{self._size()}…")

    def _size(self) -> str:
        if self.kind == "bytes" and self.total:
            return f" ({human_bytes(self.total)})"
        if self.kind == "time" and self.total:
            return f" ({_seconds(self.total)})"
        return ""

    def update(self, completed: float | None = None, description: str | None = None) -> None:
        if completed is not None:
            self.completed = completed
        if description is not None:
            self.label = description
        if self._task is not None:
            self._progress.update(self._task, completed=self.completed, description=self.label)
            return
        now = time.monotonic()
        if now - self._last_line >= PLAIN_EVERY:
            self._last_line = now
            _say(f"{self.label}: {self._so_far(now)}")

    def _so_far(self, now: float) -> str:
        if self.kind == "bytes" and self.total:
            return f"{100 * self.completed / self.total:.0f}% ({human_bytes(self.completed)} of {human_bytes(self.total)})"
        if self.kind == "time" and self.total:
            return f"{_seconds(max(0.0, self.total - (now - self.started)))} left"
        return f"still running after {_seconds(now - self.started)}"

    def end(self, failed: bool) -> None:
        took = time.monotonic() - self.started
        if self._task is not None:
            self._progress.remove_task(self._task)
            _stop_display()
        if failed:
            _say(f"{self.label}: stopped after {_seconds(took)}")
        elif self.kind == "bytes" and self._task is None and (self.total or 0) < QUIET_BELOW and took < PLAIN_EVERY:
            return  # a small file that moved at once is not worth a line in a log
        elif self.kind == "bytes":
            _say(f"{self.label}: {human_bytes(self.total or self.completed)} in {_seconds(took)}")
        else:
            _say(f"{self.label}: done in {_seconds(took)}")


@contextmanager
def _running(step: _Step, poll: Callable[[], None] | None = None) -> Iterator[_Step]:
    """Keep the step moving from a thread while the body runs (a transfer polls, a stage's clock ticks)."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(POLL):
            try:
                if poll:
                    poll()
                else:
                    step.update()
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
        step.end(failed)


@contextmanager
def transfer(label: str, total: int, position: Callable[[], int]) -> Iterator[None]:
    """Bytes moving: `position()` says how many have moved so far (it is polled from a thread)."""
    step = _Step(label, float(total), "bytes")

    def poll() -> None:
        step.update(float(min(position(), total)))

    with _running(step, poll):
        yield


@contextmanager
def stage(label: str) -> Iterator[None]:
    """A step whose end cannot be measured: its time so far."""
    with _running(_Step(label, None, "stage")):
        yield


class Countdown:
    """A fixed window: `remaining()` seconds are left; `note(text)` says what the window has seen so far."""

    def __init__(self, step: _Step, label: str, seconds: float) -> None:
        self._step, self._label, self.seconds = step, label, seconds

    def elapsed(self) -> float:
        return time.monotonic() - self._step.started

    def remaining(self) -> float:
        return max(0.0, self.seconds - self.elapsed())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0

    def note(self, text: str) -> None:
        self._step.update(description=f"{self._label}: {text}")


@contextmanager
def countdown(label: str, seconds: float) -> Iterator[Countdown]:
    """A window of `seconds` (the monitor gate's watch): a bar filling up as time passes."""
    step = _Step(label, float(seconds), "time")
    clock = Countdown(step, label, seconds)

    def poll() -> None:
        step.update(min(clock.elapsed(), seconds))

    with _running(step, poll):
        yield clock
