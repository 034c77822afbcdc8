"""Crash safety: a deploy of core + plugins + theme is killed (SIGKILL) right after each of its journal
events in turn, then `wpgate resume` must leave a healthy site, fully at the release or fully as before
(database included), never in maintenance. The same over ssh, and the connection cut mid-apply."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.helpers import WPGATE, site_entry, wpgate, wpgate_json, write_config, write_qa

pytestmark = pytest.mark.e2e

CORE_OLD, CORE_NEW = "6.4.5", "6.5.5"
OLD = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0"}
THEME_OLD, THEME_NEW = {"wpgate-parent": "1.0.0"}, {"wpgate-parent": "1.1.0"}


def production(bed, name: str):
    return bed.create_site(name, core=CORE_OLD, server="nginx", plugins=OLD, themes=THEME_OLD, theme="wpgate-parent")


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    """The release (core with its database upgrade, two plugins, a theme), and the journal of one whole
    deploy of it locally and one over ssh: the events a kill can follow."""
    folder = tmp_path_factory.mktemp("crash")
    ssh = bed.sshd()
    staging = bed.create_site("crash-staging", core=CORE_NEW, plugins=NEW, themes=THEME_NEW, theme="wpgate-parent")
    local, remote = production(bed, "crash-0"), production(bed, "crash-ssh-0")
    config = write_config(folder, {"staging": site_entry(staging), "crash-0": site_entry(local),
                                   "crash-ssh-0": site_entry(remote, ssh=ssh)}, state_dir="state")
    manifest = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "crash-0", "-o", str(manifest), config=config).returncode == 0
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    events = {}
    for name, site in (("crash-0", local), ("crash-ssh-0", remote)):
        result = wpgate("deploy", str(manifest), "--to", name, "--yes", "--json", config=config)
        assert result.returncode == 0, result.stderr
        journal = folder / "state" / "runs" / json.loads(result.stdout)["run"] / "journal.jsonl"
        events[name] = [json.loads(line) for line in journal.read_text().splitlines()]
        site.stop()
    return {"folder": folder, "config": config, "manifest": manifest, "events": events, "staging": staging,
            "ssh": ssh}


def state_of(config: Path, site: str) -> dict[str, str]:
    inventory = wpgate_json("inventory", site, config=config)
    assert not inventory["maintenance"], site
    found = {p["slug"]: p["version"] for p in inventory["plugins"] if p["slug"] in OLD}
    found.update({t["slug"]: t["version"] for t in inventory["themes"] if t["slug"] in THEME_OLD})
    found.update(core=inventory["core"]["version"], db_version=str(inventory["core"]["db_version"]))
    return found


def kill_and_resume(bed, release, kill_at: int, *, over_ssh: bool) -> str:
    """A fresh production, the deploy killed after event `kill_at`, then resumed; the run's ending."""
    template = "crash-ssh-0" if over_ssh else "crash-0"
    name = f"{template[:-2]}-{kill_at}"
    site = production(bed, name)
    db_version = site.php("echo get_option('db_version');").strip().splitlines()[-1]
    document = yaml.safe_load(release["config"].read_text())
    document["sites"][name] = {**document["sites"].pop(template), "path": str(site.path), "url": site.url}
    config = release["folder"] / f"{name}.yml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    killed = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", config=config,
                    env={"WPGATE_TEST_KILL_AT": str(kill_at)})
    assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
    runs = sorted((release["folder"] / "state" / "runs").iterdir(), key=os.path.getmtime)
    assert json.loads((runs[-1] / "report.json").read_text())["status"] == "running"
    resumed = wpgate("resume", runs[-1].name, config=config)
    report = json.loads((runs[-1] / "report.json").read_text())
    status = report["status"]
    assert status in ("complete", "rolled_back", "refused"), (kill_at, status, resumed.stderr)
    assert resumed.returncode == (4 if status == "rolled_back" else 0), (kill_at, resumed.stderr)
    found = state_of(config, name)
    if status == "complete":  # the gates after apply ran, in the deploy or in the resume
        assert {g["step"]: g["status"] for g in report["gates"]}.items() >= {
            "6.5": "passed", "6.6": "passed", "6.7": "passed"}.items(), (kill_at, report["gates"])
        assert found | {"db_version": None} == {**NEW, **THEME_NEW, "core": CORE_NEW, "db_version": None}, kill_at
    else:
        assert found == {**OLD, **THEME_OLD, "core": CORE_OLD, "db_version": db_version}, (kill_at, resumed.stderr)
    page = httpx.get(site.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text, kill_at
    assert not (Path(site.path) / ".maintenance").exists(), kill_at
    assert not (Path(site.path) / "wp-content/wpgate-aside/lock").exists(), kill_at
    site.stop()
    return status


def test_the_release_has_enough_events_to_matter(release):
    events = release["events"]["crash-0"]
    assert len(events) > 60
    assert {e.get("type") for e in events if e["event"] == "apply.begin"} == {"core", "plugin", "theme"}


@pytest.mark.timeout(3600)  # one deploy and one resume per journal event: the loop grows with every gate
def test_killed_at_every_event_then_resumed(bed, release):
    outcomes: dict[str, int] = {}
    for kill_at in range(1, len(release["events"]["crash-0"]) + 1):
        status = kill_and_resume(bed, release, kill_at, over_ssh=False)
        outcomes[status] = outcomes.get(status, 0) + 1
    # Killed early nothing changed; killed late it completes; in between it rolls back.
    assert set(outcomes) == {"refused", "rolled_back", "complete"}, outcomes


def _kill_points(events: list[dict]) -> list[int]:
    """Over ssh: every event of the core's apply (its files and its database upgrade), and every fourth elsewhere."""
    core = [n for n, e in enumerate(events, 1) if e["event"].startswith("apply.") and e.get("type") == "core"]
    inside = range(core[0], core[-1] + 1) if core else range(0)
    return sorted(set(inside) | set(range(1, len(events) + 1, 4)))


@pytest.mark.timeout(2400)
def test_the_same_over_ssh_killed_at_the_core_update_and_every_fourth_event(bed, release):
    points = _kill_points(release["events"]["crash-ssh-0"])
    assert len(points) > 25
    outcomes: dict[str, int] = {}
    for kill_at in points:
        status = kill_and_resume(bed, release, kill_at, over_ssh=True)
        outcomes[status] = outcomes.get(status, 0) + 1
    assert set(outcomes) == {"refused", "rolled_back", "complete"}, outcomes


def _runs(state: Path) -> set[Path]:
    return set((state / "runs").iterdir()) if (state / "runs").is_dir() else set()


def test_the_ssh_connection_dropping_mid_apply_is_rolled_back(bed, release):
    """The connection to production is cut (every sshd session killed, with what it ran) while
    WordPress's upgrader installs the core: wpgate reconnects, rolls back files and database, proves it."""
    ssh = release["ssh"]
    site = production(bed, "crash-drop")
    db_version = site.php("echo get_option('db_version');").strip().splitlines()[-1]
    folder = release["folder"] / "drop"
    folder.mkdir()
    state = release["folder"] / "state"  # where the release's artifacts are
    config = write_config(folder, {"staging": site_entry(release["staging"]), "drop": site_entry(site, ssh=ssh)},
                          state_dir=str(state))
    earlier = _runs(state)
    deploy = subprocess.Popen([str(WPGATE), "-c", str(config), "deploy", str(release["manifest"]), "--to", "drop",
                               "--yes"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    deadline, dropped, run = time.monotonic() + 300, 0, None
    while deploy.poll() is None and time.monotonic() < deadline and not dropped:
        run = run or next(iter(_runs(state) - earlier), None)
        journal = run / "journal.jsonl" if run else None
        if journal and journal.exists() and '"event": "install.begin"' in journal.read_text():
            time.sleep(0.3)  # inside the upgrader's work on the host
            dropped = ssh.drop_connections()
        time.sleep(0.05)
    _, stderr = deploy.communicate(timeout=600)
    assert dropped, stderr
    assert deploy.returncode == 4, stderr
    assert "connection to the host was lost" in stderr
    assert "rolled back: production is proved back" in stderr
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert state_of(config, "drop") == {**OLD, **THEME_OLD, "core": CORE_OLD, "db_version": db_version}
    page = httpx.get(site.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text
    assert not (Path(site.path) / ".maintenance").exists()
    assert not (Path(site.path) / "wp-content/wpgate-aside/lock").exists()
    site.stop()
