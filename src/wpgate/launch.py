"""The `wpgate` command's entry point: Ctrl-C while the command line is still being imported ends it
as an interrupt (exit 130, one line), not with a traceback. The demo's steps, for one, are often
interrupted there, since Ctrl-C reaches every process of the terminal's foreground group."""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # ExitStatus.INTERRUPTED, written out: nothing of wpgate is imported yet here


def main() -> None:
    try:
        from wpgate.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("wpgate: interrupted\n")
        raise SystemExit(EXIT_INTERRUPTED) from None
    run()
