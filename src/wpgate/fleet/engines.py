"""Where a rollout's site deployments run: `local` (a process per running site, on this machine) or `celery`
(`wpgate worker` processes, fed by the broker). The controller asks an engine to start a site and polls it for
the sites that ended; it never learns more than each site's outcome."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Any

from wpgate import progress, redact
from wpgate.config import Settings
from wpgate.fleet import site as site_module
from wpgate.release import Release


class LocalEngine:
    """A process pool on this machine: one forked process per running site, at most `parallel` at once (the
    controller starts no more). Each writes its own run; its terminal output goes to the rollout's
    `sites/SITE.log`. A killed controller leaves them running: each finishes its run, and `resume` waits for it."""

    name = "local"

    def __init__(self, settings: Settings, release: Release, rollout_id: str, folder: Path) -> None:
        self.settings, self.release, self.rollout_id, self.folder = settings, release, rollout_id, folder
        self.running: dict[str, tuple[int, str]] = {}  # site -> (pid, run id)

    def start(self, site: str, run_id: str) -> str:
        (self.folder / "sites").mkdir(exist_ok=True)
        log = self.folder / "sites" / f"{site}.log"
        pid = os.fork()
        if pid == 0:  # the site's process: never returns into the controller's code
            code = 1
            try:
                with open(log, "a", encoding="utf-8") as stream:
                    console = site_module.LogOutput(stream)
                    progress.use(None)  # the controller's terminal shows a line per site, not the site's steps
                    try:
                        site_module.deploy_site(self.settings, self.release, site, run_id, self.rollout_id, console)
                        code = 0
                    except BaseException:  # noqa: BLE001 (a bug: its traceback in the site's log)
                        stream.write(redact.text(traceback.format_exc()))
                    stream.flush()
            finally:
                os._exit(code)
        self.running[site] = (pid, run_id)
        return site_module.worker_name(pid)

    def ended(self) -> list[dict[str, Any]]:
        """The outcome of each site whose process has ended since the last call."""
        done = []
        for site, (pid, run_id) in list(self.running.items()):
            finished, _ = os.waitpid(pid, os.WNOHANG)
            if finished:
                del self.running[site]
                done.append(site_module.outcome(self.settings, site, run_id, site_module.worker_name(pid)))
        return done

    def close(self) -> None:
        pass


def make(name: str, settings: Settings, release: Release, rollout_id: str, folder: Path) -> Any:
    if name == "celery":
        from wpgate.fleet.celery_engine import CeleryEngine

        return CeleryEngine(settings, release, rollout_id, folder)
    return LocalEngine(settings, release, rollout_id, folder)
