"""Benchmark: `wpgate deploy` of core + 3 plugins + 1 theme, against the same updates done by
WordPress's upgrader alone, on two identical production sites of the test bed, in the same run.

    .venv/bin/python bench/deploy_vs_upgrader.py [--rounds N] [--engine archive|restic] [--incremental]

With --incremental the gated site is backed up once before the timed deploy (untimed) and one row changes
after, so that gate 6.2 takes a new backup that is a second one: restic's incremental, the archive's reuse of
an unchanged tree.

Prints each round's wall times and the ratio deploy / upgrader-alone twice: as measured, and without the
monitoring window (gate 6.6 watches the site for `checks.window`, 30 s unless configured: a wait the user
chose, not work wpgate does). The baseline (bench/baseline.py, shared with bench/visitors.py) is what a
maintainer's script would do with no gates: for each update, hand the zip to WordPress's upgrader (the same
bridge actions wpgate uses), then the database upgrade; no checks, no journal.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from baseline import upgrade_alone
from wpgate import release as release_module
from wpgate.testbed import TestBed

OLD = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-seo": "3.1.0"}
WPGATE = Path(sys.executable).with_name("wpgate")


def wpgate(config: Path, *args: str) -> str:
    return subprocess.run([str(WPGATE), "-c", str(config), *args], check=True, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout


def backup_settings(engine: str, folder: Path, number: int) -> dict:
    """The gated site's `backup:`: wpgate's archive, or a restic repository (made here) with a second one off-site."""
    if engine == "archive":
        return {"dir": str(folder / f"backups-{number}"), "offsite": str(folder / f"offsite-{number}")}
    os.environ["WPGATE_BENCH_RESTIC_PASSWORD"] = "bench-restic-password"
    environment = {**os.environ, "RESTIC_PASSWORD": "bench-restic-password"}
    primary, second = folder / f"restic-{number}", folder / f"restic-offsite-{number}"
    password_file = folder / "restic-password"
    password_file.write_text("bench-restic-password")
    subprocess.run(["restic", "-q", "-r", str(primary), "init"], check=True, env=environment)
    subprocess.run(["restic", "-q", "-r", str(second), "init", "--from-repo", str(primary), "--copy-chunker-params",
                    "--from-password-file", str(password_file)], check=True, env=environment)
    return {"engine": "restic", "repository": str(primary), "offsite": str(second),
            "password_env": "WPGATE_BENCH_RESTIC_PASSWORD"}


def one_round(bed: TestBed, number: int, folder: Path, engine: str = "archive",
              incremental: bool = False) -> tuple[float, float, float]:
    """Seconds of `wpgate deploy`, of the upgrader alone, and of the monitoring window the deploy was
    configured with."""
    staging = bed.create_site(f"bench-staging-{number}", core="6.5.5", plugins=NEW,
                              themes={"wpgate-parent": "1.1.0"}, theme="wpgate-parent")
    gated = bed.create_site(f"bench-gated-{number}", core="6.1.9", server="nginx", plugins=OLD,
                            themes={"wpgate-parent": "1.0.0"}, theme="wpgate-parent")
    plain = bed.create_site(f"bench-plain-{number}", core="6.1.9", server="nginx", plugins=OLD,
                            themes={"wpgate-parent": "1.0.0"}, theme="wpgate-parent")
    config = folder / f"wpgate-{number}.yml"
    config.write_text(yaml.safe_dump({"state_dir": f"state-{number}", "sites": {
        "staging": {"path": str(staging.path), "url": staging.url},
        "gated": {"path": str(gated.path), "url": gated.url,
                  "backup": backup_settings(engine, folder, number)},
        "plain": {"path": str(plain.path), "url": plain.url},
    }}))
    manifest = folder / f"release-{number}.yml"
    qa = folder / "qa.yml"
    qa.write_text("checks: [{name: smoke, required: true, status: passed}]\n")
    wpgate(config, "plan", "--from", "staging", "--to", "gated", "-o", str(manifest))
    wpgate(config, "approve", str(manifest), "--qa", str(qa), "--by", "bench")
    release = release_module.load(manifest)
    assert [u.type for u in release.updates] == ["core", "plugin", "plugin", "plugin", "theme"], release.updates

    if incremental:
        wpgate(config, "backup", "gated")
        gated.sql("UPDATE wp_options SET option_value = 'changed after the last backup' "
                  "WHERE option_name = 'blogdescription'")
    started = time.perf_counter()
    report = json.loads(wpgate(config, "deploy", str(manifest), "--to", "gated", "--yes", "--json"))
    gated_seconds = time.perf_counter() - started
    window = float(next(g for g in report["gates"] if g["step"] == "6.6")["evidence"]["window"])

    started = time.perf_counter()
    upgrade_alone(plain, manifest, folder / f"state-{number}")
    plain_seconds = time.perf_counter() - started
    for site in (staging, gated, plain):
        site.stop()
    return gated_seconds, plain_seconds, window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", choices=("archive", "restic"), default="archive",
                        help="the gated site's backup.engine")
    parser.add_argument("--incremental", action="store_true",
                        help="back the gated site up once before the deploy, so that its backup is a second one")
    arguments = parser.parse_args()
    rounds = arguments.rounds
    ratios, working = [], []
    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="wpgate-bench-") as scratch:
        for number in range(1, rounds + 1):
            gated, plain, window = one_round(bed, number, Path(scratch), arguments.engine, arguments.incremental)
            ratios.append(gated / plain)
            working.append((gated - window) / plain)
            print(f"round {number}: wpgate deploy {gated:6.2f}s (of which the {window:g}s monitoring window)   "
                  f"upgrader alone {plain:6.2f}s   ratio {gated / plain:5.2f}   "
                  f"without the window {(gated - window) / plain:5.2f}", flush=True)
    print(f"median ratio over {rounds} rounds: {statistics.median(ratios):.2f} with the monitoring window, "
          f"{statistics.median(working):.2f} without it "
          "(wpgate deploy / WordPress's upgrader alone, core + 3 plugins + 1 theme)")


if __name__ == "__main__":
    main()
