"""`wpgate inventory` against real WordPress sites, locally and through a real sshd, and every way it can fail."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.helpers import assert_one_line_error, site_entry, wpgate, wpgate_json, write_config
from tests.support.sshd import sshd

pytestmark = pytest.mark.e2e


def header(path: Path, name: str) -> str:
    match = re.search(rf"^[ \t/*#@]*{name}:\s*(.+)$", path.read_text(), re.M | re.I)
    assert match, f"no {name} header in {path}"
    return match.group(1).strip()


def disk_core_version(root: Path) -> str:
    return re.search(r"\$wp_version\s*=\s*'([^']+)'", (root / "wp-includes/version.php").read_text()).group(1)


@pytest.fixture(scope="module")
def old_site(bed):
    return bed.create_site("inventory-old", core="6.1.9", server="nginx",
                           plugins={"wpgate-hello": "1.0.0", "wpgate-noisy": "1.0.0", "wpgate-seo": "3.0.0"},
                           active_plugins=["wpgate-hello", "wpgate-noisy"],
                           themes={"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}, theme="wpgate-child")


@pytest.fixture(scope="module")
def new_site(bed):
    return bed.create_site("inventory-new", core="6.5.5", plugins={"wpgate-hello": "1.2.0"})


@pytest.fixture(scope="module")
def config(tmp_path_factory, bed, old_site, new_site):
    ssh = sshd(bed)
    folder = tmp_path_factory.mktemp("inventory")
    return write_config(folder, {
        "old": site_entry(old_site),
        "new": site_entry(new_site),
        "old-ssh": site_entry(old_site, ssh=ssh),
    })


def last_line(output: str) -> str:
    """What the test's PHP printed last: a plugin on the site may print before it."""
    return output.strip().splitlines()[-1]


def assert_matches_disk(inventory: dict, site) -> None:
    root = Path(site.path)
    assert inventory["core"]["version"] == disk_core_version(root)
    assert inventory["core"]["db_version"] == inventory["core"]["files_db_version"] > 50000
    plugins = {p["slug"]: p for p in inventory["plugins"]}
    plugins_dir = root / "wp-content/plugins"
    on_disk = [p.name for p in plugins_dir.iterdir() if p.is_dir()]
    on_disk += [p.stem for p in plugins_dir.glob("*.php") if "Plugin Name:" in p.read_text()]
    assert sorted(plugins) == sorted(on_disk)
    for slug, plugin in plugins.items():
        assert plugin["version"] == header(root / "wp-content/plugins" / plugin["file"], "Version")
    active = json.loads(last_line(site.php("echo \"\\n\" . json_encode(get_option('active_plugins'));")))
    assert sorted(p["file"] for p in plugins.values() if p["active"]) == sorted(active)
    themes = {t["slug"]: t for t in inventory["themes"]}
    on_disk = sorted(t.name for t in (root / "wp-content/themes").iterdir() if (t / "style.css").exists())
    assert sorted(themes) == on_disk
    for slug, theme in themes.items():
        assert theme["version"] == header(root / "wp-content/themes" / slug / "style.css", "Version")
    stylesheet = last_line(site.php("echo \"\\n\" . get_stylesheet();"))
    assert [t["slug"] for t in themes.values() if t["active"]] == [stylesheet]
    assert inventory["maintenance"] is False
    assert inventory["multisite"] is False
    assert inventory["php_version"].startswith("8.")


def test_inventory_of_a_6_1_9_site_on_nginx_matches_disk(config, old_site):
    inventory = wpgate_json("inventory", "old", config=config)
    assert inventory["core"]["version"] == "6.1.9"
    assert_matches_disk(inventory, old_site)
    plugins = {p["slug"]: p for p in inventory["plugins"]}
    assert plugins["wpgate-hello"] == {"slug": "wpgate-hello", "file": "wpgate-hello/wpgate-hello.php",
                                       "name": plugins["wpgate-hello"]["name"], "version": "1.0.0",
                                       "active": True, "network_active": False}
    assert plugins["wpgate-seo"]["active"] is False
    themes = {t["slug"]: t for t in inventory["themes"]}
    assert themes["wpgate-child"]["parent"] == "wpgate-parent"
    assert themes["wpgate-child"]["active"] is True
    assert themes["wpgate-parent"]["active"] is False
    assert themes["wpgate-parent"]["parent"] is None
    assert "load_error" not in inventory


def test_inventory_of_a_6_5_5_site_matches_disk(config, new_site):
    inventory = wpgate_json("inventory", "new", config=config)
    assert inventory["core"]["version"] == "6.5.5"
    assert_matches_disk(inventory, new_site)


def test_inventory_over_ssh_equals_local(config):
    assert wpgate_json("inventory", "old-ssh", config=config) == wpgate_json("inventory", "old", config=config)


def test_activation_and_a_version_change_show_at_once(config, new_site):
    new_site.deactivate_plugin("wpgate-hello")
    plugins = {p["slug"]: p for p in wpgate_json("inventory", "new", config=config)["plugins"]}
    assert plugins["wpgate-hello"]["active"] is False
    new_site.activate_plugin("wpgate-hello")
    new_site.install_plugin("wpgate-hello", "1.1.0")
    plugins = {p["slug"]: p for p in wpgate_json("inventory", "new", config=config)["plugins"]}
    assert plugins["wpgate-hello"]["active"] is True
    assert plugins["wpgate-hello"]["version"] == "1.1.0"


def test_a_plugin_printing_on_load_does_not_break_the_answer(config, old_site):
    # wpgate-noisy is active on the old site and prints text and a JSON look-alike as it loads.
    assert "wpgate-noisy says hello" in old_site.php("echo 'loaded';")
    inventory = wpgate_json("inventory", "old", config=config)
    assert {p["slug"] for p in inventory["plugins"]} >= {"wpgate-noisy"}


def test_human_view_is_a_table_on_stderr(config):
    result = wpgate("inventory", "old", config=config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "WordPress 6.1.9" in result.stderr
    assert re.search(r"wpgate-hello\s.*1\.0\.0\s.*active", result.stderr)
    assert re.search(r"wpgate-child\s.*1\.0\.0\s.*active\s.*wpgate-parent", result.stderr)


# --- what goes wrong -----------------------------------------------------------------------------

def test_a_path_without_wordpress(tmp_path, bed):
    config = write_config(tmp_path, {"x": {"path": str(tmp_path), "url": "http://127.0.0.1:9"}})
    assert_one_line_error(wpgate("inventory", "x", config=config), 2, "no WordPress at", str(tmp_path))


def test_a_folder_that_does_not_exist(tmp_path):
    config = write_config(tmp_path, {"x": {"path": str(tmp_path / "gone"), "url": "http://127.0.0.1:9"}})
    assert_one_line_error(wpgate("inventory", "x", config=config), 2, "no folder at")


@pytest.fixture
def copied_site(bed, tmp_path, new_site):
    """A copy of a real site's files, to break its wp-config.php without touching the original."""
    root = tmp_path / "copy"
    shutil.copytree(new_site.path, root, symlinks=True)
    return root


def test_a_broken_wp_config_names_file_and_line(tmp_path, copied_site, new_site):
    config_file = copied_site / "wp-config.php"
    config_file.write_text(config_file.read_text().replace("define(", "define((", 1))
    config = write_config(tmp_path, {"x": {"path": str(copied_site), "url": new_site.url}})
    text = assert_one_line_error(wpgate("inventory", "x", config=config), 2, "PHP fatal error", "wp-config.php")
    assert re.search(r"on line \d+", text)


def test_a_missing_wp_config(tmp_path, copied_site, new_site):
    (copied_site / "wp-config.php").unlink()
    config = write_config(tmp_path, {"x": {"path": str(copied_site), "url": new_site.url}})
    assert_one_line_error(wpgate("inventory", "x", config=config), 2, "has no wp-config.php")


def test_a_database_that_refuses_the_connection(tmp_path, copied_site, new_site):
    config_file = copied_site / "wp-config.php"
    config_file.write_text(re.sub(r"define\(\s*'DB_PASSWORD',\s*'[^']*'\s*\)",
                                  "define( 'DB_PASSWORD', 'wrong-password' )", config_file.read_text()))
    config = write_config(tmp_path, {"x": {"path": str(copied_site), "url": new_site.url}})
    assert_one_line_error(wpgate("inventory", "x", config=config), 2, "Error establishing a database connection",
                          "DB_PASSWORD")


def test_a_plugin_that_fatals_on_load_is_read_with_plugins_skipped(bed, tmp_path):
    from wpgate.testbed.fixtures import FAULTS
    slug, version = FAULTS["fatal_on_load"]
    site = bed.create_site("inventory-fatal", core="6.5.5", plugins={"wpgate-hello": "1.0.0"})
    site.install_plugin(slug, version)
    # Activated behind WordPress's back, as a broken update leaves it: activate_plugin() would refuse.
    site.php(f"update_option('active_plugins', array_merge(get_option('active_plugins'), ['{slug}/{slug}.php']));")
    config = write_config(tmp_path, {"x": site_entry(site)})
    inventory = wpgate_json("inventory", "x", config=config)
    assert "PHP fatal error" in inventory["load_error"] and f"{slug}.php" in inventory["load_error"]
    plugins = {p["slug"]: p for p in inventory["plugins"]}
    assert plugins[slug]["version"] == version and plugins[slug]["active"] is True
    site.stop()


def test_an_unreachable_ssh_host(tmp_path):
    from wpgate.testbed.process import free_port
    config = write_config(tmp_path, {"x": {"path": "/srv/www", "url": "http://127.0.0.1:9",
                                           "ssh": f"root@127.0.0.1:{free_port()}"}})
    assert_one_line_error(wpgate("inventory", "x", config=config), 2, "connection refused")


def test_an_unknown_host_key_is_never_accepted(tmp_path, bed, old_site):
    ssh = sshd(bed)
    client_config = tmp_path / "ssh_config"
    client_config.write_text(ssh.config_path.read_text().replace(str(ssh.known_hosts_path),
                                                                 str(tmp_path / "empty_known_hosts")))
    (tmp_path / "empty_known_hosts").write_text("")
    config = write_config(tmp_path, {"x": {"path": str(old_site.path), "url": old_site.url,
                                           "ssh": ssh.alias, "ssh_config": str(client_config)}})
    assert_one_line_error(wpgate("inventory", "x", config=config), 2, "host key", "known_hosts")
    assert (tmp_path / "empty_known_hosts").read_text() == ""


def test_a_bad_config_lists_every_problem_and_exits_2(tmp_path):
    config = tmp_path / "wpgate.yml"
    config.write_text("sites:\n  a: {path: relative, url: nope, extra: 1}\n")
    result = wpgate("inventory", "a", config=config)
    assert result.returncode == 2
    for fragment in ("sites.a.path", "sites.a.url", "sites.a.extra: unknown key", "3 problems"):
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_site_and_config_from_environment(tmp_path, config):
    result = wpgate("inventory", "nope", env={"WPGATE_CONFIG": str(config)})
    assert_one_line_error(result, 2, "no site named 'nope'")


def test_python_dash_m_runs_the_same_command(config):
    import subprocess
    import sys
    result = subprocess.run([sys.executable, "-m", "wpgate", "-c", str(config), "inventory", "new", "--json"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["core"]["version"] == "6.5.5"
