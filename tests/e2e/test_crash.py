"""Crash safety: a deploy of core + plugins + theme is cut short right after a journal event, then
`wpgate resume` must leave a healthy site, fully at the release or fully as before (database included,
proved by every file's bytes and every table's checksum), never in maintenance.

Cut short at every event that changes production's state, and at a seeded sample of the others
(tests/e2e/crash_points.py). Each shard runs one deploy, stopped at its points to save what a SIGKILL
there would leave (tests/e2e/crash_release.py: stopped_and_resumed); `make test-crash` kills a deploy
for real at every event, and the ssh matrix kills for real."""

from __future__ import annotations

import pytest

from tests.e2e.crash_points import KillPoints, crash_seed, full_matrix, kill_points
from tests.e2e.crash_release import run_points, shared_release, stopped_and_resumed

pytestmark = pytest.mark.e2e

SHARDS = 3  # the kill points are dealt to this many tests, which parallel workers run side by side


@pytest.fixture(scope="module")
def release(bed, tmp_path_factory):
    return shared_release(bed, tmp_path_factory, "crash-0", "crash")


def test_the_release_has_enough_events_to_matter(release):
    events = release["events"]
    assert len(events) > 60
    assert {e.get("type") for e in events if e["event"] == "apply.begin"} == {"core", "plugin", "theme"}


def dealt(points: KillPoints, shard: int, shards: int) -> KillPoints:
    """This shard's share of the kill points: every shards-th, the ones before the first change
    all to the first shard (they share one site)."""
    return KillPoints(points.before_change if shard == 0 else [], points.after_change[shard::shards])


@pytest.mark.timeout(3600)
@pytest.mark.crash_shard
@pytest.mark.parametrize("shard", range(SHARDS))
def test_killed_at_each_state_change_and_a_sample_then_resumed(bed, tmp_path_factory, shard):
    release = shared_release(bed, tmp_path_factory, "crash-0", f"crash-{shard}")
    points = kill_points(release["events"], crash_seed(), extra=1, extra_before=1, full=full_matrix())
    mine = dealt(points, shard, SHARDS)
    outcomes = (run_points(bed, release, mine, f"crash{shard}") if full_matrix() else
                stopped_and_resumed(bed, release, mine, f"crash{shard}"))
    # Killed early nothing changed; killed late it completes; in between it rolls back.
    expected = {"refused", "rolled_back", "complete"} if shard == 0 else {"rolled_back", "complete"}
    assert set(outcomes) <= {"refused", "rolled_back", "complete"} and set(outcomes) & expected, outcomes
