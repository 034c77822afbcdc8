"""Page-cache plugins, detected on the site (never configured) and purged through their own public
functions or hooks. Each module here is one plugin: its `key` names the matching entry of
`wpgate_page_cache_plugins()` in the bridge, which detects the plugin and calls its purge."""

from __future__ import annotations

from wpgate.caches import CacheSite


class PageCachePlugin:
    """One page-cache plugin: its name, the bridge's key for it, what its purge calls."""

    key = ""
    name = ""
    calls = ""

    def after_purge(self, target: CacheSite) -> str | None:
        """Anything the purge needs once WordPress has run it (a web request, say); what was done."""
        return None


from wpgate.caches.plugins import (autoptimize, breeze, litespeed, nginx_helper, proxy_cache_purge,  # noqa: E402
                                   siteground, w3_total_cache, wp_fastest_cache, wp_rocket, wp_super_cache,
                                   wpgate_diskcache, wpgate_pagecache)

# In the order they are purged: plugins that serve whole pages first, then the asset optimisers
# and the plugins that pass a purge on to a server cache.
PLUGINS: list[PageCachePlugin] = [
    wp_rocket.WpRocket(),
    w3_total_cache.W3TotalCache(),
    wp_super_cache.WpSuperCache(),
    litespeed.LiteSpeedCache(),
    wp_fastest_cache.WpFastestCache(),
    siteground.SiteGroundOptimizer(),
    breeze.Breeze(),
    wpgate_pagecache.WpgatePageCache(),
    wpgate_diskcache.WpgateDiskCache(),
    autoptimize.Autoptimize(),
    nginx_helper.NginxHelper(),
    proxy_cache_purge.ProxyCachePurge(),
]
BY_KEY = {plugin.key: plugin for plugin in PLUGINS}
