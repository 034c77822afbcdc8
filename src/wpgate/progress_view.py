"""The command line's display of long steps (progress.py's `Display`): live bars on a terminal, plain lines when
stderr is not one; always on stderr, so stdout keeps only what `--json` prints.

On a terminal every step is a line of one shared rich display. Otherwise (a CI log) a step prints a line every
`PLAIN_EVERY` seconds while it lasts and one when it ends, with its size and time; a countdown also says when it
starts, and a small transfer that is over at once says nothing.
"""

from __future__ import annotations

import threading
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn
from rich.text import Text

from wpgate.progress import Step, human_bytes

PLAIN_EVERY = 10.0  # seconds between two plain lines of one long step
QUIET_BELOW = 1 << 20  # in plain lines, a transfer smaller than this (and quick) is not mentioned


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


class ProgressView:
    """Shows the engine's steps on `console`: as bars when it is a terminal, else as plain lines."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._display: Progress | None = None
        self._active = 0
        self._tasks: dict[int, object] = {}
        self._last_line: dict[int, float] = {}

    def _say(self, text: str) -> None:
        self.console.print(text, markup=False, soft_wrap=True, highlight=False)

    def begin(self, step: Step) -> None:
        if self.console.is_terminal:
            with self._lock:
                if self._display is None:
                    self._display = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(bar_width=30),
                                             _Detail(), console=self.console, transient=True, refresh_per_second=8)
                    self._display.start()
                self._active += 1
                self._tasks[id(step)] = self._display.add_task(step.label, total=step.total, kind=step.kind)
            return
        self._last_line[id(step)] = step.started
        if step.kind == "time":  # a window is long by design: say at once what is being waited for
            self._say(f"{step.label}{self._size(step)}…")

    @staticmethod
    def _size(step: Step) -> str:
        if step.kind == "bytes" and step.total:
            return f" ({human_bytes(step.total)})"
        if step.kind == "time" and step.total:
            return f" ({_seconds(step.total)})"
        return ""

    def update(self, step: Step) -> None:
        task = self._tasks.get(id(step))
        if task is not None and self._display is not None:
            self._display.update(task, completed=step.completed, description=step.label)
            return
        now = time.monotonic()
        if now - self._last_line.get(id(step), step.started) >= PLAIN_EVERY:
            self._last_line[id(step)] = now
            self._say(f"{step.label}: {self._so_far(step, now)}")

    @staticmethod
    def _so_far(step: Step, now: float) -> str:
        if step.kind == "bytes" and step.total:
            return (f"{100 * step.completed / step.total:.0f}% ({human_bytes(step.completed)} of "
                    f"{human_bytes(step.total)})")
        if step.kind == "time" and step.total:
            return f"{_seconds(max(0.0, step.total - (now - step.started)))} left"
        return f"still running after {_seconds(now - step.started)}"

    def end(self, step: Step, failed: bool) -> None:
        took = step.elapsed()
        task = self._tasks.pop(id(step), None)
        self._last_line.pop(id(step), None)
        if task is not None:
            with self._lock:
                if self._display is not None:
                    self._display.remove_task(task)
                self._active -= 1
                if self._active == 0 and self._display is not None:
                    self._display.stop()
                    self._display = None
        if failed:
            self._say(f"{step.label}: stopped after {_seconds(took)}")
        elif step.kind == "bytes" and task is None and (step.total or 0) < QUIET_BELOW and took < PLAIN_EVERY:
            return  # a small file that moved at once is not worth a line in a log
        elif step.kind == "bytes":
            self._say(f"{step.label}: {human_bytes(step.total or step.completed)} in {_seconds(took)}")
        else:
            self._say(f"{step.label}: done in {_seconds(took)}")
