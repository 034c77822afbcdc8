"""Where the engine's human lines go: the command line hands in its terminal, a library user nothing.

The engine imports no terminal library. It writes each line through an `Output`, an object with the one
method it uses: `print(text, markup=..., end=..., soft_wrap=...)`, which a rich Console has. A line may
carry rich's markup for a mark or a colour (`[green]✔[/]`) when `markup` is true; an output that is no
terminal ignores it. `SILENT`, the library's default, drops every line: `Project` prints nothing.
"""

from __future__ import annotations

from typing import Any, Protocol


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
