"""Gate 6.5 (caches): purge every layer between visitors and the new code, in order, then prove
with a fresh fetch of the key pages that visitors see the release."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wpgate.caches import CacheSite, PurgeFailed, layers
from wpgate.caches.verify import Expectation
from wpgate.gates import GateFailed, Plan

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

STEP, NAME = "6.5", "caches"


def target(deployment: "Deployment") -> CacheSite:
    return CacheSite(deployment.session, deployment.settings.secret)


def expectations(deployment: "Deployment") -> list[Expectation]:
    return [Expectation(u.type, u.slug, u.from_version, u.to_version) for u in deployment.release.updates]


def check_access(deployment: "Deployment") -> list[dict[str, Any]]:
    """Each CDN's credentials, checked with its provider's read-only call (nothing is purged): what a deploy
    does before its first change, since a token refused at this gate would roll back a healthy release.
    GateFailed when one is refused or cannot be reached."""
    try:
        return layers.check_access(target(deployment))
    except PurgeFailed as failure:
        raise GateFailed(failure.message, failure.evidence) from None


def describe(deployment: "Deployment") -> Plan:
    """All `deploy --dry-run` runs of the gate: the layers it would purge, in order, and each CDN's credentials
    checked (check_access). GateFailed when a credential is refused."""
    held = check_access(deployment)
    order = layers.describe(target(deployment))
    return Plan("dry run: deploy purges these layers after the last update, then fetches the key pages",
                {"layers": order, "preconditions": held},
                heading="The caches gate would purge, in this order:", lines=order)


def run(deployment: "Deployment") -> dict[str, Any]:
    try:
        return layers.purge_and_verify(target(deployment), expectations(deployment), deployment.run.event)
    except PurgeFailed as failure:
        raise GateFailed(failure.message, failure.evidence) from None


def summary(evidence: dict[str, Any]) -> str:
    """What was purged and exactly what the fresh fetch proved: the new versions' markers seen on each
    page, and the updated components whose marker no page carries (their version is proved by the
    completion gate's inventory, not by what visitors are served)."""
    purged = ", ".join(layer["layer"] for layer in evidence.get("layers", []))
    pages = evidence.get("verify", {}).get("pages", {})
    seen = [f"{page} shows {', '.join(record['shows'])}" for page, record in pages.items() if record.get("shows")]
    text = f"purged {purged}; " + ("; ".join(seen) if seen else
                                   f"no page ({', '.join(pages) or 'none fetched'}) carries a version marker")
    unmarked = [set(record.get("not_shown") or []) for record in pages.values()]
    never = sorted(set.intersection(*unmarked)) if unmarked else []
    if never and seen:
        text += f"; no marker on any page for {', '.join(never)}"
    elif never:
        text += f" of {', '.join(never)}"
    return text
