"""Rollback never makes a site worse: run again on whatever a run left, it puts the site back or changes
nothing and says why; it uses only paths of the site's own; it leaves nothing behind on the host; its
SQL files are private from the first byte. Real sites on MariaDB behind nginx; the CDN is a small local
server that speaks Cloudflare's API, or a closed port on loopback when it must be unreachable."""

from __future__ import annotations

import json
import socket
import stat
import uuid
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.helpers import (assert_unchanged, fingerprint, site_entry, wpgate, write_config,
                               write_qa)
from wpgate.testbed.cdn import CloudflareApi
from wpgate.testbed.fixtures import FAULTS

pytestmark = pytest.mark.e2e

CORE_OLD, CORE_NEW = "6.4.5", "6.5.5"
FAULTY, FAULTY_BROKEN = FAULTS["fatal_while_rendering"]
OLD = {"wpgate-hello": "1.0.0", FAULTY: "1.1.0"}
NEW = {"wpgate-hello": "1.2.0", FAULTY: FAULTY_BROKEN}
TOKEN = {"WPGATE_TEST_CF_TOKEN": "cf-" + uuid.uuid4().hex}


def closed_port() -> int:
    """A loopback port nothing listens on: a CDN API that cannot be reached."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    """Core 6.4.5 → 6.5.5 (which upgrades the database), wpgate-hello, then a plugin that cuts the page off
    while it renders: the probe after it stops the run after every change was made."""
    folder = tmp_path_factory.mktemp("rollback-safety")
    staging = bed.create_site("safe-staging", core=CORE_NEW, plugins=OLD)
    staging.install_plugin(FAULTY, FAULTY_BROKEN)
    staging.install_plugin("wpgate-hello", NEW["wpgate-hello"])
    first = production(bed, "safe-plan")
    config = write_config(folder, {"staging": site_entry(staging), "safe-plan": site_entry(first)},
                          state_dir="state")
    manifest = folder / "release.yml"
    result = wpgate("plan", "--from", "staging", "--to", "safe-plan", "-o", str(manifest), config=config)
    assert result.returncode == 0, result.stderr
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    first.stop()
    return {"folder": folder, "config": config, "manifest": manifest}


def production(bed, name: str):
    return bed.create_site(name, core=CORE_OLD, server="nginx", plugins=OLD)


def with_site(release, name: str, site, **entry) -> Path:
    """The release's config with one more production site, written beside it."""
    document = yaml.safe_load(release["config"].read_text())
    document["sites"][name] = {**site_entry(site), **entry,
                               "backup": {"dir": str(release["folder"] / "backups" / name),
                                          "offsite": str(release["folder"] / "offsite")},
                               "checks": {"window": "1s"}}
    config = release["folder"] / f"{name}.yml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def deploy(release, config: Path, name: str, *options: str, code: int) -> dict:
    result = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", "--json", *options, config=config,
                    env=TOKEN)
    assert result.returncode == code, result.stderr
    return json.loads(result.stdout)


def outside_aside(print_: dict) -> dict:
    """A fingerprint without wpgate's own folder: what a run that is not over may keep there."""
    return {**print_, "files": {name: digest for name, digest in print_["files"].items()
                                if not name.startswith("wp-content/wpgate-aside/")}}


def run_folder(release, run: str) -> Path:
    return release["folder"] / "state" / "runs" / run


def test_rollback_again_after_an_unreachable_cdn_keeps_wordpress_and_then_proves_it(bed, release):
    """The deploy's own rollback puts core back but cannot purge the CDN (exit 5). `wpgate rollback` then,
    as the README says: with the CDN still unreachable it changes nothing and says why; once it answers,
    the rollback is proved. At every step the site is byte for byte and table for table as before."""
    site = production(bed, "safe-cdn")
    unreachable = {"cloudflare": {"zone": "zone123", "token_env": "WPGATE_TEST_CF_TOKEN",
                                  "api": f"http://127.0.0.1:{closed_port()}/client/v4"}}
    config = with_site(release, "safe-cdn", site, caches=[unreachable])
    before = fingerprint(site)
    report = deploy(release, config, "safe-cdn", code=5)
    assert report["status"] == "rollback_failed"
    assert any("caches after the rollback" in problem for problem in report["rollback"]["problems"])
    assert_unchanged(outside_aside(before), outside_aside(fingerprint(site)))

    again = wpgate("rollback", report["run"], "--yes", config=config, env=TOKEN)
    assert again.returncode == 5, again.stderr
    assert "caches after the rollback" in again.stderr
    assert (Path(site.path) / "wp-load.php").exists() and (Path(site.path) / "index.php").exists()
    assert_unchanged(outside_aside(before), outside_aside(fingerprint(site)))
    page = httpx.get(site.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text

    with CloudflareApi(TOKEN["WPGATE_TEST_CF_TOKEN"]) as api:
        config = with_site(release, "safe-cdn", site, caches=[
            {"cloudflare": {**unreachable["cloudflare"], "api": api.api}}])
        proved = wpgate("rollback", report["run"], "--yes", "--json", config=config, env=TOKEN)
        assert proved.returncode == 0, proved.stderr
        assert api.requests, "the CDN was not purged"
    assert json.loads(proved.stdout)["status"] == "rolled_back"
    assert_unchanged(before, fingerprint(site))
    assert not (Path(site.path) / "wp-content/wpgate-aside").exists()
    site.stop()
