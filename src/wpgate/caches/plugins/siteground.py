"""SiteGround Optimizer: `sg_cachepress_purge_everything()` where it exists (5.7.14 on), else `sg_cachepress_purge_cache()`."""

from wpgate.caches.plugins import PageCachePlugin


class SiteGroundOptimizer(PageCachePlugin):
    key = "siteground-optimizer"
    name = "SiteGround Optimizer"
    calls = "sg_cachepress_purge_everything(), else sg_cachepress_purge_cache()"
