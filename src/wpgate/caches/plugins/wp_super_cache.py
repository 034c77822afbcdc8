"""WP Super Cache: `wp_cache_clear_cache()` deletes its cached pages."""

from wpgate.caches.plugins import PageCachePlugin


class WpSuperCache(PageCachePlugin):
    key = "wp-super-cache"
    name = "WP Super Cache"
    calls = "wp_cache_clear_cache()"
