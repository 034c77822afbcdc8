"""The release the crash matrices deploy (core with its database upgrade, a plugin, two themes),
and one kill: a fresh production, the deploy killed after one journal event, then `wpgate resume`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import httpx
import yaml

from tests.e2e.crash_points import describe
from tests.e2e.helpers import (WPGATE, aside_root, fingerprint, site_entry, stopped, wpgate, wpgate_json, write_config,
                               write_qa)
from tests.support.sshd import sshd
from wpgate.testbed.cores import locked

CORE_OLD, CORE_NEW = "6.4.5", "6.5.5"
# One update of each type (and the bundled theme 6.5 updates): each kill point replays the deploy up to
# its event, so every further update would cost every point; the must-hit points are per update type.
OLD = {"wpgate-hello": "1.0.0"}
NEW = {"wpgate-hello": "1.2.0"}
THEME_OLD, THEME_NEW = {"wpgate-parent": "1.0.0"}, {"wpgate-parent": "1.1.0"}


def production(bed, name: str):
    return bed.create_site(name, core=CORE_OLD, server="nginx", plugins=OLD, themes=THEME_OLD, theme="wpgate-parent")


def build_release(bed, folder: Path, reference: str, *, ssh=None) -> dict[str, Any]:
    """Staging at the new versions, a planned and approved release, and the journal of one whole
    deploy of it to a production named `reference`: the events a kill can follow."""
    staging = bed.create_site(f"{reference}-staging", core=CORE_NEW, plugins=NEW, themes=THEME_NEW,
                              theme="wpgate-parent")
    db_version_new = staging.php("echo get_option('db_version');").strip().splitlines()[-1]
    site = production(bed, reference)
    config = write_config(folder, {"staging": site_entry(staging), reference: site_entry(site, ssh=ssh)},
                          state_dir="state")
    manifest = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", reference, "-o", str(manifest), config=config).returncode == 0
    assert wpgate("approve", str(manifest), "--qa", str(write_qa(folder)), "--by", "Ana",
                  config=config).returncode == 0
    result = wpgate("deploy", str(manifest), "--to", reference, "--yes", "--json", config=config)
    assert result.returncode == 0, result.stderr
    journal = folder / "state" / "runs" / json.loads(result.stdout)["run"] / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    bed.remove_site(site)
    return {"folder": folder, "config": config, "manifest": manifest, "events": events, "reference": reference,
            "staging": {"path": str(staging.path), "url": staging.url}, "db_version_new": db_version_new}


def once_per_session(tmp_path_factory, key: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """`build(folder)` run once per test session, by whichever parallel worker asks first; every worker
    gets the folder and what it returned (as JSON: paths come back as strings)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if base.name.startswith("popen-gw") else base  # common to all xdist workers
    root = shared / f"once-{key}"
    with locked(shared / f"once-{key}.lock"):
        record = root / "record.json"
        if not record.exists():
            root.mkdir(exist_ok=True)
            record.write_text(json.dumps(build(root), default=str))
    return root, json.loads(record.read_text())


def shared_release(bed, tmp_path_factory, reference: str, shard: str, *, ssh: bool = False) -> dict[str, Any]:
    """The release, built once per test session, and a folder of this shard's own (its state dir with a
    copy of the artifacts, its configs, backups and runs). Over ssh, the shard reaches its sites through
    its own worker's sshd."""
    root, release = once_per_session(
        tmp_path_factory, reference, lambda folder: build_release(bed, folder, reference, ssh=sshd(bed) if ssh else None))
    folder = tmp_path_factory.mktemp(shard)
    shutil.copytree(root / "state" / "artifacts", folder / "state" / "artifacts")
    return {**release, "folder": folder, "config": Path(release["config"]), "manifest": Path(release["manifest"]),
            "ssh": sshd(bed) if ssh else None}


def runs_of(folder: Path) -> set[Path]:
    runs = folder / "state" / "runs"
    return set(runs.iterdir()) if runs.is_dir() else set()


def state_of(config: Path, site: str) -> dict[str, str]:
    inventory = wpgate_json("inventory", site, config=config)
    assert not inventory["maintenance"], site
    found = {p["slug"]: p["version"] for p in inventory["plugins"] if p["slug"] in OLD}
    found.update({t["slug"]: t["version"] for t in inventory["themes"] if t["slug"] in THEME_OLD})
    found.update(core=inventory["core"]["version"], db_version=str(inventory["core"]["db_version"]))
    return found


def configure(release: dict[str, Any], site, name: str) -> Path:
    """A config like the release's, with the reference production replaced by `site` as `name`."""
    document = yaml.safe_load(release["config"].read_text())
    entry = {**document["sites"].pop(release["reference"]), **site_entry(site, ssh=release["ssh"])}
    entry["backup"] = {"dir": str(release["folder"] / "backups" / name),
                       "offsite": str(release["folder"] / "offsite" / name)}
    document["sites"][name] = entry
    document["state_dir"] = str(release["folder"] / "state")
    config = release["folder"] / f"{name}.yml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    return config


def comparable(print_: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint without what a healthy site changes by itself while it is visited (the options
    table: transients, cron). wpgate's own aside folder is outside the root: any file of it under the root
    (the folder an earlier wpgate used, wp-content/wpgate-aside/) counts as a change."""
    files = dict(print_["files"])
    tables = [line for line in print_["tables"].splitlines() if not line.split("\t")[0].endswith(".wp_options")]
    return {"files": files, "tables": tables}


def kill_and_resume(release: dict[str, Any], site, name: str, kill_at: int) -> str:
    """Kill a deploy of the release to `site` after event `kill_at`, resume it, and check that the site
    is healthy and fully at the release or fully as before (by an independent fingerprint: every
    file's bytes and every table's checksum). Returns the run's ending."""
    where = describe(release["events"], kill_at)
    config = configure(release, site, name)
    before = fingerprint(site)
    db_version = site.php("echo get_option('db_version');").strip().splitlines()[-1]
    earlier = runs_of(release["folder"])
    killed = wpgate("deploy", str(release["manifest"]), "--to", name, "--yes", config=config,
                    env={"WPGATE_TEST_KILL_AT": str(kill_at)})
    assert killed.returncode == -signal.SIGKILL, (where, killed.stderr)
    [run] = runs_of(release["folder"]) - earlier
    status = resumed(release, site, name, config, run, where, before, db_version)
    # Each kill keeps a backup of ~25 MB: drop it once the point has passed.
    shutil.rmtree(release["folder"] / "backups" / name, ignore_errors=True)
    shutil.rmtree(release["folder"] / "offsite" / name, ignore_errors=True)
    return status


def resumed(release: dict[str, Any], site, name: str, config: Path, run: Path, where: str,
            before: dict[str, Any], db_version: str) -> str:
    """`wpgate resume` of a run cut short at `where`: the site healthy and fully at the release or fully as
    before (`before`: its fingerprint then). Returns the run's ending."""
    assert json.loads((run / "report.json").read_text())["status"] == "running", where
    resumed = wpgate("resume", run.name, config=config)
    report = json.loads((run / "report.json").read_text())
    status = report["status"]
    assert status in ("complete", "rolled_back", "refused"), (where, status, resumed.stderr)
    assert resumed.returncode == (4 if status == "rolled_back" else 0), (where, resumed.stderr)
    found = state_of(config, name)
    if status == "complete":  # the gates after apply ran, in the deploy or in the resume
        assert {g["step"]: g["status"] for g in report["gates"]}.items() >= {
            "6.5": "passed", "6.6": "passed", "6.7": "passed"}.items(), (where, report["gates"])
        assert found == {**NEW, **THEME_NEW, "core": CORE_NEW, "db_version": release["db_version_new"]}, where
    else:
        assert found == {**OLD, **THEME_OLD, "core": CORE_OLD, "db_version": db_version}, (where, resumed.stderr)
        after = comparable(fingerprint(site))
        expected = comparable(before)
        changed = sorted(k for k in set(expected["files"]) | set(after["files"])
                         if expected["files"].get(k) != after["files"].get(k))
        assert not changed, (where, f"files differ from before the deploy: {changed[:10]}")
        assert after["tables"] == expected["tables"], (where, "tables differ from before the deploy")
    page = httpx.get(site.url + "/", timeout=30)
    assert page.status_code == 200 and "</html>" in page.text, where
    assert not (Path(site.path) / ".maintenance").exists(), where
    assert not (aside_root(site) / "lock").exists(), where
    # The run's copies are gone, and the aside folder with them: nothing of a run outlives it.
    assert not aside_root(site).exists(), (where, sorted(p.name for p in aside_root(site).iterdir()))
    return status


class Saved:
    """What a kill would leave, saved while the process is stopped and put back later: the site's files and
    database, `paths` (wpgate's aside folder beside the root, backups, off-site copies, the run's folder,
    the scratch journal) and the side `databases` wpgate may have made beside the site's own (saved when
    they exist, dropped on put-back when they did not). Put back by path and by database name: the run's
    record stays true."""

    def __init__(self, site, paths: list[Path], folder: Path, databases: tuple[str, ...] = ()) -> None:
        self.site, self.folder = site, folder
        self.paths = [Path(site.path), *paths]
        self.databases = [site.db_name, *databases]
        folder.mkdir()
        for number, path in enumerate(self.paths):
            if path.exists():
                subprocess.run(["cp", "-a", "--", str(path), str(folder / str(number))], check=True)
        present = set(site.mariadb.sql("SHOW DATABASES").split())
        for name in self.databases:
            if name in present:
                with open(folder / f"{name}.sql", "w") as dump:
                    subprocess.run(["mariadb-dump", "--no-defaults", f"--socket={site.mariadb.socket_path}",
                                    f"--user={site.mariadb.root_user}", "--skip-dump-date", "--single-transaction",
                                    name], stdout=dump, check=True)

    def put_back(self) -> None:
        for number, path in enumerate(self.paths):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
            if (self.folder / str(number)).exists():
                subprocess.run(["cp", "-a", "--", str(self.folder / str(number)), str(path)], check=True)
        for name in self.databases:
            self.site.mariadb.sql(f"DROP DATABASE IF EXISTS `{name}`;")
            if (self.folder / f"{name}.sql").exists():
                self.site.mariadb.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;")
                self.site.mariadb.sql((self.folder / f"{name}.sql").read_text(), database=name)


def side_databases(site) -> tuple[str, ...]:
    """The databases wpgate makes beside a site's own while it works: the restore proof's and rollback's."""
    return f"{site.db_name}_wpgate_verify", f"{site.db_name}_wpgate_rows"


def stop_at_each(argv: list[str], numbers: list[int], where: Callable[[int], str],
                 save: Callable[[int], None]) -> str:
    """Run wpgate with `argv`, stopped (SIGSTOP, WPGATE_TEST_STOP_AT) right after each of the journal events
    `numbers`, where `save(number)` keeps what a SIGKILL there would leave; it goes on to the end. Its stderr."""
    process = subprocess.Popen([str(WPGATE), *argv], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "WPGATE_TEST_STOP_AT": ",".join(map(str, numbers))})
    try:
        for number in numbers:
            wait_until_stopped(process, where(number))
            save(number)
            os.kill(process.pid, signal.SIGCONT)
        _, stderr = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    return stderr


def stopped_and_resumed(bed, release: dict[str, Any], points, prefix: str) -> dict[str, int]:
    """The kill points of one deploy, without a deploy per point: the deploy stops (SIGSTOP,
    WPGATE_TEST_STOP_AT) right after each point's event, where everything a SIGKILL would leave is saved,
    and goes on to complete. Then each saved state is put back in turn and must be resumed as a killed run
    (`resumed`). Failures are gathered, so one run names them all. `make test-crash` kills for real."""
    numbers = sorted(points.before_change + points.after_change)
    site = production(bed, prefix)
    config = configure(release, site, prefix)
    before = fingerprint(site)
    db_version = site.php("echo get_option('db_version');").strip().splitlines()[-1]
    folder, state = release["folder"], release["folder"] / "state"
    earlier = runs_of(folder)
    saved: dict[int, Saved] = {}
    run: Path | None = None

    def save(number: int) -> None:
        nonlocal run
        run = run or (runs_of(folder) - earlier).pop()
        saved[number] = Saved(site, [aside_root(site), folder / "backups" / prefix, folder / "offsite" / prefix,
                                     run, state / "releases", state / "scratch" / f"{prefix}.jsonl"],
                              folder / f"{prefix}-saved-{number}", side_databases(site))

    stop_at_each(["-c", str(config), "deploy", str(release["manifest"]), "--to", prefix, "--yes"], numbers,
                 lambda number: describe(release["events"], number), save)
    outcomes: dict[str, int] = {}
    failures: list[str] = []
    for number in numbers:
        where = describe(release["events"], number)
        saved[number].put_back()
        try:
            status = resumed(release, site, prefix, config, run, where, before, db_version)
        except AssertionError as error:
            failures.append(f"killed after {where}: {error}")
        else:
            outcomes[status] = outcomes.get(status, 0) + 1
        shutil.rmtree(saved[number].folder)
    bed.remove_site(site)
    assert not failures, "\n".join(failures)
    return outcomes


def wait_until_stopped(process: subprocess.Popen, where: str) -> None:
    deadline = time.monotonic() + 600  # a guard against a hang, not a measure
    while not stopped(process.pid):
        assert process.poll() is None, (where, "wpgate ended before it", process.communicate())
        assert time.monotonic() < deadline, (where, "wpgate never reached it")
        time.sleep(0.02)


def run_points(bed, release: dict[str, Any], points, prefix: str) -> dict[str, int]:
    """Every kill point: those before the first change on one shared site (each must leave it as it
    was), the others on a fresh site each. Failures are gathered, so one run names them all."""
    outcomes: dict[str, int] = {}
    failures: list[str] = []

    def one(site, name: str, kill_at: int) -> None:
        try:
            status = kill_and_resume(release, site, name, kill_at)
        except AssertionError as error:
            failures.append(f"killed after {describe(release['events'], kill_at)}: {error}")
        else:
            outcomes[status] = outcomes.get(status, 0) + 1

    if points.before_change:
        shared = production(bed, f"{prefix}-early")
        for kill_at in points.before_change:
            one(shared, f"{prefix}-early", kill_at)
        bed.remove_site(shared)
    for kill_at in points.after_change:
        site = production(bed, f"{prefix}-{kill_at}")
        one(site, f"{prefix}-{kill_at}", kill_at)
        bed.remove_site(site)
    assert not failures, "\n".join(failures)
    return outcomes
