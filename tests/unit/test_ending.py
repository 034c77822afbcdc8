"""The one ending of deploy, resume and rollback (ending.ending, with notify.notifying): a run the block ended is
notified however the block ends, the run's own error is the one raised, with its report taken again; a run left as
it was is not; the error goes to the command's `fail`, and the site's lock is released before anyone is told."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from wpgate import notify
from wpgate.ending import ending
from wpgate.errors import RolledBack
from wpgate.lock import SiteLock
from wpgate.transports import LocalTransport


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


def test_ending_hands_the_error_to_fail_releases_the_lock_then_notifies(told, tmp_path):
    lock = SiteLock(LocalTransport(), str(tmp_path / "aside"), "20261126-101500-ab12", "production")
    lock.acquire()
    run = _Run(status="running", notified=False)
    deployment = SimpleNamespace(settings=None, run=run, console=None, lock=lock,
                                 release_lock=lambda: lock.release())
    seen = []

    def fail(error):
        seen.append((type(error).__name__, (tmp_path / "aside" / "lock").exists()))
        run.status = "rolled_back"
        raise RolledBack("gate 6.6 monitor failed")

    with pytest.raises(RolledBack):
        with ending(deployment, fail=fail):
            raise KeyboardInterrupt
    assert seen == [("KeyboardInterrupt", True)]  # fail() runs with the lock still held: it may roll back
    assert told == ["rolled_back"] and not lock.held and not (tmp_path / "aside").exists()
    # Without `fail` (resume, rollback), the error stands and the run stays as it was: nothing is told.
    lock.acquire()
    run.status = "running"
    with pytest.raises(ValueError):
        with ending(deployment):
            raise ValueError("connection lost")
    assert told == ["rolled_back"] and not lock.held
