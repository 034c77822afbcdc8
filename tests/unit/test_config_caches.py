"""The `caches:` and `opcache:` keys: every layer type, its options, and each bad value named with its key path."""

from pathlib import Path

import pytest

from wpgate import config
from wpgate.caches.cloudflare import CloudflareCache
from wpgate.errors import ConfigError

SITE = """
sites:
  production:
    path: /srv/www/example
    url: https://example.com
"""


def load(tmp_path: Path, extra: str) -> config.SiteConfig:
    path = tmp_path / "wpgate.yml"
    path.write_text(SITE + extra)
    return config.load(path).site("production")


def problems(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, extra)
    return "\n".join(caught.value.problems)


def test_every_cache_type_and_the_opcache_command_load(tmp_path):
    site = load(tmp_path, """
    opcache: {reload_command: "sudo systemctl reload 'php8.2-fpm'"}
    caches:
      - varnish: {url: http://127.0.0.1:6081/, method: BAN, convention: varnish-caching, headers: {X-Key: a}}
      - nginx: {purge_url: http://127.0.0.1/purge}
      - nginx: {cache_path: /var/cache/nginx/example/}
      - cloudflare: {zone: 023e105f4ecef8ad9ca31a8372d0c353, token_env: CF_API_TOKEN, urls: [/, https://example.com/a]}
      - fastly: {service: SU1Z0isxPaozGVKXdv0eY, token_env: FASTLY_API_TOKEN}
      - bunny: {pull_zone: 12345, token_env: BUNNY_API_KEY, api: http://127.0.0.1:9/}
      - webhook: {url: https://hooks.example.com/purge}
""")
    assert site.opcache.reload_command == ["sudo", "systemctl", "reload", "php8.2-fpm"]
    assert [entry.type for entry in site.caches] == ["varnish", "nginx", "nginx", "cloudflare", "fastly", "bunny",
                                                     "webhook"]
    assert site.caches[0].options.url == "http://127.0.0.1:6081"
    assert site.caches[2].options.cache_path == "/var/cache/nginx/example"
    assert site.caches[5].options.pull_zone == "12345" and site.caches[5].options.api == "http://127.0.0.1:9"
    assert site.caches[6].options.method == "POST" and site.caches[6].options.token_env is None
    assert set(site.secret_envs().values()) == {"CF_API_TOKEN", "FASTLY_API_TOKEN", "BUNNY_API_KEY"}


def test_defaults():
    site = config.SiteConfig(path="/srv/www", url="https://example.com", caches=[{"varnish": {"url": "http://v"}}])
    varnish = site.caches[0].options
    assert (varnish.method, varnish.convention, varnish.headers) == ("PURGE", "proxy-cache-purge", {})
    assert site.opcache.reload_command is None and site.opcache.url is None
    cloudflare = CloudflareCache(zone="z", token_env="T")
    assert cloudflare.urls == [] and cloudflare.api == "https://api.cloudflare.com/client/v4"


def test_bad_cache_options_are_all_listed_with_their_key_paths(tmp_path):
    found = problems(tmp_path, """
    opcache: {reload: systemctl reload php-fpm, reload_command: ""}
    caches:
      - varnish: {url: 127.0.0.1:6081, method: GET, convention: magic}
      - nginx: {purge_url: http://x/purge, cache_path: /var/cache/nginx}
      - nginx: {cache_path: /var}
      - cloudflare: {zone: "../../accounts", token_env: CF_API_TOKEN, urls: [shop]}
      - fastly: {service: s, token: abc}
      - bunny: {pull_zone: 1, token_env: "my secret key"}
      - webhook: {url: ftp://example.com, method: DELETE}
""")
    for expected in (
        "sites.production.opcache.reload: unknown key", "sites.production.opcache.reload_command: an empty command",
        "sites.production.caches[0].url: '127.0.0.1:6081' is not an http(s) URL",
        "sites.production.caches[0].method:", "sites.production.caches[0].convention:",
        "sites.production.caches[1]: give exactly one of purge_url",
        "sites.production.caches[2].cache_path: '/var' is too near the root",
        "sites.production.caches[3].zone: '../../accounts' is not an id",
        "sites.production.caches[3].urls: 'shop': give a path on the site",
        "sites.production.caches[4].token: unknown key", "sites.production.caches[4].token_env: required key is missing",
        "sites.production.caches[5].token_env: 'my secret key' is not an environment variable name",
        "sites.production.caches[6].url:", "sites.production.caches[6].method:",
    ):
        assert expected in found, f"{expected!r} missing from:\n{found}"


def test_an_nginx_cache_folder_holding_the_site_is_refused(tmp_path):
    found = problems(tmp_path, """
    caches:
      - nginx: {cache_path: /srv/www/example/wp-content/cache}
""")
    assert "holds or lies inside the site's root" in found and "wp-content/cache" in found
