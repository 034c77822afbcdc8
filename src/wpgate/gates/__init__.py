"""The seven gates of DESIGN.md, one module each; `wpgate.pipeline` runs them in order.

Each gate module names its step and name (`STEP`, `NAME`), has `run(deployment)` (or `check`) returning its
evidence or raising `GateFailed(message, evidence)`, and `summary(evidence)`, the line a passed gate shows.
`pipeline.GATES` lists them in DESIGN.md's order."""

from __future__ import annotations

from wpgate.errors import GateFailed

__all__ = ["GateFailed"]
