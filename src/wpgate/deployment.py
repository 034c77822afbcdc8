"""One deploy (or its resume, or its rollback) of a release to a site: what every gate reads and records.

Here, not in the pipeline, so that the gates and recovery import it without the module that runs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from wpgate import aside as asides
from wpgate.config import Settings
from wpgate.inventory import Inventory
from wpgate.lock import SiteLock
from wpgate.output import Output
from wpgate.release import Release
from wpgate.run import Run
from wpgate.session import OnSite, SiteSession

Confirm = Callable[[str], bool]  # asked a question (its lines said before it), True to go on


@dataclass
class Deployment(OnSite):
    """A deploy of a release to a site (or the run `resume` and `rollback` reopen): the site's session, the
    run's record, and what the gates learn on the way."""

    settings: Settings
    session: SiteSession
    release: Release
    run: Run
    console: Output
    before: Inventory | None = None
    state_before: dict[str, Any] | None = None
    lock: SiteLock | None = None
    aside: asides.Aside | None = None  # where the run keeps its copies (aside.py), chosen with the first look
    monitor: Any = None  # the checks' Watch, from its baseline before the first change (gates/monitor.py)
    break_lock: bool = False  # deploy --break-lock: gate 6.1 takes over a lock whose holder is gone
    require_existing_backup: bool = False  # deploy --require-existing-backup: gate 6.2 takes no backup

    def release_lock(self) -> None:
        """The site's lock, if this process holds it, released (once: releasing again does nothing)."""
        if self.lock:
            self.lock.release()
