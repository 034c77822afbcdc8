"""Commands as values: argument lists whose secret parts are masked whenever they are shown."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Iterable, Union

from wpgate import redact
from wpgate.redact import MASK


@dataclass(frozen=True)
class Secret:
    """A value that must reach the command but never a log line, journal or report."""

    value: str

    def __post_init__(self) -> None:
        redact.register(self.value)  # masked wherever text leaves wpgate, not only in this command's log line

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK})"


Part = Union[str, Secret]


@dataclass(frozen=True)
class Command:
    """One program and its arguments, run without a shell on the local side.

    `argv` may hold `Secret` parts; `display()` masks them, `real_argv()` reveals them to the
    process only. Over ssh, `shell_line()` quotes every part for the remote POSIX shell.
    """

    argv: tuple[Part, ...]
    cwd: str | None = None
    env: tuple[tuple[str, Part], ...] = ()

    @classmethod
    def of(cls, *argv: Part | Iterable[Part], cwd: str | None = None,
           env: dict[str, Part] | None = None) -> "Command":
        parts: list[Part] = []
        for item in argv:
            if isinstance(item, (str, Secret)):
                parts.append(item)
            else:
                parts.extend(item)
        for part in parts:
            if not isinstance(part, (str, Secret)):
                raise TypeError(f"command part {part!r} is not a string")
        return cls(tuple(parts), cwd=cwd, env=tuple(sorted((env or {}).items())))

    def real_argv(self) -> list[str]:
        return [p.value if isinstance(p, Secret) else p for p in self.argv]

    def real_env(self) -> dict[str, str]:
        return {k: (v.value if isinstance(v, Secret) else v) for k, v in self.env}

    def secrets(self) -> list[str]:
        values = [p.value for p in self.argv if isinstance(p, Secret)]
        values += [v.value for _, v in self.env if isinstance(v, Secret)]
        return [v for v in values if v]

    def display(self) -> str:
        """The command as a log line, secrets masked."""
        words = [MASK if isinstance(p, Secret) else shlex.quote(p) for p in self.argv]
        prefix = [f"{k}={MASK if isinstance(v, Secret) else shlex.quote(v)}" for k, v in self.env]
        line = " ".join(prefix + words)
        if self.cwd:
            line = f"(cd {shlex.quote(self.cwd)} && {line})"
        return line

    def shell_line(self) -> str:
        """The command as one POSIX shell line with every part quoted: what ssh sends."""
        words = [shlex.quote(p) for p in self.real_argv()]
        env = [f"{k}={shlex.quote(v)}" for k, v in self.real_env().items()]
        line = " ".join((["env"] + env if env else []) + words)
        if self.cwd:
            line = f"cd {shlex.quote(self.cwd)} && {line}"
        return line


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret value found in `text` (output of a command, say) with the mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
