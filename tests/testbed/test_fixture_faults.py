"""The fixture plugins and themes behave as the catalogue says on real WordPress sites served by
nginx + php-fpm (OPcache on) with MariaDB: healthy versions render whole pages with their markers
and assets, each fault of wpgate-faulty fails the way it is named after, wpgate-shop migrates."""

from __future__ import annotations

import re
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from wpgate.testbed import fixtures
from wpgate.testbed.bed import TestBed
from wpgate.testbed.fixtures import FAULTS

pytestmark = pytest.mark.e2e

HEALTHY_PLUGINS = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0",
                   "wpgate-shop": "1.0.0", "wpgate-faulty": "1.1.0", "wpgate-noisy": "1.0.0",
                   "wpgate-clock": "1.0.0"}
THEMES = {"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}
CRITICAL_ERROR = "There has been a critical error on this website."
UNDEFINED_CALL = re.compile(r"PHP Fatal error:.*Call to undefined function wpgate_faulty_function_that_does_not_exist\(\)")


@pytest.fixture(scope="module")
def bed():
    with TestBed() as test_bed:
        yield test_bed


@pytest.fixture(params=["6.1.9", "6.5.5"])
def core(request) -> str:
    """The oldest and the newest WordPress the test bed has."""
    return request.param


def new_site(bed, name: str, core: str, plugins: dict[str, str] | None = None):
    return bed.create_site(f"{name}-{core.replace('.', '')}", core=core, server="nginx", plugins=plugins or HEALTHY_PLUGINS,
                           themes=THEMES, theme="wpgate-child")


def get(url: str, client: httpx.Client | None = None) -> httpx.Response:
    return (client or httpx).get(url, timeout=60, follow_redirects=False)


def fatal_lines(site) -> list[str]:
    if not site.debug_log.exists():
        return []
    return [line for line in site.debug_log.read_text(errors="replace").splitlines() if "PHP Fatal error" in line]


def wait_for_fatal(site, seen: int, timeout: float = 10.0) -> list[str]:
    """The fatal-error lines the log gained after the first `seen`, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = fatal_lines(site)[seen:]
        if lines:
            return lines
        time.sleep(0.2)
    return []


def install_fault(site, fault: str) -> None:
    slug, version = FAULTS[fault]
    fixtures.write_plugin(site.plugins_dir, slug, version)


def logged_in_client(site) -> httpx.Client:
    client = httpx.Client(base_url=site.url, timeout=60, follow_redirects=False)
    client.get("/wp-login.php")  # sets WordPress's test cookie
    answer = client.post("/wp-login.php", data={"log": site.admin_user, "pwd": site.admin_password,
                                                "testcookie": "1", "redirect_to": f"{site.url}/wp-admin/"})
    assert answer.status_code == 302 and "/wp-admin/" in answer.headers["location"], answer.text[-2000:]
    return client


def assert_whole_page(response: httpx.Response, *expected: str) -> None:
    assert response.status_code == 200, response.text[-2000:]
    assert response.text.rstrip().endswith("</html>"), response.text[-2000:]
    assert CRITICAL_ERROR not in response.text
    for text in expected:
        assert text in response.text, f"{text!r} not on {response.url}"


def test_healthy_fixtures_render_whole_pages_with_markers_and_assets(bed, core):
    site = new_site(bed, "healthy", core)
    markers = [fixtures.plugin_marker(slug, version) for slug, version in HEALTHY_PLUGINS.items()]
    markers += [fixtures.theme_marker(slug, version) for slug, version in THEMES.items()]
    home = get(site.url + "/")
    assert_whole_page(home, "Hello world!", *markers, '<p class="wpgate-hello">Hello from wpgate-hello 1.0.0</p>',
                      '<meta name="wpgate-seo" content="3.0.0">', '<div class="clock">', '<div id="latest-posts">',
                      "wpgate-noisy says hello", "<!-- wpgate-hello legacy include -->")
    assert_whole_page(get(site.url + "/sample-page/"), "Sample Page", *markers)
    # Each stylesheet and script is referenced with its version and loads; the child's comes after the parent's.
    assets = ["wpgate-hello/assets/hello.css?ver=1.0.0", "wpgate-notes/assets/notes.js?ver=1.0.0",
              "wpgate-faulty/assets/faulty.css?ver=1.1.0", "wpgate-parent/style.css?ver=1.0.0",
              "wpgate-child/style.css?ver=1.0.0"]
    for asset in assets:
        match = re.search(r"""(?:href|src)=['"]([^'"]*%s)['"]""" % re.escape(asset), home.text)
        assert match, f"{asset} not referenced"
        assert get(match[1].replace("&#038;", "&")).status_code == 200
    assert home.text.index("wpgate-parent/style.css") < home.text.index("wpgate-child/style.css")
    # The dynamic regions change from one request to the next.
    again = get(site.url + "/")
    assert re.search(r'id="latest-posts">(\d+)<', home.text)[1] != re.search(r'id="latest-posts">(\d+)<', again.text)[1]

    # Newer versions replace the folders: new markers, hello's file set changes with them.
    fixtures.write_plugin(site.plugins_dir, "wpgate-hello", "1.2.0")
    fixtures.write_theme(site.themes_dir, "wpgate-parent", "1.2.0")
    updated = get(site.url + "/")
    assert_whole_page(updated, "<!-- wpgate-hello 1.2.0 -->", "<!-- wpgate-parent 1.2.0 -->",
                      "wpgate-hello/assets/hello.css?ver=1.2.0", "<!-- wpgate-hello extra include -->")
    assert "legacy include" not in updated.text
    assert fatal_lines(site) == []


def test_noisy_plugin_prints_at_load_on_the_command_line(bed, core):
    site = new_site(bed, "noisy", core)
    output = site.php("echo 'answer';")
    assert output == 'wpgate-noisy says hello\n{"json": "lookalike"}\nanswer'


def test_fatal_on_load_fails_every_request_with_500(bed, core):
    site = new_site(bed, "fatal-on-load", core)
    seen = len(fatal_lines(site))
    install_fault(site, "fatal_on_load")
    for path in ("/", "/sample-page/", "/wp-login.php"):
        response = get(site.url + path)
        assert response.status_code == 500, path
        assert CRITICAL_ERROR in response.text
    assert any(UNDEFINED_CALL.search(line) for line in wait_for_fatal(site, seen))


def test_fatal_while_rendering_sends_200_and_a_truncated_page(bed, core):
    site = new_site(bed, "fatal-rendering", core)
    seen = len(fatal_lines(site))
    install_fault(site, "fatal_while_rendering")
    response = get(site.url + "/")
    assert response.status_code == 200
    assert "Hello world!" in response.text and fixtures.plugin_marker(*FAULTS["fatal_while_rendering"]) in response.text
    assert len(response.content) > 8 * 1024
    assert "</html>" not in response.text and "</body>" not in response.text
    assert CRITICAL_ERROR not in response.text
    assert any(UNDEFINED_CALL.search(line) for line in wait_for_fatal(site, seen))


def test_fatal_in_admin_breaks_the_dashboard_only(bed, core):
    site = new_site(bed, "fatal-admin", core)
    client = logged_in_client(site)
    assert client.get("/wp-admin/").status_code == 200
    install_fault(site, "fatal_in_admin")
    assert_whole_page(get(site.url + "/"), "Hello world!", fixtures.plugin_marker(*FAULTS["fatal_in_admin"]))
    dashboard = client.get("/wp-admin/")
    assert dashboard.status_code == 500
    assert CRITICAL_ERROR in dashboard.text


def test_layout_broken_keeps_status_and_content(bed, core):
    site = new_site(bed, "layout-broken", core)
    healthy = get(site.url + "/")
    install_fault(site, "layout_broken")
    broken = get(site.url + "/")
    assert_whole_page(broken, "Hello world!", fixtures.plugin_marker(*FAULTS["layout_broken"]))
    assert 'id="wpgate-faulty-layout"' in broken.text and "background:#000" in broken.text
    assert 'id="wpgate-faulty-layout"' not in healthy.text


def test_content_gone_removes_hello_world_from_pages(bed, core):
    site = new_site(bed, "content-gone", core)
    assert "Hello world" in get(site.url + "/hello-world/").text
    install_fault(site, "content_gone")
    for path in ("/", "/hello-world/"):
        response = get(site.url + path)
        assert_whole_page(response, fixtures.plugin_marker(*FAULTS["content_gone"]))
        assert "hello world" not in response.text.lower(), path
    assert "Welcome to WordPress" in get(site.url + "/").text  # the rest of the content stays


def test_fatal_in_log_only_serves_whole_pages_and_logs_the_fatal(bed, core):
    site = new_site(bed, "fatal-log-only", core)
    seen = len(fatal_lines(site))
    install_fault(site, "fatal_in_log_only")
    assert_whole_page(get(site.url + "/"), "Hello world!", fixtures.plugin_marker(*FAULTS["fatal_in_log_only"]))
    assert any(UNDEFINED_CALL.search(line) for line in wait_for_fatal(site, seen))
    site.php("echo 'the command line is spared';")  # raises if PHP exited with an error


def shop_state(site) -> tuple[str, str, int]:
    db_version = site.php("echo get_option('wpgate_shop_db_version', 'none');")
    by_upgrader = site.php("echo get_option('wpgate_shop_upgraded_by_upgrader', 'none');")
    tables = site.sql("SHOW TABLES LIKE 'wp_wpgate_shop_orders'").split()
    rows = int(site.sql("SELECT COUNT(*) FROM wp_wpgate_shop_orders").strip()) if tables else -1
    return db_version, by_upgrader, rows


def zip_plugin(tmp_path: Path, slug: str, version: str) -> Path:
    folder = fixtures.write_plugin(tmp_path / f"{slug}-{version}", slug, version)
    archive = tmp_path / f"{slug}-{version}.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for path in sorted(folder.rglob("*")):
            zipped.write(path, path.relative_to(folder.parent).as_posix())
    return archive


def test_shop_migrates_through_the_upgrader_then_breaks_the_front_end(bed, core, tmp_path):
    # Without wpgate-noisy, whose output would mix with the answers of site.php().
    site = new_site(bed, "shop", core, plugins={"wpgate-shop": "1.0.0", "wpgate-hello": "1.0.0"})
    assert shop_state(site) == ("none", "none", -1)
    # WordPress's own upgrader, handed a local package as wpgate does, fires upgrader_process_complete.
    package = zip_plugin(tmp_path, "wpgate-shop", "2.0.0")
    site.php(f"""
require_once ABSPATH . 'wp-admin/includes/admin.php';
require_once ABSPATH . 'wp-admin/includes/class-wp-upgrader.php';
$transient = get_site_transient('update_plugins') ?: new stdClass();
$transient->response['wpgate-shop/wpgate-shop.php'] = (object) array(
    'slug' => 'wpgate-shop', 'plugin' => 'wpgate-shop/wpgate-shop.php', 'new_version' => '2.0.0',
    'package' => '{package}');
set_site_transient('update_plugins', $transient);
$result = (new Plugin_Upgrader(new Automatic_Upgrader_Skin()))->upgrade('wpgate-shop/wpgate-shop.php');
if ($result !== true) {{ fwrite(STDERR, var_export($result, true)); exit(1); }}
// Plugin_Upgrader::upgrade() deactivates the plugin; the admin screen reactivates it afterwards.
$result = activate_plugin('wpgate-shop/wpgate-shop.php');
if (is_wp_error($result)) {{ fwrite(STDERR, $result->get_error_message()); exit(1); }}
""")
    # The upgrade ran the old code's hook; the migration runs when 2.0.0 first loads.
    assert shop_state(site) == ("2", "2.0.0", 1)
    assert_whole_page(get(site.url + "/"), fixtures.plugin_marker("wpgate-shop", "2.0.0"))
    assert shop_state(site) == ("2", "2.0.0", 1)

    fixtures.write_plugin(site.plugins_dir, "wpgate-shop", "2.1.0")
    seen = len(fatal_lines(site))
    broken = get(site.url + "/")
    assert broken.status_code == 500 or "</html>" not in broken.text
    assert any("wpgate_shop_function_that_does_not_exist" in line for line in wait_for_fatal(site, seen))
    assert shop_state(site) == ("3", "2.0.0", 2)
    assert "note" in site.sql("SHOW COLUMNS FROM wp_wpgate_shop_orders").split()
