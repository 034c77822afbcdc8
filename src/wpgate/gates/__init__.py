"""The seven gates of DESIGN.md, one module each; `wpgate.pipeline` runs them in order."""

from __future__ import annotations

from wpgate.errors import GateFailed

__all__ = ["GateFailed"]
