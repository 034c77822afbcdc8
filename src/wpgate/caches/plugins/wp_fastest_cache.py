"""WP Fastest Cache: its `WpFastestCache::deleteCache(true)` (or `wpfc_clear_all_cache(true)`), minified files included."""

from wpgate.caches.plugins import PageCachePlugin


class WpFastestCache(PageCachePlugin):
    key = "wp-fastest-cache"
    name = "WP Fastest Cache"
    calls = "$wp_fastest_cache->deleteCache(true), else wpfc_clear_all_cache(true)"
