"""The WordPress object cache, flushed from inside WordPress through the bridge (wp_cache_flush())."""

from __future__ import annotations

from wpgate import inventory
from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.errors import BridgeError


class ObjectCache:
    name = "object cache"

    def __init__(self, target: CacheSite) -> None:
        self.target = target

    def describe(self) -> str:
        """What the purge would do, from the site's drop-ins as they are (read-only)."""
        try:
            dropins = inventory.read(self.target.bridge).data.get("dropins") or []
        except BridgeError as error:
            raise PurgeFailed(f"object cache: cannot read the site's drop-ins: {error}") from None
        dropin = next((entry for entry in dropins if entry.get("file") == "object-cache.php"), None)
        if dropin is None:
            return "wp_cache_flush() inside WordPress (no persistent object cache drop-in: nothing outlives a request)"
        name = " ".join(str(part) for part in (dropin.get("name"), dropin.get("version")) if part)
        return (f"wp_cache_flush() inside WordPress, flushing the persistent object cache {name or 'drop-in'} "
                "(wp-content/object-cache.php)")

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
