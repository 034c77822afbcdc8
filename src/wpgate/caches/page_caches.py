"""The page-cache plugins active on the site: detected and purged inside WordPress through the bridge."""

from __future__ import annotations

from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.caches.plugins import PLUGINS, PageCachePlugin
from wpgate.errors import BridgeError


def detect(target: CacheSite) -> list[PageCachePlugin]:
    """The known page-cache plugins WordPress loads on this site, in purge order."""
    try:
        found = target.bridge.call("page_caches", {"plugins": [plugin.key for plugin in PLUGINS], "purge": False})
    except BridgeError as error:
        raise PurgeFailed(f"page caches: cannot tell which page-cache plugins are active: {error}") from None
    return [plugin for plugin in PLUGINS if (found or {}).get(plugin.key, {}).get("active")]


class PageCaches:
    """Every known plugin that is active, purged in one WordPress process; one outcome each."""

    name = "page-cache plugins"

    def __init__(self, target: CacheSite) -> None:
        self.target = target

    def purge_all(self) -> list[Outcome]:
        try:
            answer = self.target.bridge.call("page_caches", {"plugins": [p.key for p in PLUGINS], "purge": True})
        except BridgeError as error:
            raise PurgeFailed(f"page caches: the purge inside WordPress failed: {error}", {"layer": self.name}) from None
        outcomes = []
        for plugin in PLUGINS:
            entry = (answer or {}).get(plugin.key) or {}
            if not entry.get("active"):
                continue
            if not entry.get("ok"):
                raise PurgeFailed(f"page caches: {plugin.name}: {entry.get('ran') or plugin.calls} failed: "
                                  f"{entry.get('error') or 'no reason given'}", {"layer": plugin.name})
            result = entry.get("result") or "done"
            after = plugin.after_purge(self.target)
            outcomes.append(Outcome(plugin.name, entry.get("ran") or plugin.calls,
                                    f"{result}; {after}" if after else result))
        return outcomes or [Outcome(self.name, "detection inside WordPress",
                                    "none of the known page-cache plugins is active")]
