"""The `wpgate` command line: parses arguments, runs one command, maps errors to DESIGN.md's exit codes."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path

import click
from rich.console import Console

from wpgate import __version__, config, progress, redact
from wpgate.errors import BadInput, ExitStatus, WpgateError
from wpgate.progress_view import ProgressView
from wpgate.project import Project, RunResult, load_release
from wpgate.words import plural

console = Console(stderr=True, highlight=False, soft_wrap=True)


class Context:
    """What every command needs: the project of the config file (loaded on first use), speaking on stderr."""

    def __init__(self, config_option: str | None) -> None:
        self.config_path = config.resolve_path(config_option)
        self._project: Project | None = None

    @property
    def project(self) -> Project:
        if self._project is None:
            self._project = Project.load(self.config_path, output=console)
        return self._project


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-c", "--config", "config_option", metavar="CONFIG",
              help="Config file (default: $WPGATE_CONFIG, else ./wpgate.yml).")
@click.option("-v", "--verbose", is_flag=True, help="Log every command run on a host (secrets masked).")
@click.version_option(__version__, prog_name="wpgate")
@click.pass_context
def cli(ctx: click.Context, config_option: str | None, verbose: bool) -> None:
    """Replicate the WordPress updates tested on staging onto production, one gate at a time."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(message)s")
    progress.use(ProgressView(console))
    # wpgate logs its own requests; the HTTP library's connection traces would bury the commands.
    for library in ("httpx", "httpcore"):
        logging.getLogger(library).setLevel(logging.WARNING)
    ctx.obj = Context(config_option)


@cli.command()
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
@click.pass_obj
def inventory(obj: Context, site: str, as_json: bool) -> None:
    """Versions of core, plugins, themes, must-use plugins and drop-ins on SITE."""
    found = obj.project.inventory(site)
    if as_json:
        _print_json(found.data)
    else:
        from wpgate import inventory_view

        inventory_view.render(found, site, console)


@cli.command()
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print the backup's manifest as JSON on stdout.")
@click.pass_obj
def backup(obj: Context, site: str, as_json: bool) -> None:
    """Back SITE up on its host (database and files) and copy it off-site, every part's sha256 verified."""
    manifest = obj.project.backup(site)
    if as_json:
        _print_json(manifest)


@cli.command()
@click.argument("backup_id", metavar="BACKUP_ID")
@click.option("--verify", is_flag=True,
              help="Only prove it restorable: restore into a scratch database and folder, compare, remove them.")
@click.option("--dry-run", is_flag=True,
              help="Say which components and tables differ from the backup; change nothing (exit 0 when the "
                   "restore could proceed).")
@click.option("--yes", is_flag=True, help="Do not ask before changing the site.")
@click.option("--break-lock", is_flag=True, help="Take the site's lock even when another run holds it.")
@click.option("--json", "as_json", is_flag=True, help="Print the restore's report (with --verify: what was "
              "compared and every problem) as JSON.")
@click.pass_obj
def restore(obj: Context, backup_id: str, verify: bool, dry_run: bool, yes: bool, break_lock: bool,
            as_json: bool) -> None:
    """Put BACKUP_ID (an id such as production-20261126-101500-ab12) back onto the site it names, files and
    database, keeping the rows added since, and prove it; with --verify, only prove it restorable."""
    if verify and (dry_run or break_lock):
        raise BadInput("--verify touches no site: give it without --dry-run and --break-lock")
    project = obj.project
    if not verify and not dry_run:
        _require_yes_or_terminal(yes, "restore")
    _with_report(as_json, lambda: project.restore(backup_id, verify=verify, dry_run=dry_run,
                                                  confirm=None if yes else _confirm, break_lock=break_lock))


@cli.command()
@click.argument("site")
@click.option("--dry-run", is_flag=True, help="List what would be removed and what is kept, and why; remove nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print every backup's and artifact's fate as JSON on stdout.")
@click.pass_obj
def prune(obj: Context, site: str, dry_run: bool, as_json: bool) -> None:
    """Apply SITE's backup retention (backup.keep_last, backup.keep_daily) and remove artifacts no run can still need."""
    from wpgate.backup import prune as prune_module

    result = obj.project.prune(site, dry_run=dry_run)
    if as_json:
        _print_json(result)
    prune_module.refuse_if_incomplete(result)  # exit 5 once the decisions are printed


@cli.command()
@click.argument("site")
@click.option("--json", "as_json", is_flag=True, help="Print what every check found as JSON on stdout.")
@click.pass_obj
def check(obj: Context, site: str, as_json: bool) -> None:
    """Gate 6.6's checks on SITE, now: pages, wp-admin, the PHP error log. Exit 0 healthy, 3 when one fails."""
    _with_report(as_json, lambda: obj.project.check(site))


@cli.command()
@click.argument("site")
@click.option("--dry-run", is_flag=True, help="List the layers in the order they would be purged; purge nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was purged and what the pages showed as JSON.")
@click.pass_obj
def purge(obj: Context, site: str, dry_run: bool, as_json: bool) -> None:
    """Purge every cache layer of SITE in order (gate 6.5 on its own), then fetch its key pages."""
    _with_report(as_json, lambda: obj.project.purge(site, dry_run=dry_run))


@cli.command()
@click.option("--from", "staging", required=True, metavar="STAGING", help="The tested site.")
@click.option("--to", "production", required=True, metavar="PRODUCTION", help="The site to update.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("release.yml"),
              show_default=True, help="Where to write the release manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON on stdout.")
@click.pass_obj
def plan(obj: Context, staging: str, production: str, output: Path, as_json: bool) -> None:
    """Diff two sites and capture staging's changed components as an unapproved release manifest."""
    release = obj.project.plan(staging, production, output)
    if as_json:
        _print_json(release.as_dict() if release else {"updates": []})
    if release is None:
        return
    console.print(f"release {release.id}: {plural(len(release.updates), 'update')}, written to {output}")
    for number, update in enumerate(release.updates, 1):
        console.print(f"  {number}. {update.label}  [{update.artifact.sha256[:12]}]", markup=False)
    for name, versions in (release.sites or {}).items():
        console.print(f"  site {name}: " + ", ".join(f"{slug} {version}" for slug, version in versions.items()),
                      markup=False)
    for name, reason in (release.skipped or {}).items():
        console.print(f"  skipped {name}: {reason}", markup=False, soft_wrap=True)
    console.print(f"Next: QA on staging, then `wpgate approve {output} --qa qa.yml --by NAME`.", markup=False)


@cli.command()
@click.argument("staging")
@click.option("--baseline", metavar="PRODUCTION",
              help="Compare staging with this site (screenshots, inventories) and use its checks config.")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=Path("qa.yml"), show_default=True,
              help="The QA record to write or update (people's own entries are kept).")
@click.option("--html", "html_path", type=click.Path(path_type=Path), metavar="PATH",
              help="Also write one page for a reviewer: each page's screenshots side by side, every check's result.")
@click.option("--json", "as_json", is_flag=True, help="Print every check's result as JSON on stdout.")
@click.pass_obj
def qa(obj: Context, staging: str, baseline: str | None, output: Path, html_path: Path | None, as_json: bool) -> None:
    """Run gate 6.6's checks on STAGING and write its QA record. Exit 0 all passed, 3 a check failed."""
    _with_report(as_json, lambda: obj.project.qa(staging, baseline=baseline, output=output, html=html_path))


@cli.command()
@click.argument("release_path", metavar="RELEASE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--qa", "qa_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The QA record of staging.")
@click.option("--by", required=True, metavar="NAME", help="Who approves (the signer's principal with --key).")
@click.option("--key", "key", type=click.Path(dir_okay=False, path_type=Path), metavar="SSH_KEY",
              help="Sign the approval's digest with this OpenSSH key (ssh-keygen -Y sign, namespace wpgate-release).")
@click.option("--json", "as_json", is_flag=True, help="Print the approved manifest as JSON on stdout.")
@click.pass_obj
def approve(obj: Context, release_path: Path, qa_path: Path, by: str, key: Path | None, as_json: bool) -> None:
    """Check the QA record, the manifest and staging; write the approval, or refuse (exit 3)."""
    release = load_release(release_path)
    approved = obj.project.approve(release, qa_path, by, key=key)
    signed = "signed with " + str(key) if approved.approval.signature else "unsigned (no --key)"
    console.print(f"approved release {approved.id} by {approved.approval.by} at {approved.approval.at}, "
                  f"{signed}; digest {approved.approval.digest}", markup=False)
    if as_json:
        _print_json(approved.as_dict())


@cli.command()
@click.argument("release_path", metavar="RELEASE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "site", required=True, metavar="SITE", help="The site to deploy to.")
@click.option("--yes", is_flag=True, help="Do not ask before the first change.")
@click.option("--dry-run", is_flag=True, help="Run the read-only gates and show the plan; change nothing.")
@click.option("--no-auto-rollback", is_flag=True, help="On failure after a change, do not roll back.")
@click.option("--break-lock", is_flag=True, help="Take the site's lock even when another run holds it.")
@click.option("--require-existing-backup", is_flag=True,
              help="Refuse unless an existing backup passes gate 6.2 (never take one).")
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON on stdout.")
@click.pass_obj
def deploy(obj: Context, release_path: Path, site: str, yes: bool, dry_run: bool, no_auto_rollback: bool,
           break_lock: bool, require_existing_backup: bool, as_json: bool) -> None:
    """Run gates 6.1 to 6.7 and replicate the approved release onto SITE."""
    release = load_release(release_path)
    project = obj.project
    if not dry_run:
        _require_yes_or_terminal(yes, "deploy")
    _end_run(as_json, project.deploy(
        release, to=site, dry_run=dry_run, auto_rollback=not no_auto_rollback, confirm=None if yes else _confirm,
        break_lock=break_lock, require_existing_backup=require_existing_backup))


@cli.command()
@click.argument("run_id", metavar="RUN_ID")
@click.option("--yes", is_flag=True, help="Do not ask before changing production.")
@click.option("--dry-run", is_flag=True,
              help="Say what would change, whether the database goes back and what becomes of the rows visitors "
                   "wrote since; change nothing (exit 0 when the rollback could proceed).")
@click.option("--keep-database", is_flag=True,
              help="Put the files back and leave the database as it is, whatever the release changed in it.")
@click.option("--restore-database", is_flag=True,
              help="Restore the database from the run's backup even when the release changed nothing in it.")
@click.option("--break-lock", is_flag=True, help="Take the site's lock even when another run holds it.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON on stdout.")
@click.pass_obj
def rollback(obj: Context, run_id: str, yes: bool, dry_run: bool, keep_database: bool, restore_database: bool,
             break_lock: bool, as_json: bool) -> None:
    """Return the site to the run's pre-deployment state, and prove it (exit 0), or say what is not (5)."""
    if keep_database and restore_database:
        raise BadInput("--keep-database and --restore-database contradict each other: give one of them")
    database = "keep" if keep_database else "restore" if restore_database else None
    project = obj.project
    if not dry_run:
        _require_yes_or_terminal(yes, "rollback")
    _end_run(as_json, project.rollback(run_id, dry_run=dry_run, database=database,
                                       confirm=None if yes else _confirm, break_lock=break_lock))


@cli.command()
@click.argument("run_id", metavar="RUN_ID")
@click.option("--break-lock", is_flag=True, help="Take the site's lock even when another run holds it.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON on stdout.")
@click.pass_obj
def resume(obj: Context, run_id: str, break_lock: bool, as_json: bool) -> None:
    """After a crash: finish the run (or the rollout) when everything is in place and proved, else roll it back (exit 4)."""
    from wpgate.fleet import controller, ledger

    if ledger.is_rollout_id(run_id):
        _with_report(as_json, lambda: controller.resume(obj.project.settings, run_id, console))
        return
    _end_run(as_json, obj.project.resume(run_id, break_lock=break_lock))


@cli.command()
@click.argument("run_id", required=False, metavar="[RUN_ID]")
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON on stdout.")
@click.pass_obj
def status(obj: Context, run_id: str | None, as_json: bool) -> None:
    """The gates and state of a run or a rollout (the latest run when RUN_ID is not given)."""
    from wpgate.fleet import ledger, view

    project = obj.project
    if run_id and ledger.is_rollout_id(run_id):
        found = ledger.Ledger.load(project.state_dir, run_id)
        if as_json:
            _print_json(found.data)
        else:
            view.render_terminal(found, console)
        return
    run_id = project.run_id(run_id)
    report = project.report(run_id)
    if as_json:
        _print_json(report)
        return
    from wpgate.report import terminal

    terminal.render(project.facts(run_id), console)


@cli.command()
@click.argument("run_id", required=False, metavar="[RUN_ID]")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Write one self-contained HTML page to PATH instead of Markdown on stdout.")
@click.pass_obj
def report(obj: Context, run_id: str | None, html_path: Path | None) -> None:
    """The run's or rollout's report (the latest run when RUN_ID is not given): Markdown on stdout, or --html PATH."""
    from wpgate.fleet import ledger, view
    from wpgate.report import html, markdown

    project = obj.project
    if run_id and ledger.is_rollout_id(run_id):
        found = ledger.Ledger.load(project.state_dir, run_id)
        if html_path is None:
            view.render_terminal(found, Console(file=sys.stdout, highlight=False, soft_wrap=True))
            return
        try:
            written = view.write_html(project.state_dir, found, html_path)
        except OSError as error:
            raise BadInput(f"{html_path}: cannot write the report: {error.strerror or error}") from None
        console.print(f"report of rollout {run_id} ({found.data['status']}) written to {html_path} "
                      f"(and {plural(len(written) - 1, 'run report')} beside it)", markup=False)
        return
    run_id = project.run_id(run_id)
    facts = project.facts(run_id)
    if html_path is None:
        click.echo(redact.text(markdown.render(facts)), nl=False)
        return
    try:
        html.write(facts, html_path)
    except OSError as error:
        raise BadInput(f"{html_path}: cannot write the report: {error.strerror or error}") from None
    console.print(f"report of run {run_id} ({facts.status}) written to {html_path}", markup=False)


@cli.command()
@click.argument("release_path", metavar="RELEASE", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "group", required=True, metavar="GROUP", help="The group of sites to deploy to.")
@click.option("--waves", metavar="1,10%,100%",
              help="Cumulative wave sizes: counts of sites or shares of the group (default 1,10%,100%).")
@click.option("--parallel", type=int, metavar="N", help="Sites deployed at once within a wave (default: fleet.parallel).")
@click.option("--engine", type=click.Choice(["local", "celery"]), help="Where sites deploy (default: fleet.engine).")
@click.option("--yes", is_flag=True, help="Do not ask before the first change.")
@click.option("--dry-run", is_flag=True, help="Check the input and show the waves; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the rollout's ledger (rollout.json) on stdout.")
@click.pass_obj
def rollout(obj: Context, release_path: Path, group: str, waves: str | None, parallel: int | None,
            engine: str | None, yes: bool, dry_run: bool, as_json: bool) -> None:
    """Deploy a group release to GROUP site by site in waves, halting after the first site that fails."""
    from wpgate.fleet import controller

    if not yes and not dry_run:
        _require_yes_or_terminal(yes, "rollout")
    _with_report(as_json, lambda: controller.rollout(obj.project.settings, release_path, group, waves=waves,
                                                     parallel=parallel, engine=engine, dry_run=dry_run,
                                                     console=console, confirm=None if yes else _confirm))


@cli.command()
@click.option("--concurrency", type=int, default=1, show_default=True,
              help="Site deployments this worker runs at once.")
@click.pass_obj
def worker(obj: Context, concurrency: int) -> None:
    """A Celery worker that takes site deployments of rollouts from the broker (fleet.broker_env)."""
    from wpgate.fleet import celery_engine

    celery_engine.run_worker(obj.project.settings, obj.config_path, concurrency, console)


@cli.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"),
              show_default=True, help="Where the demo writes its config and state.")
@click.option("--broken", is_flag=True,
              help="Add a faulty plugin update: watch the deploy catch it and roll production back (deploy exits 4; "
                   "the demo exits 0 when that is what happened).")
def demo(folder: Path, broken: bool) -> None:
    """Build a local staging + production pair and run the whole procedure on it."""
    from wpgate import demo as demo_module

    raise SystemExit(demo_module.run(folder.resolve(), console, broken=broken))


def _print_json(document) -> None:
    """One JSON document on stdout, every known secret masked."""
    click.echo(json.dumps(redact.value(document), indent=2, default=str))


def _require_yes_or_terminal(yes: bool, command: str) -> None:
    """A command that asks before changing production needs --yes where there is no terminal to ask on:
    bad input (exit 2), said before any run is recorded or any site is read."""
    if not yes and not sys.stdin.isatty():
        raise BadInput(f"{command} asks before changing production and there is no terminal to ask on: "
                       f"pass --yes to {command} without asking")


def _confirm(question: str) -> bool:
    """The library's question, asked on the terminal; Ctrl-C or end of input there is an interrupt."""
    try:
        return click.confirm(question, default=False, err=True)
    except click.Abort:
        raise KeyboardInterrupt from None


class _RunEnded(WpgateError):
    """A run that did not complete, as the command line reports it: its one line and exit code."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.message or result.status)
        self.exit_code = result.exit_code

    def __str__(self) -> str:
        return self.message  # already masked by the error it was taken from


def _end_run(as_json: bool, result: RunResult) -> None:
    """With --json the run's report goes to stdout however it ended; then the exit code says how."""
    if as_json:
        _print_json(result.report)
    if result.exit_code != ExitStatus.COMPLETE:
        raise _RunEnded(result)


def _with_report(as_json: bool, command) -> None:
    """Run a command that ends a run; with --json its report goes to stdout however it ends."""
    try:
        report = command()
    except WpgateError as error:
        if as_json and error.report is not None:
            _print_json(error.report)
        raise
    if as_json:
        _print_json(report)


def _write_traceback(obj: Context | None) -> Path:
    """The traceback of an unexpected error, in a new private file (0600, a name nobody can guess or
    plant a link at): under the state folder once the config is loaded, else the user's cache folder."""
    folders = [user_cache_dir() / "errors", Path(tempfile.gettempdir())]
    if obj is not None and obj._project is not None:
        folders.insert(0, obj._project.state_dir / "errors")
    text = redact.text(traceback.format_exc())
    for folder in folders:
        try:
            if folder != Path(tempfile.gettempdir()):
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, name = tempfile.mkstemp(prefix=f"traceback-{time.strftime('%Y%m%dT%H%M%S')}-",
                                                suffix=".txt", dir=folder)
        except OSError:
            continue
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        return Path(name)
    raise RuntimeError("no folder to write the traceback to")


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/wpgate, else ~/.cache/wpgate."""
    base = os.environ.get("XDG_CACHE_HOME") or ""
    return (Path(base) if base.startswith("/") else Path.home() / ".cache") / "wpgate"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """Run the command line and exit with the code DESIGN.md gives for how it ended."""
    ctx: click.Context | None = None
    # Everything the terminal shows (messages, progress, logs, click's own errors) passes the mask.
    if not isinstance(sys.stderr, redact.MaskedStream):
        sys.stderr = redact.MaskedStream(sys.stderr)  # type: ignore[assignment]
    # A stop asked by the system (SIGTERM) ends a run the way Ctrl-C does: its record is finished.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with cli.make_context("wpgate", list(sys.argv[1:] if argv is None else argv)) as ctx:
            cli.invoke(ctx)
        code = ExitStatus.COMPLETE
    except click.exceptions.Exit as done:
        code = done.exit_code
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else ExitStatus.COMPLETE
    except click.ClickException as error:
        error.show()
        code = ExitStatus.BAD_INPUT
    except click.Abort:
        console.print("wpgate: interrupted")
        code = ExitStatus.INTERRUPTED
    except WpgateError as error:
        console.print(f"wpgate: error: {error}", markup=False, soft_wrap=True)
        code = error.exit_code
    except KeyboardInterrupt:
        console.print("wpgate: interrupted")
        code = ExitStatus.INTERRUPTED
    except Exception as error:  # an unexpected failure: one line here, the traceback in a file
        path = _write_traceback(ctx.obj if ctx is not None else None)
        console.print(f"wpgate: unexpected error: {type(error).__name__}: {error} (traceback in {path})",
                      markup=False, soft_wrap=True)
        code = ExitStatus.ERROR
    sys.exit(int(code))
