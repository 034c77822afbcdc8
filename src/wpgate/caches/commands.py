"""`wpgate purge SITE`: gate 6.5 on its own, outside a deploy."""

from __future__ import annotations

from typing import Any

from wpgate.caches import CacheSite, PurgeFailed, layers
from wpgate.config import Settings
from wpgate.output import Output, console_say
from wpgate.session import SiteSession


def purge(settings: Settings, site_name: str, console: Output, *, dry_run: bool) -> dict[str, Any]:
    """Purge SITE's caches and check its key pages answer with their assets; the evidence.
    Without a release there is no old version to look for: the pages must answer, whole."""
    site = settings.site(site_name)
    if not dry_run:
        settings.require_secrets(site_name)

    say = console_say(console)
    with SiteSession.open(site_name, site, say) as session:
        session.bridge.require_wordpress()
        target = CacheSite(session, settings.secret)
        if dry_run:
            lines = layers.describe(target)
            say(f"dry run: nothing was purged. On {site_name} ({site.url}) wpgate would purge, in this order:")
            for line in lines:
                say(f"  {line}")
            return {"site": site_name, "status": "dry_run", "layers": lines}
        say(f"purging the caches of {site_name} ({site.url})")
        try:
            evidence = layers.purge_and_verify(target, [])
        except PurgeFailed as failure:
            failure.report = {"site": site_name, "status": "failed", "error": failure.message, **failure.evidence}
            raise
    say(f"purged: {', '.join(layer['layer'] for layer in evidence['layers'])}; the key pages "
        f"({', '.join(evidence['verify']['pages'])}) answer 200 with every asset")
    return {"site": site_name, "status": "purged", **evidence}
