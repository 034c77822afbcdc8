"""The seven gates of DESIGN.md, one module each; `wpgate.pipeline` runs them in order."""

from __future__ import annotations

from typing import Any


class GateFailed(Exception):
    """A gate's condition does not hold: what failed, and the evidence that shows it."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence or {}
