"""Crash safety of rollback: `wpgate rollback` of a failed run (core with its database upgrade and a plugin
changed) is cut short right after one of its journal events, then run again; the site must end byte for byte
and table for table as it was before the deploy, by a fingerprint taken outside wpgate (every file's bytes,
CHECKSUM TABLE), and nothing of wpgate's left on the host.

Each shard runs one rollback, stopped (SIGSTOP) right after each of its points to save what a SIGKILL there
would leave (files, databases, the run's folder); each saved state is then put back and rolled back again.
`make test-crash` (WPGATE_CRASH_FULL=1) kills for real at every event."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.crash_points import crash_seed, full_matrix
from tests.e2e.crash_release import Saved, once_per_session, side_databases, stop_at_each
from tests.e2e.helpers import aside_root, assert_unchanged, fingerprint, site_entry, wpgate, write_config, write_qa
from wpgate.testbed.fixtures import FAULTS

pytestmark = pytest.mark.e2e

CORE_OLD, CORE_NEW = "6.4.5", "6.5.5"
FAULTY, FAULTY_BROKEN = FAULTS["fatal_while_rendering"]
OLD = {"wpgate-hello": "1.0.0", FAULTY: "1.1.0"}
# The rollback's actions that change the site or the run's files: a kill after each begin and each end.
# (A kill after an action's end and one after the next action's begin leave the same state; the
# sample and `make test-crash` reach both.)
CHANGING = ("put_back", "maintenance_on", "maintenance_off", "save_database", "restore_database", "put_back_rows",
            "export_rows", "remove_workdir")


SHARDS = 2  # the kill points are dealt to this many tests, which parallel workers run side by side


def production(bed, name: str):
    return bed.create_site(name, core=CORE_OLD, server="nginx", plugins=OLD)


def failed(bed, release, name: str):
    """A fresh production, its fingerprint, and a deploy of the release to it stopped by the faulty plugin
    after core (with its database upgrade) and that plugin changed, not rolled back: the run's id."""
    site = production(bed, name)
    (release["folder"] / name).mkdir()
    config = write_config(release["folder"] / name, {"staging": dict(release["staging"]), name: site_entry(site)},
                          state_dir=str(release["folder"] / "state"))
    before = fingerprint(site)
    result = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", "--no-auto-rollback", "--json",
                    config=config)
    assert result.returncode == 5, result.stderr
    report = json.loads(result.stdout)
    began = [update.get("install_began", False) for update in report["updates"]]
    assert [update["type"] for update in report["updates"]][:2] == ["core", "plugin"]
    assert began[:2] == [True, True] and not any(began[2:]), report["updates"]
    return site, config, before, report["run"]


def journal(release, run: str) -> list[dict]:
    path = Path(release["folder"]) / "state" / "runs" / run / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def build(bed, folder: Path) -> dict:
    """The release (core 6.4.5 → 6.5.5, the faulty plugin, wpgate-hello), and the events one whole
    `wpgate rollback` of a failed deploy of it writes: the events a kill can follow."""
    staging = bed.create_site("crbk-staging", core=CORE_NEW, plugins=OLD)
    staging.install_plugin(FAULTY, FAULTY_BROKEN)
    staging.install_plugin("wpgate-hello", "1.2.0")
    first = production(bed, "crbk-plan")
    (folder / "plan").mkdir()
    config = write_config(folder / "plan", {"staging": site_entry(staging), "crbk-plan": site_entry(first)},
                          state_dir=str(folder / "state"))
    manifest = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "crbk-plan", "-o", str(manifest),
                  config=config).returncode == 0
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    bed.remove_site(first)
    release = {"folder": folder, "staging": {"path": str(staging.path), "url": staging.url}, "manifest": manifest}
    site, config, before, run = failed(bed, release, "crbk-0")
    deployed = len(journal(release, run))
    result = wpgate("rollback", run, "--yes", config=config)
    assert result.returncode == 0, result.stderr
    assert_unchanged(before, fingerprint(site))
    bed.remove_site(site)
    return {**release, "events": journal(release, run)[deployed:]}


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    """Built once per session, whichever parallel worker asks first (a shared state dir: runs have ids of
    their own, and each kill point has its own site, config and backups)."""
    folder, built = once_per_session(tmp_path_factory, "crash-rollback", lambda folder: build(bed, folder))
    return {**built, "folder": folder, "manifest": Path(built["manifest"])}


def kill_points(events: list[dict]) -> list[int]:
    """Every begin of an action that changes something, and every end not followed at once by another
    begin; the first event and the last, and a seeded pick among the others (every event with
    WPGATE_CRASH_FULL=1)."""
    if full_matrix():
        return list(range(1, len(events) + 1))
    points = {1, len(events)}
    points |= {number for number, event in enumerate(events, 1)
               if event["event"].rsplit(".", 1)[0] in CHANGING
               and (event["event"].endswith(".begin") or number == len(events)
                    or not events[number]["event"].endswith(".begin"))}
    rest = [number for number in range(1, len(events) + 1) if number not in points]
    points |= set(random.Random(crash_seed() + 2).sample(rest, min(1, len(rest))))
    return sorted(points)


def test_a_whole_rollback_has_the_events_the_matrix_needs(release):
    names = [event["event"] for event in release["events"]]
    assert names.count("put_back.begin") == 2 and "restore_database.done" in names
    assert "remove_workdir.done" in names and names[-1] == "run.end"


@pytest.mark.timeout(3600)  # a site, a deploy, one rollback stopped at each point, then one rollback per point
@pytest.mark.crash_shard
@pytest.mark.parametrize("shard", range(SHARDS))
def test_rollback_killed_at_each_event_then_run_again_puts_the_site_back(bed, release, shard, tmp_path):
    events = release["events"]
    points = kill_points(events)
    assert len(points) >= 9
    mine = points[shard::SHARDS]
    site, config, before, run = failed(bed, release, f"crbk-s{shard}")
    state = Path(release["folder"]) / "state"
    paths = [aside_root(site), config.parent, state / "runs" / run, state / "scratch" / f"{site.name}.jsonl"]
    if full_matrix():  # `make test-crash`: a real SIGKILL at every event, the failed deploy put back before each
        failed_state = Saved(site, paths, tmp_path / "failed", side_databases(site))
        for kill_at in mine:
            failed_state.put_back()
            killed = wpgate("rollback", run, "--yes", config=config, env={"WPGATE_TEST_KILL_AT": str(kill_at)})
            assert killed.returncode == -signal.SIGKILL, (kill_at, events[kill_at - 1]["event"], killed.stderr)
            ran_again(site, run, config, before, (kill_at, events[kill_at - 1]["event"]))
    else:  # one rollback stopped (SIGSTOP) right after each point, where what a SIGKILL would leave is saved
        saved: dict[int, Saved] = {}

        def save(number: int) -> None:
            saved[number] = Saved(site, paths, tmp_path / f"saved-{number}", side_databases(site))

        stop_at_each(["-c", str(config), "rollback", run, "--yes"], mine,
                     lambda number: f"{number} {events[number - 1]['event']}", save)
        failures = []
        for kill_at in mine:
            saved[kill_at].put_back()
            try:
                ran_again(site, run, config, before, (kill_at, events[kill_at - 1]["event"]))
            except AssertionError as error:
                failures.append(str(error))
        assert not failures, "\n".join(failures)
    bed.remove_site(site)


def ran_again(site, run: str, config: Path, before, where: tuple[int, str]) -> None:
    """`wpgate rollback` run again after a kill at `where`: the site as it was before the deploy."""
    again = wpgate("rollback", run, "--yes", "--json", config=config)
    assert again.returncode == 0, (where, again.stderr)
    assert json.loads(again.stdout)["status"] == "rolled_back", where
    try:
        assert_unchanged(before, fingerprint(site))
    except AssertionError as difference:
        raise AssertionError(f"killed at {where}: {difference}") from None
    assert not aside_root(site).exists(), where
    page = httpx.get(site.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text, where
