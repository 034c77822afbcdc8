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
from tests.support.sshd import sshd
from wpgate.testbed.process import free_port

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
    ssh = sshd(bed)
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
                          groups={"fleet": GROUP, "nobody": [], "trio": ["fleet-c", "fleet-d", "fleet-e"],
                                  "pair": ["fleet-e", "fleet-f"]},
                          fleet={"parallel": 2, "broker_env": "WPGATE_BROKER_URL"})
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
        bad["unreachable broker"] = wpgate("rollout", str(release), "--to", "fleet", "--engine", "celery", "--yes",
                                           config=config, env={**env, "WPGATE_BROKER_URL":
                                                               f"redis://127.0.0.1:{free_port()}/0"})
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
               "hook": hook, "env": env, "refusals": refusals,
               "staging": staging}


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
    assert_one_line_error(bad["no broker"], 2, "WPGATE_BROKER_URL (fleet.broker_env) is not set")
    assert_one_line_error(bad["unreachable broker"], 3, "the broker named by WPGATE_BROKER_URL does not answer")
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
    """fleet-c's conflict fixed, a release planned for three of the sites; the controller is killed with SIGKILL as
    soon as the first site is complete (the next wave's site processes outlive it); `resume` finishes the rollout."""
    state, folder, run = scene["state"], scene["folder"], scene["run"]
    (scene["sites"]["fleet-c"].path / "wp-content" / "mu-plugins" / "local-tweak.php").unlink()
    release = folder / "again.yml"
    planned = json.loads(run("plan", "--from", "staging", "--to", "trio", "-o", str(release), "--json").stdout)
    assert list(planned["sites"]) == ["fleet-c", "fleet-d", "fleet-e"] and planned["skipped"] == {}
    run("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana Tester")
    controller = subprocess.Popen([str(WPGATE), "-c", str(scene["config"]), "rollout", str(release), "--to", "trio",
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


def test_celery_workers_take_sites_and_a_killed_worker_is_taken_over(scene, tmp_path):
    """A real redis-server on loopback and two `wpgate worker` processes. The first takes the first site and is
    stopped right after its first update is swapped in (WPGATE_TEST_PAUSE_AFTER), then killed with SIGKILL; the
    second, started from another folder with its own copy of the config (its own state folder, the artifacts
    fetched from the broker), takes the site over through its run, which ends complete or rolled back (never
    half-updated), and the rollout goes on or halts as the rule says."""
    folder, run, sites = scene["folder"], scene["run"], scene["sites"]
    port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    env = {**os.environ, **scene["env"], "WPGATE_BROKER_URL": f"redis://127.0.0.1:{port}/0"}
    # A worker takes only releases signed by a listed approver: anyone who can write to the broker could send one.
    unsigned = wpgate("worker", config=scene["config"], env=env)
    assert unsigned.returncode == 2 and "set `approvers`" in unsigned.stderr, unsigned.stderr
    key = tmp_path / "ana"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ana", "-f", str(key)], check=True)
    kind, blob = key.with_suffix(".pub").read_text().split()[:2]
    signers = f'"Ana Tester" {kind} {blob}\n'
    worker_config = folder / "worker.yml"  # beside the controller's: the same state folder
    worker_config.write_text(scene["config"].read_text() + "approvers: worker_signers\n")
    (folder / "worker_signers").write_text(signers)
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "wpgate.yml").write_text(worker_config.read_text())
    (other / "worker_signers").write_text(signers)
    workers: list[subprocess.Popen] = []
    controller = None

    def start_worker(where: Path, argv: list[str], extra: dict[str, str]) -> subprocess.Popen:
        log = tmp_path / f"worker-{len(workers)}.log"
        workers.append(subprocess.Popen([str(WPGATE), *argv, "worker"], cwd=where, env={**env, **extra},
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(log, "w")))
        _started(workers[-1], log, "taking site deployments")
        return workers[-1]

    try:
        first = start_worker(scene["config"].parent, ["-c", str(worker_config)],
                             {"WPGATE_TEST_PAUSE_AFTER": "swapped"})
        scene["staging"].install_plugin("wpgate-hello", "1.2.0")
        release = folder / "pair.yml"
        planned = json.loads(run("plan", "--from", "staging", "--to", "pair", "-o", str(release), "--json").stdout)
        assert list(planned["sites"]) == ["fleet-e", "fleet-f"]
        run("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana Tester", "--key", str(key))
        before = fingerprint(sites["fleet-e"])
        controller = subprocess.Popen([str(WPGATE), "-c", str(scene["config"]), "rollout", str(release), "--to",
                                       "pair", "--engine", "celery", "--waves", "1,100%", "--yes", "--json"],
                                      env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 600  # a guard against a hang, not a measure
        while not _stopped(first.pid):
            assert controller.poll() is None, controller.communicate()
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        second = start_worker(other, [], {})
        first.send_signal(signal.SIGKILL)
        first.wait()
        stdout, stderr = controller.communicate(timeout=600)
        data = json.loads(stdout)
        site_e = data["sites"]["fleet-e"]
        # The killed worker's site was taken over through its own run: complete, or rolled back and proved.
        assert site_e["status"] in ("complete", "rolled_back"), stderr
        assert site_e["worker"].endswith(f":{second.pid}")
        assert f"fleet-e: taken by worker {site_e['worker'].split(':')[0]}:{first.pid}" in stderr
        plugins = json.loads(run("inventory", "fleet-e", "--json").stdout)["plugins"]
        [version] = [plugin["version"] for plugin in plugins if plugin["slug"] == "wpgate-hello"]
        if site_e["status"] == "complete":
            assert controller.returncode == 0 and data["status"] == "complete", stderr
            assert data["sites"]["fleet-f"]["status"] == "complete"
            assert data["sites"]["fleet-f"]["worker"].endswith(f":{second.pid}")
            assert version == "1.2.0"
        else:
            assert controller.returncode == 4 and data["status"] == "halted", stderr
            assert data["sites"]["fleet-f"]["status"] == "pending"
            assert_unchanged(but_caches(sites["fleet-e"], before), but_caches(sites["fleet-e"],
                                                                              fingerprint(sites["fleet-e"])))
            assert version == "1.1.0"
        # One run per site, across both workers' state folders: none ran twice.
        states = [scene["state"], other / "state"]
        for name, entry in data["sites"].items():
            if entry["status"] != "pending":
                assert _runs(states, planned["id"], name) == [entry["run"]]
        # The second worker fetched the artifacts from the broker (checked by their sha256) and wrote its site's
        # run in its own state folder; the controller kept a copy of each report beside the ledger.
        if data["sites"]["fleet-f"]["status"] == "complete":
            assert list((other / "state" / "artifacts").glob("*.zip"))
            assert (other / "state" / "runs" / data["sites"]["fleet-f"]["run"] / "report.json").is_file()
        rollout_folder = scene["state"] / "rollouts" / data["rollout"]
        assert (rollout_folder / "sites" / "fleet-e.report.json").is_file()
    finally:
        for process in [*([controller] if controller else []), *workers, redis]:
            if process.poll() is None:
                if process in workers:
                    os.kill(process.pid, signal.SIGCONT)
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _runs(states: list[Path], release_id: str, site: str) -> list[str]:
    found = []
    for state in states:
        for report in (state / "runs").glob("*/report.json"):
            data = json.loads(report.read_text())
            if data.get("release") == release_id and data.get("site") == site:
                found.append(data["run"])
    return found


def _stopped(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2:].split()[0] == "T"


def _started(process: subprocess.Popen, log: Path, text: str) -> None:
    deadline = time.monotonic() + 120  # a guard against a hang, not a measure
    while text not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
