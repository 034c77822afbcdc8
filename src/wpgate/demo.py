"""`wpgate demo`: a local staging + production pair built by the test bed, shown through wpgate.

Production runs WordPress 6.1.9 with older plugins and theme on nginx + php-fpm; staging runs
6.5.5 with the newer versions that a team would have tested. The demo writes a `wpgate.yml` for
the pair and reads both sites with wpgate's own commands. Its servers stop when it ends, Ctrl-C
included.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

PRODUCTION = {"core": "6.1.9", "plugins": {"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0", "wpgate-seo": "3.0.0"},
              "themes": {"wpgate-parent": "1.0.0", "wpgate-child": "1.0.0"}}
STAGING = {"core": "6.5.5", "plugins": {"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0", "wpgate-seo": "3.1.0"},
           "themes": {"wpgate-parent": "1.1.0", "wpgate-child": "1.1.0"}}


def run(folder: Path, console: Console) -> int:
    from wpgate.testbed import TestBed

    folder.mkdir(parents=True, exist_ok=True)
    console.print("[bold]wpgate demo[/]: building a staging and a production site on this machine…")
    with TestBed() as bed:
        production = bed.create_site("production", core=PRODUCTION["core"], server="nginx",
                                     plugins=PRODUCTION["plugins"], themes=PRODUCTION["themes"],
                                     theme="wpgate-child")
        console.print(f"  production: WordPress {PRODUCTION['core']} at {production.url} (nginx + php-fpm)")
        staging = bed.create_site("staging", core=STAGING["core"], plugins=STAGING["plugins"],
                                  themes=STAGING["themes"], theme="wpgate-child")
        console.print(f"  staging:    WordPress {STAGING['core']} at {staging.url} (php -S)")
        config = folder / "wpgate.yml"
        config.write_text(yaml.safe_dump({
            "state_dir": ".wpgate",
            "sites": {
                "staging": {"path": str(staging.path), "url": staging.url},
                "production": {"path": str(production.path), "url": production.url,
                               "checks": {"pages": ["/", "/sample-page/"], "content": {"/": ["Hello world"]}}},
            },
        }, sort_keys=False))
        console.print(f"  config:     {config}\n")

        inventories = {}
        for name in ("staging", "production"):
            command = [sys.executable, "-m", "wpgate", "-c", str(config), "inventory", name]
            console.print(f"$ wpgate -c {config} inventory {name}")
            subprocess.run(command, check=True)
            result = subprocess.run(command + ["--json"], check=True, capture_output=True, text=True)
            inventories[name] = json.loads(result.stdout)
            console.print()
        console.print(_differences(inventories["staging"], inventories["production"]))
        console.print("\nThese are the updates the team tested on staging; `wpgate plan`, `approve` and "
                      "`deploy` (coming in the next releases) replicate exactly them onto production.")
        console.print("Stopping the demo's servers.")
    return 0


def _differences(staging: dict, production: dict) -> Table:
    table = Table(title="staging vs production", title_justify="left", show_edge=False)
    for column in ("type", "slug", "production", "staging"):
        table.add_column(column)
    table.add_row("core", "wordpress", production["core"]["version"], staging["core"]["version"])
    for kind in ("plugins", "themes"):
        ours = {item["slug"]: item["version"] for item in production[kind]}
        theirs = {item["slug"]: item["version"] for item in staging[kind]}
        for slug in sorted(set(ours) | set(theirs)):
            if ours.get(slug) != theirs.get(slug):
                table.add_row(kind[:-1], slug, ours.get(slug, "—"), theirs.get(slug, "—"))
    return table
