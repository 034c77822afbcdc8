"""Crash safety: the deploy is killed (SIGKILL) right after each of its journal events in turn, then
`wpgate resume` must leave a healthy site, fully at the release or fully as before, never in maintenance."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import WPGATE, site_entry, wpgate, wpgate_json, write_config, write_qa

pytestmark = pytest.mark.e2e

OLD = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0"}


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    folder = tmp_path_factory.mktemp("crash")
    staging = bed.create_site("crash-staging", core="6.5.5", plugins=NEW,
                              themes={"wpgate-parent": "1.1.0"}, theme="wpgate-parent")
    first = bed.create_site("crash-0", core="6.5.5", server="nginx", plugins=OLD,
                            themes={"wpgate-parent": "1.0.0"}, theme="wpgate-parent")
    config = write_config(folder, {"staging": site_entry(staging), "crash-0": site_entry(first)}, state_dir="state")
    manifest = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "crash-0", "-o", str(manifest), config=config).returncode == 0
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    # A whole run, to count its journal events.
    result = wpgate("deploy", str(manifest), "--to", "crash-0", "--yes", "--json", config=config)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["run"]
    events = (folder / "state" / "runs" / run / "journal.jsonl").read_text().splitlines()
    first.stop()
    return {"folder": folder, "config": config, "manifest": manifest, "events": len(events), "staging": staging}


def versions(config: Path, site: str) -> dict[str, str]:
    inventory = wpgate_json("inventory", site, config=config)
    found = {p["slug"]: p["version"] for p in inventory["plugins"] if p["slug"] in OLD}
    found.update({t["slug"]: t["version"] for t in inventory["themes"] if t["slug"] == "wpgate-parent"})
    assert not inventory["maintenance"]
    return found


def test_the_release_has_enough_events_to_matter(release):
    assert release["events"] > 40


# One deploy and one resume per journal event: the loop grows with every gate built.
@pytest.mark.timeout(2400)
def test_killed_at_every_event_then_resumed(bed, release):
    config_text = release["config"].read_text()
    outcomes: dict[str, int] = {}
    for kill_at in range(1, release["events"] + 1):
        name = f"crash-{kill_at}"
        site = bed.create_site(name, core="6.5.5", server="nginx", plugins=OLD,
                               themes={"wpgate-parent": "1.0.0"}, theme="wpgate-parent")
        config = release["folder"] / f"{name}.yml"
        config.write_text(config_text.replace("crash-0", name).replace(
            str(bed.sites["crash-0"].path), str(site.path)).replace(bed.sites["crash-0"].url, site.url))
        killed = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", config=config,
                        env={"WPGATE_TEST_KILL_AT": str(kill_at)})
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        runs = sorted((release["folder"] / "state" / "runs").iterdir(), key=os.path.getmtime)
        run = runs[-1].name
        assert json.loads((runs[-1] / "report.json").read_text())["status"] == "running"
        resumed = wpgate("resume", run, config=config)
        assert resumed.returncode in (0, 4), (kill_at, resumed.stderr)
        report = json.loads((runs[-1] / "report.json").read_text())
        assert report["status"] in ("complete", "rolled_back", "refused"), (kill_at, report["status"])
        assert resumed.returncode == (4 if report["status"] == "rolled_back" else 0), (kill_at, resumed.stderr)
        if report["status"] == "complete":  # the gates after apply ran, in the deploy or in the resume
            assert {g["step"]: g["status"] for g in report["gates"]}.items() >= {
                "6.5": "passed", "6.6": "passed", "6.7": "passed"}.items(), (kill_at, report["gates"])
        found = versions(config, name)
        expected = ({**NEW, "wpgate-parent": "1.1.0"} if report["status"] == "complete"
                    else {**OLD, "wpgate-parent": "1.0.0"})
        assert found == expected, (kill_at, report["status"], found, resumed.stderr)
        page = httpx.get(site.url + "/", timeout=30)
        assert page.status_code == 200 and "</html>" in page.text, kill_at
        assert not (Path(site.path) / ".maintenance").exists()
        assert not (Path(site.path) / "wp-content/wpgate-aside/lock").exists(), kill_at
        outcomes[report["status"]] = outcomes.get(report["status"], 0) + 1
        site.stop()
    # Killed early nothing changed; killed late it completes; in between it rolls back.
    assert set(outcomes) == {"refused", "rolled_back", "complete"}, outcomes


def _runs(state: Path) -> set[Path]:
    return set((state / "runs").iterdir()) if (state / "runs").is_dir() else set()


def test_the_ssh_connection_dropping_mid_apply_is_rolled_back(bed, release):
    """The connection to production is cut (every sshd session killed, with what it ran) while
    WordPress's upgrader installs the first plugin: wpgate reconnects, rolls back, proves it."""
    import subprocess
    import time

    ssh = bed.sshd()
    site = bed.create_site("crash-drop", core="6.5.5", server="nginx", plugins=OLD,
                           themes={"wpgate-parent": "1.0.0"}, theme="wpgate-parent")
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
    assert "rolled back: production is proved back" in stderr
    assert "connection to the host was lost" in stderr
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert versions(config, "drop") == {**OLD, "wpgate-parent": "1.0.0"}
    page = httpx.get(site.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text
    assert not (Path(site.path) / ".maintenance").exists()
    assert not (Path(site.path) / "wp-content/wpgate-aside/lock").exists()
    site.stop()


CORE_OLD, CORE_NEW = "6.4.5", "6.5.5"


@pytest.fixture(scope="module")
def core_release(bed, tmp_path_factory):
    """A core update (with its database upgrade) and a plugin, to a production reached over ssh."""
    folder = tmp_path_factory.mktemp("crash-core")
    ssh = bed.sshd()
    staging = bed.create_site("core-crash-staging", core=CORE_NEW, plugins={"wpgate-hello": "1.2.0"})
    first = bed.create_site("core-crash-0", core=CORE_OLD, server="nginx", plugins={"wpgate-hello": "1.0.0"})
    config = write_config(folder, {"staging": site_entry(staging), "core-crash-0": site_entry(first, ssh=ssh)},
                          state_dir="state")
    manifest = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "core-crash-0", "-o", str(manifest),
                  config=config).returncode == 0
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    result = wpgate("deploy", str(manifest), "--to", "core-crash-0", "--yes", "--json", config=config)
    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)["run"]
    events = [json.loads(line) for line in
              (folder / "state" / "runs" / run / "journal.jsonl").read_text().splitlines()]
    first.stop()
    return {"folder": folder, "config": config, "manifest": manifest, "events": events}


def _kill_points(events: list[dict]) -> list[int]:
    """Every event of the core's apply (its files and its database upgrade), and every eighth elsewhere."""
    core = [n for n, e in enumerate(events, 1) if e["event"].startswith("apply.") and e.get("type") == "core"]
    inside = range(core[0], core[-1] + 1) if core else range(0)
    return sorted(set(inside) | set(range(1, len(events) + 1, 8)))


@pytest.mark.timeout(2400)
def test_a_core_update_over_ssh_killed_at_its_events_then_resumed(bed, core_release):
    config_text = core_release["config"].read_text()
    points = _kill_points(core_release["events"])
    assert len(points) > 15
    outcomes: dict[str, int] = {}
    for kill_at in points:
        name = f"core-crash-{kill_at}"
        site = bed.create_site(name, core=CORE_OLD, server="nginx", plugins={"wpgate-hello": "1.0.0"})
        db_version = site.php("echo get_option('db_version');").strip().splitlines()[-1]
        config = core_release["folder"] / f"{name}.yml"
        config.write_text(config_text.replace("core-crash-0", name).replace(
            str(bed.sites["core-crash-0"].path), str(site.path)).replace(bed.sites["core-crash-0"].url, site.url))
        killed = wpgate("deploy", str(core_release["manifest"]), "--to", name, "--yes", config=config,
                        env={"WPGATE_TEST_KILL_AT": str(kill_at)})
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)
        runs = sorted((core_release["folder"] / "state" / "runs").iterdir(), key=os.path.getmtime)
        resumed = wpgate("resume", runs[-1].name, config=config)
        report = json.loads((runs[-1] / "report.json").read_text())
        assert report["status"] in ("complete", "rolled_back", "refused"), (kill_at, report["status"], resumed.stderr)
        assert resumed.returncode == (4 if report["status"] == "rolled_back" else 0), (kill_at, resumed.stderr)
        inventory = wpgate_json("inventory", name, config=config)
        hello = {p["slug"]: p["version"] for p in inventory["plugins"]}["wpgate-hello"]
        if report["status"] == "complete":
            assert (inventory["core"]["version"], hello) == (CORE_NEW, "1.2.0"), kill_at
        else:
            assert (inventory["core"]["version"], hello) == (CORE_OLD, "1.0.0"), (kill_at, resumed.stderr)
            assert str(inventory["core"]["db_version"]) == db_version, (kill_at, resumed.stderr)
        assert not inventory["maintenance"], kill_at
        page = httpx.get(site.url + "/", timeout=30)
        assert page.status_code == 200 and "</html>" in page.text, kill_at
        assert not (Path(site.path) / "wp-content/wpgate-aside/lock").exists(), kill_at
        outcomes[report["status"]] = outcomes.get(report["status"], 0) + 1
        site.stop()
    assert set(outcomes) == {"refused", "rolled_back", "complete"}, outcomes
