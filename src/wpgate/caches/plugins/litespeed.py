"""LiteSpeed Cache: its `litespeed_purge_all` action. From the command line the purge is queued, and
LiteSpeed sends it to the server with the next web request that reaches WordPress: wpgate makes one."""

from __future__ import annotations

import secrets

from wpgate.caches import CacheSite, PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.caches.plugins import PageCachePlugin


class LiteSpeedCache(PageCachePlugin):
    def after_purge(self, target: CacheSite) -> str | None:
        # A query string LiteSpeed has not cached, so that the request reaches WordPress.
        url = f"{target.site.url}/?wpgate-purge={secrets.token_hex(6)}"
        with cache_http.client() as http:
            response = cache_http.send(http, "GET", url, what="litespeed cache")
        if response.status_code >= 500:
            raise PurgeFailed(f"litespeed cache: the request that delivers the purge, {url}, answered "
                              f"{response.status_code}", {"layer": self.name})
        return f"GET {url} delivered the purge ({response.status_code})"
