"""The one ending of deploy, resume and rollback (notify.notifying): a run the block ended is notified however the
block ends, the run's own error is the one raised, with its report taken again; a run left as it was is not."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wpgate import notify
from wpgate.errors import RolledBack


class _Run(SimpleNamespace):
    def report(self) -> dict:
        return {"status": self.status, "notifications": self.notified}


@pytest.fixture
def told(monkeypatch):
    calls = []

    def after_run(settings, run, output):
        calls.append(run.status)
        run.notified = True

    monkeypatch.setattr(notify, "after_run", after_run)
    return calls


def test_a_run_that_ends_in_the_block_is_notified_once(told):
    run = _Run(status="running", notified=False)
    with notify.notifying(None, run, None):
        run.status = "complete"
    assert told == ["complete"]


def test_an_error_that_ends_the_run_is_raised_with_the_report_taken_again(told):
    run = _Run(status="running", notified=False)
    with pytest.raises(RolledBack) as raised:
        with notify.notifying(None, run, None):
            run.status = "rolled_back"
            error = RolledBack("gate 6.6 monitor failed")
            error.report = run.report()
            raise error
    assert told == ["rolled_back"] and raised.value.report == {"status": "rolled_back", "notifications": True}


def test_a_run_left_as_it_was_or_a_dry_run_sends_nothing(told):
    run = _Run(status="complete", notified=False)
    with pytest.raises(KeyboardInterrupt):
        with notify.notifying(None, run, None):
            raise KeyboardInterrupt
    dry = _Run(status="running", notified=False)
    with notify.notifying(None, dry, None, enabled=False):
        dry.status = "refused"
    assert told == []
