"""Cache purgers for gate 6.5 and `wpgate purge`: every layer between a visitor and the new code, in order.

The order is the procedure's: the WordPress object cache, the page-cache plugins active on the site
(detected, not configured), the web server's OPcache, then the configured server caches (Varnish,
nginx) and CDNs (Cloudflare, Fastly, Bunny, a webhook), each kind in the order the config lists it.
Each layer is a small object with a `name`, `describe()` (what it would run: all a dry run shows)
and `purge()` (which says what ran and what came back). `verify` then fetches the key pages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from wpgate.command import Secret
from wpgate.errors import GateRefused
from wpgate.session import OnSite, SiteSession


class PurgeFailed(GateRefused):
    """A cache layer could not be purged, or visitors still get the old site: what, where, and the
    evidence gathered up to there. On its own (`wpgate purge`) this is exit 3; in a deploy the gate
    fails and the run rolls back."""

    def __init__(self, message: str, evidence: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or {}


def env_secret(name: str) -> Secret:
    return Secret(os.environ.get(name, ""))


@dataclass
class CacheSite(OnSite):
    """The site whose caches are purged, and how to reach it; `secret` reads a credential by its variable's name."""

    session: SiteSession
    secret: Callable[[str], Secret] = env_secret

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def pages(self) -> list[str]:
        return list(self.site.checks.pages)

    def page_url(self, page: str) -> str:
        return self.site.url + page


@dataclass
class Outcome:
    """One layer purged: its name, what ran (never a secret), and what came back."""

    layer: str
    ran: str
    result: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "ran": self.ran, "result": self.result, **self.details}


class Layer(Protocol):
    """A configured server cache or CDN (see `registry.LAYERS`); built from the site and its options."""

    name: str  # its type in the config's `caches:`
    kind: str  # "server" or "cdn": server caches are purged first
    Options: type  # its options' model (a config.Strict), validated when the config is read

    def describe(self) -> str:
        """What purge() will run, in one line."""

    def purge(self) -> Outcome:
        """Purge the layer; raise PurgeFailed when it cannot be purged."""
