"""Where the engine's human lines go: the command line hands in its terminal, a library user nothing.

The engine imports no terminal library. It writes each line through an `Output`, an object with the one
method it uses: `print(text, markup=..., end=..., soft_wrap=..., style=...)`, which a rich Console has. A colour
is asked for by name (`style="green"`), never written into the text; an output that is no terminal ignores it.
`SILENT`, the library's default, drops every line: `Project` prints nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol


class Output(Protocol):
    def print(self, text: str = "", *, markup: bool | None = None, end: str = "\n", soft_wrap: bool | None = None,
              **style: Any) -> None: ...


class Silent:
    """An output that drops every line: what a script, a fleet worker or a test gets by default."""

    is_terminal = False

    def print(self, text: str = "", *, markup: bool | None = None, end: str = "\n", soft_wrap: bool | None = None,
              **style: Any) -> None:
        pass


SILENT = Silent()


def console_say(output: Output) -> Callable[[str], None]:
    """A `say(text)` that writes plain lines (never markup) to `output`: what a SiteSession speaks with."""
    def say(text: str) -> None:
        output.print(text, markup=False, soft_wrap=True)
    return say

# A check's or a gate's outcome, as its line starts: the mark and its colour.
MARKS = {"passed": ("✔", "green"), "failed": ("✘", "red"), "skipped": ("–", "yellow")}


def say_marked(output: Output, status: str, text: str, detail: str = "") -> None:
    """One line `✔ text — detail`: the mark of `status` in its colour, then the text as it is (no markup)."""
    mark, colour = MARKS[status]
    output.print(mark, style=colour, markup=False, end="")
    output.print(f" {text}" + (f" — {detail}" if detail else ""), markup=False, soft_wrap=True)


def say_done(output: Output, text: str) -> None:
    """A run's happy ending: `complete: text`, the word in bold green."""
    output.print("complete", style="bold green", markup=False, end="")
    output.print(f": {text}", markup=False, soft_wrap=True)
