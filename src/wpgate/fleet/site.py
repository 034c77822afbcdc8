"""One site's deployment within a rollout: the one place a rollout runs a site (in a local process or in a
`wpgate worker`), idempotent on (rollout, site).

The controller names the site's run id before it starts. Called again for the same (rollout, site), as a
resumed controller or a re-delivered task does, it never starts a second deployment: a run that ended gives
its outcome; a run whose process still lives is waited for; a run whose process died is resumed through its
own run (`wpgate resume RUN_ID`'s code path), which finishes it or rolls it back."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from wpgate import redact
from wpgate.config import Settings
from wpgate.errors import ExitStatus, WpgateError
from wpgate.output import Output
from wpgate.release import Release
from wpgate.run import load_report

EXIT_OF = {"complete": ExitStatus.COMPLETE, "refused": ExitStatus.REFUSED, "rolled_back": ExitStatus.ROLLED_BACK,
           "rollback_failed": ExitStatus.ROLLBACK_INCOMPLETE}
WAIT_POLL = 0.5


class LogOutput:
    """A site's human lines, into its log file (secrets masked); colours are dropped."""

    is_terminal = False

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def print(self, text: str = "", *, markup: bool | None = None, end: str = "\n", soft_wrap: bool | None = None,
              **style: Any) -> None:
        self.stream.write(redact.text(str(text)) + end)
        self.stream.flush()


def worker_name(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def deploy_site(settings: Settings, release: Release, site: str, run_id: str, rollout_id: str,
                console: Output) -> dict[str, Any]:
    """Deploy `release` (a group release) to `site` as run `run_id`, or take over that run; return its outcome:
    {site, run, status, exit_code, worker, seconds, error, culprit}."""
    from wpgate import pipeline, recovery

    owner = _owner_file(settings.state_dir, rollout_id, site)
    report_path = settings.state_dir / "runs" / run_id / "report.json"
    if report_path.exists():
        holder = _live_owner(owner)
        while holder and _status(settings, run_id) == "running" and _alive(holder):
            time.sleep(WAIT_POLL)
        if _status(settings, run_id) == "running":
            _claim(owner)
            console.print(f"run {run_id} of {site} was interrupted: resuming it", markup=False)
            try:
                recovery.resume(settings, run_id, console)
            except WpgateError as error:
                console.print(f"wpgate: error: {error}", markup=False, soft_wrap=True)
        return outcome(settings, site, run_id, _read_owner(owner) or worker_name())
    _claim(owner)
    try:
        pipeline.deploy(settings, release, site, dry_run=False, auto_rollback=True, console=console,
                        run_id=run_id, notify=False)
    except WpgateError as error:
        console.print(f"wpgate: error: {error}", markup=False, soft_wrap=True)
    except KeyboardInterrupt:
        console.print("wpgate: interrupted", markup=False)
    return outcome(settings, site, run_id, worker_name())


def outcome(settings: Settings, site: str, run_id: str, worker: str) -> dict[str, Any]:
    """What the controller records of a site's run, from its report (a run without one never started)."""
    try:
        report = load_report(settings.state_dir, run_id)
    except WpgateError:
        return {"site": site, "run": run_id, "status": "refused", "exit_code": int(ExitStatus.REFUSED),
                "worker": worker, "error": "the run never started", "seconds": None, "culprit": None}
    status = report.get("status", "running")
    culprit = None
    if status != "complete":
        from wpgate import report as report_module

        found = report_module.load(settings.state_dir, run_id).culprit()
        culprit = {key: found.get(key) for key in ("type", "slug", "from", "to")} if found else None
    return {"site": site, "run": run_id, "status": status,
            "exit_code": int(EXIT_OF.get(status, ExitStatus.ROLLBACK_INCOMPLETE)), "worker": worker,
            "seconds": report.get("seconds"), "error": redact.text(report.get("error") or "") or None,
            "culprit": culprit}


def _status(settings: Settings, run_id: str) -> str:
    try:
        return load_report(settings.state_dir, run_id).get("status", "running")
    except WpgateError:
        return "running"


def _owner_file(state_dir: Path, rollout_id: str, site: str) -> Path:
    where = state_dir / "rollouts" / rollout_id / "sites"
    where.mkdir(parents=True, exist_ok=True)
    return where / f"{site}.owner"


def _claim(owner: Path) -> None:
    """This process runs the site's deployment now (a resumed or re-delivered call finds it by this)."""
    partial = owner.with_name(owner.name + ".part")
    partial.write_text(json.dumps({"worker": worker_name(), "host": socket.gethostname(), "pid": os.getpid()}))
    partial.replace(owner)


def _read_owner(owner: Path) -> str | None:
    try:
        return json.loads(owner.read_text())["worker"]
    except (OSError, ValueError, KeyError):
        return None


def _live_owner(owner: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(owner.read_text())
    except (OSError, ValueError):
        return None
    return holder if holder.get("pid") != os.getpid() else None


def _alive(holder: dict[str, Any]) -> bool:
    """The process that ran the site still lives (on this machine: another machine's cannot be seen)."""
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(holder["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return False
    try:  # a zombie (a child whose parent has not reaped it) is gone
        with open(f"/proc/{int(holder['pid'])}/stat") as stat:
            return stat.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True
