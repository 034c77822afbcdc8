"""Page-cache plugins, detected on the site (never configured) and purged through their own public
functions or hooks: one table. Each row's `key` names the matching entry of `wpgate_page_cache_plugins()`
in the bridge (bridge/php/caches.php), which detects the plugin and calls its purge. A plugin whose purge
needs more than WordPress's call (LiteSpeed: a web request) is a subclass in its own module."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wpgate.caches import CacheSite


@dataclass(frozen=True)
class PageCachePlugin:
    """One page-cache plugin: the bridge's key for it, its name, what its purge calls."""

    key: str
    name: str
    calls: str

    def after_purge(self, target: "CacheSite") -> str | None:
        """Anything the purge needs once WordPress has run it (a web request, say); what was done."""
        return None


from wpgate.caches.plugins.litespeed import LiteSpeedCache  # noqa: E402  (a subclass of the above)

# In the order they are purged: plugins that serve whole pages first, then the asset optimisers
# and the plugins that pass a purge on to a server cache.
PLUGINS: list[PageCachePlugin] = [
    # clears the whole domain's cache
    PageCachePlugin("wp-rocket", "WP Rocket", "rocket_clean_domain()"),
    # flushes every cache it manages
    PageCachePlugin("w3-total-cache", "W3 Total Cache", "w3tc_flush_all()"),
    # deletes its cached pages
    PageCachePlugin("wp-super-cache", "WP Super Cache", "wp_cache_clear_cache()"),
    LiteSpeedCache("litespeed-cache", "LiteSpeed Cache",
                   "do_action('litespeed_purge_all'), then one web request to deliver it"),
    # minified files included
    PageCachePlugin("wp-fastest-cache", "WP Fastest Cache",
                    "$wp_fastest_cache->deleteCache(true), else wpfc_clear_all_cache(true)"),
    # purge_everything exists from 5.7.14 on
    PageCachePlugin("siteground-optimizer", "SiteGround Optimizer",
                    "sg_cachepress_purge_everything(), else sg_cachepress_purge_cache()"),
    # Cloudways
    PageCachePlugin("breeze", "Breeze", "do_action('breeze_clear_all_cache')"),
    # the test bed's fixture: writes pages to disk and serves them back, as real page caches do
    PageCachePlugin("wpgate-pagecache", "wpgate Page Cache", "wpgate_pagecache_purge_all()"),
    # the test bed's fixture: an advanced-cache.php drop-in that answers GETs from disk and exits, as WP Super
    # Cache's does
    PageCachePlugin("wpgate-diskcache", "wpgate Disk Cache", "wpgate_diskcache_clear_cache()"),
    # removes its optimised CSS and JS (pages pointing at them follow)
    PageCachePlugin("autoptimize", "Autoptimize", "autoptimizeCache::clearall()"),
    # purges the nginx (or Redis) page cache it drives
    PageCachePlugin("nginx-helper", "Nginx Helper", "do_action('rt_nginx_helper_purge_all')"),
    # varnish-http-purge: the plugin's own "purge everything", a regex PURGE with `X-Purge-Method: regex`
    PageCachePlugin("proxy-cache-purge", "Proxy Cache Purge", "VarnishPurger purge_url(home_url() . '/?vhp-regex')"),
]
