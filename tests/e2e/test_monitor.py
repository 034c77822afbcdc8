"""Gate 6.6 (monitor) and `wpgate check` on real sites, with a real browser: each fault of wpgate-faulty,
deployed between healthy updates, is caught at its own update, named, and rolled back, proved; a healthy
release with a changing region passes with a mask."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import assert_unchanged, fingerprint, site_entry, wpgate, write_config, write_qa
from wpgate.testbed.fixtures import FAULTS

pytestmark = pytest.mark.e2e

PASSWORD_ENV = "WPGATE_TEST_MONITOR_PASSWORD"
OLD_PLUGINS = {"wpgate-hello": "1.0.0", "wpgate-faulty": "1.1.0"}
OLD_THEMES = {"wpgate-parent": "1.0.0"}
MASK = [".clock", "#latest-posts"]
# fault: (the check that sees it, the page it names)
SEEN_BY = {
    "fatal_on_load": ("pages", "page /:"),
    "fatal_while_rendering": ("pages", "page /: answered 200 but the page is incomplete"),
    "fatal_in_admin": ("admin", "page /wp-admin/: wp-admin's admin_init hooks die"),
    "layout_broken": ("layout", "page /:"),
    "content_gone": ("pages", "page /: the expected content 'Hello world' is missing"),
    "fatal_in_log_only": ("error_log", "error log: new PHP error"),
    "error_page_200": ("pages", "page /: answered 200 but shows WordPress's critical-error page"),
}


def checks(site, **more):
    return {"pages": ["/", "/sample-page/"], "content": {"/": ["Hello world"]},
            "admin": {"user": site.admin_user, "password_env": PASSWORD_ENV}, **more}


def production(bed, name: str, plugins=OLD_PLUGINS):
    return bed.create_site(name, core="6.5.5", server="nginx", plugins=plugins, themes=OLD_THEMES,
                           theme="wpgate-parent", active_plugins=list(plugins))


def site_config(folder: Path, staging, site, **check_options) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_config(folder, {"staging": site_entry(staging),
                                 "production": site_entry(site, checks=checks(site, **check_options))},
                        state_dir=str(folder.parent / "state"))


def approved(folder: Path, config: Path, name: str) -> Path:
    release = folder / f"{name}.yml"
    result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config)
    assert result.returncode == 0, result.stderr
    result = wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana", config=config)
    assert result.returncode == 0, result.stderr
    return release


@pytest.fixture(scope="module")
def faulty_releases(bed, tmp_path_factory):
    """For each fault: a release of wpgate-hello 1.2.0, then wpgate-faulty at the broken version, then the
    theme wpgate-parent 1.1.0. Staging keeps wpgate-faulty inactive, so QA saw nothing wrong there."""
    folder = tmp_path_factory.mktemp("monitor")
    staging = bed.create_site("mon-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0", "wpgate-faulty": "1.1.0"},
                              themes={"wpgate-parent": "1.1.0"}, theme="wpgate-parent", active_plugins=["wpgate-hello"])
    reference = production(bed, "mon-reference")
    config = site_config(folder / "plans", staging, reference)
    releases = {}
    for fault, (slug, version) in FAULTS.items():
        staging.install_plugin(slug, version)
        releases[fault] = approved(folder / "plans", config, fault)
        updates = [(u["type"], u["slug"], u["to"]) for u in yaml.safe_load(releases[fault].read_text())["updates"]]
        assert updates == [("plugin", "wpgate-hello", "1.2.0"), ("plugin", slug, version),
                           ("theme", "wpgate-parent", "1.1.0")], updates
    reference.stop()
    return {"folder": folder, "staging": staging, "releases": releases}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_broken_update_is_caught_at_that_update_named_and_rolled_back(bed, faulty_releases, fault):
    slug, version = FAULTS[fault]
    check, where = SEEN_BY[fault]
    site = production(bed, f"mon-{fault.replace('_', '-')}"[:31])
    layout = {"visual_threshold": 0.01, "visual_mask": MASK} if fault == "layout_broken" else {}
    config = site_config(faulty_releases["folder"] / fault, faulty_releases["staging"], site, **layout)
    before = fingerprint(site)
    result = wpgate("deploy", str(faulty_releases["releases"][fault]), "--to", "production", "--yes", "--json",
                    config=config, env={PASSWORD_ENV: site.admin_password})
    assert result.returncode == 4, result.stderr
    culprit = f"plugin {slug} 1.1.0 → {version}"
    assert f"{culprit} broke the site: {where}" in result.stderr, result.stderr
    assert f"({check} check)" in result.stderr
    assert "rolled back: production is proved back at its pre-deployment state" in result.stderr
    assert "Traceback" not in result.stderr

    report = json.loads(result.stdout)
    assert report["status"] == "rolled_back"
    gates = {gate["step"]: gate for gate in report["gates"]}
    assert gates["6.3"]["status"] == "failed" and "6.6" not in gates  # stopped at the update, before the window
    evidence = gates["6.3"]["evidence"]
    assert evidence["culprit"] == culprit and evidence["check"] == check and evidence["update"] == 1
    assert evidence["problems"] and all(p["check"] for p in evidence["problems"])
    assert [u["status"] for u in report["updates"]] == ["rolled_back", "rolled_back", "pending"]
    if check == "error_log":
        assert "wpgate_faulty_function_that_does_not_exist" in evidence["problems"][0]["log_line"]
    if check == "layout":
        diff = Path(evidence["problems"][0]["diff"])
        assert diff.is_file() and Path(evidence["problems"][0]["before"]).is_file()
        assert diff.parent.parent.name == "screenshots"
        assert evidence["problems"][0]["changed"] > 0.01
    if fault == "fatal_while_rendering":
        assert evidence["problems"][0]["status"] == 200

    run_folder = config.parent.parent / "state" / "runs" / report["run"]
    assert (run_folder / "monitor-baseline.json").is_file()
    written = [gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()
               for path in run_folder.glob("*.json*")]  # the database snapshots are gzipped JSON
    for text in [result.stdout, result.stderr, *written]:
        assert site.admin_password not in text  # the monitor account's password is never written
    # Nothing of the run is left on the host: its folder and wpgate's own (with its guards) are gone. The
    # broken releases change nothing in the database, so the rollback keeps it, with what the monitor's
    # visits wrote (its login's session, the dashboard's draft): the files are compared here, the database
    # decision in tests/e2e/test_rollback_data.py.
    assert_unchanged({**before, "tables": ""}, {**fingerprint(site), "tables": ""})
    site.stop()


@pytest.fixture(scope="module")
def healthy(bed, tmp_path_factory):
    """Staging updated wpgate-hello, wpgate-clock (a clock and a random number on every page) and the theme."""
    folder = tmp_path_factory.mktemp("healthy-monitor")
    staging = bed.create_site("clock-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0", "wpgate-clock": "1.1.0"},
                              themes={"wpgate-parent": "1.1.0"}, theme="wpgate-parent")
    site = production(bed, "clock-prod", plugins={"wpgate-hello": "1.0.0", "wpgate-clock": "1.0.0"})
    config = site_config(folder, staging, site, visual_threshold=0.01, visual_mask=MASK, window="3s")
    return {"folder": folder, "config": config, "site": site, "release": approved(folder, config, "clock")}


def test_dry_run_says_what_the_monitor_would_check(healthy):
    site = healthy["site"]
    result = wpgate("deploy", str(healthy["release"]), "--to", "production", "--dry-run", "--json",
                    config=healthy["config"], env={PASSWORD_ENV: site.admin_password})
    assert result.returncode == 0, result.stderr
    gates = {gate["step"]: gate for gate in json.loads(result.stdout)["gates"]}
    reason = gates["6.6"]["evidence"]["reason"]
    assert gates["6.6"]["status"] == "skipped" and reason.startswith("dry run: would watch the site for 3s")
    assert "pages /, /sample-page/" in reason and "1.00% of pixels" in reason and ".clock" in reason


def test_a_monitor_account_that_cannot_log_in_refuses_before_any_change(healthy):
    site = healthy["site"]
    before = fingerprint(site)
    result = wpgate("deploy", str(healthy["release"]), "--to", "production", "--yes", config=healthy["config"],
                    env={PASSWORD_ENV: "not-the-password"})
    assert result.returncode == 3, result.stderr
    assert f"the monitor account {site.admin_user} cannot log in" in result.stderr
    assert "production was not changed" in result.stderr and "not-the-password" not in result.stderr
    after = fingerprint(site)
    # The baseline's requests are a visitor's: wp-admin's admin_init hooks may refresh WordPress's own
    # update-check transients in wp_options, as any visit to wp-admin does. Nothing else changes.
    for found in (before, after):
        found["tables"] = "\n".join(line for line in found["tables"].splitlines() if ".wp_options\t" not in line)
    assert_unchanged(before, after)


def test_a_healthy_release_with_a_changing_region_passes_with_a_mask(bed, healthy):
    # A production of its own: the one the other tests share stays at the release's `from` versions.
    site = production(bed, "clock-deployed", plugins={"wpgate-hello": "1.0.0", "wpgate-clock": "1.0.0"})
    document = yaml.safe_load(healthy["config"].read_text())
    document["sites"]["production"].update(path=str(site.path), url=site.url)
    document["sites"]["production"]["checks"]["admin"]["user"] = site.admin_user
    document["sites"]["production"]["backup"] = {"dir": str(healthy["folder"] / "deployed-backups"),
                                                 "offsite": str(healthy["folder"] / "deployed-offsite")}
    config = healthy["folder"] / "deployed.yml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    result = wpgate("deploy", str(healthy["release"]), "--to", "production", "--yes", "--json",
                    config=config, env={PASSWORD_ENV: site.admin_password})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    gates = {gate["step"]: gate for gate in report["gates"]}
    assert gates["6.6"]["status"] == "passed", gates["6.6"]
    monitor = gates["6.6"]["evidence"]
    assert monitor["passes"] >= 2 and monitor["window"] == 3
    assert {name: found["status"] for name, found in monitor["checks"].items()} == {
        "pages": "passed", "admin": "passed", "layout": "passed", "error_log": "passed"}
    assert monitor["checks"]["admin"]["dashboard"] == "ok"
    for page in monitor["checks"]["layout"]["pages"].values():
        assert page["changed"] <= 0.01 and Path(page["diff"]).is_file()
    probes = [applied["probe"] for applied in gates["6.3"]["evidence"]["applied"]]
    assert len(probes) == 3 and all(probe["pages"] == probe["layout"] == "passed" for probe in probes)
    assert site.admin_password not in result.stdout + result.stderr
    site.stop()


def test_check_alone_says_healthy_then_names_a_broken_page(healthy):
    site, config = healthy["site"], healthy["config"]
    env = {PASSWORD_ENV: site.admin_password}
    result = wpgate("check", "production", "--json", config=config, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["status"] == "healthy"
    assert found["checks"]["layout"]["status"] == "skipped"
    assert found["checks"]["admin"]["dashboard"] == "ok"
    assert site.admin_password not in result.stdout + result.stderr

    site.install_plugin(*FAULTS["fatal_while_rendering"])
    site.activate_plugin("wpgate-faulty")
    try:
        broken = wpgate("check", "production", config=config, env=env)
        assert broken.returncode == 3, broken.stderr
        last = broken.stderr.strip().splitlines()[-1]
        assert last.startswith("wpgate: error: site production") and "page /: answered 200 but the page is incomplete" in last
        assert "Traceback" not in broken.stderr
    finally:
        site.deactivate_plugin("wpgate-faulty")
        shutil.rmtree(site.plugins_dir / "wpgate-faulty")  # the site is left as the other tests expect it


def test_check_tells_planned_maintenance_apart_from_a_failure(healthy):
    site = healthy["site"]
    maintenance = Path(site.path) / ".maintenance"
    maintenance.write_text("<?php $upgrading = time(); ?>")
    try:
        result = wpgate("check", "production", config=healthy["config"], env={PASSWORD_ENV: site.admin_password})
    finally:
        maintenance.unlink()
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "page /: answered 503 with WordPress's planned-maintenance page" in last, last
    assert "critical error" not in result.stderr


def test_check_without_a_monitor_account_says_the_dashboard_was_skipped(healthy, tmp_path):
    site = healthy["site"]
    config = write_config(tmp_path, {"production": site_entry(site)}, backups=False)
    result = wpgate("check", "production", "--json", config=config)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["checks"]["admin"]["dashboard"].startswith("skipped: no monitor account")
    assert found["checks"]["admin"]["admin_init"] == "ok"
