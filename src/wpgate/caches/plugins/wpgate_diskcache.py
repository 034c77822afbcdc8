"""wpgate Disk Cache, the test bed's fixture: an advanced-cache.php drop-in that answers GETs from
disk and exits, as WP Super Cache's does; `wpgate_diskcache_clear_cache()` empties its cache."""

from wpgate.caches.plugins import PageCachePlugin


class WpgateDiskCache(PageCachePlugin):
    key = "wpgate-diskcache"
    name = "wpgate Disk Cache"
    calls = "wpgate_diskcache_clear_cache()"
