"""`wpgate qa --html`: one self-contained page for the reviewer who signs staging off: every check's result,
the release, and each page's screenshots side by side (staging | production | diff).

It shares the run report's look (its CSS and escaping); everything read from the sites is escaped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wpgate import __version__, redact
from wpgate.errors import BadInput
from wpgate.report.facts import Screenshot
from wpgate.report.html import CSS, _figure, e

_EXTRA_CSS = """
.shot-row.three{grid-template-columns:repeat(3,minmax(0,1fr))}
figure img{max-height:none}
@media (max-width:720px){.shot-row.three{grid-template-columns:minmax(0,1fr)}}
"""


def render(document: dict[str, Any]) -> str:
    document = redact.value(document)
    entries = document.get("checks", [])
    failed = [entry for entry in entries if entry.get("status") == "failed"]
    baseline = document.get("baseline")
    title = f"QA of {document.get('staging')}" + (f" against {baseline}" if baseline else "")
    tone, headline = ("bad", f"{len(failed)} of {len(entries)} checks failed") if failed else \
        ("good", f"All {len(entries)} checks passed")
    meaning = ("Approval will refuse this record until these checks pass: fix staging and run `wpgate qa` again."
               if failed else "wpgate's checks found nothing wrong; a reviewer still looks at the screenshots below.")
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}: {e(headline)} · wpgate qa</title>", f"<style>{CSS}{_EXTRA_CSS}</style>", "</head>",
        "<body>", '<main class="page">', '<header class="masthead">', '<p class="brand">wpgate · staging QA</p>',
        f"<h1>{e(title)}</h1>",
        f'<p class="meta">{e(document.get("url"))} · checked {e(document.get("at"))} · staging inventory '
        f'<code>{e(document.get("inventory"))}</code></p>', "</header>",
        f'<section class="outcome tone-{tone}" id="outcome"><div class="outcome-mark" aria-hidden="true">'
        f'{"!" if failed else "✓"}</div><div><h2>{e(headline)}</h2><p>{e(meaning)}</p></div></section>',
        _checks(document), _release(document), _pages(document),
        f"<footer>Written by wpgate {e(__version__)}; the QA record is <code>{e(document.get('record'))}</code>, "
        f"the evidence in <code>{e(document.get('evidence'))}</code>.</footer>", "</main>", "</body>", "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def _checks(document: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><td>{e(entry.get("name"))}</td><td><span class="pill status-{e(entry.get("status"))}">'
        f'{e(entry.get("status"))}</span></td><td>{e(entry.get("evidence"))}</td></tr>'
        for entry in document.get("checks", []))
    rows += "".join(f'<tr><td>{e(check)}</td><td><span class="pill status-skipped">not checked</span></td>'
                    f"<td>{e(reason)}</td></tr>" for check, reason in document.get("skipped", {}).items())
    return (f'<section id="checks"><h2>Checks</h2><p class="lede">Gate 6.6\'s checks, run on staging with '
            f'{e(document.get("baseline") or document.get("staging"))}\'s config; the PHP error log since staging\'s '
            f'updates ({e(document.get("since_updates") or "unknown")}).</p><div class="scroll"><table><thead><tr>'
            f"<th>Check</th><th>Status</th><th>Evidence</th></tr></thead><tbody>{rows}</tbody></table></div></section>")


def _release(document: dict[str, Any]) -> str:
    if not document.get("baseline"):
        return ""
    rows = "".join(f"<tr><td>{e(update['type'])}</td><td><strong>{e(update['slug'])}</strong></td>"
                   f"<td>{e(update['from'])}</td><td>{e(update['to'])}</td></tr>" for update in document["release"])
    table = (f'<div class="scroll"><table><thead><tr><th>Type</th><th>Component</th><th>{e(document["baseline"])}'
             f'</th><th>{e(document["staging"])}</th></tr></thead><tbody>{rows}</tbody></table></div>'
             if rows else "<p>The two sites hold the same versions.</p>")
    others = "".join(f"<li>{e(line)}</li>" for line in document.get("not_replicated", []))
    return (f'<section id="release"><h2>Inventory differences: the release</h2><p class="lede">What '
            f'{e(document["staging"])} has that {e(document["baseline"])} does not: what a release planned now '
            f"would replicate.</p>{table}" + (f'<p class="table-title">Not replicated</p><ul class="items">{others}</ul>'
                                              if others else "") + "</section>")


def _pages(document: dict[str, Any]) -> str:
    layout = (document.get("results") or {}).get("layout") or {}
    pages = layout.get("pages") or {}
    if not pages:
        reason = document.get("skipped", {}).get("layout") or ("set checks.visual_threshold to compare screenshots"
                                                               if document.get("baseline") else
                                                               "run with --baseline to compare screenshots")
        return f'<section id="pages"><h2>Pages</h2><p class="lede">No screenshots: {e(reason)}.</p></section>'
    parts = ['<section id="pages"><h2>Pages side by side</h2><p class="lede">Whole-page screenshots with the '
             "config's masks hidden; in the diff, pixels that differ are red.</p>"]
    for path, shot in pages.items():
        figures = "".join(_figure(Screenshot(Path(shot[key]), path, caption)) for key, caption in (
            ("after", document.get("staging")), ("before", document.get("baseline")), ("diff", "diff")))
        changed = f"{shot.get('changed', 0):.2%}"
        parts.append(f'<div class="shots"><h3>{e(path)} · {e(changed)} of pixels differ</h3>'
                     f'<div class="shot-row three">{figures}</div></div>')
    parts.append("</section>")
    return "".join(parts)


def write(document: dict[str, Any], path: Path) -> Path:
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_text(render(document), encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        raise BadInput(f"{path}: cannot write the page: {error.strerror or error}") from None
    return path
