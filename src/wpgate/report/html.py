"""The run's report as one self-contained HTML page (inline CSS, screenshots as data: URIs), to hand to a client.

Everything read from the run is escaped: a plugin's name or an error message may hold markup.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from html import escape
from pathlib import Path

from wpgate import __version__
from wpgate.report.facts import Facts, Screenshot, clock, duration
from wpgate.report.view import Code, GateView, Table, database_summary, gate_view, label, rows_since_backup, update_label

# Gates whose details have a section of their own below the list of gates.
_OWN_SECTION = {"6.2": "backup", "6.5": "caches", "6.6": "checks"}
_SYMBOL = {"passed": "✓", "failed": "✕", "skipped": "–", "not reached": "·"}
SHORT_WORD = 24  # a longer word (a path, a URL) may still break, or it would widen its table past the page
_TONE_SYMBOL = {"good": "✓", "warn": "↺", "bad": "!", "info": "…"}


def e(value: object) -> str:
    return escape(str(value if value is not None else "—"), quote=True)


def render(facts: Facts) -> str:
    report = facts.report
    headline, meaning, tone = facts.outcome
    if facts.status == "refused":
        tone_symbol = "–"
    else:
        tone_symbol = _TONE_SYMBOL[tone]
    title = f"Release {report.get('release')} to {report.get('site')}"
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}: {e(headline)} · wpgate report</title>", f"<style>{CSS}</style>", "</head>",
        "<body>", '<main class="page">',
        '<header class="masthead">', '<p class="brand">wpgate · deployment report</p>',
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">Run <code>{e(report.get("run"))}</code> · started {e(clock(report.get("started_at")))} · '
        f"took {e(duration(report.get('seconds')))}</p>", "</header>",
        f'<section class="outcome tone-{tone}" id="outcome">',
        f'<div class="outcome-mark" aria-hidden="true">{tone_symbol}</div>', "<div>",
        f"<h2>{e(headline)}</h2>", f"<p>{e(meaning)}</p>",
    ]
    culprit = facts.culprit()
    if culprit:
        parts.append(f'<p class="culprit"><strong>Culprit:</strong> {e(update_label(culprit))}: the fatal error '
                     "comes from its code.</p>")
    if facts.reason:
        parts.append(f'<p class="reason"><strong>Why:</strong> {e(facts.reason)}</p>')
    if len(facts.history) > 1:
        parts.append('<ul class="reason">' + "".join(f"<li>{e(line)}</li>" for line in facts.history_lines())
                     + "</ul>")
    parts += ["</div>", "</section>", _figures(facts), _updates(facts), _gates(facts), _backup(facts),
              _caches(facts), _checks(facts), _rollback(facts), _timings(facts),
              f'<footer>Written by wpgate {e(__version__)} on '
              f'{e(datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))} from the record of run '
              f'<code>{e(report.get("run"))}</code>.</footer>', "</main>", "</body>", "</html>"]
    return "\n".join(part for part in parts if part) + "\n"


def _figures(facts: Facts) -> str:
    updates = facts.report.get("updates", [])
    by_status: dict[str, int] = {}
    for update in updates:
        by_status[update.get("status", "pending")] = by_status.get(update.get("status", "pending"), 0) + 1
    gates = facts.gates()
    passed = sum(1 for gate in gates if gate["status"] == "passed")
    record = facts.report.get("backup") or {}
    backup = record.get("id")
    cards = [
        ("Updates", str(len(updates)), ", ".join(f"{count} {status.replace('_', ' ')}"
                                                for status, count in by_status.items()) or "none"),
        ("Gates passed", f"{passed} of {len(gates)}",
         ", ".join(f"{sum(1 for g in gates if g['status'] == s)} {s}" for s in ("failed", "skipped", "not reached")
                   if any(g["status"] == s for g in gates)) or "all passed"),
        ("Backup", str(record.get("status") or "recorded") if backup else "none",
         backup or "the run ended before a backup was needed"),
        ("Site", str(facts.report.get("site")), f"release {facts.report.get('release')}"),
    ]
    cells = "".join(f'<div class="figure"><p class="figure-label">{e(name)}</p><p class="figure-value">{e(value)}</p>'
                    f'<p class="figure-note">{e(note)}</p></div>' for name, value, note in cards)
    return f'<section class="figures">{cells}</section>'


def _updates(facts: Facts) -> str:
    updates = facts.report.get("updates", [])
    if not updates:
        return ""
    times = facts.update_times()
    rows = []
    for index, update in enumerate(updates):
        timing = times.get(index, {})
        status = update.get("status", "pending")
        words = status.replace("_", " ")
        if timing.get("rolled_back") and status == "rolled_back":
            words += f" at {clock(timing['rolled_back'])[11:19]}"
        rows.append(
            f"<tr><td>{_value(update.get('type'))}</td><td><strong>{_value(update.get('slug'))}</strong></td>"
            f"<td>{_value(update.get('from'))}</td><td>{_value(update.get('to'))}</td>"
            f'<td><span class="pill status-{e(status)}">{e(words)}</span></td>'
            f"<td>{_value(clock(timing['ended'])[11:19]) if timing.get('ended') else '—'}</td>"
            f"<td>{_value(duration(timing.get('seconds'))) if 'seconds' in timing else '—'}</td></tr>")
    return (f'<section id="updates"><h2>Updates</h2><p class="lede">Applied in this order, each from the artifact '
            f"tested on staging, each re-read from the site before the next began.</p>"
            f'<div class="scroll"><table><thead><tr><th>Type</th><th>Component</th><th>From</th><th>To</th>'
            f"<th>Status</th><th>Applied at (UTC)</th><th>Took</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            f"</div></section>")


def _gates(facts: Facts) -> str:
    seconds = facts.gate_seconds()
    items = []
    for gate in facts.gates():
        view = gate_view(gate, facts.report.get("updates"))
        took = duration(seconds[view.step]) if view.step in seconds else ""
        body = [f'<p class="summary">{e(view.summary)}</p>' if view.summary else ""]
        if view.error:
            body.append(f'<p class="error">{e(view.error)}</p>')
        if view.step in _OWN_SECTION and view.status != "failed":
            if view.rows or view.tables or view.items:
                body.append(f'<p class="more"><a href="#{_OWN_SECTION[view.step]}">Details below</a></p>')
        else:
            body.append(_details(view))
        items.append(
            f'<li class="gate status-{e(view.status.replace(" ", "-"))}"><div class="gate-head">'
            f'<span class="gate-mark" aria-hidden="true">{_SYMBOL.get(view.status, "·")}</span>'
            f'<span class="gate-step">{e(view.step)}</span><span class="gate-name">{e(label(view.name))}</span>'
            f'<span class="pill status-{e(view.status.replace(" ", "-"))}">{e(view.status)}</span>'
            f'<span class="gate-took">{e(took)}</span></div>{"".join(body)}</li>')
    return (f'<section id="gates"><h2>The seven gates</h2><p class="lede">Each step of the procedure must hold '
            f"before the next one starts.</p><ol class=\"gates\">{''.join(items)}</ol></section>")


def _details(view: GateView) -> str:
    parts = []
    if view.rows:
        parts.append("<dl>" + "".join(f"<dt>{e(name)}</dt><dd>{_value(value)}</dd>" for name, value in view.rows)
                     + "</dl>")
    if view.items:
        checks = all(item.startswith("✓ ") for item in view.items)
        parts.append(f'<ul class="items{" checks" if checks else ""}">' + "".join(f"<li>{e(item)}</li>" for item in view.items) + "</ul>")
    parts += [_table(table) for table in view.tables]
    return "".join(parts)


def _value(value: object) -> str:
    if value is None:
        return e(value)
    if isinstance(value, Code):
        return f"<code>{e(value)}</code>"
    text = str(value)
    # A short word (a version, a status, a name) is never cut: a table column whose cells may break
    # anywhere shrinks to a letter's width, and "8.2.36" showed as "8.2.3" over "6".
    if 0 < len(text) <= SHORT_WORD and not any(char.isspace() for char in text):
        return f'<span class="word">{e(text)}</span>'
    return e(text)


def _table(table: Table) -> str:
    head = "".join(f"<th>{e(header)}</th>" for header in table.headers)
    rows = "".join("<tr>" + "".join(f"<td>{_value(cell)}</td>" for cell in row) + "</tr>" for row in table.rows)
    return (f'<p class="table-title">{e(table.title)}</p><div class="scroll"><table><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _backup(facts: Facts) -> str:
    backup = facts.report.get("backup") or {}
    gate = facts.gate("6.2")
    if not backup.get("id") and not gate:
        return ""
    parts = ['<section id="backup"><h2>Backup</h2>']
    if backup.get("id"):
        parts.append('<p class="lede">A full backup of production (database and files), taken before the first '
                     "change, checked on the host and off-site, and proved restorable.</p>")
        rows = [("Backup", Code(backup["id"])), ("Created", str(backup.get("created_at") or "—")),
                ("Where (on the site's host)", Code(backup.get("path") or "—")),
                ("Off-site copy", Code(backup.get("offsite") or "—")),
                ("Manifest sha256", Code(backup.get("sha256") or "—"))]
        parts.append("<dl>" + "".join(f"<dt>{e(name)}</dt><dd>{_value(value)}</dd>" for name, value in rows) + "</dl>")
        checksums = backup.get("parts") or {}
        if checksums:
            parts.append(_table(Table("Checksums of every part", ["Part", "sha256"],
                                      [[name, Code(digest)] for name, digest in checksums.items()])))
    if gate:
        view = gate_view(gate)
        view.rows = [row for row in view.rows if row[0] not in ("Backup", "Created", "Where", "Off-site copy")]
        parts.append(_details(view))
    parts.append("</section>")
    return "".join(parts)


def _caches(facts: Facts) -> str:
    gate = facts.gate("6.5")
    if gate is None:
        return ""
    view = gate_view(gate)
    lede = view.summary if gate["status"] != "passed" else "Every configured cache layer, purged in order after the " \
                                                            "object cache and OPcache, then a fresh fetch."
    return (f'<section id="caches"><h2>Caches purged</h2><p class="lede">{e(lede)}</p>'
            f"{_details(view) if gate['status'] != 'skipped' else ''}</section>")


def _checks(facts: Facts) -> str:
    gate = facts.gate("6.6")
    groups = facts.screenshot_groups()
    if gate is None and not groups:
        return ""
    parts = ['<section id="checks"><h2>Checks and screenshots</h2>']
    if gate is not None:
        view = gate_view(gate)
        parts.append(f'<p class="lede">{e(view.summary or "The site was watched after the deploy.")}</p>')
        if gate["status"] != "skipped":
            parts.append(_details(view))
    for page, shots in groups:
        figures = "".join(_figure(shot) for shot in shots)
        parts.append(f'<div class="shots"><h3>{e(page)}</h3><div class="shot-row">{figures}</div></div>')
    parts.append("</section>")
    return "".join(parts)


def _figure(shot: Screenshot) -> str:
    try:
        data = base64.b64encode(shot.path.read_bytes()).decode("ascii")
    except OSError:
        return f'<figure class="missing"><figcaption>{e(shot.path.name)}: cannot be read</figcaption></figure>'
    caption = shot.kind or shot.path.stem
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{e(shot.page)}: {e(caption)}">'
            f"<figcaption>{e(caption)}</figcaption></figure>")


def _rollback(facts: Facts) -> str:
    rollback = facts.report.get("rollback")
    if not rollback:
        return ""
    parts = ['<section id="rollback"><h2>Rollback</h2>']
    if not rollback.get("attempted"):
        parts.append(f'<p class="lede">Not attempted ({e(rollback.get("reason", "no reason recorded"))}): production '
                     "still holds what the run changed.</p>")
    elif rollback.get("problems"):
        parts.append('<p class="lede error">The rollback is not proved. A person must act on each of these:</p>'
                     '<ul class="items">' + "".join(f"<li>{e(problem)}</li>" for problem in rollback["problems"])
                     + "</ul>")
    else:
        took = facts.rollback_seconds()
        parts.append('<p class="lede">Every change was undone in reverse order. Production\'s inventory equals the one '
                     "taken before the run, and the site answers"
                     + (f" (took {e(duration(took))})." if took is not None else ".") + "</p>")
    rolled = [u for u in facts.report.get("updates", []) if u.get("status") == "rolled_back"]
    if rolled:
        parts.append('<ul class="items">' + "".join(
            f"<li>{e(u.get('type'))} <strong>{e(u.get('slug'))}</strong> put back at {e(u.get('from'))}</li>"
            for u in rolled) + "</ul>")
    database = facts.report.get("database_rollback")
    if database:
        parts += [f"<p>{e(line)}</p>" for line in database_summary(database)]
        rows, problem = rows_since_backup(database)
        if rows:
            parts.append(_table(rows))
        if problem:
            parts.append(f'<p class="lede error">{e(problem)}; every row is in the database saved before the '
                         "restore (database-before-rollback.sql in the run's folder).</p>")
    if rollback.get("undo"):
        parts.append('<p class="table-title">To undo by hand</p><pre>'
                     + e("\n".join(str(line) for line in rollback["undo"])) + "</pre>")
    parts.append("</section>")
    return "".join(parts)


def _timings(facts: Facts) -> str:
    seconds = facts.gate_seconds()
    rows = [(f"{gate['step']} {gate['name']}", seconds.get(gate["step"])) for gate in facts.gates()
            if gate["step"] in seconds]
    rollback = facts.rollback_seconds()
    if rollback is not None:
        rows.append(("rollback", rollback))
    if not rows:
        return ""
    longest = max(value or 0 for _, value in rows) or 1
    bars = "".join(
        f'<div class="timing"><span class="timing-name">{e(name)}</span><span class="timing-bar">'
        f'<span style="width:{max(1.0, 100 * (value or 0) / longest):.1f}%"></span></span>'
        f'<span class="timing-value">{e(duration(value))}</span></div>' for name, value in rows)
    return (f'<section id="timings"><h2>Timings</h2><p class="lede">The whole run took '
            f"{e(duration(facts.report.get('seconds')))}; the journal records times to the second.</p>{bars}</section>")


def write(facts: Facts, path: Path) -> Path:
    partial = path.with_name(path.name + ".part")
    partial.write_text(render(facts), encoding="utf-8")
    partial.replace(path)
    return path


CSS = """
:root{--ink:#1d2733;--muted:#5b6b7c;--line:#e3e8ee;--paper:#ffffff;--ground:#f4f6f8;--good:#1f7a4d;--good-bg:#e8f5ee;
--warn:#9a5b00;--warn-bg:#fdf3e1;--bad:#b42318;--bad-bg:#fdecea;--info:#35618f;--info-bg:#eaf1f8;--accent:#2f5d8a}
*{box-sizing:border-box}
html{background:var(--ground)}
body{margin:0;color:var(--ink);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
.page{max-width:960px;margin:0 auto;padding:40px 28px 56px}
code,pre{font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:.86em}
code{overflow-wrap:anywhere;word-break:break-all;background:#f0f3f6;border-radius:4px;padding:1px 5px}
pre{white-space:pre-wrap;overflow-wrap:anywhere;background:#f0f3f6;border-radius:8px;padding:12px 14px}
h1{font-size:28px;line-height:1.25;margin:4px 0 6px;font-weight:650;overflow-wrap:anywhere}
h2{font-size:19px;margin:0 0 6px;font-weight:650}
h3{font-size:15px;margin:18px 0 8px;font-weight:600;overflow-wrap:anywhere}
.brand{margin:0;color:var(--muted);font-size:13px;letter-spacing:.06em;text-transform:uppercase}
.meta{margin:0;color:var(--muted)}
section{background:var(--paper);border:1px solid var(--line);border-radius:12px;padding:22px 24px;margin-top:18px}
.lede{color:var(--muted);margin:0 0 14px}
.outcome{display:flex;gap:18px;align-items:flex-start;margin-top:24px;border-width:1px 1px 1px 6px}
.outcome h2{font-size:24px;margin:0 0 4px}
.outcome p{margin:0 0 4px}
.outcome .reason{margin-top:8px;overflow-wrap:anywhere;color:var(--muted);font-size:14px}
.outcome .culprit{margin-top:8px;font-size:16px}
.outcome-mark{flex:none;width:46px;height:46px;border-radius:50%;display:flex;align-items:center;justify-content:center;
font-size:24px;font-weight:700;color:#fff}
.tone-good{border-color:var(--good);background:var(--good-bg)}.tone-good .outcome-mark{background:var(--good)}
.tone-warn{border-color:var(--warn);background:var(--warn-bg)}.tone-warn .outcome-mark{background:var(--warn)}
.tone-bad{border-color:var(--bad);background:var(--bad-bg)}.tone-bad .outcome-mark{background:var(--bad)}
.tone-info{border-color:var(--info);background:var(--info-bg)}.tone-info .outcome-mark{background:var(--info)}
.figures{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:0;padding:0;overflow:hidden}
.figure{padding:16px 20px;border-left:1px solid var(--line);min-width:0}
.figure:first-child{border-left:0}
.figure p{margin:0}
.figure-label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.figure-value{font-size:20px;font-weight:650;margin:2px 0!important;overflow-wrap:anywhere}
.figure-note{color:var(--muted);font-size:12.5px;overflow-wrap:anywhere}
.scroll{overflow-x:auto}
table{width:100%;border-collapse:collapse;font-size:14px}
th{text-align:left;font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em;
border-bottom:1px solid var(--line);padding:8px 10px}
td{border-bottom:1px solid var(--line);padding:9px 10px;vertical-align:top;overflow-wrap:anywhere}
tbody tr:last-child td{border-bottom:0}
.table-title{font-weight:600;margin:16px 0 4px}
.pill{display:inline-block;border-radius:999px;padding:1px 10px;font-size:12.5px;font-weight:600;white-space:nowrap;
background:#eef1f4;color:var(--muted)}
.pill.status-passed,.pill.status-applied{background:var(--good-bg);color:var(--good)}
.pill.status-failed{background:var(--bad-bg);color:var(--bad)}
.pill.status-rolled_back,.pill.status-skipped{background:var(--warn-bg);color:var(--warn)}
.pill.status-pending,.pill.status-not-reached{background:#eef1f4;color:var(--muted)}
ol.gates{list-style:none;margin:0;padding:0}
li.gate{border-top:1px solid var(--line);padding:14px 0 12px}
li.gate:first-child{border-top:0;padding-top:4px}
.gate-head{display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.gate-mark{width:22px;height:22px;border-radius:50%;display:inline-flex;align-items:center;justify-content:center;
font-size:13px;font-weight:700;color:#fff;background:#9aa5b1}
.status-passed .gate-mark{background:var(--good)}.status-failed .gate-mark{background:var(--bad)}
.status-skipped .gate-mark{background:#c9a25c}
.gate-step{color:var(--muted);font-variant-numeric:tabular-nums}
.gate-name{font-weight:650}
.gate-took{margin-left:auto;color:var(--muted);font-size:13px;font-variant-numeric:tabular-nums}
.summary{margin:6px 0 0 32px}
.error{color:var(--bad);margin:6px 0 0 32px;overflow-wrap:anywhere;font-weight:500}
section > .error,.lede.error{margin-left:0}
.more{margin:4px 0 0 32px;font-size:13px}
.more a{color:var(--accent)}
li.gate dl,li.gate ul.items,li.gate .table-title,li.gate .scroll{margin-left:32px}
dl{display:grid;grid-template-columns:minmax(120px,max-content) minmax(0,1fr);gap:6px 18px;margin:10px 0 0}
dt{color:var(--muted)}
dd{margin:0;min-width:0;overflow-wrap:anywhere}
.word{white-space:nowrap}
ul.items{margin:10px 0 0;padding-left:20px}
ul.items li{margin:2px 0;overflow-wrap:anywhere}
ul.items.checks{list-style:none;padding-left:0}
.shots h3{margin-top:22px}
.shot-row{display:grid;grid-template-columns:repeat(auto-fit,minmax(220px,1fr));gap:14px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;overflow:hidden;background:#fafbfc}
figure img{display:block;width:100%;height:auto}
figcaption{padding:6px 10px;font-size:12.5px;color:var(--muted);text-transform:capitalize;border-top:1px solid var(--line)}
.timing{display:grid;grid-template-columns:150px minmax(0,1fr) 80px;gap:12px;align-items:center;margin:6px 0}
.timing-name{color:var(--muted);font-size:14px}
.timing-bar{height:10px;background:#eef1f4;border-radius:5px;overflow:hidden}
.timing-bar span{display:block;height:100%;background:var(--accent);border-radius:5px}
.timing-value{text-align:right;font-variant-numeric:tabular-nums;font-size:14px}
footer{color:var(--muted);font-size:12.5px;margin-top:22px;text-align:center}
@media (max-width:720px){.figures{grid-template-columns:repeat(2,minmax(0,1fr))}.figure:nth-child(3){border-left:0}
.page{padding:24px 14px}}
@media (max-width:600px){dl{grid-template-columns:minmax(0,1fr);gap:0}dd{margin-bottom:8px}
li.gate dl,li.gate ul.items,li.gate .table-title,li.gate .scroll,.summary,.error,.more{margin-left:0}}  /* a phone: names above their values, a wide table scrolls in its own box */
@media print{html{background:#fff}section{break-inside:avoid;border-color:#ccc}.page{padding:0}}
"""
