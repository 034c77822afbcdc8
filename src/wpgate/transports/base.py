"""What every transport offers: run a command on the site's host, move files to and from it."""

from __future__ import annotations

import abc
import os
import re
from pathlib import Path
from typing import IO

from wpgate import progress as progress_display
from wpgate.command import Command
from wpgate.errors import TransportError
from wpgate.execute import Result

_SHA256 = re.compile(r"^([0-9a-f]{64})\b")


class Transport(abc.ABC):
    """A site's host, reached from here. `name` is how messages refer to it."""

    name: str

    @abc.abstractmethod
    def run(self, command: Command, *, input: bytes | None = None, stdin: IO[bytes] | None = None,
            stdout: IO[bytes] | None = None, timeout: float | None = None) -> Result:
        """Run the command; a failure to reach the host raises TransportError, a non-zero exit does not."""

    def check(self, command: Command, **kwargs) -> Result:
        """Run the command and raise TransportError when it exits non-zero."""
        result = self.run(command, **kwargs)
        if not result.ok:
            detail = result.error_text() or f"exit status {result.returncode}"
            raise TransportError(f"{self.name}: {command.display()} failed: {detail}")
        return result

    def upload(self, local: Path, remote: str, *, progress: str | None = None) -> None:
        """Stream a local file to `remote` on the host (written beside it, then renamed into place);
        with `progress`, shown as a transfer under that label."""
        with open(local, "rb") as source:
            command = Command.of("sh", "-c", 'cat > "$1.part" && mv -f "$1.part" "$1"', "sh", remote)
            if progress is None:
                self.check(command, stdin=source)
                return
            # The command reads the very file description opened here: its offset is how far it got.
            with progress_display.transfer(progress, os.fstat(source.fileno()).st_size,
                                           lambda: os.lseek(source.fileno(), 0, os.SEEK_CUR)):
                self.check(command, stdin=source)

    def download(self, remote: str, local: Path, *, progress: str | None = None, size: int = 0) -> None:
        """Stream `remote` from the host into a local file; with `progress` (and its `size`), shown as a transfer."""
        partial = local.with_name(local.name + ".part")
        with open(partial, "wb") as target:
            command = Command.of("cat", "--", remote)
            if progress is None:
                self.check(command, stdout=target)
            else:
                with progress_display.transfer(progress, size, lambda: os.fstat(target.fileno()).st_size):
                    self.check(command, stdout=target)
        partial.replace(local)

    def sha256(self, remote: str) -> str:
        result = self.check(Command.of("sha256sum", "--", remote))
        match = _SHA256.match(result.text())
        if not match:
            raise TransportError(f"{self.name}: sha256sum gave no checksum for {remote}")
        return match.group(1)

    def exists(self, remote: str) -> bool:
        return self.run(Command.of("test", "-e", remote)).ok

    def close(self) -> None:
        """Release what the transport holds open (an ssh master connection)."""

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
