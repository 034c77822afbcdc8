"""wpgate Page Cache, the test bed's fixture: writes pages to disk and serves them back, as real
page caches do; `wpgate_pagecache_purge_all()` empties its folder."""

from wpgate.caches.plugins import PageCachePlugin


class WpgatePageCache(PageCachePlugin):
    key = "wpgate-pagecache"
    name = "wpgate Page Cache"
    calls = "wpgate_pagecache_purge_all()"
