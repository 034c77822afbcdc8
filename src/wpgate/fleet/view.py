"""`wpgate status ROLLOUT_ID` and `wpgate report ROLLOUT_ID --html PATH`: a rollout at a glance, a row per site
(wave, outcome, time, its run's report), the site that halted it and its culprit, the sites never reached."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from wpgate.errors import WpgateError
from wpgate.fleet.ledger import Ledger
from wpgate.output import Output


def render_terminal(ledger: Ledger, console: Output) -> None:
    from wpgate.fleet.controller import summary

    data = ledger.data
    console.print(f"rollout {data['rollout']}: release {data['release']} to group {data['group']}: {data['status']} "
                  f"({summary(ledger)})", markup=False)
    for name, entry in data["sites"].items():
        took = f", {entry['seconds']:.0f} s" if entry.get("seconds") else ""
        console.print(f"  wave {entry['wave']}  {name}: {entry['status'].replace('_', ' ')}"
                      f"{' (run ' + entry['run'] + took + ')' if entry.get('run') else ''}", markup=False)
    for name, reason in (data.get("skipped") or {}).items():
        console.print(f"  skipped  {name}: {reason}", markup=False, soft_wrap=True)
    if data.get("halted_by"):
        console.print(f"halted by {data['halted_by']}{_culprit_words(data['sites'][data['halted_by']])}",
                      markup=False)


def _culprit_words(entry: dict[str, Any]) -> str:
    culprit = entry.get("culprit")
    if not culprit:
        return f": {entry['error']}" if entry.get("error") else ""
    return f": culprit {culprit.get('type')} {culprit.get('slug')} {culprit.get('from')} → {culprit.get('to')}"


def write_html(state_dir: Path, ledger: Ledger, path: Path) -> list[Path]:
    """The rollout's page at PATH, and beside it each reached site's run report (PATH's stem + `-SITE.html`),
    which its row links to. Returns every file written."""
    from wpgate import report as report_module
    from wpgate.report import html as run_html

    data = ledger.data
    written = []
    links: dict[str, str] = {}
    for name, entry in data["sites"].items():
        if not entry.get("run"):
            continue
        target = path.with_name(f"{path.stem}-{name}.html")
        kept = ledger.folder / "sites" / f"{name}.report.json"
        try:
            run_html.write(report_module.load(state_dir, entry["run"]), target)
        except WpgateError:
            if not kept.is_file():
                continue
            # A run on a worker's machine (engine celery): the copy of its report the controller kept.
            from wpgate.report.facts import Facts

            run_html.write(Facts(json.loads(kept.read_text(encoding="utf-8")), kept.parent), target)
        links[name] = target.name
        written.append(target)
    rows = []
    for name, entry in data["sites"].items():
        outcome = entry["status"].replace("_", " ").replace("pending", "not reached")
        link = f'<a href="{escape(links[name])}">{escape(entry["run"])}</a>' if name in links else \
            escape(entry.get("run") or "—")
        seconds = f"{entry['seconds']:.0f} s" if entry.get("seconds") else "—"
        rows.append(f'<tr class="{escape(entry["status"])}"><td>{escape(name)}</td><td>{entry["wave"]}</td>'
                    f"<td>{escape(outcome)}</td><td>{seconds}</td><td>{link}</td>"
                    f"<td>{escape(entry.get('worker') or '—')}</td></tr>")
    halted = ""
    if data.get("halted_by"):
        entry = data["sites"][data["halted_by"]]
        halted = (f'<section id="halted"><h2>Halted by {escape(data["halted_by"])}</h2><p>'
                  f"{escape(entry['status'].replace('_', ' '))}{escape(_culprit_words(entry))}</p></section>")
    never = [name for name, entry in data["sites"].items() if entry["status"] == "pending"]
    skipped = "".join(f"<li>{escape(name)}: {escape(reason)}</li>" for name, reason in (data.get("skipped") or {}).items())
    page = "\n".join([
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Rollout {escape(data['rollout'])}: {escape(data['status'])} · wpgate</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>Release {escape(str(data['release']))} to group {escape(data['group'])}</h1>",
        f'<p>Rollout <code>{escape(data["rollout"])}</code>: <strong id="status">{escape(data["status"])}</strong> · '
        f"started {escape(data.get('started_at') or '—')} · ended {escape(data.get('finished_at') or '—')}</p>",
        halted,
        '<table id="sites"><thead><tr><th>Site</th><th>Wave</th><th>Outcome</th><th>Time</th><th>Run report</th>'
        "<th>Worker</th></tr></thead><tbody>", *rows, "</tbody></table>",
        f'<section id="not-reached"><h2>Never reached</h2><p>{escape(", ".join(never) or "none")}</p></section>',
        f'<section id="skipped"><h2>Skipped by the plan</h2><ul>{skipped or "<li>none</li>"}</ul></section>',
        "</main></body></html>"])
    partial = path.with_name(path.name + ".part")
    partial.write_text(page + "\n", encoding="utf-8")
    partial.replace(path)
    return [path, *written]


CSS = ("body{font:15px/1.5 system-ui,sans-serif;color:#1d2733;background:#f4f6f8}main{max-width:960px;margin:2em auto;"
       "background:#fff;padding:2em;border-radius:8px}table{border-collapse:collapse;width:100%}td,th{padding:.4em;"
       "border-bottom:1px solid #e3e8ee;text-align:left}tr.complete td:nth-child(3){color:#1f7a4d}"
       "tr.rolled_back td:nth-child(3),tr.refused td:nth-child(3){color:#9a5b00}"
       "tr.rollback_failed td:nth-child(3){color:#b42318;font-weight:bold}#halted{background:#fff4e5;padding:.5em 1em}")
