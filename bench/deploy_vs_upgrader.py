"""Benchmark: `wpgate deploy` of core + 3 plugins + 1 theme, against the same updates done by
WordPress's upgrader alone, on two identical production sites of the test bed, in the same run.

    .venv/bin/python bench/deploy_vs_upgrader.py [--rounds N]

Prints each round's wall times and the ratio deploy / upgrader-alone. The baseline is what a
maintainer's script would do with no gates: for each update, hand the zip to WordPress's
upgrader (the same bridge actions wpgate uses), then the database upgrade; no checks, no journal.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from wpgate import release as release_module, upgrader
from wpgate.bridge import Bridge
from wpgate.config import SiteConfig
from wpgate.testbed import TestBed
from wpgate.transports import LocalTransport

OLD = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-seo": "3.1.0"}
WPGATE = Path(sys.executable).with_name("wpgate")


def wpgate(config: Path, *args: str) -> None:
    subprocess.run([str(WPGATE), "-c", str(config), *args], check=True, stdin=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def one_round(bed: TestBed, number: int, folder: Path) -> tuple[float, float]:
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
    wpgate(config, "deploy", str(manifest), "--to", "gated", "--yes")
    gated_seconds = time.perf_counter() - started

    state = folder / f"state-{number}"
    packages = Path(tempfile.mkdtemp(prefix="bench-packages-"))
    bridge = Bridge("plain", SiteConfig(path=str(plain.path), url=plain.url), LocalTransport())
    started = time.perf_counter()
    for update in release.updates:
        package = packages / Path(update.artifact.path).name
        shutil.copy(state / update.artifact.path, package)
        upgrader.install_component(bridge, kind=update.type, slug=update.slug, package=str(package),
                                   version=update.to_version)
        if update.type == "core":
            upgrader.upgrade_database(bridge)
    plain_seconds = time.perf_counter() - started
    shutil.rmtree(packages, ignore_errors=True)
    for site in (staging, gated, plain):
        site.stop()
    return gated_seconds, plain_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    rounds = parser.parse_args().rounds
    ratios = []
    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="wpgate-bench-") as scratch:
        for number in range(1, rounds + 1):
            gated, plain = one_round(bed, number, Path(scratch))
            ratios.append(gated / plain)
            print(f"round {number}: wpgate deploy {gated:6.2f}s   upgrader alone {plain:6.2f}s   "
                  f"ratio {gated / plain:5.2f}", flush=True)
    print(f"median ratio over {rounds} rounds: {statistics.median(ratios):.2f} "
          "(wpgate deploy / WordPress's upgrader alone, core + 3 plugins + 1 theme)")


if __name__ == "__main__":
    main()
