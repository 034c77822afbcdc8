"""The library: `Project.load(config)` and one method per command, returning results, printing nothing.

The command line (cli.py) is one face of it: it hands in its terminal as `output`, asks the confirmations
through `confirm`, and maps what comes back to exit codes. A script, a fleet worker or a test uses the same
methods with no terminal at all:

    project = wpgate.Project.load("wpgate.yml")          # bad config raises wpgate.ConfigError
    result = project.deploy("release.yml", to="production", on_event=print)
    result.status, result.exit_code, result.run_id, result.report

The commands that end a run (deploy, rollback, resume) return a `RunResult` however the run ended; an error
before a run begins (bad input) raises a `WpgateError`. The commands of one gate on its own (backup, purge,
check, restore) return their evidence, or raise a `WpgateError` whose `report` holds it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from wpgate import config
from wpgate.errors import BadInput, ExitStatus, GateRefused, WpgateError
from wpgate.output import SILENT, Output

if TYPE_CHECKING:
    from wpgate.inventory import Inventory
    from wpgate.release import Release
    from wpgate.report.facts import Facts

EventCallback = Callable[[dict[str, Any]], None]
Confirm = Callable[[str], bool]
KEEP_DATABASE, RESTORE_DATABASE = "keep", "restore"


@dataclass(frozen=True)
class RunResult:
    """How a run ended: `status` as report.json says it, `exit_code` as the command line would exit,
    `message` the one line it would print when the run did not complete (None when it did)."""

    status: str
    exit_code: ExitStatus
    run_id: str | None
    report: dict[str, Any]
    message: str | None = None

    @classmethod
    def of(cls, report: dict[str, Any]) -> "RunResult":
        return cls(str(report.get("status")), ExitStatus.COMPLETE, report.get("run"), report)

    @classmethod
    def of_error(cls, error: WpgateError) -> "RunResult":
        report = error.report or {}
        return cls(str(report.get("status")), ExitStatus(error.exit_code), report.get("run"), report, str(error))


def load_release(path: str | Path) -> "Release":
    """A release manifest, read and checked (BadInput, exit 2, listing every problem)."""
    from wpgate import release

    return release.load(Path(path))


class Project:
    """A config file's sites and state folder, and what wpgate does with them."""

    def __init__(self, settings: config.Settings, *, output: Output | None = None) -> None:
        self.settings = settings
        self.output: Output = output or SILENT

    @classmethod
    def load(cls, path: str | Path | None = None, *, output: Output | None = None) -> "Project":
        """The project of config file `path` (None: $WPGATE_CONFIG, else ./wpgate.yml); ConfigError when it is
        unreadable or invalid, every problem listed. `output` receives the human lines (default: none)."""
        return cls(config.load(config.resolve_path(None if path is None else str(path))), output=output)

    @property
    def path(self) -> Path:
        return self.settings.path

    @property
    def state_dir(self) -> Path:
        return self.settings.state_dir

    def _say(self, text: str) -> None:
        self.output.print(text, markup=False, soft_wrap=True)

    # Reading and preparing a release.

    def inventory(self, site: str) -> "Inventory":
        """What `site` runs now: core, plugins, themes, must-use plugins, drop-ins (`.data` is the JSON)."""
        from wpgate import inventory
        from wpgate.bridge import Bridge
        from wpgate.transports import for_site

        site_config = self.settings.site(site)
        with for_site(site_config) as transport:
            return inventory.read(Bridge(site, site_config, transport))

    def plan(self, from_: str, to: str, output: str | Path = "release.yml") -> "Release | None":
        """Diff `from_` (staging) and `to`, capture staging's changed components, write an unapproved manifest
        to `output`; None when both hold the same versions."""
        from wpgate import planning

        return planning.plan(self.settings, from_, to, Path(output), self.output)

    def qa(self, staging: str, *, baseline: str | None = None, output: str | Path = "qa.yml",
           html: str | Path | None = None) -> dict[str, Any]:
        """Gate 6.6's checks on staging, written into its QA record; raises GateRefused (with `report`) when one failed."""
        from wpgate import staging_qa

        return staging_qa.run(self.settings, staging, baseline, Path(output), Path(html) if html else None,
                              self.output)

    def approve(self, release: "str | Path | Release", qa: str | Path, by: str, *,
                key: str | Path | None = None) -> "Release":
        """Check the QA record, the manifest and staging; write the approval (signed with `key`) and return the
        approved release, or raise GateRefused (exit 3)."""
        from wpgate.gates import approval

        return approval.approve(self.settings, _release(release), Path(qa), by, self.output,
                                key=Path(key) if key else None)

    # Runs: each returns a RunResult however it ended.

    def deploy(self, release: "str | Path | Release", *, to: str, on_event: EventCallback | None = None,
               dry_run: bool = False, auto_rollback: bool = True, confirm: Confirm | None = None,
               break_lock: bool = False, require_existing_backup: bool = False) -> RunResult:
        """Gates 6.1 to 6.7 of `release` on site `to`. Nothing is asked unless `confirm` is given: it is called
        with the question once the plan is said, before the first change, and False refuses."""
        from wpgate import pipeline

        loaded = _release(release)
        with _observing(on_event):
            return _ending(lambda: pipeline.deploy(
                self.settings, loaded, to, dry_run=dry_run, auto_rollback=auto_rollback, console=self.output,
                confirm=confirm, break_lock=break_lock, require_existing_backup=require_existing_backup))

    def rollback(self, run_id: str, *, on_event: EventCallback | None = None, dry_run: bool = False,
                 database: str | None = None, confirm: Confirm | None = None, break_lock: bool = False) -> RunResult:
        """Return the run's site to its pre-deployment state, proved. `database`: None (the run's snapshots decide),
        "keep" or "restore". `confirm` as for deploy."""
        from wpgate import recovery, rollback_database

        modes = {None: None, KEEP_DATABASE: rollback_database.KEEP, RESTORE_DATABASE: rollback_database.RESTORE}
        if database not in modes:
            raise BadInput(f"database={database!r}: give None, {KEEP_DATABASE!r} or {RESTORE_DATABASE!r}")
        with _observing(on_event):
            return _ending(lambda: recovery.roll_back_run(
                self.settings, run_id, self.output, confirm=confirm, dry_run=dry_run, database_mode=modes[database],
                break_lock=break_lock))

    def resume(self, run_id: str, *, on_event: EventCallback | None = None, break_lock: bool = False) -> RunResult:
        """After a crash: finish the run when everything is in place and proved, else roll it back (exit code 4)."""
        from wpgate import recovery

        with _observing(on_event):
            return _ending(lambda: recovery.resume(self.settings, run_id, self.output, break_lock=break_lock))

    def rollout(self, release: str | Path, *, to: str, waves: str | None = None, parallel: int | None = None,
                engine: str | None = None, dry_run: bool = False) -> RunResult:
        """Deploy a group release to group `to` site by site in waves, halting after the first site that fails.
        `run_id` of the result is the rollout's id, `report` its ledger (rollout.json); nothing is asked."""
        from wpgate.fleet import controller

        try:
            ledger = controller.rollout(self.settings, Path(release), to, waves=waves, parallel=parallel,
                                        engine=engine, dry_run=dry_run, console=self.output)
        except WpgateError as error:
            if error.report is None:
                raise
            return RunResult(str(error.report.get("status")), ExitStatus(error.exit_code), error.report.get("rollout"),
                             error.report, str(error))
        return RunResult(str(ledger.get("status")), ExitStatus.COMPLETE, ledger.get("rollout"), ledger)

    def report(self, run_id: str | None = None) -> dict[str, Any]:
        """A run's report.json (the latest run's without `run_id`)."""
        from wpgate import run

        return run.load_report(self.state_dir, self.run_id(run_id))

    def facts(self, run_id: str | None = None) -> "Facts":
        """A run's record as the reports tell it (report.json, the journal, the evidence files)."""
        from wpgate import report

        return report.load(self.state_dir, self.run_id(run_id))

    def run_id(self, run_id: str | None = None) -> str:
        """`run_id`, or the latest run's; BadInput when there is none."""
        from wpgate import run

        found = run_id or run.latest_run(self.state_dir)
        if found is None:
            raise BadInput(f"no runs yet in {self.state_dir / 'runs'}")
        return found

    # One gate on its own.

    def backup(self, site: str) -> dict[str, Any]:
        """Gate 6.2's backup of `site`, copied off-site and verified: its manifest."""
        from wpgate.backup import commands

        return commands.backup(self.settings, site, self.output)

    def restore(self, backup_id: str, *, verify: bool = True, dry_run: bool = False, confirm: Confirm | None = None,
                break_lock: bool = False, on_event: EventCallback | None = None) -> dict[str, Any]:
        """With `verify` (the default), prove a backup restorable (scratch copies, compared, removed); GateRefused
        (with `report`) when not. With `verify=False`, put the backup onto its site (files and database, the rows
        the backup lacks kept) and prove it: the restore's report; `dry_run` says what would change and changes
        nothing; `confirm` as for deploy. GateRefused (exit 3) when the backup fails its checks, RollbackIncomplete
        (exit 5, with `report`) when the site changed and the result is not proved."""
        from wpgate.backup import commands

        if not verify:
            from wpgate import restore

            with _observing(on_event):
                return restore.restore(self.settings, backup_id, self.output, confirm=confirm, dry_run=dry_run,
                                       break_lock=break_lock)
        report = commands.restore_verify(self.settings, backup_id, console=self.output)
        try:
            commands.refuse_unless_restorable(report)
        except GateRefused as refused:
            refused.report = report
            raise
        return report

    def prune(self, site: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Apply `site`'s backup retention and remove artifacts no run can still need: every decision, and why."""
        from wpgate.backup import prune

        return prune.prune(self.settings, site, dry_run=dry_run, say=self._say)

    def purge(self, site: str, *, dry_run: bool = False) -> dict[str, Any]:
        """Gate 6.5 on its own: every cache layer of `site` purged in order, then its key pages fetched."""
        from wpgate.caches import commands

        return commands.purge(self.settings, site, self.output, dry_run=dry_run)

    def check(self, site: str) -> dict[str, Any]:
        """Gate 6.6's checks on `site`, once, now; GateRefused (with `report`) when one fails."""
        from wpgate.gates import monitor

        return monitor.check_site(self.settings, site, self.output)


def _release(release: "str | Path | Release") -> "Release":
    return load_release(release) if isinstance(release, (str, Path)) else release


def _observing(on_event: EventCallback | None):
    from wpgate import run

    return run.observing(on_event) if on_event is not None else nullcontext()


def _ending(command: Callable[[], dict[str, Any]]) -> RunResult:
    """A run's end as a result: the report it returned, or the error that ended it (with its report). An error
    before any run was recorded (bad input) is raised."""
    try:
        return RunResult.of(command())
    except WpgateError as error:
        if error.report is None:
            raise
        return RunResult.of_error(error)
