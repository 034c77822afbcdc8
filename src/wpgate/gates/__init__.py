"""The seven gates of DESIGN.md, one module each; `wpgate.pipeline` runs them in order.

Every gate module has the shape of `Gate`: its step and name (`STEP`, `NAME`); `describe(deployment)`, what
`deploy --dry-run` shows of it (its read-only part: the preconditions it can check without changing
production, and what it would do); `run(deployment)`, the gate itself, returning its evidence or raising
`GateFailed(message, evidence)`; and `summary(evidence)`, the line a passed gate shows.
`pipeline.GATES` lists them in DESIGN.md's order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from wpgate.errors import GateFailed

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

__all__ = ["Gate", "GateFailed", "Plan"]


@dataclass
class Plan:
    """What a gate would do, as the dry run shows it: `lines` under their `heading`, then the gate's own line
    (`reason`, recorded in the report as the gate `status`) and the preconditions it checked, from `evidence`.
    A gate with nothing it can tell before the deploy (its proof needs the deploy's own changes) has no
    `reason`: it is neither shown nor recorded."""

    reason: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    heading: str = ""
    lines: list[str] = field(default_factory=list)
    status: str = "skipped"  # gate 6.1 runs in full in a dry run: passed


class Gate(Protocol):
    """One gate module (gates/approval.py … gates/completion.py)."""

    STEP: str
    NAME: str

    def describe(self, deployment: Deployment) -> Plan: ...

    def run(self, deployment: Deployment) -> dict[str, Any]: ...

    def summary(self, evidence: dict[str, Any]) -> str: ...
