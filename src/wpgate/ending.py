"""How a run ends, however it ends: the one ending of deploy, resume and rollback.

`ending()` wraps the block that may end a run: an error goes to the command's `fail` (deploy's: `fail` below,
which refuses, rolls back or leaves the site to a person, and raises the error that says which), the site's
lock is released, and the run, when the block ended it, is notified (notify.notifying), its report written
with what the notifiers did and its own error the one raised. In the manner of borgmatic's monitoring hooks."""

from __future__ import annotations

import os
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator

from wpgate import redact, rollback, rollback_database
from wpgate.deployment import Deployment
from wpgate.errors import GateRefused, RollbackIncomplete, RolledBack, WpgateError
from wpgate.gates import GateFailed, apply
from wpgate.notify import notifying
from wpgate.run import UpdateStatus
from wpgate.words import plural


@contextmanager
def ending(deployment: Deployment, *, fail: Callable[[BaseException], None] | None = None,
           notify: bool = True) -> Iterator[None]:
    """However the block ends: an error goes to `fail` (which raises the error the run ends with; without one,
    the error stands and the run stays as the block left it, to resume), the site's lock is released, then the
    run's notifications are sent if the block ended it."""
    with notifying(deployment.settings, deployment.run, deployment.console, enabled=notify):
        try:
            yield
        except BaseException as error:
            if fail is None:
                raise
            fail(error)
            raise AssertionError("fail() returned") from error
        finally:
            deployment.release_lock()


def _remove_copies(deployment: Deployment) -> str:
    """A run refused before the first change leaves nothing on the host: what apply copied aside and
    uploaded goes (the folder itself goes with the lock). What stands in the way is said, not raised."""
    lock = deployment.lock
    if deployment.before is None or lock is None or not lock.held:
        return ""  # never reached the site's folder, or another run holds it
    try:
        apply.clean_up(deployment)
    except WpgateError as error:
        return f" (its copies in {apply.workdir(deployment)} could not be removed: {error})"
    return ""


def fail(deployment: Deployment, error: BaseException, *, auto_rollback: bool) -> None:
    """A deploy's failure: close the run's record and raise the error whose exit code says how it ended: a
    refusal before any change (3), a proved rollback (4), or a site a person must look at (5). A run that had
    already ended (complete) keeps its ending, and the error stands as it is."""
    run, console = deployment.run, deployment.console
    if run.status != "running":
        raise error
    interrupted = isinstance(error, KeyboardInterrupt)
    if isinstance(error, GateFailed):
        message = error.message
    elif isinstance(error, (WpgateError, OSError)):
        message = str(error)
    elif interrupted:
        message = "interrupted"
    else:  # unexpected: the traceback goes into the run's folder
        path = run.folder / "traceback.txt"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(redact.text("".join(traceback.format_exception(error))))
        message = f"unexpected error {type(error).__name__}: {error} (traceback in {path})"

    if not run.changed:
        message += _remove_copies(deployment)
        run.finish("refused", message)
        if interrupted:
            raise KeyboardInterrupt
        where = "dry run" if run.extra.get("dry_run") else f"run {run.id}"
        refusal = GateRefused(f"{message} ({where}; production was not changed)")
        refusal.report = run.report()
        raise refusal

    for entry in run.updates:
        if entry.status == UpdateStatus.APPLYING:  # not verified: the report's words are applied or pending
            entry.status, entry.partly_applied = UpdateStatus.PENDING, True
    if not interrupted:  # what the run changed in the database, before visitors' later writes mix in
        rollback_database.after_changes(run, deployment.transport, deployment.bridge, deployment.say)
    changed = rollback.changed_updates(run.updates)
    if auto_rollback:  # a stop after a change means rollback, Ctrl-C included
        deployment.say(f"{message}\nrolling back {plural(len(changed), 'change')} in reverse order…")
        problems = rollback.attempt(rollback.Target(deployment.session, run, deployment.before, deployment.aside))
        if not problems:
            run.finish("rolled_back", message)
            rolled = RolledBack(f"{message}\nrolled back: production is proved back at its pre-deployment "
                                f"state (run {run.id}, report {run.folder / 'report.json'})")
            rolled.report = run.report()
            if interrupted:
                console.print(str(rolled), markup=False, soft_wrap=True)
                raise KeyboardInterrupt
            raise rolled
        headline = f"{message}\nthe rollback is NOT complete; a person must act:"
        lines = [f"  - {problem}" for problem in problems]
    else:
        reason = "--no-auto-rollback"
        run.extra["rollback"] = {"attempted": False, "reason": reason}
        headline = (f"{message}\nproduction WAS changed and was NOT rolled back ({reason}); "
                    f"run `wpgate rollback {run.id}` to put it back")
        lines = []
    undo = [entry.undo for entry in reversed(changed) if entry.undo and entry.status != UpdateStatus.ROLLED_BACK]
    run.extra["rollback"]["undo"] = undo
    run.finish("rollback_failed", message)
    if undo:
        lines += [f"To undo by hand (run {run.id}, report {run.folder / 'report.json'}):"]
        lines += [f"  {line}" for line in undo]
    incomplete = RollbackIncomplete("\n".join([headline] + lines))
    incomplete.report = run.report()
    if interrupted:
        console.print(str(incomplete), markup=False, soft_wrap=True)
        raise KeyboardInterrupt
    raise incomplete
