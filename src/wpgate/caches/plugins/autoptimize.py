"""Autoptimize: `autoptimizeCache::clearall()` removes its optimised CSS and JS (pages pointing at them follow)."""

from wpgate.caches.plugins import PageCachePlugin


class Autoptimize(PageCachePlugin):
    key = "autoptimize"
    name = "Autoptimize"
    calls = "autoptimizeCache::clearall()"
