"""Where a run keeps its copies (src/wpgate/aside.py): the choice from what the host says, the record read
back, and the run's folder closed to everyone inside the web root. Real folders, real shell."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from wpgate import aside
from wpgate.config import SiteConfig
from wpgate.errors import BadInput
from wpgate.transports import LocalTransport

PATHS = {"abspath": "/srv/www/example", "content": "/srv/www/example/wp-content",
         "plugins": "/srv/www/example/wp-content/plugins", "themes": "/srv/www/example/wp-content/themes"}
SITE = SiteConfig(path="/srv/www/example", url="https://example.com",
                  backup={"dir": "/var/backups/wpgate", "offsite": "/mnt/offsite"})
SAME = aside.Facts("2049", True)


def facts(**changes: aside.Facts) -> dict[str, aside.Facts]:
    found = {"abspath": SAME, "plugins": SAME, "themes": SAME, "/srv/www": SAME, "/var/backups/wpgate": SAME}
    return found | changes


def chosen(site_url: str = "https://example.com", site: SiteConfig = SITE, **changes: aside.Facts) -> aside.Aside:
    return aside.decide("production", site, PATHS, site_url, facts(**changes))


def test_the_folder_above_the_wordpress_root_comes_first():
    assert chosen() == aside.Aside("/srv/www/.wpgate-aside-example", aside.ABOVE_ROOT)
    assert chosen().run_folder("20261126-101500-ab12") == "/srv/www/.wpgate-aside-example/20261126-101500-ab12"
    assert chosen().kept("R", "plugin", "shop") == "/srv/www/.wpgate-aside-example/R/plugins/shop"
    assert chosen().kept("R", "core", "wordpress") == "/srv/www/.wpgate-aside-example/R/core"
    assert chosen().staged("R", "theme", "child") == "/srv/www/.wpgate-aside-example/R/new/themes/child"
    # What apply makes before its first copy holds every kept and staged path above.
    run = "/srv/www/.wpgate-aside-example/R"
    assert chosen().parts("R") == [f"{run}/packages", f"{run}/plugins", f"{run}/themes", f"{run}/new/plugins",
                                   f"{run}/new/themes"]
    assert aside.PATH_IN_ASIDE.sub("", "fatal in /srv/www/.wpgate-aside-example/R/plugins/shop/a.php, "
                                       "/srv/www/example/wp-content/wpgate-aside/R/x.php and "
                                       "/srv/www/example/wp-content/plugins/shop/a.php") == (
        "fatal in   and /srv/www/example/wp-content/plugins/shop/a.php")


def test_backup_dir_when_the_folder_above_is_the_web_root_or_cannot_be_used():
    backup = aside.Aside("/var/backups/wpgate/.wpgate-aside-production", aside.BACKUP_DIR)
    assert chosen("https://example.com/blog") == backup  # WordPress in a subfolder: the folder above is served
    assert chosen(**{"/srv/www": aside.Facts("2049", False)}) == backup  # not writable
    assert chosen(**{"/srv/www": aside.Facts("2050", True)}) == backup  # another filesystem


def test_inside_the_web_root_and_sealed_when_nothing_outside_shares_the_filesystem():
    inside = aside.Aside("/srv/www/example/wp-content/wpgate-aside", aside.IN_WEB_ROOT)
    other = aside.Facts("2050", True)
    assert chosen(**{"/srv/www": other, "/var/backups/wpgate": other}) == inside
    assert chosen(**{"/srv/www": other, "/var/backups/wpgate": aside.Facts(None)}) == inside  # no backup.dir yet
    assert chosen(plugins=other) == inside  # the site's own folders on two filesystems: no rename joins them
    inside_root = SiteConfig(path="/srv/www/example", url="https://example.com",
                             backup={"dir": "/srv/www/example/backups"})
    assert chosen("https://example.com/blog", site=inside_root) == inside  # a backup.dir in the root is no way out
    assert inside.sealed and not chosen().sealed
    assert list(inside.guard_files()) == ["/srv/www/example/wp-content/wpgate-aside/index.php",
                                          "/srv/www/example/wp-content/wpgate-aside/.htaccess"]
    assert "mode 000" in inside.describe() and "outside the web root" in chosen().describe()


def test_the_recorded_folder_is_read_back_and_must_be_one_of_the_sites():
    record = {"aside": chosen().record()}
    assert aside.of_run(record, "R", "production", SITE, PATHS) == chosen()
    legacy = aside.of_run({}, "R", "production", SITE, PATHS)  # recorded by an earlier wpgate
    assert legacy == aside.Aside("/srv/www/example/wp-content/wpgate-aside", aside.IN_WEB_ROOT)
    for folder, how in (("/etc", "above_root"), ("/srv/www/.wpgate-aside-example", "in_web_root"),
                        ("/var/backups/wpgate/.wpgate-aside-other", "backup_dir")):
        with pytest.raises(BadInput, match="not one of this site's aside folders"):
            aside.of_run({"aside": {"folder": folder, "how": how}}, "R", "production", SITE, PATHS)
    assert aside.lock_paths("production", SITE, PATHS) == [
        "/srv/www/.wpgate-aside-example/lock", "/var/backups/wpgate/.wpgate-aside-production/lock",
        "/srv/www/example/wp-content/wpgate-aside/lock"]


def test_the_choice_reads_the_host(tmp_path):
    root = tmp_path / "www" / "example"
    paths = {"abspath": str(root), "content": str(root / "wp-content"),
             "plugins": str(root / "wp-content" / "plugins"), "themes": str(root / "wp-content" / "themes")}
    for key in ("plugins", "themes"):
        Path(paths[key]).mkdir(parents=True)
    site = SiteConfig(path=str(root), url="http://127.0.0.1:8080")
    found = aside.choose(LocalTransport(), "production", site, paths, "http://127.0.0.1:8080")
    assert found == aside.Aside(str(tmp_path / "www" / ".wpgate-aside-example"), aside.ABOVE_ROOT)


def test_a_run_folder_inside_the_web_root_is_closed_between_wpgates_steps(tmp_path):
    inside = aside.Aside(str(tmp_path / "wpgate-aside"), aside.IN_WEB_ROOT)
    folder = Path(inside.run_folder("R"))
    (folder / "plugins" / "shop").mkdir(parents=True)
    transport = LocalTransport()
    aside.seal(transport, str(folder))
    assert stat.S_IMODE(folder.stat().st_mode) == 0
    with inside.opened(transport, "R"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        (folder / "plugins" / "shop" / "shop.php").write_text("old")
    assert stat.S_IMODE(folder.stat().st_mode) == 0
    with pytest.raises(RuntimeError), inside.opened(transport, "R"):
        raise RuntimeError("a step failed")
    assert stat.S_IMODE(folder.stat().st_mode) == 0  # closed again however the step ended
    inside.remove_run_folder(transport, "R")
    assert not folder.exists()
