"""WP Rocket: `rocket_clean_domain()` clears the whole domain's cache."""

from wpgate.caches.plugins import PageCachePlugin


class WpRocket(PageCachePlugin):
    key = "wp-rocket"
    name = "WP Rocket"
    calls = "rocket_clean_domain()"
