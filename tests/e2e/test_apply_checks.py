"""Gate 6.3's own checks on the host, each made to fail for real at its exact point: the deploy is paused
right after a journal event (WPGATE_TEST_PAUSE_AFTER), the test damages what wpgate is about to check,
and lets it go on. The package damaged after its upload is refused before the site changes ("arrived
damaged"); an installed file changed behind the upgrader's back is caught by the re-read ("installed
files differ") and rolled back. Production ends byte-for-byte as before, read without wpgate."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.helpers import (aside_root, assert_rolled_back, fingerprint, site_entry, wpgate, wpgate_json,
                               wpgate_paused_after, write_config, write_qa)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    """wpgate-hello 1.0.0 → 1.2.0, and a production at 1.0.0 that each test leaves as it found it."""
    folder = tmp_path_factory.mktemp("apply-checks")
    staging = bed.create_site("checks-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0"})
    production = bed.create_site("checks-prod", core="6.5.5", server="nginx", plugins={"wpgate-hello": "1.0.0"})
    config = write_config(folder, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    manifest = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "production", "-o", str(manifest), config=config).returncode == 0
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    yield {"config": config, "manifest": manifest, "production": production}
    for site in (staging, production):
        site.stop()


def deploy_paused_after(release, event: str, damage) -> subprocess.CompletedProcess[str]:
    """Deploy, stopped right after the journal's first `event`; `damage(run_folder)`, then go on."""
    runs = release["config"].parent / "state" / "runs"
    return wpgate_paused_after(event, lambda: damage(max(runs.iterdir(), key=lambda path: path.stat().st_mtime)),
                               "deploy", str(release["manifest"]), "--to", "production", "--yes", "--json",
                               config=release["config"], timeout=300)


def settled(site) -> dict:
    """The fingerprint, with wp_options compared row by row but for what WordPress itself rewrites when
    pages are visited (cron, transients): the monitor's page loads before the backup may run WP-Cron,
    and a rollback keeps the database as the backup has it."""
    found = fingerprint(site)
    found["tables"] = "\n".join(line for line in found["tables"].splitlines() if ".wp_options\t" not in line)
    found["options"] = site.sql("SELECT option_name, option_value FROM wp_options WHERE option_name <> 'cron' "
                                "AND option_name NOT LIKE '%\\_transient\\_%' ORDER BY option_name")
    return found


def journal(run_folder: Path) -> list[dict]:
    return [json.loads(line) for line in (run_folder / "journal.jsonl").read_text().splitlines()]


def test_a_package_damaged_on_the_host_after_its_upload_is_refused_before_the_site_changes(release):
    production = release["production"]
    before = settled(production)
    damaged = []

    def damage(run_folder: Path) -> None:
        upload = next(e for e in journal(run_folder) if e["event"] == "upload.done")
        with open(upload["package"], "ab") as package:  # one byte more, as a cut or doubled write leaves it
            package.write(b"\0")
        damaged.append(upload["package"])

    result = deploy_paused_after(release, "upload.done", damage)
    assert damaged and damaged[0].startswith(f"{aside_root(production)}/")  # uploaded outside the web root
    assert result.returncode in (3, 4), result.stderr
    assert "plugin wpgate-hello 1.0.0 → 1.2.0: the artifact arrived damaged on the host" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["updates"][0]["status"] != "applied"
    events = [e["event"] for e in journal(release["config"].parent / "state" / "runs" / report["run"])]
    assert "artifact.verified" not in events and "install.begin" not in events  # the upgrader never saw it
    after = settled(production)
    # The run's own folder (the damaged package) was outside the site's root: nothing of the site changed.
    assert after.pop("options") == before.pop("options")
    assert_rolled_back(before, after)


def test_an_installed_file_changed_behind_the_upgrader_is_caught_and_rolled_back(release):
    production = release["production"]
    before = settled(production)
    main_file = Path(production.plugins_dir) / "wpgate-hello" / "wpgate-hello.php"

    def damage(run_folder: Path) -> None:
        # The version header stays right: only the files' bytes can tell.
        with open(main_file, "a") as installed:
            installed.write("\n// changed on the host while the update ran\n")

    result = deploy_paused_after(release, "install.done", damage)
    assert result.returncode == 4, result.stderr
    assert "plugin wpgate-hello 1.0.0 → 1.2.0: 1 installed files differ from the artifact, e.g. wpgate-hello.php" \
           in result.stderr, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    plugins = {p["slug"]: p["version"] for p in wpgate_json("inventory", "production",
                                                            config=release["config"])["plugins"]}
    assert plugins["wpgate-hello"] == "1.0.0"
    after = settled(production)
    assert after.pop("options") == before.pop("options")
    assert_rolled_back(before, after)
