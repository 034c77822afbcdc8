"""The journal's observers: a library user's on_event hears each event as written; the crash tests' fault hook
strikes at the event asked for; neither sits in the journal when nobody asked for it."""

from __future__ import annotations

import json

import pytest

from wpgate import faults, run as run_module
from wpgate.errors import WpgateError
from wpgate.run import Run


def _journal(run: Run) -> list[dict]:
    return [json.loads(line) for line in (run.folder / "journal.jsonl").read_text().splitlines()]


def test_on_event_hears_every_event_as_the_journal_holds_it(tmp_path):
    heard: list[dict] = []
    with run_module.observing(heard.append):
        run = Run(tmp_path, "production", "r1")
    run.event("gate.begin", step="6.1", name="approval")  # after the block: the run keeps its listeners
    run.finish("refused", "not approved")
    assert heard == _journal(run) and [event["event"] for event in heard] == ["run.start", "gate.begin", "run.end"]
    outside = Run(tmp_path, "production", "r2")
    assert outside.observers == () and len(heard) == 3
    outside.close()


def test_a_failing_callback_never_stops_the_run(tmp_path):
    def broken(event: dict) -> None:
        raise ValueError("a listener's bug")

    with run_module.observing(broken):
        run = Run(tmp_path, "production", "r1")
    run.event("gate.begin", step="6.1")
    run.finish("complete")
    assert [event["event"] for event in _journal(run)] == ["run.start", "gate.begin", "run.end"]


def test_the_fault_hook_is_installed_only_when_asked_and_strikes_at_the_nth_event(tmp_path, monkeypatch):
    for name in faults.VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert faults.observers_from_environment() == []
    monkeypatch.setenv("WPGATE_TEST_FAIL_AT", "3")
    [hook] = faults.observers_from_environment()
    monkeypatch.setattr(run_module, "_process_observers", [hook])
    run = Run(tmp_path, "production", "r1")  # event 1
    run.event("gate.begin")                   # event 2
    with pytest.raises(WpgateError, match=r"after event 3 \(gate\) by WPGATE_TEST_FAIL_AT"):
        run.event("gate")
    assert [event["event"] for event in _journal(run)] == ["run.start", "gate.begin", "gate"]  # on disk first
    run.close()
