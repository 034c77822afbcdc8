"""The rollback's proof: a put-back that goes wrong mid-rollback is caught by the proof, and the run ends
`rollback_failed` with exit 5, "not proved". The fault is real: a plugin of the release (wpgate-faulty
2.1.0) spoils the copy of itself that wpgate kept aside, then breaks the front end; putting that copy
back succeeds as a rename and gives a version other than the one before the run."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.helpers import aside_root, fingerprint, site_entry, wpgate, wpgate_json, write_config, write_qa
from wpgate.testbed.fixtures import SABOTAGE

pytestmark = pytest.mark.e2e

SLUG, SPOILER = SABOTAGE["spoils_its_aside_copy"]


@pytest.fixture(scope="module")
def sabotaged(bed, tmp_path_factory):
    """A release of wpgate-faulty 2.1.0 and wpgate-hello 1.2.0, planned from a staging that keeps the
    saboteur inactive (its QA saw nothing)."""
    folder = tmp_path_factory.mktemp("rollback-proof")
    staging = bed.create_site("proof-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0", SLUG: SPOILER},
                              active_plugins=["wpgate-hello"])
    reference = production(bed, "proof-reference")
    config = write_config(folder, {"staging": site_entry(staging), "reference": site_entry(reference)},
                          state_dir="state")
    release = folder / "release.yml"
    result = wpgate("plan", "--from", "staging", "--to", "reference", "-o", str(release), config=config)
    assert result.returncode == 0, result.stderr
    result = wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana", config=config)
    assert result.returncode == 0, result.stderr
    reference.stop()
    yield {"folder": folder, "config": config, "release": release}
    staging.stop()


def production(bed, name: str):
    # nginx + php-fpm checks file times on every request: the probe after an update runs the new code.
    return bed.create_site(name, core="6.5.5", server="nginx", plugins={"wpgate-hello": "1.0.0", SLUG: "1.1.0"})


def test_a_put_back_spoiled_mid_rollback_is_not_proved_and_exits_5(bed, sabotaged, tmp_path):
    site = production(bed, "proof-auto")
    config = write_config(tmp_path, {"staging": site_entry(bed.sites["proof-staging"]),
                                     "production": site_entry(site)},
                          state_dir=str(sabotaged["folder"] / "state"))
    result = wpgate("deploy", str(sabotaged["release"]), "--to", "production", "--yes", "--json", config=config)
    assert result.returncode == 5, result.stderr
    assert "Traceback" not in result.stderr
    assert "the rollback is NOT complete; a person must act" in result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "rollback_failed"
    # The put-back ran (a rename that succeeds); only the proof sees the copy put back is not what was there.
    assert {u["slug"]: u["status"] for u in report["updates"]}[SLUG] == "rolled_back"
    problems = report["rollback"]["problems"]
    assert problems == [f"plugin {SLUG} is 1.1.0.1, expected 1.1.0"], problems
    assert f"plugin {SLUG} is 1.1.0.1, expected 1.1.0" in result.stderr
    # The site itself answers (the code put back is 1.1.0's): what the proof caught is the version alone.
    assert httpx.get(site.url + "/", timeout=30).status_code == 200
    plugins = {p["slug"]: p["version"] for p in wpgate_json("inventory", "production", config=config)["plugins"]}
    assert (plugins["wpgate-hello"], plugins[SLUG]) == ("1.0.0", "1.1.0.1")
    status = wpgate_json("status", report["run"], config=config)
    assert status["status"] == "rollback_failed"
    # What the run kept aside stays for the person who must act: a rollback not proved removes nothing.
    assert (aside_root(site) / report["run"]).is_dir()
    site.stop()


def test_wpgate_rollback_of_a_spoiled_run_is_not_proved_and_exits_5(bed, sabotaged, tmp_path):
    """The same sabotage, the run left as it failed (--no-auto-rollback): `wpgate rollback` exits 5 too. (A site
    of another name: gate 6.1 refuses a release rolled back on a site since its approval.)"""
    site = production(bed, "proof-manual")
    config = write_config(tmp_path, {"staging": site_entry(bed.sites["proof-staging"]),
                                     "manual": site_entry(site)},
                          state_dir=str(sabotaged["folder"] / "state"))
    result = wpgate("deploy", str(sabotaged["release"]), "--to", "manual", "--yes", "--no-auto-rollback",
                    "--json", config=config)
    assert result.returncode == 5, result.stderr
    run = json.loads(result.stdout)["run"]
    before_rollback = fingerprint(site)
    rolled = wpgate("rollback", run, "--yes", "--json", config=config)
    assert rolled.returncode == 5, rolled.stderr
    assert "Traceback" not in rolled.stderr
    report = json.loads(rolled.stdout)
    assert report["status"] == "rollback_failed"
    assert report["rollback"]["problems"] == [f"plugin {SLUG} is 1.1.0.1, expected 1.1.0"]
    assert fingerprint(site)["files"] != before_rollback["files"]  # it did put the copies back
    site.stop()
