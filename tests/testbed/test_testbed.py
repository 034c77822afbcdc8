"""The test bed builds real WordPress sites on real services, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.sshd import sshd
from wpgate.testbed import CORE_VERSIONS, Site, TestBed, TestBedError, core_dir
from wpgate.testbed.bed import http_get
from wpgate.testbed.cores import read_core_version
from wpgate.testbed.process import pid_alive, port_answers

GENERATOR = re.compile(r'<meta name="generator" content="WordPress ([^"]+)"')

PROBE_PLUGIN = """<?php
/**
 * Plugin Name: Test Bed Probe
 * Version: 1.0.0
 */
add_action('wp_footer', function () { echo '<!-- probe plugin active -->'; });
add_action('init', function () {
    if (isset($_GET['probe-warning'])) {
        trigger_error('probe warning for the debug log', E_USER_WARNING);
    }
});
"""


def generator_version(body: str) -> str | None:
    match = GENERATOR.search(body)
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def old_nginx_site(bed: TestBed) -> Site:
    return bed.create_site("old-nginx", "6.1.9", server="nginx")


@pytest.fixture(scope="module")
def new_php_site(bed: TestBed) -> Site:
    return bed.create_site("new-php", "6.5.5", server="php")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("version", CORE_VERSIONS)
def test_every_core_is_pristine_and_states_its_version(version: str) -> None:
    root = core_dir(version)
    assert read_core_version(root) == version
    assert not (root / "wp-config.php").exists()
    assert not (root / ".default_theme").exists()
    assert not (root / "wp-content" / "database").exists()
    assert not any(path.is_symlink() for path in root.rglob("*"))
    themes = [theme for theme in (root / "wp-content" / "themes").iterdir() if theme.is_dir()]
    assert themes, "a core needs a default theme"
    for theme in themes:  # only complete themes are kept
        assert (theme / "style.css").is_file()
        assert (theme / "theme.json").is_file() or (theme / "index.php").is_file()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("site_fixture, version", [("old_nginx_site", "6.1.9"),
                                                    ("new_php_site", "6.5.5")])
def test_site_serves_pages_of_its_core_version(request: pytest.FixtureRequest,
                                               site_fixture: str, version: str) -> None:
    site: Site = request.getfixturevalue(site_fixture)
    for path in ("/", "/sample-page/"):
        status, _, body = http_get(site.url + path)
        assert status == 200, path
        assert generator_version(body) == version, path
    status, _, body = http_get(site.url + "/wp-login.php")
    assert status == 200
    assert 'name="log"' in body
    assert read_core_version(site.path) == version
    assert site.php("echo get_bloginfo('version');") == version
    assert site.sql("SELECT option_value FROM wp_options WHERE option_name = 'home'").strip() \
        == site.url
    assert site.sql("SELECT option_value FROM wp_options WHERE option_name = 'permalink_structure'"
                    ).strip() == "/%postname%/"
    config = (site.path / "wp-config.php").read_text()
    assert f"define( 'DB_NAME', '{site.db_name}' );" in config
    assert "WP_HTTP_BLOCK_EXTERNAL" in config and "WP_ACCESSIBLE_HOSTS" not in config


@pytest.mark.timeout(120)
def test_admin_password_logs_in(new_php_site: Site) -> None:
    checked = new_php_site.php(
        f"$user = wp_authenticate('admin', '{new_php_site.admin_password}');"
        " echo is_wp_error($user) ? 'refused' : 'accepted';")
    assert checked == "accepted"
    assert new_php_site.php("$user = wp_authenticate('admin', 'wrong');"
                            " echo is_wp_error($user) ? 'refused' : 'accepted';") == "refused"


@pytest.mark.timeout(120)
def test_plugin_activation_and_debug_log(old_nginx_site: Site) -> None:
    site = old_nginx_site
    probe = site.plugins_dir / "testbed-probe"
    probe.mkdir()
    (probe / "testbed-probe.php").write_text(PROBE_PLUGIN)

    site.activate_plugin("testbed-probe")
    assert "testbed-probe/testbed-probe.php" in site.php(
        "echo implode(',', get_option('active_plugins'));")
    assert "probe plugin active" in http_get(site.url + "/")[2]

    status, _, _ = http_get(site.url + "/?probe-warning=1")
    assert status == 200
    assert "probe warning for the debug log" in site.debug_log.read_text()

    site.deactivate_plugin("testbed-probe")
    assert "probe plugin active" not in http_get(site.url + "/")[2]


@pytest.mark.timeout(120)
def test_php_helper_reports_failures(new_php_site: Site) -> None:
    with pytest.raises(TestBedError, match="no such function"):
        new_php_site.php("throw new Exception('no such function');")
    with pytest.raises(TestBedError, match="http_request_blocked"):
        new_php_site.php("$r = wp_remote_get('http://127.0.0.1:9/');"
                         " throw new Exception($r->get_error_code());")


@pytest.mark.timeout(120)
def test_varnish_caches_and_purges(bed: TestBed) -> None:
    site = bed.create_site("cached", "6.4.5", server="php", varnish=True)
    assert site.url != site.origin_url
    first = http_get(site.url + "/")
    second = http_get(site.url + "/")
    assert (first[0], second[0]) == (200, 200)
    assert second[1]["X-Cache"] == "HIT"

    site.php("wp_update_post(array('ID' => 1, 'post_title' => 'Title after the change'));")
    stale = http_get(site.url + "/")[2]
    assert "Title after the change" not in stale, "the cached page should still be served"
    assert "Title after the change" in http_get(site.origin_url + "/", host=site.host)[2]

    status, _, body = http_get(site.url + "/", method="PURGE")
    assert (status, body) == (200, "Purged")
    fresh = http_get(site.url + "/")
    assert fresh[1]["X-Cache"] == "MISS"
    assert "Title after the change" in fresh[2]

    # BAN by regex (X-Ban-Url) and the Proxy Cache Purge plugin's regex PURGE.
    assert http_get(site.url + "/sample-page/")[0] == 200
    assert http_get(site.url + "/sample-page/")[1]["X-Cache"] == "HIT"
    status, _, _ = _request(site.url + "/", "BAN", {"X-Ban-Url": "^/sample"})
    assert status == 200
    assert http_get(site.url + "/sample-page/")[1]["X-Cache"] == "MISS"
    assert http_get(site.url + "/")[1]["X-Cache"] == "HIT"
    status, _, _ = _request(site.url + "/.*", "PURGE", {"X-Purge-Method": "regex"})
    assert status == 200
    assert http_get(site.url + "/")[1]["X-Cache"] == "MISS"

    # wp-login.php passes, never cached.
    http_get(site.url + "/wp-login.php")
    assert http_get(site.url + "/wp-login.php")[1]["X-Cache"] == "MISS"
    assert "Present bans" in site.varnish.admin("ban.list")


def _request(url: str, method: str, headers: dict[str, str]) -> tuple[int, dict[str, str], str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


@pytest.mark.timeout(120)
def test_opcache_without_timestamp_checks_serves_old_code(bed: TestBed,
                                                          old_nginx_site: Site) -> None:
    frozen = bed.create_site("frozen", "6.3.5", server="nginx", opcache_validate_timestamps=False)
    for site, expected_after_change in ((frozen, "old code"), (old_nginx_site, "new code")):
        probe = site.path / "opcache-probe.php"
        probe.write_text("<?php echo 'old code';")
        assert http_get(site.url + "/opcache-probe.php")[2] == "old code"
        probe.write_text("<?php echo 'new code';")
        # OPcache compares whole-second mtimes: make the change visible to a checking cache.
        later = time.time() + 5
        os.utime(probe, (later, later))
        assert http_get(site.url + "/opcache-probe.php")[2] == expected_after_change, site.name


@pytest.mark.timeout(60)
def test_sshd_accepts_the_key_and_pins_the_host_key(bed: TestBed, tmp_path: Path) -> None:
    server = sshd(bed)
    assert sshd(bed) is server
    result = subprocess.run(server.ssh_argv("echo", "ok"), capture_output=True, text=True,
                            timeout=30)
    assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr
    assert server.known_hosts_path.read_text().startswith(f"[127.0.0.1]:{server.port} ssh-ed25519 ")

    # Another host key in known_hosts: ssh must refuse to talk to the server.
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)],
                   check=True)
    wrong_known_hosts = tmp_path / "known_hosts"
    public = " ".join((tmp_path / "other_key.pub").read_text().split()[:2])
    wrong_known_hosts.write_text(f"[127.0.0.1]:{server.port} {public}\n")
    wrong_config = tmp_path / "ssh_config"
    wrong_config.write_text(server.config_path.read_text().replace(
        str(server.known_hosts_path), str(wrong_known_hosts)))
    refused = subprocess.run(["ssh", "-F", str(wrong_config), server.alias, "echo", "ok"],
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode == 255
    assert "ok" not in refused.stdout
    assert "host key" in refused.stderr.lower()

    # An unknown client key is refused too.
    stranger_config = tmp_path / "stranger_config"
    stranger_config.write_text(server.config_path.read_text().replace(
        str(server.identity_path), str(other_key)))
    stranger = subprocess.run(["ssh", "-F", str(stranger_config), server.alias, "echo", "ok"],
                              capture_output=True, text=True, timeout=30)
    assert stranger.returncode == 255
    assert "permission denied" in stranger.stderr.lower()


@pytest.mark.timeout(120)
def test_a_site_that_fails_leaves_nothing_behind(bed: TestBed) -> None:
    pids_before = {pid for pid in bed.pids if pid_alive(pid)}
    with pytest.raises(TestBedError, match="no-such-theme"):
        bed.create_site("broken", "6.5.5", theme="no-such-theme")
    assert "broken" not in bed.sites
    assert not (bed.root / "sites" / "broken").exists()
    assert bed.database().sql("SHOW DATABASES LIKE 'wp_broken'").strip() == ""
    assert {pid for pid in bed.pids if pid_alive(pid)} == pids_before
    # The name is free again.
    site = bed.create_site("broken", "6.5.5")
    assert http_get(site.url + "/")[0] == 200
    site.stop()
    assert not port_answers(site.server.port)


def _program(pid: int) -> str | None:
    """The program a live process runs; None once it is gone (a worker may exit while we look)."""
    try:
        return Path(f"/proc/{pid}/exe").resolve(strict=True).name
    except OSError:
        return None


@pytest.mark.timeout(180)
def test_close_stops_every_process_and_port(tmp_path: Path) -> None:
    bed = TestBed()
    try:
        bed.create_site("plain", "6.2.6", server="php")
        bed.create_site("fronted", "6.5.5", server="nginx", varnish=True)
        sshd(bed)
        pids, ports, root = bed.pids, bed.ports, bed.root
        names = {name for name in map(_program, pids) if name}
        assert {"mariadbd", "nginx", "varnishd", "sshd"} <= names
        assert any(name.startswith("php-fpm") for name in names)
        assert all(port_answers(port) for port in ports)
    finally:
        bed.close()
    bed.close()  # idempotent
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert [port for port in ports if port_answers(port)] == []
    assert not root.exists()
    with pytest.raises(TestBedError):
        bed.create_site("late")


CHILD = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from wpgate.testbed import TestBed
    bed = TestBed(Path(sys.argv[1]))
    bed.create_site("victim", "6.5.5", server="nginx")
    print(json.dumps({"pids": sorted(bed.pids), "ports": bed.ports}), flush=True)
    time.sleep(600)
""")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_servers_die_with_the_test_process(tmp_path: Path, signum: int) -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "bed")],
                             stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # type: ignore[union-attr]
        started = json.loads(line)
        assert all(port_answers(port) for port in started["ports"])
        child.send_signal(signum)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(pid_alive(pid) for pid in started["pids"]):
        time.sleep(0.1)
    assert [pid for pid in started["pids"] if pid_alive(pid)] == []
    assert [port for port in started["ports"] if port_answers(port)] == []


def test_a_second_site_of_the_same_kind_is_a_copy_with_its_own_identity(bed: TestBed) -> None:
    """The third site of a kind is copied from the second one's snapshot: each has its own files,
    database, credentials, URL and name, and logs its admin in."""
    first = bed.create_site("twin-a", "6.4.5", server="php", plugins={"wpgate-hello": "1.0.0"})
    bed.create_site("twin-snap", "6.4.5", server="php", plugins={"wpgate-hello": "1.0.0"}).stop()
    second = bed.create_site("twin-b", "6.4.5", server="php", plugins={"wpgate-hello": "1.0.0"})
    assert len(list((bed.root / "snapshots").iterdir())) >= 1
    assert second.db_name != first.db_name and second.db_password != first.db_password
    assert f"'{second.db_name}'" in (second.path / "wp-config.php").read_text()
    assert second.php("echo home_url(), ' ', get_option('blogname');").strip() == f"{second.url} wpgate twin-b"
    assert second.php("echo implode(',', get_option('active_plugins'));").strip() == "wpgate-hello/wpgate-hello.php"
    check = (f"$user = wp_authenticate('admin', '{second.admin_password}');"
             " echo is_wp_error($user) ? 'refused' : $user->user_email;")
    assert second.php(check).strip() == "admin@twin-b.test"
    status, _, body = http_get(second.url + "/")
    assert status == 200 and second.url in body and first.url not in body
    # Changes to one stay in that one.
    second.sql("UPDATE wp_options SET option_value = 'changed' WHERE option_name = 'blogdescription'")
    (second.plugins_dir / "wpgate-hello" / "extra.txt").write_text("only here")
    assert first.sql("SELECT option_value FROM wp_options WHERE option_name = 'blogdescription'").strip() != "changed"
    assert not (first.plugins_dir / "wpgate-hello" / "extra.txt").exists()
    first.stop()
    second.stop()
