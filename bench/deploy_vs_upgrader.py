"""Benchmark: `wpgate deploy` of core + 3 plugins + 1 theme, against the same updates done by
WordPress's upgrader alone, on two identical production sites of the test bed, in the same run.

    .venv/bin/python bench/deploy_vs_upgrader.py [--rounds N]

Prints each round's wall times and the ratio deploy / upgrader-alone twice: as measured, and without the
monitoring window (gate 6.6 watches the site for `checks.window`, 30 s unless configured: a wait the user
chose, not work wpgate does). The baseline (bench/baseline.py, shared with bench/visitors.py) is what a
maintainer's script would do with no gates: for each update, hand the zip to WordPress's upgrader (the same
bridge actions wpgate uses), then the database upgrade; no checks, no journal.
"""

from __future__ import annotations

import argparse
import json
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


def one_round(bed: TestBed, number: int, folder: Path) -> tuple[float, float, float]:
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
                  "backup": {"dir": str(folder / f"backups-{number}"), "offsite": str(folder / f"offsite-{number}")}},
        "plain": {"path": str(plain.path), "url": plain.url},
    }}))
    manifest = folder / f"release-{number}.yml"
    qa = folder / "qa.yml"
    qa.write_text("checks: [{name: smoke, required: true, status: passed}]\n")
    wpgate(config, "plan", "--from", "staging", "--to", "gated", "-o", str(manifest))
    wpgate(config, "approve", str(manifest), "--qa", str(qa), "--by", "bench")
    release = release_module.load(manifest)
    assert [u.type for u in release.updates] == ["core", "plugin", "plugin", "plugin", "theme"], release.updates

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
    rounds = parser.parse_args().rounds
    ratios, working = [], []
    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="wpgate-bench-") as scratch:
        for number in range(1, rounds + 1):
            gated, plain, window = one_round(bed, number, Path(scratch))
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
