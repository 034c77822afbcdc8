"""Gate 6.4 (order) proves the order from the run's journal: in manifest order, each update's apply ended before
the next one began."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wpgate.gates import GateFailed, order
from wpgate.release import Artifact, Release, Update
from wpgate.run import Run

UPDATES = (Update("core", "wordpress", "6.1.9", "6.5.5", Artifact("a/core.zip", "0" * 64)),
           Update("plugin", "akismet", "5.0.2", "5.1", Artifact("a/akismet.zip", "1" * 64)),
           Update("theme", "child", "1.0", "1.1", Artifact("a/child.zip", "2" * 64)))


def _deployment(tmp_path, events: list[tuple[str, int]]) -> SimpleNamespace:
    run = Run(tmp_path, "production", "r1")
    for name, index in events:
        run.event(name, index=index)
    run.close()
    return SimpleNamespace(release=Release("r1", "staging", "http://staging.test", UPDATES), run=run)


def test_updates_applied_one_at_a_time_in_manifest_order_pass(tmp_path):
    events = [(name, index) for index in range(3) for name in ("apply.begin", "apply.done")]
    evidence = order.run(_deployment(tmp_path, events))
    assert evidence == {"order": ["core wordpress", "plugin akismet", "theme child"], "one_at_a_time": True,
                        "applied": 3}


def test_an_update_begun_before_the_last_one_ended_fails(tmp_path):
    events = [("apply.begin", 0), ("apply.begin", 1), ("apply.done", 0), ("apply.done", 1),
              ("apply.begin", 2), ("apply.done", 2)]
    with pytest.raises(GateFailed, match="began before the one before it had ended") as failed:
        order.run(_deployment(tmp_path, events))
    assert failed.value.evidence["one_at_a_time"] is False


def test_updates_out_of_manifest_order_fail(tmp_path):
    events = [(name, index) for index in (1, 0, 2) for name in ("apply.begin", "apply.done")]
    with pytest.raises(GateFailed, match=r"begun in the order \[1, 0, 2\]"):
        order.run(_deployment(tmp_path, events))
