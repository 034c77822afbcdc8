"""Gate 6.5 (caches): purge every layer between visitors and the new code, in order, then prove
with a fresh fetch of the key pages that visitors see the release."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wpgate.caches import CacheSite, PurgeFailed, layers
from wpgate.caches.verify import Expectation
from wpgate.gates import GateFailed

if TYPE_CHECKING:
    from wpgate.pipeline import Deployment


def target(deployment: "Deployment") -> CacheSite:
    return CacheSite(deployment.site_name, deployment.site, deployment.transport, deployment.bridge,
                     deployment.say, deployment.settings.secret)


def expectations(deployment: "Deployment") -> list[Expectation]:
    return [Expectation(u.type, u.slug, u.from_version, u.to_version) for u in deployment.release.updates]


def describe(deployment: "Deployment") -> list[str]:
    """The layers the gate would purge, in order (read-only: a dry run's evidence)."""
    return layers.describe(target(deployment))


def run(deployment: "Deployment") -> dict[str, Any]:
    try:
        return layers.purge_and_verify(target(deployment), expectations(deployment), deployment.run.event)
    except PurgeFailed as failure:
        raise GateFailed(failure.message, failure.evidence) from None


def summary(evidence: dict[str, Any]) -> str:
    purged = ", ".join(layer["layer"] for layer in evidence.get("layers", []))
    pages = ", ".join(evidence.get("verify", {}).get("pages", {}))
    return f"purged {purged}; {pages} show the release"
