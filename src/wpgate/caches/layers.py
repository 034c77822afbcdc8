"""The layers of a site in purge order, and the purge of them all followed by the fresh fetch."""

from __future__ import annotations

from typing import Any, Callable

from wpgate.caches import CacheSite, Outcome, PurgeFailed, page_caches
from wpgate.caches.object_cache import ObjectCache
from wpgate.caches.opcache import Opcache
from wpgate.caches.registry import LAYERS
from wpgate.caches.verify import Expectation, verify

Journal = Callable[..., None]  # Run.event: one journal event, forced to disk


def configured(target: CacheSite) -> list[Any]:
    """The configured layers: server caches first, then CDNs, each in the order listed, so that
    a CDN refetching from the origin gets what the server caches hold after their purge."""
    layers = [LAYERS[entry.type](target, entry.options) for entry in target.site.caches]
    return sorted(layers, key=lambda layer: layer.kind != "server")


def describe(target: CacheSite) -> list[str]:
    """Every layer in purge order, and the check after: all a dry run shows."""
    lines = [f"object cache: {ObjectCache(target).describe()}"]
    plugins = page_caches.detect(target)
    lines += [f"page cache {plugin.name}: {plugin.calls}" for plugin in plugins] or \
        ["page-cache plugins: none of the known ones is active"]
    lines.append(f"opcache: {Opcache(target).describe()}")
    lines += [f"{layer.name}: {layer.describe()}" for layer in configured(target)]
    lines.append(f"verify: fetch {', '.join(target.pages)} at {target.site.url} (no cache-busting); each must show "
                 "the release, and every asset it references on the site must answer 200")
    return [f"{number}. {line}" for number, line in enumerate(lines, 1)]


def check_access(target: CacheSite) -> list[dict[str, Any]]:
    """Each configured layer's credentials, with the provider's read-only call where it has one (a dry run's
    part: nothing is purged); PurgeFailed at the first refused. Layers without one are listed as not checked."""
    found = []
    for layer in configured(target):
        check = getattr(layer, "check_access", None)
        if check is None:
            found.append({"check": f"{layer.name} access", "status": "not checked",
                          "detail": f"{layer.name} has no read-only call: it is first reached when it is purged"})
        else:
            found.append(check())
    return found


def purge(target: CacheSite, journal: Journal | None = None) -> list[Outcome]:
    """Purge every layer in order; PurgeFailed at the first that cannot be purged (with what was
    done). The journal gets one event when all are purged: the site's files and database are not
    touched, and a purge repeated after a crash does no harm."""
    outcomes: list[Outcome] = []
    # In the procedure's order; the page-cache plugins give one outcome each.
    steps: list[Callable[[], list[Outcome]]] = [
        lambda: [ObjectCache(target).purge()],
        page_caches.PageCaches(target).purge_all,
        lambda: [Opcache(target).purge()],
    ]
    steps += [lambda layer=layer: [layer.purge()] for layer in configured(target)]
    try:
        for step in steps:
            for outcome in step():
                target.say(f"  {outcome.layer}: {outcome.result}")
                outcomes.append(outcome)
    except PurgeFailed as failure:
        failure.evidence = {"layers": [outcome.as_dict() for outcome in outcomes], **failure.evidence}
        raise
    if journal:
        journal("caches.purged", layers=[{"layer": o.layer, "ran": o.ran, "result": o.result} for o in outcomes])
    return outcomes


def purge_and_verify(target: CacheSite, expectations: list[Expectation],
                     journal: Journal | None = None) -> dict[str, Any]:
    """Purge every layer, then prove visitors get the new site: the evidence, or PurgeFailed."""
    layers = [outcome.as_dict() for outcome in purge(target, journal)]
    try:
        checked = verify(target, expectations)
    except PurgeFailed as failure:
        failure.evidence = {"layers": layers, **failure.evidence}
        raise
    return {"layers": layers, "verify": checked}
