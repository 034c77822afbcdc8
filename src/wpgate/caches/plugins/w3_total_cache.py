"""W3 Total Cache: `w3tc_flush_all()` flushes every cache it manages."""

from wpgate.caches.plugins import PageCachePlugin


class W3TotalCache(PageCachePlugin):
    key = "w3-total-cache"
    name = "W3 Total Cache"
    calls = "w3tc_flush_all()"
