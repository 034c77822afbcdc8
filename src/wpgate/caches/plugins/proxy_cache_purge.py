"""Proxy Cache Purge (varnish-http-purge): its purger's `purge_url(home_url() . '/?vhp-regex')`, the
plugin's own "purge everything", a regex PURGE with `X-Purge-Method: regex` to its Varnish."""

from wpgate.caches.plugins import PageCachePlugin


class ProxyCachePurge(PageCachePlugin):
    key = "proxy-cache-purge"
    name = "Proxy Cache Purge"
    calls = "VarnishPurger purge_url(home_url() . '/?vhp-regex')"
