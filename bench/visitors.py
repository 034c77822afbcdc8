"""Benchmark: what visitors see while one update is applied (core 6.1.9 → 6.5.5, an active plugin, the active
theme), with `wpgate deploy` and with WordPress's upgrader alone, on identical production sites, in the same run.

    .venv/bin/python bench/visitors.py [--setups php,nginx-0] [--updates core,plugin,theme]

Visitors (tests/e2e/visitors.py: several clients, about 20 requests/s over the home page, a page the plugins
render and the plugin's stylesheet) classify every answer: a complete page of one release, WordPress's
maintenance 503, or unplanned. Printed for each update and setup: the seconds of maintenance they saw and the
unplanned answers. wpgate holds WordPress's maintenance page for core only (files, OPcache reset, database
upgrade); plugins and themes are swapped in by rename, with none. The baseline is bench/baseline.py, shared
with bench/deploy_vs_upgrader.py: each zip handed to WordPress's upgrader in place, then the database upgrade;
no gates. Setups: `php` is `php -S` with OPcache's defaults (timestamps checked every 2 s), `nginx-0`
is nginx + php-fpm with opcache.validate_timestamps=0, `nginx-1` the same checking timestamps on every request.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.e2e.visitors

from baseline import upgrade_alone  # noqa: E402
from tests.e2e.visitors import Component, Target, Visitors  # noqa: E402
from wpgate.testbed import TestBed  # noqa: E402

WPGATE = Path(sys.executable).with_name("wpgate")
OLD_PLUGINS = {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0"}
NEW_PLUGINS = {"wpgate-hello": "1.2.0", "wpgate-notes": "1.0.0"}
OLD_THEMES = {"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}
NEW_THEMES = {"wpgate-parent": "1.0.0", "wpgate-child": "1.1.0"}
UPDATES = {"core": Component("core", "wordpress", "6.1.9", "6.5.5"),
           "plugin": Component("plugin", "wpgate-hello", "1.0.0", "1.2.0"),
           "theme": Component("theme", "wpgate-child", "1.0.0", "1.1.0")}
TARGETS = [Target("/"), Target("/sample-page/"),
           Target("/wp-content/plugins/wpgate-hello/assets/hello.css",
                  markers={v: f"/* wpgate-hello {v} */" for v in ("1.0.0", "1.2.0")})]
SETUPS = {"php": {"server": "php"}, "nginx-0": {"server": "nginx", "opcache_validate_timestamps": False},
          "nginx-1": {"server": "nginx"}}


def wpgate(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WPGATE), "-c", str(config), *args], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True)


def production(bed: TestBed, name: str, setup: str):
    return bed.create_site(name, core="6.1.9", plugins=OLD_PLUGINS, themes=OLD_THEMES, theme="wpgate-child",
                           **SETUPS[setup])


def releases(bed: TestBed, folder: Path) -> tuple[dict[str, Path], Path]:
    """One approved manifest per update kind, cut from one plan (approval covers what is left)."""
    staging = bed.create_site("visitors-staging", core="6.5.5", plugins=NEW_PLUGINS, themes=NEW_THEMES,
                              theme="wpgate-child")
    reference = production(bed, "visitors-reference", "php")
    config = folder / "wpgate.yml"
    config.write_text(yaml.safe_dump({"state_dir": "state", "sites": {
        "staging": {"path": str(staging.path), "url": staging.url},
        "reference": {"path": str(reference.path), "url": reference.url}}}))
    full = folder / "release-full.yml"
    planned = wpgate(config, "plan", "--from", "staging", "--to", "reference", "-o", str(full))
    if planned.returncode:
        raise SystemExit(planned.stderr)
    qa = folder / "qa.yml"
    qa.write_text("checks: [{name: smoke, required: true, status: passed}]\n")
    manifest = yaml.safe_load(full.read_text())
    paths = {}
    for kind in UPDATES:
        paths[kind] = folder / f"release-{kind}.yml"
        paths[kind].write_text(yaml.safe_dump({**manifest, "id": f"{manifest['id']}-{kind}",
                                               "updates": [u for u in manifest["updates"] if u["type"] == kind]},
                                              sort_keys=False))
        approved = wpgate(config, "approve", str(paths[kind]), "--qa", str(qa), "--by", "bench")
        if approved.returncode:
            raise SystemExit(approved.stderr)
    staging.stop()
    reference.stop()
    return paths, folder / "state"


def with_wpgate(bed: TestBed, folder: Path, setup: str, kind: str, manifest: Path) -> Visitors:
    site = production(bed, f"visitors-{setup}-{kind}-gated", setup)
    config = folder / f"wpgate-{setup}-{kind}.yml"
    name = f"{setup}-{kind}"  # one state folder holds the artifacts: a site name of its own for each
    config.write_text(yaml.safe_dump({"state_dir": "state", "sites": {name: {
        "path": str(site.path), "url": site.url, "checks": {"window": "1s"},
        "backup": {"dir": str(folder / f"backups-{name}"), "offsite": str(folder / "offsite")}}}}))
    with Visitors(site.url, [UPDATES[kind]], TARGETS) as visitors:
        result = wpgate(config, "deploy", str(manifest), "--to", name, "--yes")
    if result.returncode:
        raise SystemExit(f"wpgate deploy ({setup}, {kind}) exited {result.returncode}: {result.stderr}")
    site.stop()
    return visitors


def with_upgrader(bed: TestBed, setup: str, kind: str, manifest: Path, state: Path) -> Visitors:
    site = production(bed, f"visitors-{setup}-{kind}-plain", setup)
    with Visitors(site.url, [UPDATES[kind]], TARGETS) as visitors:
        time.sleep(1)  # visitors on the old site first, as during wpgate's gates before apply
        upgrade_alone(site, manifest, state)
        time.sleep(3)  # and after: what a visitor meets once the upgrader is done
    site.stop()
    return visitors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setups", default="php,nginx-0", help=f"comma-separated, of {', '.join(SETUPS)}")
    parser.add_argument("--updates", default=",".join(UPDATES), help=f"comma-separated, of {', '.join(UPDATES)}")
    arguments = parser.parse_args()
    setups = [name for name in arguments.setups.split(",") if name]
    kinds = [name for name in arguments.updates.split(",") if name]
    unknown = [name for name in setups if name not in SETUPS] + [name for name in kinds if name not in UPDATES]
    if unknown:
        parser.error(f"unknown setups or updates {unknown}")
    print(f"{'setup':8} {'update':7} {'engine':16} {'answers':>7} {'maintenance':>12} {'unplanned':>9}  first unplanned")
    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="wpgate-bench-") as scratch:
        folder = Path(scratch)
        manifests, state = releases(bed, folder)
        for setup in setups:
            for kind in kinds:
                for engine, measure in (("wpgate deploy", lambda: with_wpgate(bed, folder, setup, kind, manifests[kind])),
                                        ("upgrader alone", lambda: with_upgrader(bed, setup, kind, manifests[kind], state))):
                    tally = measure().tally
                    first = tally.unplanned[0] if tally.unplanned else None
                    print(f"{setup:8} {kind:7} {engine:16} {len(tally.answers):7d} "
                          f"{tally.maintenance_seconds():11.2f}s {len(tally.unplanned):9d}  "
                          f"{f'{first.path} {first.status}: {first.detail[:90]}' if first else ''}", flush=True)


if __name__ == "__main__":
    main()
