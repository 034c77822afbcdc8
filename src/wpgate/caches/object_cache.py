"""The WordPress object cache, flushed from inside WordPress through the bridge (wp_cache_flush())."""

from __future__ import annotations

from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.errors import BridgeError


class ObjectCache:
    name = "object cache"

    def __init__(self, target: CacheSite) -> None:
        self.target = target

    def describe(self) -> str:
        return "wp_cache_flush() inside WordPress (a persistent object cache drop-in is named)"

    def purge(self) -> Outcome:
        try:
            answer = self.target.bridge.call("flush_object_cache")
        except BridgeError as error:
            raise PurgeFailed(f"object cache: {error}") from None
        if not answer.get("persistent"):
            return Outcome(self.name, "wp_cache_flush()",
                           "no persistent object cache (nothing outlives a request)")
        backend = answer.get("dropin") or "object-cache.php"
        if answer.get("flushed") is False:
            raise PurgeFailed(f"object cache: {backend} (wp-content/object-cache.php) refused wp_cache_flush() "
                              "from the command line: flush it on its server (Redis FLUSHDB, Memcached flush_all)",
                              {"layer": self.name, "dropin": backend})
        return Outcome(self.name, "wp_cache_flush()", f"flushed {backend}", {"dropin": backend})
