"""What a new user hit on a first real site (issue 17), on real sites with real requests: a backup folder
the web server serves, a missing --yes without a terminal, and the small words that must be right."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import (assert_one_line_error, assert_unchanged, fingerprint, site_entry, wpgate,
                               write_config, write_qa)
from wpgate.testbed.servers import PhpBuiltinServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sites(bed, tmp_path_factory):
    """A staging with newer plugins, a production (php -S) with older ones, and an approved release."""
    folder = tmp_path_factory.mktemp("trust")
    staging = bed.create_site("trust-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0"})
    production = bed.create_site("trust-prod", core="6.5.5", plugins={"wpgate-hello": "1.0.0"})
    config = write_config(folder, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    release = folder / "release.yml"
    planned = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config)
    assert planned.returncode == 0, planned.stderr
    approved = wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana", config=config)
    assert approved.returncode == 0, approved.stderr
    return {"folder": folder, "config": config, "release": release, "staging": staging, "production": production}


def with_backup(sites, name: str, **backup) -> Path:
    """The module's config with production's backup settings replaced, in a folder of its own."""
    document = yaml.safe_load(sites["config"].read_text())
    document["sites"]["production"]["backup"] = backup
    document["state_dir"] = str(sites["folder"] / "state")
    path = sites["folder"] / f"{name}.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("wpgate: error:")]


# --- a backup folder under the document root (issue 17, security 1) ---------------------------------------

def test_a_backup_folder_inside_the_wordpress_root_is_refused_at_gate_6_2_and_by_wpgate_backup(sites, tmp_path):
    production = sites["production"]
    inside = Path(production.path) / "wp-content" / "backups"
    config = with_backup(sites, "inside", dir=str(inside), offsite=str(tmp_path / "offsite"))
    before = fingerprint(production)

    taken = wpgate("backup", "production", config=config)
    assert taken.returncode == 3, taken.stderr
    assert "Traceback" not in taken.stderr
    [line] = error_lines(taken.stderr)
    assert f"sites.production.backup.dir {inside} lies inside the site's WordPress root" in line
    assert "outside the web server's document root" in line
    assert not inside.exists()

    deployed = wpgate("deploy", str(sites["release"]), "--to", "production", "--yes", config=config)
    assert deployed.returncode == 3, deployed.stderr
    [line] = error_lines(deployed.stderr)
    assert "sites.production.backup.dir" in line and "production was not changed" in line
    assert "✘ 6.2 backup: failed\n" in deployed.stderr
    assert deployed.stderr.count("lies inside the site's WordPress root") == 1, "the refusal is said once"
    assert not inside.exists()
    assert_unchanged(before, fingerprint(production))


def test_a_backup_folder_that_leads_into_the_root_by_a_link_is_refused(sites, tmp_path):
    production = sites["production"]
    target = Path(production.path) / "wp-content" / "private-backups"
    target.mkdir()
    link = tmp_path / "backups"
    link.symlink_to(target)
    try:
        config = with_backup(sites, "linked", dir=str(link), offsite=str(tmp_path / "offsite"))
        taken = wpgate("backup", "production", config=config)
        assert taken.returncode == 3, taken.stderr
        [line] = error_lines(taken.stderr)
        assert f"leads to {target}, inside the site's WordPress root" in line
        assert list(target.iterdir()) == []
    finally:
        target.rmdir()


def test_a_backup_folder_the_site_serves_through_a_link_is_refused_by_a_real_request(sites, tmp_path):
    """The folder lies outside the root, but a link in the root leads to it: php -S serves what is written
    there. wpgate writes a marker, asks the site for it, gets it, refuses, and removes the marker."""
    production = sites["production"]
    outside = tmp_path / "backups"
    outside.mkdir()
    link = Path(production.path) / "wp-content" / "downloads"
    link.symlink_to(outside)
    try:
        config = with_backup(sites, "served", dir=str(outside), offsite=str(tmp_path / "offsite"))
        taken = wpgate("backup", "production", config=config)
        assert taken.returncode == 3, taken.stderr
        [line] = error_lines(taken.stderr)
        assert f"sites.production.backup.dir {outside} is served by the web server" in line
        assert f"GET {production.url}/wp-content/downloads/wpgate-probe-" in line and "answered 200" in line
        assert list(outside.iterdir()) == [], "the marker is removed"
        assert not list((tmp_path / "offsite").glob("*")) if (tmp_path / "offsite").exists() else True
    finally:
        link.unlink()


def test_a_backup_folder_under_a_document_root_above_wordpress_is_refused_by_a_real_request(sites, tmp_path):
    """WordPress in a subfolder of the document root: a second php -S serves the folder above the site's
    root, and the site's URL is that server's /trust-prod/. A backup folder beside WordPress is served."""
    production = sites["production"]
    above = Path(production.path).parent
    beside = above / "trust-prod-backups"
    server = PhpBuiltinServer(above, workdir=tmp_path / "server")
    server.start()
    try:
        config = with_backup(sites, "above", dir=str(beside), offsite=str(tmp_path / "offsite"))
        document = yaml.safe_load(config.read_text())
        document["sites"]["production"]["url"] = f"http://127.0.0.1:{server.port}/{Path(production.path).name}"
        config.write_text(yaml.safe_dump(document, sort_keys=False))
        taken = wpgate("backup", "production", config=config)
        assert taken.returncode == 3, taken.stderr
        [line] = error_lines(taken.stderr)
        assert f"GET http://127.0.0.1:{server.port}/trust-prod-backups/wpgate-probe-" in line
        assert not beside.exists(), "the folder wpgate made for the marker is removed with it"
    finally:
        server.stop()
        shutil.rmtree(beside, ignore_errors=True)


def test_a_backup_folder_the_site_does_not_serve_is_probed_and_accepted(sites, tmp_path):
    """Beside the root, no link to it: the probe asks the site's origin for it (the folder above WordPress
    could be the document root), php -S answers with WordPress's 404, the backup is taken."""
    production = sites["production"]
    outside = Path(production.path).parent / "trust-prod-private"
    link = Path(production.path) / "wp-content" / "elsewhere"
    link.symlink_to(tmp_path / "unrelated", target_is_directory=True)
    (tmp_path / "unrelated").mkdir()
    try:
        config = with_backup(sites, "private", dir=str(outside), offsite=str(tmp_path / "offsite"))
        taken = wpgate("backup", "production", "--json", config=config)
        assert taken.returncode == 0, taken.stderr
        manifest = json.loads(taken.stdout)
        assert [path.name for path in outside.iterdir()] == [manifest["id"]], "no marker left behind"
        [probe] = [entry for entry in manifest["exposure"] if entry["key"] == "sites.production.backup.dir"]
        first = probe["requests"][0]
        assert re.match(rf"{production.url}/trust-prod-private/wpgate-probe-[0-9a-f]+/marker\.txt$", first["url"])
        assert all(request["status"] == 404 and request["served"] is False for request in probe["requests"])
    finally:
        link.unlink()
        shutil.rmtree(outside, ignore_errors=True)


# --- a missing --yes without a terminal (issue 17, point 5) -------------------------------------------------

def runs_of(sites) -> dict[str, bytes]:
    """Every run's folder and its report, as recorded now."""
    runs = sites["folder"] / "state" / "runs"
    return {path.name: (path / "report.json").read_bytes() + (path / "journal.jsonl").read_bytes()
            for path in sorted(runs.iterdir())} if runs.exists() else {}


def test_deploy_and_rollback_without_yes_and_without_a_terminal_are_bad_input_and_record_nothing(sites):
    unapproved = sites["folder"] / "unapproved.yml"
    document = yaml.safe_load(sites["release"].read_text())
    document.pop("approval"), document.pop("qa", None)
    unapproved.write_text(yaml.safe_dump(document, sort_keys=False))
    refused = wpgate("deploy", str(unapproved), "--to", "production", "--yes", "--json", config=sites["config"])
    assert refused.returncode == 3, refused.stderr
    refused_run = json.loads(refused.stdout)["run"]
    before = fingerprint(sites["production"])
    runs = runs_of(sites)

    deployed = wpgate("deploy", str(sites["release"]), "--to", "production", config=sites["config"])
    assert_one_line_error(deployed, 2, "deploy asks before changing production", "there is no terminal",
                          "pass --yes")
    rolled = wpgate("rollback", refused_run, config=sites["config"])
    assert_one_line_error(rolled, 2, "rollback asks before changing production", "pass --yes")
    assert runs_of(sites) == runs, "no run recorded, none changed"
    latest = wpgate("status", "--json", config=sites["config"])
    assert json.loads(latest.stdout)["run"] == refused_run
    assert_unchanged(before, fingerprint(sites["production"]))


# --- the words of a complete run (issue 17, point 9) ------------------------------------------------------

@pytest.fixture(scope="module")
def completed(sites):
    """The module's release deployed to production: a complete run."""
    result = wpgate("deploy", str(sites["release"]), "--to", "production", "--yes", "--json", config=sites["config"])
    assert result.returncode == 0, result.stderr
    return {"run": json.loads(result.stdout)["run"], "stderr": result.stderr, "report": json.loads(result.stdout)}


def test_a_complete_run_counts_in_words(completed):
    stderr = completed["stderr"]
    assert "1 artifact verified" in stderr and "1 artifacts" not in stderr
    assert "pass(es)" not in stderr and re.search(r"6\.6 monitor: passed — \d+ pass(es)? over", stderr)


def test_the_approved_manifest_keeps_the_qa_issue_id_a_number(sites, completed):
    """write_qa's issue `id: 12` is still the number 12 in the approved manifest, whose digest held."""
    manifest = yaml.safe_load(sites["release"].read_text())
    assert manifest["qa"]["issues"][0]["id"] == 12
    assert "id: '12'" not in sites["release"].read_text()


def test_the_html_report_never_cuts_a_short_word_in_two(sites, completed, tmp_path):
    """The PHP version in the caches table showed as "8.2.3" over "6": in real Chromium, every short
    value of the report's tables and lists sits on one line, at a desktop and a phone width."""
    from tests.support.chromium import browser_context

    page_path = tmp_path / "report.html"
    written = wpgate("report", completed["run"], "--html", str(page_path), config=sites["config"])
    assert written.returncode == 0, written.stderr
    php_version = subprocess.run(["php", "-r", "echo PHP_VERSION;"], capture_output=True, text=True).stdout
    assert f'<span class="word">{php_version}</span>' in page_path.read_text()
    for width in (1280, 420):
        with browser_context(width=width, height=800) as context:
            page = context.new_page()
            page.goto(page_path.as_uri())
            cut = page.evaluate("""() => {
                const cut = [];
                for (const cell of document.querySelectorAll('td, dd')) {
                    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
                    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                        const text = node.textContent.trim();
                        if (!text || /\\s/.test(text) || text.length > 24) continue;
                        const range = document.createRange(); range.selectNodeContents(node);
                        if ([...range.getClientRects()].filter(r => r.width > 0).length > 1) cut.push(text);
                    }
                }
                return cut;
            }""")
            assert cut == [], f"cut in two at {width}px: {cut}"


# --- the caches gate's words (issue 17, point 8) -----------------------------------------------------------

def test_the_caches_gate_names_the_markers_it_saw_and_purge_dry_run_the_drop_in_there_is(sites, completed):
    assert "6.5 caches: passed — purged object cache, page-cache plugins, opcache; / shows plugin wpgate-hello " \
           "1.2.0\n" in completed["stderr"]
    assert "show the release" not in completed["stderr"]

    none = wpgate("purge", "production", "--dry-run", config=sites["config"])
    assert none.returncode == 0, none.stderr
    assert "1. object cache: wp_cache_flush() inside WordPress (no persistent object cache drop-in" in none.stderr
    assert "is named" not in none.stderr
    dropin = Path(sites["production"].path) / "wp-content" / "object-cache.php"
    dropin.write_text("<?php\n/*\nPlugin Name: Test Object Cache\nVersion: 1.4\n*/\n")
    try:
        named = wpgate("purge", "production", "--dry-run", config=sites["config"])
    finally:
        dropin.unlink()
    assert named.returncode == 0, named.stderr
    assert "flushing the persistent object cache Test Object Cache 1.4 (wp-content/object-cache.php)" in named.stderr


# --- an approval does not outlive a rollback (issue 17, point 4) ------------------------------------------

def test_after_a_rollback_the_same_release_needs_a_fresh_approval(sites, completed):
    config, release, production = sites["config"], sites["release"], sites["production"]
    rolled = wpgate("rollback", completed["run"], "--yes", config=config)
    assert rolled.returncode == 0, rolled.stderr
    before = fingerprint(production)

    for options in (("--yes",), ("--dry-run",)):
        again = wpgate("deploy", str(release), "--to", "production", *options, config=config)
        assert again.returncode == 3, again.stderr
        [line] = error_lines(again.stderr)
        assert f"release {yaml.safe_load(release.read_text())['id']} was rolled back on production by run " \
               f"{completed['run']}" in line
        assert "(why: rollback requested)" in line and "approve it again" in line
    assert_unchanged(before, fingerprint(production))

    approved = wpgate("approve", str(release), "--qa", str(write_qa(sites["folder"])), "--by", "Ana", config=config)
    assert approved.returncode == 0, approved.stderr
    assert "approving again: release" in approved.stderr and "(why: rollback requested)" in approved.stderr
    dry = wpgate("deploy", str(release), "--to", "production", "--dry-run", config=config)
    assert dry.returncode == 0, dry.stderr
    assert "✔ 6.1 approval: passed" in dry.stderr
