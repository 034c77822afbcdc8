"""Benchmark: what gate 6.6's probe costs after each update, and how soon it sees a broken one.

    .venv/bin/python bench/monitor.py [--rounds N]

On one nginx + php-fpm site of the test bed (OPcache on), with pages / and /sample-page/, expected
content and the monitor account:

- cost per update: the quick probe run after each update (pages with their assets, the login page,
  admin_init, new error-log lines), and the same with the layout check on (two screenshots in a fresh
  headless Chromium, compared with the baseline's);
- detection: each fault of wpgate-faulty is written into place (the end of a broken update, as the
  upgrader leaves it), then the probe runs; the time from the files being in place to the probe's verdict.

The baseline, measured in the same run on the same site: one bare HTTP GET of the home page.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from wpgate import config
from wpgate.bridge import Bridge
from wpgate.checks import Watch
from wpgate.testbed import TestBed, fixtures
from wpgate.transports import LocalTransport

PASSWORD_ENV = "WPGATE_BENCH_MONITOR_PASSWORD"


def settings_for(site, folder: Path, layout: bool) -> config.Settings:
    checks = {"pages": ["/", "/sample-page/"], "content": {"/": ["Hello world"]},
              "admin": {"user": site.admin_user, "password_env": PASSWORD_ENV}}
    if layout:
        checks.update(visual_threshold=0.01, visual_mask=[".clock", "#latest-posts"])
    path = folder / f"wpgate-{'layout' if layout else 'http'}.yml"
    path.write_text(yaml.safe_dump({"sites": {"production": {"path": str(site.path), "url": site.url,
                                                              "checks": checks}}}))
    return config.load(path)


def watch_for(site, settings: config.Settings, folder: Path) -> Watch:
    transport = LocalTransport()
    production = settings.site("production")
    return Watch("production", production, transport, Bridge("production", production, transport), settings,
                 folder, lambda text: None)


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with TestBed() as bed, tempfile.TemporaryDirectory(prefix="wpgate-bench-monitor-") as scratch:
        folder = Path(scratch)
        site = bed.create_site("bench-monitor", core="6.5.5", server="nginx",
                               plugins={"wpgate-hello": "1.0.0", "wpgate-faulty": "1.1.0", "wpgate-clock": "1.0.0"},
                               themes={"wpgate-parent": "1.0.0"}, theme="wpgate-parent")
        os.environ[PASSWORD_ENV] = site.admin_password
        http = settings_for(site, folder, layout=False)
        layout = settings_for(site, folder, layout=True)

        with httpx.Client(timeout=30) as client:
            client.get(site.url + "/")  # warm OPcache
            bare = []
            for _ in range(args.rounds * 4):
                started = time.monotonic()
                client.get(site.url + "/").raise_for_status()
                bare.append(time.monotonic() - started)
        get = median(bare)
        print(f"baseline: bare GET of / : {get * 1000:.0f} ms (median of {len(bare)})")

        costs: dict[str, float] = {}
        for name, settings in (("probe, plain HTTP", http), ("probe with layout", layout)):
            with watch_for(site, settings, folder / name.replace(" ", "-").replace(",", "")) as watch:
                watch.baseline()
                samples = []
                for round_number in range(args.rounds):
                    started = time.monotonic()
                    results = watch.run(f"round-{round_number}", quick=True)
                    samples.append(time.monotonic() - started)
                    assert not Watch.problems(results), [p.line() for p in Watch.problems(results)]
            costs[name] = median(samples)
            print(f"cost per update, {name}: {costs[name] * 1000:.0f} ms (median of {len(samples)}) "
                  f"= {costs[name] / get:.1f}× a bare GET")
        with watch_for(site, http, folder / "full") as watch:
            watch.baseline()
            started = time.monotonic()
            watch.run("full")
            full = time.monotonic() - started
        print(f"one full pass of gate 6.6 (with the dashboard login), plain HTTP: {full * 1000:.0f} ms "
              f"= {full / get:.1f}× a bare GET")

        print("detection, from the broken files in place to the probe's verdict:")
        worst = 0.0
        for fault, (slug, version) in fixtures.FAULTS.items():
            settings = layout if fault == "layout_broken" else http
            with watch_for(site, settings, folder / fault) as watch:
                watch.baseline()
                fixtures.write_plugin(site.plugins_dir, slug, version)
                ended = time.monotonic()
                results = watch.run("after", quick=True)
                seconds = time.monotonic() - ended
                problems = Watch.problems(results)
            fixtures.write_plugin(site.plugins_dir, slug, "1.1.0")
            worst = max(worst, seconds)
            verdict = f"{problems[0].check}: {problems[0].what[:70]}" if problems else "NOT DETECTED"
            print(f"  {fault:22} {seconds:5.2f} s = {seconds / get:6.1f}× a bare GET  ({verdict})")
        print(f"slowest detection: {worst:.2f} s (aim: under 5 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
