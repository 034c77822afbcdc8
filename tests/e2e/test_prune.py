"""Backup retention and `wpgate prune` on real sites: backups taken with `wpgate backup` and one complete deploy,
then `prune --dry-run` changes nothing and `prune` removes exactly what retention lets go, on the host and
off-site, never what a run may still roll back to, never files wpgate did not write; a kept backup restores."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import aside_root, assert_one_line_error, site_entry, wpgate, write_config, write_qa

pytestmark = pytest.mark.e2e


def tree(folder: Path) -> dict[str, int]:
    """Every file under `folder` with its size: what a dry run must leave as it was."""
    return {str(path.relative_to(folder)): path.stat().st_size for path in sorted(folder.rglob("*")) if path.is_file()}


def backup_ids(folder: Path) -> set[str]:
    return {path.name for path in folder.iterdir() if (path / "manifest.json").is_file()} if folder.is_dir() else set()


@pytest.fixture(scope="module")
def scene(bed, tmp_path_factory):
    """keep_last 1. Two backups, two releases planned (the same artifacts), the first deployed complete (retention
    runs after it), then two more backups; the second release abandoned (its saved manifest removed)."""
    folder = tmp_path_factory.mktemp("prune")
    staging = bed.create_site("prune-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0"})
    production = bed.create_site("prune-prod", core="6.5.5", plugins={"wpgate-hello": "1.0.0"})
    host, offsite = folder / "host", folder / "offsite"
    config = write_config(folder, {
        "staging": site_entry(staging),
        "production": site_entry(production, backup={"dir": str(host), "offsite": str(offsite), "keep_last": 1})},
        state_dir="state")
    state = folder / "state"

    def run(*args: str, code: int = 0):
        result = wpgate(*args, config=config)
        assert result.returncode == code, result.stderr
        return result

    first = json.loads(run("backup", "production", "--json").stdout)["id"]
    fresh = json.loads(run("backup", "production", "--json").stdout)["id"]  # the one gate 6.2 finds fresh
    release, later = folder / "release.yml", folder / "later.yml"
    run("plan", "--from", "staging", "--to", "production", "-o", str(release))
    run("plan", "--from", "staging", "--to", "production", "-o", str(later))
    run("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana Tester")
    artifacts_before = sorted(path.name for path in (state / "artifacts").glob("*.zip"))
    deployed = json.loads(run("deploy", str(release), "--to", "production", "--yes", "--json").stdout)
    after_deploy = {"host": backup_ids(host), "artifacts": sorted(p.name for p in (state / "artifacts").glob("*.zip"))}
    second = json.loads(run("backup", "production", "--json").stdout)["id"]
    third = json.loads(run("backup", "production", "--json").stdout)["id"]
    later_id = yaml.safe_load(later.read_text())["id"]
    (state / "releases" / f"{later_id}.yml").unlink()  # abandoned: nothing may deploy it any more
    return {"config": config, "host": host, "offsite": offsite, "state": state, "first": first, "fresh": fresh, "second": second,
            "third": third, "deployed": deployed, "after_deploy": after_deploy, "artifacts_before": artifacts_before,
            "run": run, "production": production}


def test_retention_after_a_complete_deploy_keeps_what_a_release_not_deployed_needs(scene):
    deployed = scene["deployed"]
    assert deployed["status"] == "complete"
    retention = deployed["retention"]
    assert retention["warnings"] == []
    run_backup = deployed["backup"]["id"]
    # keep_last 1: only the newest backup (the run's own) stays; the first backup, which no run used, goes.
    assert scene["after_deploy"]["host"] == {run_backup}
    assert scene["first"] in retention["removed"] and run_backup not in retention["removed"]
    assert not (scene["offsite"] / scene["first"]).exists()
    # The second release, planned and not deployed, refers to the same zips: all kept.
    assert scene["artifacts_before"] and scene["after_deploy"]["artifacts"] == scene["artifacts_before"]


def test_dry_run_lists_and_changes_nothing(scene):
    before = {name: tree(scene[name]) for name in ("host", "offsite", "state")}
    result = scene["run"]("prune", "production", "--dry-run", "--json")
    document = json.loads(result.stdout)
    gone = {entry["name"] for entry in document["backups"] if not entry["keep"]}
    assert gone == {scene["second"]}
    assert [entry["name"] for entry in document["artifacts"] if entry["keep"]] == []
    assert f"would remove backup {scene['second']}" in result.stderr
    assert f"kept backup {scene['third']}: the newest backup" in result.stderr
    assert {name: tree(scene[name]) for name in ("host", "offsite", "state")} == before


def test_prune_removes_exactly_the_expected_on_the_host_and_off_site(scene):
    run_backup = scene["deployed"]["backup"]["id"]
    host, offsite, state = scene["host"], scene["offsite"], scene["state"]
    (host / "notes by the admin.txt").write_text("not wpgate's")
    (offsite / scene["second"] / "checksums by the admin.txt").write_text("not wpgate's either")
    result = scene["run"]("prune", "production", "--json")
    document = json.loads(result.stdout)
    assert backup_ids(host) == {run_backup, scene["third"]} == backup_ids(offsite)
    assert not (host / scene["second"]).exists()
    assert (host / "notes by the admin.txt").read_text() == "not wpgate's"
    # The off-site folder keeps the file wpgate did not write, and says so; wpgate's own files are gone.
    assert sorted(p.name for p in (offsite / scene["second"]).iterdir()) == ["checksums by the admin.txt"]
    assert any("files wpgate did not write" in problem for problem in document["problems"])
    assert re.search(r"^warning: off-site, .* holds files wpgate did not write", result.stderr, re.M)
    kept = {entry["name"]: " ".join(entry["reasons"]) for entry in document["backups"] if entry["keep"]}
    assert f"run {scene['deployed']['run']} is complete" in kept[run_backup]
    # The release deployed complete and the other abandoned: its zips go.
    assert list((state / "artifacts").glob("*.zip")) == []
    assert f"removed artifact artifacts/{scene['artifacts_before'][0]}" in result.stderr


def test_a_kept_backup_still_restores(scene):
    scene["run"]("restore", scene["deployed"]["backup"]["id"], "--verify")


def test_unknown_site_and_bad_retention_are_one_line_errors(scene, tmp_path):
    assert_one_line_error(wpgate("prune", "nowhere", config=scene["config"]), 2, "nowhere")
    bad = tmp_path / "wpgate.yml"
    bad.write_text(scene["config"].read_text().replace("keep_last: 1", "keep_last: 0"))
    assert_one_line_error(wpgate("prune", "production", config=bad), 2, "sites.production.backup.keep_last")


def test_prune_waits_for_the_sites_lock_and_exits_5_when_a_removal_fails(scene):
    """Runs last: it takes one more backup, so retention has one to remove."""
    host = scene["host"]
    lock = aside_root(scene["production"]) / "lock"
    newest = json.loads(scene["run"]("backup", "production", "--json").stdout)["id"]
    doomed = sorted(backup_ids(host) - {newest, scene["deployed"]["backup"]["id"]})
    assert len(doomed) == 1
    lock.parent.mkdir(exist_ok=True)
    lock.write_text(json.dumps({"run": "20261130-000000-ab12", "host": "elsewhere", "pid": 1,
                                "since": "2026-11-30T00:00:00Z"}))
    try:
        before = backup_ids(host)
        assert_one_line_error(wpgate("prune", "production", config=scene["config"]), 3,
                              "is locked by run 20261130-000000-ab12")
        assert backup_ids(host) == before
    finally:
        lock.unlink()
    # A part wpgate cannot remove (here a folder where its files.index was): exit 5, the backup named.
    index = host / doomed[0] / "files.index"
    index.unlink()
    (index / "in the way").mkdir(parents=True)
    result = wpgate("prune", "production", config=scene["config"])
    assert result.returncode == 5, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("wpgate: error:")]
    assert len(errors) == 1 and f"could not remove {doomed[0]}" in errors[0] and "Traceback" not in result.stderr
    assert "production: removed 0 of 3 backups" in result.stderr
    assert not lock.exists()  # released however prune ended
