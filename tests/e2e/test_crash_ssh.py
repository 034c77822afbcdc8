"""Crash safety over ssh: the deploy of tests/e2e/test_crash.py to a production reached through the test
bed's sshd, killed around the core's work on the host (its files and its database upgrade) and at a
seeded sample of the other events, then resumed; and the connection cut while the upgrader works."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.crash_points import crash_seed, full_matrix, kill_points
from tests.e2e.crash_release import CORE_OLD, OLD, THEME_OLD, production, run_points, runs_of, shared_release, state_of
from tests.e2e.helpers import WPGATE, aside_root, site_entry, write_config
from tests.e2e.test_crash import dealt

pytestmark = pytest.mark.e2e

SHARDS = 2


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    return shared_release(bed, tmp_path_factory, "crash-ssh-0", "crash-ssh", ssh=True)


# Over ssh, the kills that matter are those around the core's work on the host (its files swapped in, its
# database upgraded); the local matrix kills at every other state change and a seeded sample after the first
# change. Here a seeded pick before it adds one more (the backup runs on the host).
_OVER_SSH = ("install.begin", "install.done", "upgrade_database.done")


def _core_update(events: list[dict]) -> set[int]:
    core = [n for n, e in enumerate(events, 1) if e["event"].startswith("apply.") and e.get("type") == "core"]
    span = range(core[0], core[-1] + 1) if core else range(0)
    return {n for n in span if events[n - 1]["event"] in _OVER_SSH}


@pytest.mark.timeout(3600)
@pytest.mark.crash_shard
@pytest.mark.parametrize("shard", range(SHARDS))
def test_killed_at_the_core_update_and_a_sample_then_resumed(bed, tmp_path_factory, shard):
    release = shared_release(bed, tmp_path_factory, "crash-ssh-0", f"crash-ssh-{shard}", ssh=True)
    events = release["events"]
    points = kill_points(events, crash_seed() + 1, extra=0, extra_before=1, full=full_matrix(),
                         only=_core_update(events))
    assert len(points.after_change) >= len(_OVER_SSH)
    outcomes = run_points(bed, release, dealt(points, shard, SHARDS), f"crash-ssh{shard}")
    assert "rolled_back" in outcomes, outcomes


def test_the_ssh_connection_dropping_mid_apply_is_rolled_back(bed, release):
    """The connection to production is cut (every sshd session killed, with what it ran) while
    WordPress's upgrader installs the core: wpgate reconnects, rolls back files and database, proves it."""
    ssh = release["ssh"]
    site = production(bed, "crash-drop")
    db_version = site.php("echo get_option('db_version');").strip().splitlines()[-1]
    folder = release["folder"] / "drop"
    folder.mkdir()
    state = release["folder"] / "state"  # where the release's artifacts are
    config = write_config(folder, {"staging": dict(release["staging"]), "drop": site_entry(site, ssh=ssh)},
                          state_dir=str(state))
    earlier = runs_of(release["folder"])
    deploy = subprocess.Popen([str(WPGATE), "-c", str(config), "deploy", str(release["manifest"]), "--to", "drop",
                               "--yes"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    deadline, dropped, run = time.monotonic() + 300, 0, None
    while deploy.poll() is None and time.monotonic() < deadline and not dropped:
        run = run or next(iter(runs_of(release["folder"]) - earlier), None)
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
    assert not aside_root(site).exists()  # the lock, the run's copies and the folder itself
    site.stop()
