"""Nginx Helper: its `rt_nginx_helper_purge_all` action purges the nginx (or Redis) page cache it drives."""

from wpgate.caches.plugins import PageCachePlugin


class NginxHelper(PageCachePlugin):
    key = "nginx-helper"
    name = "Nginx Helper"
    calls = "do_action('rt_nginx_helper_purge_all')"
