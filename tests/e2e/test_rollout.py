"""Rollouts on a group of 7 real sites sharing one MariaDB (six on php -S reached locally, one over the test bed's
sshd; one skipped by the plan for holding a newer plugin): a release halted by one site's local must-use plugin
(that site rolled back and proved, the later waves untouched byte for byte, exit 4), the rollout's page and one
notification; then the controller killed with SIGKILL mid-rollout and `resume ROLLOUT_ID` finishing it without
running any site twice. Bad input first: each one line, exit 2, nothing written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.helpers import (WPGATE, assert_one_line_error, assert_unchanged, but_caches, fingerprint, site_entry,
                               wpgate, write_config, write_qa)
from tests.e2e.receivers import webhook_receiver

pytestmark = pytest.mark.e2e

GROUP = ["fleet-a", "fleet-b", "fleet-c", "fleet-d", "fleet-e", "fleet-f", "fleet-g"]
# fleet-c's own must-use plugin: a local tweak written against wpgate-seo 3.0's footer, which 3.1 breaks.
CONFLICT = """<?php
/* Plugin Name: local footer tweak (fleet-c only) */
add_action( 'wp_footer', function () {
	if ( defined( 'WPGATE_SEO_VERSION' ) && version_compare( WPGATE_SEO_VERSION, '3.1.0', '>=' ) ) {
		local_footer_tweak_for_seo_30();  // gone in 3.1: a fatal error while the page renders
	}
}, 1 );
"""


def ledger(state: Path, rollout_id: str) -> dict:
    return json.loads((state / "rollouts" / rollout_id / "rollout.json").read_text())


def runs_of(state: Path, release_id: str) -> dict[str, list[str]]:
    """site -> the ids of every run of that release on it."""
    found: dict[str, list[str]] = {}
    for report in (state / "runs").glob("*/report.json"):
        data = json.loads(report.read_text())
        if data.get("release") == release_id:
            found.setdefault(data["site"], []).append(data["run"])
    return found


@pytest.fixture(scope="module")
def scene(bed, tmp_path_factory):
    folder = tmp_path_factory.mktemp("rollout")
    ssh = bed.sshd()
    staging = bed.create_site("fleet-staging", plugins={"wpgate-hello": "1.1.0", "wpgate-seo": "3.1.0"})
    sites = {name: bed.create_site(name, plugins={"wpgate-hello": "1.0.0", "wpgate-seo": "3.0.0"}) for name in GROUP}
    (sites["fleet-c"].path / "wp-content" / "mu-plugins").mkdir(exist_ok=True)
    (sites["fleet-c"].path / "wp-content" / "mu-plugins" / "local-tweak.php").write_text(CONFLICT)
    sites["fleet-g"].install_plugin("wpgate-hello", "1.2.0")  # newer than the release's 1.1.0: never downgraded
    notify = {"webhook": {"url_env": "WPGATE_TEST_WEBHOOK"}}
    entries = {"staging": site_entry(staging)}
    for name, site in sites.items():
        entries[name] = site_entry(site, ssh=ssh if name == "fleet-b" else None, notify=notify)
    config = write_config(folder, entries, state_dir="state",
                          groups={"fleet": GROUP, "nobody": []}, fleet={"parallel": 2})
    state = folder / "state"
    with webhook_receiver() as hook:
        env = {"WPGATE_TEST_WEBHOOK": hook.url}

        def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
            result = wpgate(*args, config=config, env=env, timeout=900)
            assert result.returncode == code, (result.returncode, result.stderr)
            return result

        release = folder / "release.yml"
        planned = run("plan", "--from", "staging", "--to", "fleet", "-o", str(release), "--json")
        bad = {name: wpgate(*args, config=config, env=env) for name, args in {
            "unknown group": ("rollout", str(release), "--to", "nowhere", "--yes"),
            "a site, not a group": ("rollout", str(release), "--to", "fleet-a", "--yes"),
            "empty group": ("rollout", str(release), "--to", "nobody", "--yes"),
            "waves shrink": ("rollout", str(release), "--to", "fleet", "--waves", "3,2,100%", "--yes"),
            "waves exceed": ("rollout", str(release), "--to", "fleet", "--waves", "1,9", "--yes"),
            "parallel 0": ("rollout", str(release), "--to", "fleet", "--parallel", "0", "--yes"),
            "no broker": ("rollout", str(release), "--to", "fleet", "--engine", "celery", "--yes"),
        }.items()}
        rollouts_after_bad_input = (state / "rollouts").exists()
        not_approved = wpgate("rollout", str(release), "--to", "fleet", "--yes", config=config, env=env)
        run("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana Tester")
        before = {name: fingerprint(site) for name, site in sites.items()}
        refusals = list(hook)
        hook.clear()
        halted = run("rollout", str(release), "--to", "fleet", "--waves", "1,3,100%", "--yes", "--json", code=4)
        after = {name: fingerprint(site) for name, site in sites.items()}
        messages = list(hook)
        yield {"config": config, "state": state, "sites": sites, "run": run, "planned": json.loads(planned.stdout),
               "bad": bad, "rollouts_after_bad_input": rollouts_after_bad_input, "not_approved": not_approved,
               "before": before, "after": after, "halted": halted, "messages": messages, "folder": folder,
               "hook": hook, "env": env, "refusals": refusals}


def test_plan_for_a_group_skips_the_site_with_a_newer_plugin(scene):
    planned = scene["planned"]
    assert [(u["slug"], u["to"]) for u in planned["updates"]] == [("wpgate-hello", "1.1.0"), ("wpgate-seo", "3.1.0")]
    assert all("from" not in update for update in planned["updates"])
    assert list(planned["sites"]) == GROUP[:-1]
    assert planned["sites"]["fleet-a"] == {"wpgate-hello": "1.0.0", "wpgate-seo": "3.0.0"}
    assert planned["skipped"] == {"fleet-g": "wpgate-hello 1.2.0 is newer than the release's 1.1.0"}


def test_bad_input_is_one_line_exit_2_and_writes_nothing(scene):
    bad = scene["bad"]
    assert_one_line_error(bad["unknown group"], 2, "no group named 'nowhere'")
    assert_one_line_error(bad["a site, not a group"], 2, "'fleet-a' is a site")
    assert_one_line_error(bad["empty group"], 2, "groups.nobody: the group is empty")
    assert_one_line_error(bad["waves shrink"], 2, "the waves must grow")
    assert_one_line_error(bad["waves exceed"], 2, "9 exceeds the group's 6 sites")
    assert_one_line_error(bad["parallel 0"], 2, "--parallel 0")
    assert_one_line_error(bad["no broker"], 2, "broker")
    assert not scene["rollouts_after_bad_input"]
    # Not approved: refused before any site changed (exit 3), the ledger says so.
    assert scene["not_approved"].returncode == 3, scene["not_approved"].stderr
    assert "is not approved" in scene["not_approved"].stderr


def test_a_site_specific_conflict_halts_the_rollout_in_its_wave(scene):
    state, before, after = scene["state"], scene["before"], scene["after"]
    data = json.loads(scene["halted"].stdout)
    assert data["status"] == "halted" and data["group"] == "fleet"
    assert data["waves"] == [["fleet-a"], ["fleet-b", "fleet-c"], ["fleet-d", "fleet-e", "fleet-f"]]
    status = {name: entry["status"] for name, entry in data["sites"].items()}
    # fleet-b ran beside fleet-c (--parallel 2) and finished; no site of wave 3 started.
    assert status == {"fleet-a": "complete", "fleet-b": "complete", "fleet-c": "rolled_back",
                      "fleet-d": "pending", "fleet-e": "pending", "fleet-f": "pending"}
    assert data["halted_by"] == "fleet-c"
    assert data["sites"]["fleet-c"]["culprit"]["slug"] == "wpgate-seo"
    assert all(entry["worker"] and ":" in entry["worker"] for entry in list(data["sites"].values())[:3])
    assert ledger(state, data["rollout"]) == data  # the controller's ledger, exactly what --json printed
    # Each reached site has its own run and report; the rolled-back one is proved back (the database too,
    # but for WordPress's own caches and cron schedule, rewritten whenever a page loads).
    report_c = json.loads((state / "runs" / data["sites"]["fleet-c"]["run"] / "report.json").read_text())
    assert report_c["site"] == "fleet-c" and report_c["status"] == "rolled_back"
    assert [u["slug"] for u in report_c["updates"]] == ["wpgate-hello", "wpgate-seo"]
    site_c = scene["sites"]["fleet-c"]
    assert_unchanged(but_caches(site_c, before["fleet-c"]), but_caches(site_c, after["fleet-c"]))
    # Later waves and the skipped site: byte for byte, database included.
    for name in ("fleet-d", "fleet-e", "fleet-f", "fleet-g"):
        assert_unchanged(before[name], after[name])
        assert name not in runs_of(state, data["release"])
    assert before["fleet-a"]["files"] != after["fleet-a"]["files"]
    assert "halted by fleet-c" in scene["halted"].stderr


def test_the_rollout_page_and_one_notification(scene, tmp_path):
    data = json.loads(scene["halted"].stdout)
    page = tmp_path / "rollout.html"
    scene["run"]("report", data["rollout"], "--html", str(page))
    text = page.read_text()
    assert "Halted by fleet-c" in text and "wpgate-seo" in text
    assert 'id="not-reached"' in text and "fleet-d, fleet-e, fleet-f" in text
    for name in ("fleet-a", "fleet-b", "fleet-c"):
        link = f"rollout-{name}.html"
        assert f'href="{link}"' in text and (tmp_path / link).is_file()
    status = scene["run"]("status", data["rollout"]).stderr
    assert "halted" in status and "fleet-c: rolled back" in status
    # One message for the whole rollout (the sites' own runs send none), with its outcome and counts.
    [refused] = scene["refusals"]  # the rollout refused as not approved sent its own
    assert refused["json"]["wpgate"]["status"] == "refused"
    [message] = scene["messages"]
    body = message["json"]
    assert body["text"].startswith(f"wpgate: rollout {data['rollout']}")
    assert body["wpgate"]["counts"] == {"complete": 2, "rolled_back": 1, "pending": 3}


def test_a_killed_controller_is_resumed_without_running_a_site_twice(scene):
    """fleet-c's conflict fixed, the group planned again (a and b hold the release now: skipped); the controller
    is killed with SIGKILL as soon as the first site is complete; `resume` finishes the rollout."""
    state, folder, run = scene["state"], scene["folder"], scene["run"]
    (scene["sites"]["fleet-c"].path / "wp-content" / "mu-plugins" / "local-tweak.php").unlink()
    release = folder / "again.yml"
    planned = json.loads(run("plan", "--from", "staging", "--to", "fleet", "-o", str(release), "--json").stdout)
    assert list(planned["sites"]) == ["fleet-c", "fleet-d", "fleet-e", "fleet-f"]
    assert planned["skipped"]["fleet-a"] == "holds the release's versions already"
    run("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana Tester")
    controller = subprocess.Popen([str(WPGATE), "-c", str(scene["config"]), "rollout", str(release), "--to", "fleet",
                                   "--waves", "1,100%", "--yes"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env={**os.environ, **scene["env"]})
    try:
        rollout_id = None
        deadline = time.monotonic() + 600  # a guard against a hang, not a measure
        while True:
            assert controller.poll() is None, controller.stderr.read().decode()
            assert time.monotonic() < deadline
            found = sorted((state / "rollouts").iterdir())
            newest = found[-1] / "rollout.json"
            if newest.exists():
                data = json.loads(newest.read_text())
                if data["release"] == planned["id"] and data["sites"]["fleet-c"]["status"] == "complete":
                    rollout_id = data["rollout"]
                    break
            time.sleep(0.1)
        os.kill(controller.pid, signal.SIGKILL)
    finally:
        if controller.poll() is None:
            controller.kill()
        controller.wait()
    assert ledger(state, rollout_id)["status"] == "running"
    resumed = run("resume", rollout_id, "--json")
    data = json.loads(resumed.stdout)
    assert data["status"] == "complete"
    assert {name: entry["status"] for name, entry in data["sites"].items()} == dict.fromkeys(planned["sites"],
                                                                                            "complete")
    # Every site ran once: one run of this release each, the one the ledger names.
    runs = runs_of(state, planned["id"])
    assert {name: ids for name, ids in runs.items()} == {name: [entry["run"]] for name, entry in data["sites"].items()}
    assert run("resume", rollout_id).returncode == 0  # ended: nothing more to do
