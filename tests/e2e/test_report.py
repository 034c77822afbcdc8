"""`wpgate report` of real runs (a complete deploy, a refused one), the HTML rendered in headless Chromium,
and the notifications of a complete deploy received by a real webhook endpoint and a real SMTP server.
The rolled-back run's report is checked with `wpgate demo --broken` (test_demo)."""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from contextlib import ExitStack

import pytest

from tests.e2e.helpers import site_entry, wpgate, write_config, write_qa
from tests.e2e.receivers import smtp_receiver, webhook_receiver
from tests.support.chromium import browser_context, render_page

pytestmark = pytest.mark.e2e


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour (a stand-in for a visual diff image)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def runs(bed, tmp_path_factory):
    """A complete deploy of two plugin updates (notified by webhook and email), then a refused one."""
    folder = tmp_path_factory.mktemp("report")
    staging = bed.create_site("report-staging", core="6.5.5", plugins={"wpgate-hello": "1.2.0", "wpgate-notes": "1.1.0"})
    production = bed.create_site("report-prod", core="6.5.5", plugins={"wpgate-hello": "1.0.0", "wpgate-notes": "1.0.0"})
    with ExitStack() as stack:
        hook = stack.enter_context(webhook_receiver())
        mail = stack.enter_context(smtp_receiver())
        config = write_config(folder, {
            "staging": site_entry(staging),
            "production": site_entry(production, notify={
                "webhook": {"url": hook.url},
                "email": {"host": "127.0.0.1", "port": mail.port, "from": "wpgate@example.com",
                          "to": ["client@example.com"]}})}, state_dir="state")
        release = folder / "release.yml"
        planned = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config)
        assert planned.returncode == 0, planned.stderr
        unapproved = folder / "unapproved.yml"
        shutil.copy(release, unapproved)
        approved = wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana Tester", config=config)
        assert approved.returncode == 0, approved.stderr
        complete = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config)
        assert complete.returncode == 0, complete.stderr
        refused = wpgate("deploy", str(unapproved), "--to", "production", "--yes", "--json", config=config)
        assert refused.returncode == 3, refused.stderr
        webhooks, mails = list(hook), list(mail)
    complete_report, refused_report = json.loads(complete.stdout), json.loads(refused.stdout)
    # What the monitor gate saves: before/after screenshots of a page and their diff, here real screenshots.
    shots = config.parent / "state" / "runs" / complete_report["run"] / "screenshots"
    shots.mkdir()
    with browser_context(width=1024, height=700) as context:
        page = context.new_page()
        page.goto(staging.url + "/", wait_until="load")
        page.screenshot(path=str(shots / "home-before.png"))
        page.goto(production.url + "/", wait_until="load")
        page.screenshot(path=str(shots / "home-after.png"))
    (shots / "home-diff.png").write_bytes(solid_png(1024, 700, (250, 235, 235)))
    return {"folder": folder, "config": config, "complete": complete_report, "refused": refused_report,
            "webhooks": webhooks, "mails": mails, "hook_url": hook.url}


def test_a_complete_deploy_is_announced(runs):
    posted = runs["webhooks"][0]
    assert posted["json"]["text"] == "✅ wpgate: release " + runs["complete"]["release"] + " to production: deployed"
    assert posted["json"]["wpgate"]["status"] == "complete"
    assert [u["status"] for u in posted["json"]["wpgate"]["updates"]] == ["applied", "applied"]
    mail = runs["mails"][0]
    assert mail["Subject"].strip().endswith("to production: deployed")
    body = mail.get_content()
    assert "| plugin | wpgate-hello | 1.0.0 | 1.2.0 | applied |" in body
    # Recorded in the report, naming the endpoint's host only: the rest of a webhook URL is its secret.
    host = runs["hook_url"].split("/services/")[0]
    assert runs["complete"]["notifications"][0] == {"notifier": "webhook", "sent": True, "to": host}
    assert runs["complete"]["notifications"][1]["sent"] is True
    # The refusal was announced too, after the complete run.
    assert [m["json"]["wpgate"]["status"] for m in runs["webhooks"]] == ["complete", "refused"]


def test_markdown_report_for_a_ticket(runs):
    result = wpgate("report", runs["complete"]["run"], config=runs["config"])
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    text = result.stdout
    assert text.startswith(f"# wpgate: release {runs['complete']['release']} to production\n")
    assert "**Outcome: Complete.** Production holds the release: every gate passed." in text
    assert "| plugin | wpgate-hello | 1.0.0 | 1.2.0 | applied |" in text
    assert "| 6.2 | backup | ✅ passed |" in text and "| 6.6 | monitor | ✅ passed |" in text
    assert f"- **Id:** `{runs['complete']['backup']['id']}`" in text
    assert "files.tar.gz: `" + runs["complete"]["backup"]["parts"]["files.tar.gz"] + "`" in text


def test_html_report_of_a_complete_run_renders_whole_in_chromium(runs, tmp_path):
    page = tmp_path / "complete.html"
    result = wpgate("report", runs["complete"]["run"], "--html", str(page), config=runs["config"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    html = page.read_text()
    assert "<script" not in html and "<link" not in html and 'src="http' not in html  # self-contained
    assert html.count('src="data:image/png;base64,') == 3
    rendered = render_page(page, tmp_path / "complete.png", width=1280)
    assert rendered.title.startswith(f"Release {runs['complete']['release']} to production: Complete")
    assert rendered.images == 3 and rendered.broken_images == []
    assert rendered.scroll_width <= rendered.viewport_width == 1280
    text = rendered.text
    for expected in ("Complete", "wpgate-hello", "wpgate-notes", "applied", runs["complete"]["backup"]["id"],
                     "Checksums of every part", "The seven gates", "Checks and screenshots", "Timings"):
        assert expected in text, expected
    narrow = render_page(page, width=420)  # a phone: still nothing cut off
    assert narrow.scroll_width <= narrow.viewport_width


def test_html_report_of_a_refused_run(runs, tmp_path):
    page = tmp_path / "refused.html"
    result = wpgate("report", runs["refused"]["run"], "--html", str(page), config=runs["config"])
    assert result.returncode == 0, result.stderr
    rendered = render_page(page, width=1280)
    assert rendered.title.startswith(f"Release {runs['refused']['release']} to production: Refused")
    assert "A gate refused before anything changed: production was not touched." in rendered.text
    assert "not approved" in rendered.text
    assert rendered.scroll_width <= 1280 and rendered.images == 0


def test_report_of_the_latest_run_and_the_errors(runs, tmp_path):
    latest = wpgate("report", config=runs["config"])
    assert latest.returncode == 0 and "**Outcome: Refused.**" in latest.stdout
    unknown = wpgate("report", "20990101-000000-beef", config=runs["config"])
    assert unknown.returncode == 2 and unknown.stderr.startswith("wpgate: error: no run 20990101-000000-beef")
    unwritable = wpgate("report", runs["refused"]["run"], "--html", str(tmp_path / "no" / "such" / "r.html"),
                        config=runs["config"])
    assert unwritable.returncode == 2 and "cannot write the report" in unwritable.stderr
    assert "Traceback" not in unknown.stderr + unwritable.stderr
