"""Rollouts without sites: waves parsing, the ledger's durable writes and how a rollout's outcome is concluded."""

import json

import pytest

from wpgate.errors import BadInput, ExitStatus
from wpgate.fleet import waves
from wpgate.fleet.controller import conclusion, summary
from wpgate.fleet.ledger import Ledger, is_rollout_id, latest, new_rollout_id

SITES = [f"s{number}" for number in range(1, 21)]


@pytest.mark.parametrize("text, total, sizes", [
    ("1,10%,100%", 20, [1, 2, 20]),
    ("1,10%,100%", 6, [1, 6]),          # 10% of 6 rounds up to the canary's 1: no empty wave
    ("1,10%,100%", 1, [1]),
    ("2,50%,100%", 6, [2, 3, 6]),
    ("25%,50%,75%,100%", 4, [1, 2, 3, 4]),
    ("1,3,6", 6, [1, 3, 6]),
    (" 1 , 100% ", 6, [1, 6]),
])
def test_wave_sizes_are_cumulative(text, total, sizes):
    assert waves.sizes(text, total) == sizes


@pytest.mark.parametrize("text, total, message", [
    ("3,2,100%", 6, "the waves must grow"),
    ("2,2,100%", 6, "the waves must grow"),
    ("50%,10%,100%", 6, "the waves must grow"),
    ("4,50%,100%", 6, "the waves must grow"),   # 50% of 6 is 3, after 4
    ("1,9", 6, "9 exceeds the group's 6 sites"),
    ("1,3", 6, "reaches 3 of the group's 6 sites"),
    ("0,100%", 6, "neither a count"),
    ("1,150%", 6, "neither a count"),
    ("1,,100%", 6, "neither a count"),
    ("one,100%", 6, "neither a count"),
])
def test_bad_waves(text, total, message):
    with pytest.raises(BadInput, match=message):
        waves.sizes(text, total)


def test_waves_hold_the_sites_in_the_groups_order():
    assert waves.plan(SITES[:6], "1,50%,100%") == [["s1"], ["s2", "s3"], ["s4", "s5", "s6"]]


def test_the_ledger_is_written_whole_and_read_back(tmp_path):
    rollout_id = new_rollout_id()
    assert is_rollout_id(rollout_id) and not is_rollout_id("20261130-010203-abcd")
    data = {"rollout": rollout_id, "release": "r", "group": "g", "status": "running", "waves": [["a"], ["b"]],
            "sites": {"a": {"wave": 1, "run": None, "status": "pending", "worker": None},
                      "b": {"wave": 2, "run": None, "status": "pending", "worker": None}}}
    ledger = Ledger.create(tmp_path, rollout_id, data)
    ledger.site("a", run="20261130-010203-abcd", status="running", worker="host:12")
    again = Ledger.load(tmp_path, rollout_id)
    assert again.data == ledger.data
    assert json.loads(again.path.read_text())["sites"]["a"]["worker"] == "host:12"
    assert [p.name for p in again.folder.iterdir()] == ["rollout.json"]  # no temporary file left
    assert latest(tmp_path) == rollout_id
    with pytest.raises(BadInput, match="no rollout"):
        Ledger.load(tmp_path, "rollout-20000101-000000-0000")
    with pytest.raises(BadInput, match="not a rollout id"):
        Ledger.load(tmp_path, "../etc")


def outcome(*statuses):
    return Ledger(None, {"sites": {f"s{n}": {"status": status, "wave": 1} for n, status in enumerate(statuses)}})


@pytest.mark.parametrize("statuses, expected", [
    (("complete", "complete"), ("complete", ExitStatus.COMPLETE)),
    (("complete", "rolled_back", "pending"), ("halted", ExitStatus.ROLLED_BACK)),
    (("refused", "pending"), ("refused", ExitStatus.REFUSED)),
    (("complete", "refused", "pending"), ("halted", ExitStatus.ROLLED_BACK)),
    (("complete", "rollback_failed", "rolled_back"), ("halted", ExitStatus.ROLLBACK_INCOMPLETE)),
])
def test_conclusion(statuses, expected):
    assert conclusion(outcome(*statuses)) == expected


def test_summary_counts():
    assert summary(outcome("complete", "complete", "rolled_back", "pending")) == \
        "2 complete, 1 not reached, 1 rolled back"
