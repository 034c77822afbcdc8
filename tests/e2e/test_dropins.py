"""Page-cache drop-ins on production: with WP_CACHE true and the fixture Disk Cache's advanced-cache.php
(which, as WP Super Cache's does, answers a GET from its files and exits before WordPress loads), every
`wpgate` command that loads WordPress still works on a site whose cache is primed, the cache is purged
through the plugin's own function, and a drop-in that ends PHP anyway is named in one line."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.helpers import assert_one_line_error, site_entry, wpgate, write_config, write_qa
from wpgate.testbed import fixtures
from wpgate.testbed.bed import http_get

pytestmark = pytest.mark.e2e

OLD = {"wpgate-hello": "1.0.0", "wpgate-diskcache": "1.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-diskcache": "1.0.0"}


def enable_wp_cache(site) -> None:
    config = site.path / "wp-config.php"
    text = config.read_text()
    config.write_text(text.replace("/* That's all, stop editing!", "define( 'WP_CACHE', true );\n\n/* That's all, stop editing!", 1))


def prime(site) -> str:
    """Visit the home page as visitors do until the drop-in answers it from disk; that answer. (The web
    server may keep compiling the wp-config.php it had for a moment after WP_CACHE is written.)"""
    for _ in range(40):
        status, headers, body = http_get(site.url + "/")
        assert status == 200
        if headers.get("X-Wpgate-Disk-Cache") == "HIT":
            return body
        time.sleep(0.25)
    raise AssertionError("the fixture's drop-in never answered / from its cache")


@pytest.fixture(scope="module")
def cached(bed, tmp_path_factory):
    folder = tmp_path_factory.mktemp("dropins")
    staging = bed.create_site("dropins-staging", core="6.5.5", plugins=NEW)
    production = bed.create_site("dropins-prod", core="6.5.5", plugins=OLD)
    enable_wp_cache(production)
    config = write_config(folder, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    yield {"config": config, "folder": folder, "production": production}
    for site in (staging, production):
        site.stop()


def test_every_command_works_while_the_drop_in_serves_the_home_page_from_disk(cached):
    site, config, folder = cached["production"], cached["config"], cached["folder"]
    body = prime(site)
    assert (site.path / "wp-content/advanced-cache.php").is_file()
    assert fixtures.plugin_marker("wpgate-hello", "1.0.0") in body

    inventory = wpgate("inventory", "production", "--json", config=config)
    assert inventory.returncode == 0, inventory.stderr
    assert {"file": "advanced-cache.php", "name": "wpgate Disk Cache (drop-in)", "version": "1.0.0"} in \
        json.loads(inventory.stdout)["dropins"]

    release = folder / "release.yml"
    plan = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config)
    assert plan.returncode == 0, plan.stderr
    assert wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0

    prime(site)
    deploy = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config)
    assert deploy.returncode == 0, deploy.stderr
    gates = {gate["step"]: gate for gate in json.loads(deploy.stdout)["gates"]}
    assert "wpgate_diskcache_clear_cache()" in json.dumps(gates["6.5"]["evidence"])
    # Purged by the plugin's own function: the page visitors get now is the new release's.
    assert fixtures.plugin_marker("wpgate-hello", "1.2.0") in prime(site)

    purge = wpgate("purge", "production", "--json", config=config)
    assert purge.returncode == 0, purge.stderr
    assert "wpgate_diskcache_clear_cache()" in purge.stdout and "1 cached page(s) removed" in purge.stdout

    prime(site)
    check = wpgate("check", "production", "--json", config=config)
    assert check.returncode == 0, check.stderr
    # The drop-in is still there and still serves visitors: wpgate went round it, not through it.
    assert http_get(site.url + "/")[1].get("X-Wpgate-Disk-Cache") == "HIT"


def test_a_drop_in_that_ends_php_anyway_is_named_in_one_line(cached):
    site, config = cached["production"], cached["config"]
    dropin = site.path / "wp-content/object-cache.php"
    dropin.write_text("<?php\n/**\n * Plugin Name: Stubborn Object Cache\n */\nexit;\n")
    try:
        result = wpgate("inventory", "production", config=config)
    finally:
        dropin.unlink()
    assert_one_line_error(result, 2, "the drop-in wp-content/object-cache.php (Stubborn Object Cache) ended PHP")
