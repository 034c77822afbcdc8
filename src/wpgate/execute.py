"""The one place where wpgate starts a process: every command is logged, with its secrets masked."""

from __future__ import annotations

import logging
import subprocess
import time
from dataclasses import dataclass
from typing import IO

from wpgate.command import Command, mask
from wpgate.errors import TransportError

log = logging.getLogger("wpgate.execute")


@dataclass
class Result:
    """What a finished command gave back."""

    command: Command
    host: str
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def error_text(self, limit: int = 600) -> str:
        text = mask(self.stderr.decode("utf-8", "replace"), self.command.secrets()).strip()
        if len(text) > limit:
            text = "…" + text[-limit:]
        return text


def run_process(argv: list[str], *, command: Command, host: str, env: dict[str, str] | None = None,
                cwd: str | None = None, input: bytes | None = None, stdin: IO[bytes] | None = None,
                stdout: IO[bytes] | None = None, timeout: float | None = None) -> Result:
    """Run `argv` (the real words, secrets revealed) and log it as `command.display()`.

    `stdin` and `stdout` may be open files so that large data streams through without being
    held in memory; otherwise stdout is captured.
    """
    shown = command.display()
    log.debug("run on %s: %s", host, shown)
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            argv,
            stdin=stdin if stdin is not None else (subprocess.PIPE if input is not None else subprocess.DEVNULL),
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
            # Ctrl-C goes to wpgate, not to a PHP process halfway through copying a plugin: the
            # command in flight finishes, then wpgate stops the run.
            start_new_session=True,
        )
    except FileNotFoundError:
        raise TransportError(f"{host}: cannot run {argv[0]!r}: not installed or not on PATH") from None
    except OSError as error:
        raise TransportError(f"{host}: cannot run {argv[0]!r}: {error.strerror}") from None
    interrupted = False
    while True:
        try:
            out, err = process.communicate(input=input, timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise TransportError(f"{host}: command timed out after {timeout:.0f}s: {shown}") from None
        except KeyboardInterrupt:
            if interrupted:  # a second Ctrl-C: stop now
                process.kill()
                process.wait()
                raise
            interrupted = True
            log.warning("interrupted: letting the command in progress on %s finish (Ctrl-C again to kill it)", host)
            input = None
        except BaseException:
            process.kill()
            process.wait()
            raise
    if interrupted:
        raise KeyboardInterrupt
    result = Result(command, host, process.returncode, out or b"", err or b"", time.monotonic() - started)
    log.debug("exit %s on %s after %.2fs", result.returncode, host, result.seconds)
    return result
