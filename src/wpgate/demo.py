"""`wpgate demo`: the whole procedure, run with wpgate's own commands on a local staging + production pair.

The test bed builds production (WordPress 6.1.9 with older plugins and theme, on nginx + php-fpm) and
staging (6.5.5 with the newer versions a team would have tested). The demo writes `wpgate.yml` and a
QA record for the pair into its folder, then runs `inventory`, `plan`, `approve`, `deploy --dry-run`,
`deploy --yes`, `inventory` again, `status` and `report --html`, each shown as a user would type it and run
as a separate `wpgate` process so that its output is exactly what the user would see. The first step that
fails ends the demo with that step's exit code. Its servers stop when it ends, Ctrl-C included.

With `--broken` the release also holds a faulty plugin update (wpgate-faulty 2.0.1, which stops WordPress
from loading; it was installed but not active on staging, so staging's QA never ran it): the deploy must
catch it after the change, roll production back and exit 4. That is the demo's expected course, so the
demo itself then exits 0; any other end of that deploy (0: the fault went unseen, 5: the rollback is not
proved) ends the demo with the deploy's exit code (1 when it exited 0).
"""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from wpgate import yamlfile
from wpgate.errors import BadInput, ExitStatus

PRODUCTION = {"core": "6.1.9", "plugins": {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0"},
              "themes": {"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}}
STAGING = {"core": "6.5.5", "plugins": {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-seo": "3.1.0"},
           "themes": {"wpgate-parent": "1.1.0", "wpgate-child": "1.1.0"}}
# `--broken`: a plugin whose update stops WordPress from loading (fixture fault `fatal_on_load`).
CULPRIT = ("plugin", "wpgate-faulty", "1.1.0", "2.0.1")
REPORT_FILE = "report.html"

# The first line of the config the demo writes: a folder holding it is an earlier demo's, which a new
# demo may replace; any other folder that is not empty is left alone.
MARKER = "# written by `wpgate demo`: its sites stopped when the demo ended\n"
DEMO_FILES = ("wpgate.yml", "qa.yml", "release.yml", ".wpgate", "backups", "offsite", REPORT_FILE)

QA_RECORD = {
    "checks": [{"name": "home page renders", "required": True, "status": "passed"},
               {"name": "sample page renders", "required": True, "status": "passed"},
               {"name": "wp-admin login works", "required": True, "status": "passed"}],
    "issues": [{"id": 1, "title": "child theme footer overlaps the widgets after the parent's 1.1.0",
                "status": "resolved", "resolution": "fixed in wpgate-child 1.1.0"}],
    "notes": [],
}


@dataclass
class Step:
    """One wpgate command of the demo: what it is for, its arguments (`{run}` stands for the deploy's run id),
    and the exit status that means it went as the demo expects."""

    comment: str
    arguments: list[str]
    expected: int = 0


class StepFailed(Exception):
    """A wpgate command of the demo ended with another exit status than the one the demo expects."""

    def __init__(self, command: str, exit_code: int, expected: int = 0) -> None:
        super().__init__(command)
        self.command = command
        self.exit_code = exit_code
        self.expected = expected


def run(folder: Path, console: Console, *, broken: bool = False) -> int:
    """Build the pair, run the procedure on it, stop the servers; the exit status of the demo."""
    from wpgate.testbed import TestBed

    shown = _shown_path(folder)
    _prepare(folder, shown)
    step = "building the sites"
    bed = None
    try:
        console.print(f"[bold]wpgate demo{' --broken' if broken else ''}[/]: building a staging and a production "
                      f"site on this machine, writing into {escape(shown)}/")
        bed = TestBed()
        _build(bed, folder, shown, console, broken=broken)
        run_id = ""
        for planned in _steps(shown, broken=broken):
            arguments = [word.replace("{run}", run_id) for word in planned.arguments]
            step = f"`wpgate {_join(arguments)}`"
            console.print(f"\n[dim]# {planned.comment}[/]")
            _run_step(arguments, console, expected=planned.expected)
            if "deploy" in arguments and "--dry-run" not in arguments:
                from wpgate import run as run_module

                run_id = run_module.latest_run(folder / ".wpgate") or ""
        _summary(folder, shown, console, broken=broken)
        return ExitStatus.COMPLETE
    except StepFailed as failure:
        expected = f", expected {failure.expected}" if failure.expected else ""
        console.print(f"wpgate demo: stopped at `{failure.command}` (exit {failure.exit_code}{expected}); "
                      "stopping the demo's servers.", markup=False)
        return failure.exit_code or ExitStatus.ERROR
    except KeyboardInterrupt:
        console.print(f"wpgate demo: interrupted during {step}; stopping the demo's servers.",
                      markup=False)
        return ExitStatus.INTERRUPTED
    finally:
        if bed is not None:
            # A second Ctrl-C must not cut the shutdown short and leave a server running.
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                bed.close()
            finally:
                signal.signal(signal.SIGINT, previous)


def _prepare(folder: Path, shown: str) -> None:
    """Make the folder ready; a previous demo's files are replaced, anything else is refused."""
    if folder.is_dir() and any(folder.iterdir()):
        if not _earlier_demo(folder / "wpgate.yml"):
            raise BadInput(f"demo folder {shown} is not empty and holds no earlier demo: "
                           "give an empty or new folder with --dir")
        for name in DEMO_FILES:
            path = folder / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists() or path.is_symlink():
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)


def _earlier_demo(config: Path) -> bool:
    """Whether `config` was written by a demo: it says so, or (written before it did) every site it names
    lived in a test bed's folder that is gone."""
    try:
        text = config.read_text(errors="replace")
        if text.startswith(MARKER):
            return True
        sites = yamlfile.parse(text, str(config), config=True)["sites"]
        paths = [Path(site["path"]) for site in sites.values()]
    except (OSError, BadInput, KeyError, TypeError, AttributeError):
        return False
    return bool(paths) and all(
        len(path.parents) > 2 and path.parents[0].name == "sites" and path.parents[1].name.startswith("wpgate-bed-")
        and not path.parents[1].exists() for path in paths)


def _build(bed, folder: Path, shown: str, console: Console, *, broken: bool = False) -> None:
    """Create both sites, write the config and the QA record, show what staging holds."""
    production_plugins, staging_plugins = dict(PRODUCTION["plugins"]), dict(STAGING["plugins"])
    staging_active = list(staging_plugins)
    if broken:
        _, slug, old, new = CULPRIT
        production_plugins[slug], staging_plugins[slug] = old, new
    production = bed.create_site("production", core=PRODUCTION["core"], server="nginx",
                                 plugins=production_plugins, themes=PRODUCTION["themes"], theme="wpgate-child")
    console.print(f"  production: WordPress {PRODUCTION['core']} at {production.url} (nginx + php-fpm)")
    # On staging the faulty plugin is installed but not active: its QA never ran the code that breaks.
    staging = bed.create_site("staging", core=STAGING["core"], plugins=staging_plugins, active_plugins=staging_active,
                              themes=STAGING["themes"], theme="wpgate-child")
    console.print(f"  staging:    WordPress {STAGING['core']} at {staging.url} (php -S)")
    (folder / "wpgate.yml").write_text(MARKER + yaml.safe_dump({
        "state_dir": ".wpgate",
        "sites": {
            "staging": {"path": str(staging.path), "url": staging.url},
            "production": {"path": str(production.path), "url": production.url,
                           # On the site's host (here, this machine) and the off-site copy beside the config.
                           "backup": {"dir": str(folder / "backups"), "offsite": str(folder / "offsite"),
                                      "max_age": "2h"},
                           "checks": {"pages": ["/", "/sample-page/"], "content": {"/": ["Hello world"]},
                                      "window": "10s"}},
        },
    }, sort_keys=False))
    (folder / "qa.yml").write_text(yaml.safe_dump(QA_RECORD, sort_keys=False))
    console.print(f"  config:     {shown}/wpgate.yml", markup=False)
    console.print(f"  QA record:  {shown}/qa.yml (staging's QA: every check passed, one issue resolved)\n",
                  markup=False)
    console.print(_tested_on_staging(folder / "wpgate.yml"))
    if broken:
        kind, slug, old, new = CULPRIT
        console.print(f"\n[bold]--broken[/]: {kind} {slug} {new} stops WordPress from loading. On staging it was "
                      "installed but never activated, so QA did not see it; on production it is active. Watch the "
                      "deploy catch it after the change and put production back.")


def _tested_on_staging(config_path: Path) -> Table:
    """What `plan` will find: the components whose version differs between the two sites."""
    from wpgate import config, inventory, planning
    from wpgate.bridge import Bridge
    from wpgate.transports import for_site

    settings = config.load(config_path)
    found = {}
    for name in ("staging", "production"):
        site = settings.site(name)
        with for_site(site) as transport:
            found[name] = inventory.read(Bridge(name, site, transport))
    difference = planning.compare(found["staging"], found["production"])
    table = Table(title="Updated and tested on staging, not yet on production", title_justify="left",
                  show_edge=False)
    for column in ("type", "slug", "production", "staging"):
        table.add_column(column)
    for kind, slug, from_version, to_version in difference.updates:
        table.add_row(kind, slug, from_version, to_version)
    return table


def _steps(shown: str, *, broken: bool = False) -> list[Step]:
    """The procedure as a user types it."""
    config, release, qa = f"{shown}/wpgate.yml", f"{shown}/release.yml", f"{shown}/qa.yml"
    deploy = Step("deploy for real, gate by gate" if not broken else
                  "deploy for real: the faulty update is caught after the change and production rolled back "
                  "(exit 4)", ["-c", config, "deploy", release, "--to", "production", "--yes"],
                  ExitStatus.ROLLED_BACK if broken else ExitStatus.COMPLETE)
    return [
        Step("what production runs today", ["-c", config, "inventory", "production"]),
        Step("diff the sites and capture staging's tested components as a release",
             ["-c", config, "plan", "--from", "staging", "--to", "production", "-o", release]),
        Step("approve the release against staging's QA record",
             ["-c", config, "approve", release, "--qa", qa, "--by", "wpgate demo"]),
        Step("the read-only gates and the plan, changing nothing",
             ["-c", config, "deploy", release, "--to", "production", "--dry-run"]),
        deploy,
        Step("what production runs now" if not broken else "what production runs now: as before the deploy",
             ["-c", config, "inventory", "production"]),
        Step("the run's gates and updates", ["-c", config, "status"]),
        Step("the run's report as one HTML page, to hand to a client",
             ["-c", config, "report", "{run}", "--html", f"{shown}/{REPORT_FILE}"]),
    ]


def _run_step(arguments: list[str], console: Console, *, expected: int = 0) -> None:
    """Run one wpgate command as its own process, its output straight to the terminal."""
    console.print(Text(f"$ wpgate {_join(arguments)}", style="bold"))
    sys.stdout.flush()
    sys.stderr.flush()
    process = None
    try:
        process = subprocess.Popen([sys.executable, "-m", "wpgate", *arguments], stdin=subprocess.DEVNULL)
        code = process.wait()
    except KeyboardInterrupt:
        if process is not None:
            _stop(process)
        raise
    if code != expected:
        raise StepFailed(f"wpgate {_join(arguments)}", code if code >= 0 else 128 - code, expected)


def _stop(process: subprocess.Popen) -> None:
    """Let an interrupted step finish its record; Ctrl-C in a terminal reached it already."""
    for send, grace in ((None, 2), (signal.SIGINT, 20), (signal.SIGKILL, 5)):
        if send is not None:
            process.send_signal(send)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
        except KeyboardInterrupt:  # another Ctrl-C: stop waiting politely
            process.kill()
            process.wait()
            return


def _summary(folder: Path, shown: str, console: Console, *, broken: bool = False) -> None:
    from wpgate import run as run_module

    run_id = run_module.latest_run(folder / ".wpgate")
    report = run_module.load_report(folder / ".wpgate", run_id) if run_id else {}
    if broken:
        from wpgate import report as report_module
        from wpgate.report.view import update_label

        kind, slug, old, new = CULPRIT
        found = report_module.load(folder / ".wpgate", run_id).culprit() if run_id else None
        console.print(f"\n[bold green]wpgate demo --broken complete[/]: the release's {kind} {slug} {new} broke "
                      f"production; wpgate caught it after the change, rolled every change back and proved "
                      f"production is back at its pre-deployment state (deploy exit 4: status {report.get('status')}).")
        console.print(f"  culprit named by the report: {update_label(found) if found else 'none (see what failed)'}",
                      markup=False)
        if report.get("error"):
            console.print(f"  what failed: {report['error']}", markup=False, soft_wrap=True)
        console.print(f"  On your own sites: fix or drop {slug} {new} on staging, plan and approve again, and "
                      "deploy the new release. An exit 5 instead would mean the rollback is not proved: read the "
                      "report and put back by hand what it lists.", markup=False, soft_wrap=True)
    else:
        console.print("\n[bold green]wpgate demo complete[/]: production was updated from staging, gate by gate.")
    for label, path in (("config", f"{shown}/wpgate.yml"), ("release", f"{shown}/release.yml (approved)"),
                        ("QA record", f"{shown}/qa.yml"), ("run report", f"{shown}/.wpgate/runs/{run_id}/report.json"),
                        ("HTML report", f"{shown}/{REPORT_FILE} (open it in a browser)")):
        console.print(f"  {label + ':':<12} {path}", markup=False)
    console.print(
        "\nThe demo's sites stop now, so these files point at servers that are gone. To run the same steps on "
        "your own sites, write a wpgate.yml naming them (see the README), record staging's QA in qa.yml, and run:")
    for line in ("wpgate inventory production",
                 "wpgate plan --from staging --to production -o release.yml",
                 'wpgate approve release.yml --qa qa.yml --by "Your Name"',
                 "wpgate deploy release.yml --to production --dry-run",
                 "wpgate deploy release.yml --to production",
                 "wpgate status",
                 "wpgate report RUN_ID --html report.html"):
        console.print(f"  {line}", markup=False)


def _shown_path(folder: Path) -> str:
    """The folder as the user would type it: relative to the current folder when inside it."""
    absolute = folder.resolve()
    try:
        relative = absolute.relative_to(Path.cwd().resolve())
    except ValueError:
        return str(absolute)
    return relative.as_posix() if str(relative) != "." else "."


def _join(arguments: list[str]) -> str:
    """A command line to copy and paste: plain words bare, others quoted (double quotes when they are enough)."""
    words = []
    for word in arguments:
        if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", word):
            words.append(word)
        elif not re.search(r'["$`\\!]', word):
            words.append(f'"{word}"')
        else:
            words.append(shlex.quote(word))
    return " ".join(words)
