"""The site is on this machine: commands run directly, without a shell."""

from __future__ import annotations

import os
from typing import IO

from wpgate.command import Command
from wpgate.execute import Result, run_process
from wpgate.transports.base import Transport


class LocalTransport(Transport):
    name = "local"

    def run(self, command: Command, *, input: bytes | None = None, stdin: IO[bytes] | None = None,
            stdout: IO[bytes] | None = None, timeout: float | None = None) -> Result:
        env = None
        if command.env:
            env = {**os.environ, **command.real_env()}
        return run_process(command.real_argv(), command=command, host=self.name, env=env,
                           cwd=command.cwd, input=input, stdin=stdin, stdout=stdout, timeout=timeout)
