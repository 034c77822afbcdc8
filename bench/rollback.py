"""Benchmark: the time from a failed update to a proved rollback, on sites of growing size, against
restoring the same site's files and database from its backup, in the same run.

    .venv/bin/python bench/rollback.py [--sizes-mb 0,300] [--rounds N]

Production holds wpgate-hello 1.0.0 and wpgate-faulty 1.1.0; the release updates both, and
wpgate-faulty 2.0.2 cuts its pages off while they render (HTTP 200). The deploy fails, and wpgate
rolls back on its own: the two plugin folders are put back by rename, maintenance is checked off,
the database compared with the backup's tables, and the result proved (inventory, home page,
wp-login.php). The journal is watched while the deploy runs; the time measured is from the moment a
gate's failure is written to the moment `rollback.done` is.

The baseline is what a maintainer does without wpgate once they know an update broke the site: put
the site back from last night's backup,

    tar xzf files.tar.gz -C ROOT && gunzip -c database.sql.gz | mariadb DB

here timed on the run's own backup, into a scratch folder and a scratch database. The site grows by
MB of uploads (three quarters random bytes, as photos are) between sizes: wpgate's rollback should not.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from backup import populate  # bench/backup.py, beside this file
from wpgate.testbed import TestBed

WPGATE = Path(sys.executable).with_name("wpgate")
OLD = {"wpgate-hello": "1.0.0", "wpgate-faulty": "1.1.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-faulty": "2.0.2"}


def write_config(folder: Path, staging, production) -> Path:
    sites = {"staging": {"path": str(staging.path), "url": staging.url}}
    sites["production"] = {"path": str(production.path), "url": production.url,
                           "backup": {"dir": str(folder / "host"), "offsite": str(folder / "offsite")}}
    config = folder / "wpgate.yml"
    config.write_text(yaml.safe_dump({"state_dir": str(folder / "state"), "sites": sites}))
    return config


def wpgate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WPGATE), "-c", str(config), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)


def failed_deploy(config: Path, release: Path, state: Path) -> tuple[float, dict]:
    """Deploy the failing release; seconds from the gate's failure to rollback.done, and the report."""
    runs = state / "runs"
    earlier = set(runs.iterdir()) if runs.is_dir() else set()
    process = subprocess.Popen([str(WPGATE), "-c", str(config), "deploy", str(release), "--to", "production",
                                "--yes", "--json"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    run, failed_at, done_at, seen = None, None, None, 0
    while process.poll() is None or run is None or done_at is None:
        if run is None:
            run = next(iter(set(runs.iterdir()) - earlier), None) if runs.is_dir() else None
        if run is not None and (run / "journal.jsonl").exists():
            lines = (run / "journal.jsonl").read_text().splitlines()
            for line in lines[seen:]:
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    break  # written half: read again next time
                seen += 1
                if failed_at is None and event["event"] == "gate" and event.get("status") == "failed":
                    failed_at = time.monotonic()
                elif event["event"] == "rollback.done":
                    done_at = time.monotonic()
        if process.poll() is not None and done_at is None and run is not None:
            break
        time.sleep(0.02)
    stdout, stderr = process.communicate()
    if process.returncode != 4 or failed_at is None or done_at is None:
        sys.exit(f"the deploy was expected to fail and roll back (exit 4), got {process.returncode}:\n{stderr}")
    return done_at - failed_at, json.loads(stdout)


def baseline(site, backup_folder: Path, scratch: Path) -> float:
    """tar xzf of the backup's files plus loading its dump, into a scratch folder and database."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    database = "bench_restore"
    site.mariadb.sql(f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database};")
    started = time.monotonic()
    subprocess.run(["tar", "xzf", str(backup_folder / "files.tar.gz"), "-C", str(scratch)], check=True)
    load = subprocess.run(f"gunzip -c {backup_folder / 'database.sql.gz'} | "
                          f"{' '.join(site.mariadb.client_argv(database))}", shell=True)
    seconds = time.monotonic() - started
    if load.returncode != 0:
        sys.exit("the baseline could not load the backup's dump")
    site.mariadb.sql(f"DROP DATABASE {database};")
    shutil.rmtree(scratch, ignore_errors=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes-mb", default="0,300", help="uploads added to production, one size per pass")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes_mb.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="wpgate-bench-rollback-"))
    try:
        with TestBed(folder / "bed") as bed:
            staging = bed.create_site("bench-staging", core="6.5.5", plugins=OLD)
            for slug, version in NEW.items():
                staging.install_plugin(slug, version)
            rows = []
            for size in sizes:
                production = bed.create_site(f"bench-prod-{size}", core="6.5.5", server="nginx", plugins=OLD)
                if size:
                    populate(production, size, 0)
                work = folder / f"size-{size}"
                work.mkdir()
                config = write_config(work, staging, production)
                release = work / "release.yml"
                qa = work / "qa.yml"
                qa.write_text("checks: [{name: home, required: true, status: passed}]\nissues: []\nnotes: []\n")
                for args in (("plan", "--from", "staging", "--to", "production", "-o", str(release)),
                             ("approve", str(release), "--qa", str(qa), "--by", "bench")):
                    result = wpgate(config, *args)
                    if result.returncode != 0:
                        sys.exit(result.stderr)
                ours, bases = [], []
                for number in range(arguments.rounds):
                    seconds, report = failed_deploy(config, release, work / "state")
                    ours.append(seconds)
                    bases.append(baseline(production, Path(report["backup"]["path"]), work / "scratch"))
                    print(f"  {size:5d} MB of uploads, round {number + 1}: rollback {seconds:6.2f}s, "
                          f"restore from backup {bases[-1]:6.2f}s")
                rows.append((size, statistics.median(ours), statistics.median(bases)))
                production.stop()
            print(f"\nmedian of {arguments.rounds} rounds, from the failure to the proved rollback:")
            print("  uploads   wpgate rollback   restore from backup   ratio")
            for size, ours, base in rows:
                print(f"  {size:5d} MB  {ours:12.2f}s  {base:18.2f}s  {ours / base:10.2f}")
            if len(rows) > 1:
                print(f"ratio rollback at {rows[-1][0]} MB / at {rows[0][0]} MB: {rows[-1][1] / rows[0][1]:.2f}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
