"""The apply primitives against real WordPress sites: plugins, themes and core installed from local
zips with WordPress's own upgrader classes, the database upgrade, and every way it can fail."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from wpgate import artifacts as artifact_files
from wpgate import inventory, upgrader
from wpgate.bridge import Bridge
from wpgate.config import SiteConfig
from wpgate.errors import BridgeError
from wpgate.testbed import core_dir, fixtures
from wpgate.testbed.bed import http_get
from wpgate.transports import LocalTransport

pytestmark = pytest.mark.e2e

# Records, in the option wpgate_observed, what WordPress's upgrader hooks saw.
OBSERVER = r"""<?php
function wpgate_observe( $event, $extra ) {
	$seen   = get_option( 'wpgate_observed', array() );
	$seen[] = array(
		'event'       => $event,
		'maintenance' => file_exists( ABSPATH . '.maintenance' ),
		'action'      => isset( $extra['action'] ) ? $extra['action'] : null,
		'user'        => get_current_user_id(),
	);
	update_option( 'wpgate_observed', $seen, false );
}
add_filter( 'upgrader_post_install', function ( $response, $extra ) { wpgate_observe( 'post_install', $extra ); return $response; }, 10, 2 );
add_action( 'upgrader_process_complete', function ( $upgrader, $extra ) { wpgate_observe( 'process_complete', $extra ); }, 10, 2 );
"""

CORE_ROOT_FILES = re.compile(r"^(index\.php|xmlrpc\.php|license\.txt|readme\.html|wp-config-sample\.php|wp-(?!config\.php$)[a-z-]+\.php)$")


# --- building artifacts and packages -------------------------------------------------------------

def zip_folder(folder: Path, zip_path: Path, top: str) -> Path:
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return zip_path


def plugin_zip(folder: Path, slug: str, version: str, *, top: str | None = None) -> Path:
    source = fixtures.write_plugin(folder / f"source-{slug}-{version}", slug, version)
    return zip_folder(source, folder / f"{top or slug}-{version}.zip", top or slug)


def theme_zip(folder: Path, slug: str, version: str) -> Path:
    source = fixtures.write_theme(folder / f"source-{slug}-{version}", slug, version)
    return zip_folder(source, folder / f"{slug}-{version}.zip", slug)


def core_zip(folder: Path, version: str, *, extra: dict[str, bytes] | None = None) -> Path:
    """WordPress `version` as wpgate ships it: wordpress/ with the core files only."""
    root = core_dir(version)
    zip_path = folder / f"wordpress-{version}{'-extra' if extra else ''}.zip"
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(root.iterdir()):
            if path.is_dir() and path.name in ("wp-admin", "wp-includes"):
                files = sorted(p for p in path.rglob("*") if p.is_file())
            elif path.is_file() and CORE_ROOT_FILES.match(path.name):
                files = [path]
            else:
                continue
            for file in files:
                archive.write(file, f"wordpress/{file.relative_to(root).as_posix()}")
        for name, data in (extra or {}).items():
            archive.writestr(f"wordpress/{name}", data)
    return zip_path


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def host_packages(tmp_path_factory) -> Path:
    """Where wpgate puts package copies on the site's host (here: this machine)."""
    return tmp_path_factory.mktemp("host-packages")


@pytest.fixture
def package(host_packages):
    """A fresh copy of an artifact at a package path on the host: the upgrader consumes it."""
    def copy(artifact: Path) -> str:
        target = host_packages / f"{artifact.stem}.install.zip"
        shutil.copyfile(artifact, target)
        return str(target)
    return copy


def bridge_for(site) -> Bridge:
    return Bridge(site.name, SiteConfig(path=str(site.path), url=site.url), LocalTransport())


def php_value(site, expression: str):
    """A PHP expression's value, evaluated inside the site's WordPress."""
    output = site.php(f'echo "\\n", json_encode({expression});')
    return json.loads(output.strip().splitlines()[-1])


def observed(site) -> list[dict]:
    """What the upgrader hooks saw since the last call."""
    seen = php_value(site, "get_option('wpgate_observed', array())")
    site.php("delete_option('wpgate_observed');")
    return seen


def assert_clean(site) -> None:
    state = upgrader.site_state(bridge_for(site))
    assert state == {"maintenance": False, "core_updater_lock": False, "upgrade_leftovers": []}
    assert not (site.path / ".maintenance").exists()


def front_page(site, *expected: str, wait: float = 6.0) -> str:
    """The home page as a visitor gets it, once it shows every `expected` text. The web server's
    OPcache looks at a file's time at most every 2 s (revalidate_freq), so new code can take that
    long to show; purging it at once is the caches gate's work, not the upgrader's."""
    deadline = time.monotonic() + wait
    while True:
        status, _, body = http_get(site.url + "/")
        assert status == 200, body[-500:]
        missing = [text for text in expected if text not in body]
        if not missing:
            return body
        assert time.monotonic() < deadline, f"{missing} not on the home page:\n{body[-1500:]}"
        time.sleep(0.25)


# --- plugins and themes --------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["6.1.9", "6.5.5"])
def site(request, bed):
    """A site per core version on each side of WordPress 6.3, which added temporary backups."""
    core = request.param
    made = bed.create_site(
        "upgrader-" + core.replace(".", ""), core=core,
        plugins={"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0",
                 "wpgate-shop": "1.0.0", "wpgate-clock": "1.0.0", "wpgate-faulty": "1.0.0"},
        active_plugins=["wpgate-hello", "wpgate-shop", "wpgate-clock", "wpgate-faulty"],
        themes={"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}, theme="wpgate-child")
    mu_plugins = made.path / "wp-content" / "mu-plugins"
    mu_plugins.mkdir()
    (mu_plugins / "wpgate-observer.php").write_text(OBSERVER)
    yield made
    made.stop()


def test_an_active_plugin_is_updated_in_place_and_stays_active(site, artifacts, package):
    site.install_plugin("wpgate-hello", "1.0.0")
    observed(site)
    bridge = bridge_for(site)
    install_copy = package(plugin_zip(artifacts, "wpgate-hello", "1.2.0"))

    result = upgrader.install_component(bridge, kind="plugin", slug="wpgate-hello", package=install_copy,
                                        version="1.2.0")

    assert result["method"] == "bulk_upgrade"
    assert (result["version"], result["file"], result["active"]) == ("1.2.0", "wpgate-hello/wpgate-hello.php", True)
    assert result["user"] == site.admin_user
    read = inventory.read(bridge).plugins["wpgate-hello"]
    assert (read["version"], read["active"]) == ("1.2.0", True)
    folder = site.plugins_dir / "wpgate-hello"
    assert not (folder / "includes" / "legacy.php").exists()  # the old version's files are gone
    assert (folder / "includes" / "extra.php").is_file()
    assert not Path(install_copy).exists()  # the package copy is consumed
    assert_clean(site)
    front_page(site, fixtures.plugin_marker("wpgate-hello", "1.2.0"))
    # The Dashboard's way: maintenance mode while the active plugin's files change, off before
    # upgrader_process_complete fires with action "update", as an administrator.
    seen = observed(site)
    assert [(s["event"], s["maintenance"]) for s in seen] == [("post_install", True), ("process_complete", False)]
    assert seen[-1]["action"] == "update" and seen[-1]["user"] > 0


def test_an_inactive_plugin_stays_inactive_and_needs_no_maintenance_mode(site, artifacts, package):
    site.install_plugin("wpgate-notes", "1.0.0")
    observed(site)
    bridge = bridge_for(site)

    result = upgrader.install_component(bridge, kind="plugin", slug="wpgate-notes",
                                        package=package(plugin_zip(artifacts, "wpgate-notes", "1.1.0")),
                                        version="1.1.0")

    assert (result["method"], result["version"], result["active"]) == ("bulk_upgrade", "1.1.0", False)
    read = inventory.read(bridge).plugins["wpgate-notes"]
    assert (read["version"], read["active"]) == ("1.1.0", False)
    assert [(s["event"], s["maintenance"]) for s in observed(site)] == [("post_install", False),
                                                                        ("process_complete", False)]
    assert_clean(site)


def test_upgrader_hooks_fire_and_the_migration_runs_on_the_next_load(site, artifacts, package):
    site.install_plugin("wpgate-shop", "1.0.0")
    site.php("delete_option('wpgate_shop_upgraded_by_upgrader'); delete_option('wpgate_shop_db_version');")

    upgrader.install_component(bridge_for(site), kind="plugin", slug="wpgate-shop",
                               package=package(plugin_zip(artifacts, "wpgate-shop", "2.0.0")), version="2.0.0")

    # Read from the database directly: loading WordPress would run the migration.
    options = dict(line.split("\t") for line in site.sql(
        "SELECT option_name, option_value FROM wp_options WHERE option_name LIKE 'wpgate_shop_%'").splitlines())
    assert options == {"wpgate_shop_upgraded_by_upgrader": "2.0.0"}  # fired, by the old code, for the new files
    front_page(site, fixtures.plugin_marker("wpgate-shop", "2.0.0"))  # the next load migrates
    assert site.sql("SELECT option_value FROM wp_options WHERE option_name = 'wpgate_shop_db_version'").strip() == "2"
    assert "migrated by wpgate-shop 2.0.0" in site.sql("SELECT item FROM wp_wpgate_shop_orders")


def test_a_plugin_moved_aside_is_installed_and_keeps_its_active_state(site, artifacts, package, tmp_path):
    site.install_plugin("wpgate-clock", "1.0.0")
    observed(site)
    shutil.move(site.plugins_dir / "wpgate-clock", tmp_path / "wpgate-clock")  # as wpgate keeps it aside
    bridge = bridge_for(site)

    result = upgrader.install_component(bridge, kind="plugin", slug="wpgate-clock",
                                        package=package(plugin_zip(artifacts, "wpgate-clock", "1.1.0")),
                                        version="1.1.0")

    assert (result["method"], result["version"], result["active"]) == ("install", "1.1.0", True)
    assert "wpgate-clock/wpgate-clock.php" in php_value(site, "get_option('active_plugins')")
    read = inventory.read(bridge).plugins["wpgate-clock"]
    assert (read["version"], read["active"]) == ("1.1.0", True)
    # Only WordPress's own completion of an install fired; nothing pretended to be an update.
    assert [(s["event"], s["action"]) for s in observed(site)] == [("post_install", "install"), ("process_complete", "install")]
    assert_clean(site)
    front_page(site, fixtures.plugin_marker("wpgate-clock", "1.1.0"))


def test_the_parent_then_the_child_theme_of_the_active_theme(site, artifacts, package):
    site.install_theme("wpgate-parent", "1.0.0")
    site.install_theme("wpgate-child", "1.0.0")
    observed(site)
    bridge = bridge_for(site)

    parent = upgrader.install_component(bridge, kind="theme", slug="wpgate-parent",
                                        package=package(theme_zip(artifacts, "wpgate-parent", "1.1.0")),
                                        version="1.1.0")
    child = upgrader.install_component(bridge, kind="theme", slug="wpgate-child",
                                       package=package(theme_zip(artifacts, "wpgate-child", "1.1.0")),
                                       version="1.1.0")

    assert (parent["method"], parent["version"], parent["active"]) == ("bulk_upgrade", "1.1.0", False)
    assert (child["method"], child["version"], child["active"], child["parent"]) == (
        "bulk_upgrade", "1.1.0", True, "wpgate-parent")
    themes = inventory.read(bridge).themes
    assert (themes["wpgate-parent"]["version"], themes["wpgate-child"]["version"]) == ("1.1.0", "1.1.0")
    assert themes["wpgate-child"]["active"] is True
    assert php_value(site, "array(get_option('stylesheet'), get_option('template'))") == ["wpgate-child", "wpgate-parent"]
    # Both are part of the active theme, so each ran in maintenance mode.
    assert [(s["event"], s["maintenance"], s["action"]) for s in observed(site)] == [
        ("post_install", True, None), ("process_complete", False, "update")] * 2
    assert_clean(site)
    front_page(site, fixtures.theme_marker("wpgate-parent", "1.1.0"), fixtures.theme_marker("wpgate-child", "1.1.0"))


def test_a_theme_moved_aside_is_installed_and_the_active_theme_is_unchanged(site, artifacts, package, tmp_path):
    site.install_theme("wpgate-parent", "1.1.0")
    shutil.move(site.themes_dir / "wpgate-parent", tmp_path / "wpgate-parent")

    result = upgrader.install_component(bridge_for(site), kind="theme", slug="wpgate-parent",
                                        package=package(theme_zip(artifacts, "wpgate-parent", "1.2.0")),
                                        version="1.2.0")

    assert (result["method"], result["version"]) == ("install", "1.2.0")
    assert php_value(site, "array(get_option('stylesheet'), get_option('template'))") == ["wpgate-child", "wpgate-parent"]
    front_page(site, fixtures.theme_marker("wpgate-parent", "1.2.0"))
    assert_clean(site)


def swap_for(site, folder: Path, kind: str, slug: str, artifact: Path, files: dict | None = None) -> upgrader.Swap:
    """A swap as apply asks for it: staged and aside in a run's folder beside the site (same filesystem)."""
    live = (site.plugins_dir if kind == "plugin" else site.themes_dir) / slug
    return upgrader.Swap(live=str(live), staged=str(folder / "new" / f"{kind}s" / slug),
                         aside=str(folder / f"{kind}s" / slug), files=files or artifact_files.file_hashes(artifact))


def test_a_plugin_is_swapped_in_with_no_maintenance_and_its_hooks_fire_as_for_an_update(site, artifacts, package,
                                                                                         tmp_path):
    """The live folder moves aside whole (a rename: the same folder, with what the plugin wrote in it), the
    checked new one takes its place, WordPress writes no maintenance file, and upgrader_process_complete
    fires with action "update" once the new files are live (wpgate-shop's own hook reads its new header)."""
    site.install_plugin("wpgate-shop", "1.0.0")
    site.php("delete_option('wpgate_shop_upgraded_by_upgrader');")
    live = site.plugins_dir / "wpgate-shop"
    (live / "written-by-the-plugin.txt").write_text("a log the plugin keeps in its own folder")
    inode = live.stat().st_ino
    observed(site)
    zip_path = plugin_zip(artifacts, "wpgate-shop", "2.0.0")
    swap = swap_for(site, tmp_path / "run", "plugin", "wpgate-shop", zip_path)

    result = upgrader.install_component(bridge_for(site), kind="plugin", slug="wpgate-shop",
                                        package=package(zip_path), version="2.0.0", swap=swap)

    assert (result["method"], result["version"], result["active"]) == ("bulk_upgrade", "2.0.0", True)
    assert result["swapped"] is True and result["maintenance"] is False
    seen = observed(site)
    assert [(s["event"], s["maintenance"]) for s in seen] == [("post_install", False), ("process_complete", False)]
    assert seen[-1]["action"] == "update" and seen[-1]["user"] > 0
    options = dict(line.split("\t") for line in site.sql(
        "SELECT option_name, option_value FROM wp_options WHERE option_name = 'wpgate_shop_upgraded_by_upgrader'"
    ).splitlines())
    assert options == {"wpgate_shop_upgraded_by_upgrader": "2.0.0"}
    aside = Path(swap.aside)
    assert aside.stat().st_ino == inode and (aside / "written-by-the-plugin.txt").is_file()
    assert "Version:           1.0.0" in (aside / "wpgate-shop.php").read_text()
    assert not Path(swap.staged).exists() and not (live / "written-by-the-plugin.txt").exists()
    assert {p.relative_to(live).as_posix() for p in live.rglob("*") if p.is_file()} == set(swap.files)
    assert "wpgate-shop/wpgate-shop.php" in php_value(site, "get_option('active_plugins')")
    assert_clean(site)
    front_page(site, fixtures.plugin_marker("wpgate-shop", "2.0.0"))


def test_the_active_child_theme_is_swapped_in_and_stays_the_active_theme(site, artifacts, package, tmp_path):
    """Theme_Upgrader switches the active theme to the folder it installed into when that folder's name is not
    the theme's: the staged folder's name must never reach it."""
    site.install_theme("wpgate-parent", "1.0.0")
    site.install_theme("wpgate-child", "1.0.0")
    observed(site)
    zip_path = theme_zip(artifacts, "wpgate-child", "1.1.0")
    swap = swap_for(site, tmp_path / "run", "theme", "wpgate-child", zip_path)

    result = upgrader.install_component(bridge_for(site), kind="theme", slug="wpgate-child",
                                        package=package(zip_path), version="1.1.0", swap=swap)

    assert (result["method"], result["version"], result["active"], result["swapped"]) == (
        "bulk_upgrade", "1.1.0", True, True)
    assert php_value(site, "array(get_option('stylesheet'), get_option('template'))") == ["wpgate-child", "wpgate-parent"]
    assert [(s["event"], s["maintenance"], s["action"]) for s in observed(site)] == [
        ("post_install", False, None), ("process_complete", False, "update")]
    assert "Version: 1.0.0" in (Path(swap.aside) / "style.css").read_text()
    assert_clean(site)
    front_page(site, fixtures.theme_marker("wpgate-child", "1.1.0"))


def test_an_unpacked_plugin_that_differs_from_the_artifact_is_never_swapped_in(site, artifacts, package, tmp_path):
    site.install_plugin("wpgate-notes", "1.0.0")
    live = site.plugins_dir / "wpgate-notes"
    inode = live.stat().st_ino
    zip_path = plugin_zip(artifacts, "wpgate-notes", "1.1.0")
    files = {**artifact_files.file_hashes(zip_path), "wpgate-notes.php": "0" * 64}
    swap = swap_for(site, tmp_path / "run", "plugin", "wpgate-notes", zip_path, files)

    with pytest.raises(upgrader.UpgradeError) as raised:
        upgrader.install_component(bridge_for(site), kind="plugin", slug="wpgate-notes",
                                   package=package(zip_path), version="1.1.0", swap=swap)

    message = str(raised.value)
    assert "1 unpacked files differ from the artifact's, e.g. wpgate-notes.php" in message, message
    assert live.stat().st_ino == inode
    assert inventory.read(bridge_for(site)).plugins["wpgate-notes"]["version"] == "1.0.0"
    assert not Path(swap.aside).exists() and not Path(swap.staged).exists()
    assert_clean(site)


def test_only_the_asked_plugin_is_updated_and_other_offers_are_left_as_they_were(site, artifacts, package):
    """An offer for another plugin in update_plugins is not acted on, and stays as it was; a stored
    offer for the plugin just installed is gone (it would be stale)."""
    site.install_plugin("wpgate-hello", "1.0.0")
    site.install_plugin("wpgate-seo", "3.0.0")
    seo_package = package(plugin_zip(artifacts, "wpgate-seo", "3.1.0"))
    site.php(f"""
        $offers = new stdClass();
        $offers->last_checked = 1700000000;
        $offers->checked = array('wpgate-seo/wpgate-seo.php' => '3.0.0', 'wpgate-hello/wpgate-hello.php' => '1.0.0');
        $offers->response = array(
            'wpgate-seo/wpgate-seo.php' => (object) array('slug' => 'wpgate-seo', 'plugin' => 'wpgate-seo/wpgate-seo.php',
                'new_version' => '3.1.0', 'url' => '', 'package' => {json.dumps(seo_package)}),
            'wpgate-hello/wpgate-hello.php' => (object) array('slug' => 'wpgate-hello', 'plugin' => 'wpgate-hello/wpgate-hello.php',
                'new_version' => '9.9.9', 'url' => '', 'package' => 'http://127.0.0.1:9/nowhere.zip'),
        );
        $offers->no_update = array();
        $offers->translations = array();
        set_site_transient('update_plugins', $offers);
    """)
    before = php_value(site, "get_site_transient('update_plugins')")

    upgrader.install_component(bridge_for(site), kind="plugin", slug="wpgate-hello",
                               package=package(plugin_zip(artifacts, "wpgate-hello", "1.2.0")), version="1.2.0")

    plugins = inventory.read(bridge_for(site)).plugins
    assert (plugins["wpgate-hello"]["version"], plugins["wpgate-seo"]["version"]) == ("1.2.0", "3.0.0")
    assert Path(seo_package).is_file()  # never handed to the upgrader
    after = php_value(site, "get_site_transient('update_plugins')")
    del before["response"]["wpgate-hello/wpgate-hello.php"]
    assert after == before
    site.php("delete_site_transient('update_plugins');")


@pytest.mark.parametrize("case", ["missing package", "corrupt zip", "other slug", "other version",
                                  "package in wp-content/upgrade"])
def test_a_bad_package_is_refused_and_the_site_is_left_as_it_was(site, artifacts, package, case):
    site.install_plugin("wpgate-faulty", "1.0.0")
    good = plugin_zip(artifacts, "wpgate-faulty", "1.1.0")
    if case == "missing package":
        path, expected = str(artifacts / "no-such-package.zip"), "no package to install at"
    elif case == "corrupt zip":
        corrupt = artifacts / "corrupt.zip"
        corrupt.write_bytes(b"PK\x03\x04" + good.read_bytes()[4:200])
        path, expected = package(corrupt), "is not a readable zip archive"
    elif case == "other slug":
        path = package(plugin_zip(artifacts, "wpgate-faulty", "1.1.0", top="wpgate-other"))
        expected = "top folder is wpgate-other/, not wpgate-faulty/"
    elif case == "other version":
        path, expected = package(good), "the package holds version 1.1.0, not 1.2.0"
    else:
        inside = site.path / "wp-content" / "upgrade"
        inside.mkdir(exist_ok=True)
        path, expected = str(inside / "faulty.zip"), "must not be inside"
        shutil.copyfile(good, path)
    version = "1.2.0" if case == "other version" else "1.1.0"

    with pytest.raises(upgrader.UpgradeError) as raised:
        upgrader.install_component(bridge_for(site), kind="plugin", slug="wpgate-faulty", package=path,
                                   version=version)

    message = str(raised.value)
    assert isinstance(raised.value, BridgeError)
    assert expected in message and "\n" not in message, message
    assert "wpgate-faulty" in message
    if case != "package in wp-content/upgrade":  # refused before it is taken as this call's copy
        assert not Path(path).exists()  # consumed, even when refused
    read = inventory.read(bridge_for(site)).plugins["wpgate-faulty"]
    assert (read["version"], read["active"]) == ("1.0.0", True)
    shutil.rmtree(site.path / "wp-content" / "upgrade", ignore_errors=True)
    assert_clean(site)
    front_page(site)


def test_a_fatal_error_in_a_plugins_upgrader_hook_leaves_no_maintenance_mode(site, artifacts, package):
    site.install_plugin("wpgate-faulty", "1.0.0")
    breaker = site.path / "wp-content" / "mu-plugins" / "wpgate-breaker.php"
    breaker.write_text("<?php\nadd_filter( 'upgrader_post_install', function () { wpgate_no_such_function(); } );\n")
    try:
        with pytest.raises(upgrader.UpgradeError) as raised:
            upgrader.install_component(bridge_for(site), kind="plugin", slug="wpgate-faulty",
                                       package=package(plugin_zip(artifacts, "wpgate-faulty", "1.1.0")),
                                       version="1.1.0")
    finally:
        breaker.unlink()
    message = str(raised.value)
    assert message.startswith("installing plugin wpgate-faulty 1.1.0: ")
    assert "wpgate_no_such_function" in message and "wpgate-breaker.php" in message
    state = upgrader.site_state(bridge_for(site))
    assert state["maintenance"] is False  # it was on when PHP died: the bridge's cleanup removed it
    # WordPress 6.3+ leaves the old version in its temporary backup when PHP dies; it is reported.
    leftovers = [Path(p).relative_to(site.path / "wp-content").as_posix() for p in state["upgrade_leftovers"]]
    has_temp_backups = tuple(int(part) for part in site.core.split(".")) >= (6, 3)
    assert leftovers == (["upgrade-temp-backup/plugins/wpgate-faulty"] if has_temp_backups else [])
    shutil.rmtree(site.path / "wp-content" / "upgrade-temp-backup", ignore_errors=True)
    front_page(site)


def test_maintenance_off_removes_the_file_without_loading_wordpress(site):
    (site.path / ".maintenance").write_text("<?php $upgrading = time(); ?>")
    assert upgrader.site_state(bridge_for(site))["maintenance"] is True
    assert upgrader.maintenance_off(bridge_for(site), None) is True
    assert not (site.path / ".maintenance").exists()
    assert upgrader.maintenance_off(bridge_for(site), None) is False


def test_maintenance_shows_wpgates_page_which_needs_no_more_of_core_and_keeps_the_sites_own(site):
    """While core's files change, the maintenance page must not depend on them: wp_maintenance() shows
    WP_CONTENT_DIR/maintenance.php, loading nothing of core past it, where WordPress's own page loads
    functions.php and the translation files (gone or of the other version half-way through a swap)."""
    bridge, content = bridge_for(site), str(site.path / "wp-content")
    page = site.path / "wp-content" / "maintenance.php"
    assert upgrader.maintenance_on_drained(bridge, lambda: {"how": "drained"}, content) == {"how": "drained"}
    assert upgrader.MAINTENANCE_PAGE_MARK in page.read_text()
    # The web server's PHP compiles from the disk again (an OPcache reset, as after each update), and core's
    # translation files are not where they were (as between the two renames of a swap).
    reset = site.path / "wpgate-test-reset.php"
    reset.write_text("<?php echo function_exists( 'opcache_reset' ) && opcache_reset() ? 'reset' : 'none';")
    try:
        assert http_get(site.url + "/wpgate-test-reset.php")[0] == 200
    finally:
        reset.unlink()
    translations = site.path / "wp-includes" / "pomo"
    translations.rename(site.path / "pomo-away")
    try:
        status, headers, body = http_get(site.url + "/")
    finally:
        (site.path / "pomo-away").rename(translations)
    assert status == 503 and "Briefly unavailable for scheduled maintenance" in body, (status, body[:300])
    assert {key.lower() for key in headers} >= {"retry-after"}
    assert "maintenance.php" not in {d["file"] for d in inventory.read(bridge).data["dropins"]}  # not the site's
    assert upgrader.maintenance_off(bridge, content) is True
    assert not page.exists() and not (site.path / ".maintenance").exists()
    # A maintenance.php of the site's own is left as it is.
    page.write_text("<?php echo 'the site\'s own';")
    try:
        upgrader.maintenance_on_drained(bridge, lambda: {}, content)
        assert page.read_text() == "<?php echo 'the site\'s own';"
        upgrader.maintenance_off(bridge, content)
        assert page.exists()
    finally:
        page.unlink()
        upgrader.maintenance_off(bridge, content)


def test_an_unknown_kind_is_a_programming_error(site):
    with pytest.raises(ValueError):
        upgrader.install_component(bridge_for(site), kind="mu-plugin", slug="x", package="/x.zip", version="1")


# --- core ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def core_6_5_5(artifacts) -> Path:
    return core_zip(artifacts, "6.5.5")


def core_update(site, artifact: Path, package) -> tuple[dict, dict, dict, dict]:
    """Install core from the artifact as the apply gate does; (install, database, before, after)."""
    bridge = bridge_for(site)
    before = inventory.read(bridge).data
    installed = upgrader.install_component(bridge, kind="core", slug="wordpress", package=package(artifact),
                                           version="6.5.5")
    # Nothing ran the database upgrade yet: update_core()'s loopback request was answered by wpgate.
    assert installed["db_upgrade_request_blocked"] is True
    assert installed["db_version"] == before["core"]["db_version"] < installed["files_db_version"]
    database = upgrader.upgrade_database(bridge)
    after = inventory.read(bridge).data
    return installed, database, before, after


def assert_core_updated(site, installed, database, before, after, config_before: bytes, themes_before: list[str]):
    assert (installed["from"], installed["version"]) == (before["core"]["version"], "6.5.5")
    version_php = (site.path / "wp-includes" / "version.php").read_text()
    assert "$wp_version = '6.5.5';" in version_php
    files_db_version = int(re.search(r"\$wp_db_version = (\d+);", version_php).group(1))
    assert database["from"] == before["core"]["db_version"]
    assert database["to"] == files_db_version == after["core"]["db_version"] == after["core"]["files_db_version"]
    assert (site.path / "wp-config.php").read_bytes() == config_before
    # Nothing outside the release: no new bundled theme, plugins and themes as they were.
    assert sorted(p.name for p in site.themes_dir.iterdir()) == themes_before
    assert after["plugins"] == before["plugins"] and after["themes"] == before["themes"]
    assert_clean(site)
    front_page(site, '<meta name="generator" content="WordPress 6.5.5"', fixtures.plugin_marker("wpgate-hello", "1.0.0"))
    status, _, _ = http_get(site.url + "/wp-login.php")
    assert status == 200


def test_core_6_1_9_to_6_5_5_on_nginx_and_php_fpm(bed, core_6_5_5, package):
    site = bed.create_site("upgrader-core-nginx", core="6.1.9", server="nginx", plugins={"wpgate-hello": "1.0.0"})
    config_before = (site.path / "wp-config.php").read_bytes()
    themes_before = sorted(p.name for p in site.themes_dir.iterdir())
    assert "twentytwentyfour" not in themes_before  # 6.4's new bundled theme, in 6.5.5's new_bundled list

    installed, database, before, after = core_update(site, core_6_5_5, package)

    assert before["core"]["version"] == "6.1.9" and after["core"]["version"] == "6.5.5"
    assert database["upgraded"] is True and "multisite" not in database
    assert_core_updated(site, installed, database, before, after, config_before, themes_before)
    assert upgrader.upgrade_database(bridge_for(site))["upgraded"] is False  # nothing left to do
    site.stop()


@pytest.fixture(scope="module")
def site_6_4_5(bed):
    """A 6.4.5 site that the refusals below leave as it was (each checks so): any order of them sees 6.4.5."""
    made = bed.create_site("upgrader-core-php", core="6.4.5", plugins={"wpgate-hello": "1.0.0"})
    yield made
    made.stop()


def test_core_6_4_5_to_6_5_5_on_the_php_builtin_server(bed, core_6_5_5, package):
    # A site of its own: the update changes it for good.
    site = bed.create_site("upgrader-core-update", core="6.4.5", plugins={"wpgate-hello": "1.0.0"})
    config_before = (site.path / "wp-config.php").read_bytes()
    themes_before = sorted(p.name for p in site.themes_dir.iterdir())

    installed, database, before, after = core_update(site, core_6_5_5, package)

    assert before["core"]["version"] == "6.4.5" and after["core"]["version"] == "6.5.5"
    assert_core_updated(site, installed, database, before, after, config_before, themes_before)
    site.stop()


def test_a_core_package_with_wp_config_or_wp_content_is_refused(site_6_4_5, artifacts, package):
    site = site_6_4_5
    version_before = inventory.read(bridge_for(site)).core_version
    config_before = (site.path / "wp-config.php").read_bytes()
    for extra, expected in (({"wp-config.php": b"<?php // not this site's\n"}, "carries a wp-config.php"),
                            ({"wp-content/themes/intruder/style.css": b"/* Theme Name: x */"}, "carries wp-content/")):
        artifact = core_zip(artifacts, "6.5.5", extra=extra)
        with pytest.raises(upgrader.UpgradeError, match=re.escape(expected)):
            upgrader.install_component(bridge_for(site), kind="core", slug="wordpress", package=package(artifact),
                                       version="6.5.5")
    assert (site.path / "wp-config.php").read_bytes() == config_before
    assert not (site.themes_dir / "intruder").exists()
    assert inventory.read(bridge_for(site)).core_version == version_before
    assert_clean(site)


def test_a_core_update_in_progress_elsewhere_is_not_disturbed(site_6_4_5, core_6_5_5, package):
    site = site_6_4_5
    version_before = inventory.read(bridge_for(site)).core_version
    site.php("update_option('core_updater.lock', time(), false);")
    try:
        with pytest.raises(upgrader.UpgradeError, match="Another update is currently in progress"):
            upgrader.install_component(bridge_for(site), kind="core", slug="wordpress",
                                       package=package(core_6_5_5), version="6.5.5")
        # Not wpgate's lock: it stays.
        assert upgrader.site_state(bridge_for(site))["core_updater_lock"] is True
    finally:
        site.php("delete_option('core_updater.lock');")
    assert inventory.read(bridge_for(site)).core_version == version_before
    assert_clean(site)


def test_a_core_package_of_another_version_is_refused(site_6_4_5, artifacts, package):
    site = site_6_4_5
    with pytest.raises(upgrader.UpgradeError, match=r"the package holds WordPress 6\.4\.5, not 6\.5\.5"):
        upgrader.install_component(bridge_for(site), kind="core", slug="wordpress",
                                   package=package(core_zip(artifacts, "6.4.5")), version="6.5.5")
    assert inventory.read(bridge_for(site)).core_version == "6.4.5"
    assert_clean(site)


def test_the_core_package_is_checked_before_the_site_changes(site_6_4_5, artifacts, package):
    """A zip without WordPress's layout never reaches the upgrader."""
    site = site_6_4_5
    digest = hashlib.sha256((site.path / "wp-includes" / "version.php").read_bytes()).hexdigest()
    plugin = plugin_zip(artifacts, "wpgate-hello", "1.2.0")
    with pytest.raises(upgrader.UpgradeError, match="outside its wordpress/ folder"):
        upgrader.install_component(bridge_for(site), kind="core", slug="wordpress", package=package(plugin),
                                   version="6.5.5")
    assert hashlib.sha256((site.path / "wp-includes" / "version.php").read_bytes()).hexdigest() == digest
