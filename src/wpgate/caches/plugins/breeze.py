"""Breeze (Cloudways): its `breeze_clear_all_cache` action."""

from wpgate.caches.plugins import PageCachePlugin


class Breeze(PageCachePlugin):
    key = "breeze"
    name = "Breeze"
    calls = "do_action('breeze_clear_all_cache')"
