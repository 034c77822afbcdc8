"""The report's words for a run record: escaping, evidence no view knows, screenshots, timings, the culprit."""

from __future__ import annotations

import json
from pathlib import Path

from wpgate.report import facts as facts_module, html, markdown
from wpgate.report.view import gate_view

MARKUP = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


def run_folder(tmp_path: Path, **changes) -> Path:
    report = {
        "run": "20261126-101500-ab12", "site": "production", "release": f"2026-11-26-1 {MARKUP}",
        "status": "rolled_back", "started_at": "2026-11-26T10:15:00Z", "seconds": 75.4,
        "error": f"plugin shop 1.0 → 2.0: PHP fatal in /srv/www/example/wp-content/plugins/shop/shop.php {MARKUP}",
        "gates": [
            {"step": "6.1", "name": "approval", "status": "passed",
             "evidence": {"approved_by": f"Ana {MARKUP}", "approved_at": "2026-11-26T10:00:00Z",
                          "digest": "sha256:" + "a" * 64, "drift": [], "artifacts_verified": 1}},
            {"step": "6.3", "name": "apply", "status": "failed",
             "evidence": {"update": 0, "error": f"upgrader failed {MARKUP}"}},
            {"step": "6.5", "name": "caches", "status": "passed",
             "evidence": {"purged": [{"layer": "varnish", "url": "http://127.0.0.1:6081", "status": f"ok {MARKUP}"},
                                     {"layer": "cloudflare", "zone": "abc", "status": "ok"}],
                          "fresh_fetch": {"/": 200}, "note": MARKUP}},
        ],
        "updates": [{"type": "plugin", "slug": "shop", "from": "1.0", "to": "2.0", "status": "rolled_back"}],
        "backup": {"id": "production-20261126-101500-cd34", "path": "/var/backups/wpgate/x", "offsite": "/mnt/o/x",
                   "sha256": "b" * 64, "parts": {"database.sql.gz": "c" * 64}},
        "rollback": {"attempted": True, "problems": []},
    }
    report.update(changes)
    folder = tmp_path / "state" / "runs" / report["run"]
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps(report))
    events = [("10:15:00", "gate.begin", {"step": "6.1"}), ("10:15:02", "gate", {"step": "6.1"}),
              ("10:15:02", "gate.begin", {"step": "6.3"}), ("10:15:03", "apply.begin", {"index": 0}),
              ("10:15:40", "apply.failed", {"index": 0, "error": "x"}), ("10:15:41", "gate", {"step": "6.3"}),
              ("10:15:41", "rollback.begin", {}), ("10:16:10", "rollback.done", {})]
    with open(folder / "journal.jsonl", "w") as journal:
        for at, name, data in events:
            journal.write(json.dumps({"at": f"2026-11-26T{at}Z", "event": name, **data}) + "\n")
        journal.write('{"at": "2026-11-26T10:16:11Z", "event": "run.e')  # cut short by a crash
    return tmp_path / "state"


def test_nothing_from_the_run_reaches_the_page_as_markup(tmp_path):
    facts = facts_module.load(run_folder(tmp_path), "20261126-101500-ab12")
    page = html.render(facts)
    assert "<script>alert" not in page and "<img src=x" not in page
    assert page.count("&lt;script&gt;alert(2)&lt;/script&gt;") >= 5
    text = markdown.render(facts)
    assert "<script>" not in text and "<img" not in text and "&lt;script&gt;" in text


def test_evidence_no_view_knows_is_shown_as_labelled_values_and_tables(tmp_path):
    facts = facts_module.load(run_folder(tmp_path), "20261126-101500-ab12")
    caches = gate_view(facts.gate("6.5"))
    assert caches.summary == "2 cache layers purged, then a fresh fetch"
    [table] = caches.tables
    assert table.title == "Purged" and table.headers == ["Layer", "Url", "Status", "Zone"]
    assert table.rows[1] == ["cloudflare", "—", "ok", "abc"]
    assert ("Fresh fetch", "/: 200") in caches.rows
    page = html.render(facts)
    assert '<section id="caches"><h2>Caches purged</h2>' in page and "<td><span class=\"word\">cloudflare</span></td>" in page


def test_a_failed_gate_names_its_update_and_the_culprit_is_found_in_the_error(tmp_path):
    facts = facts_module.load(run_folder(tmp_path), "20261126-101500-ab12")
    apply = gate_view(facts.gate("6.3"), facts.report["updates"])
    assert ("Update", "plugin shop 1.0 → 2.0") in apply.rows
    assert facts.culprit()["slug"] == "shop"
    for error in ("cp: cannot stat '/srv/www/example/wp-content/plugins/shop/x.php': No such file",  # not a fatal
                  "PHP fatal error in /srv/www/example/wp-content/wpgate-aside/20261126-101500-ab12/plugins/shop/x.php"):
        other = run_folder(tmp_path / str(len(error)), error=error)
        assert facts_module.load(other, "20261126-101500-ab12").culprit() is None, error
    assert "<strong>Culprit:</strong> plugin shop 1.0 → 2.0" in html.render(facts)


def test_times_come_from_the_journal(tmp_path):
    facts = facts_module.load(run_folder(tmp_path), "20261126-101500-ab12")
    assert facts.gate_seconds() == {"6.1": 2.0, "6.3": 39.0}
    assert facts.update_times()[0] == {"began": "2026-11-26T10:15:03Z", "ended": "2026-11-26T10:15:40Z",
                                       "failed": True, "error": "x", "seconds": 37.0}
    assert facts.rollback_seconds() == 29.0
    assert [facts_module.duration(s) for s in (0.2, 37, 75.4, 3600, 4000)] == [
        "under 1 s", "37 s", "1 min 15 s", "1 h", "1 h 6 min"]


def test_every_gate_is_listed_and_those_not_reached_say_so(tmp_path):
    facts = facts_module.load(run_folder(tmp_path), "20261126-101500-ab12")
    assert [(g["step"], g["status"]) for g in facts.gates()] == [
        ("6.1", "passed"), ("6.2", "not reached"), ("6.3", "failed"), ("6.4", "not reached"), ("6.5", "passed"),
        ("6.6", "not reached"), ("6.7", "not reached")]


def test_screenshots_are_grouped_by_page_before_after_diff(tmp_path):
    state = run_folder(tmp_path)
    shots = state / "runs" / "20261126-101500-ab12" / "screenshots"
    (shots / "before").mkdir(parents=True)
    for name in ("home-diff.png", "home-after.png", "home-before.png", "sample-page_before.png",
                 "sample-page_after.png", "before/wp-admin.png", "extra.png"):
        (shots / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    facts = facts_module.load(state, "20261126-101500-ab12")
    groups = {page: [(shot.kind, shot.path.name) for shot in shots] for page, shots in facts.screenshot_groups()}
    assert groups == {
        "home": [("before", "home-before.png"), ("after", "home-after.png"), ("diff", "home-diff.png")],
        "sample-page": [("before", "sample-page_before.png"), ("after", "sample-page_after.png")],
        "wp-admin": [("before", "wp-admin.png")],
        "extra": [(None, "extra.png")],
    }
    assert html.render(facts).count('src="data:image/png;base64,') == 7


def test_the_rows_a_rollback_exported_are_listed(tmp_path):
    state = run_folder(tmp_path, database_rollback={
        "backup": "production-20261126-101500-cd34", "changed": ["wp_comments", "wp_options"],
        "saved_before_restore": "/x/database-before-rollback.sql",
        "rows_since_backup": {"file": "/x/rows-since-backup.sql", "tables": [
            {"table": "wp_comments", "new": 1, "changed": 0, "removed": 0,
             "examples": [f"2 · Visitor {MARKUP} · 2026-11-26 10:15"]},
            {"table": "wp_shop_orders", "created_by_run": True, "rows": 3}]}})
    facts = facts_module.load(state, "20261126-101500-ab12")
    page = html.render(facts)
    assert ("Rows written since the backup; those not put back are exported to rows-since-backup.sql in the "
            "run&#x27;s folder") in page
    assert ("<td><span class=\"word\">wp_comments</span></td><td><span class=\"word\">1</span></td>"
            "<td><span class=\"word\">0</span></td><td><span class=\"word\">0</span></td><td>2 · Visitor &lt;img") in page
    assert "<script>" not in page
    text = markdown.render(facts)
    assert "| Table | New | Changed | Removed | Examples | Created by run | Rows |" in text
    assert "| wp_shop_orders | — | — | — | — | yes | 3 |" in text


def test_a_rollback_that_is_not_proved_lists_what_a_person_must_do(tmp_path):
    state = run_folder(tmp_path, status="rollback_failed", rollback={
        "attempted": True, "problems": ["plugin shop: could not be put back"],
        "undo": ["plugin shop: rm -rf /srv/a && mv /srv/b /srv/a"]})
    facts = facts_module.load(state, "20261126-101500-ab12")
    page = html.render(facts)
    assert 'class="outcome tone-bad"' in page and "<h2>Rollback failed</h2>" in page
    assert "plugin shop: could not be put back" in page and "rm -rf /srv/a &amp;&amp; mv /srv/b /srv/a" in page
    text = markdown.render(facts)
    assert "**Outcome: Rollback failed.**" in text and "Attempted, **not proved**" in text


def test_status_of_a_running_run_shows_the_gate_in_progress_and_how_to_resume(tmp_path):
    import io

    from rich.console import Console

    from wpgate.report import terminal

    state = run_folder(tmp_path, status="running", error=None, rollback=None,
                       gates=[{"step": "6.1", "name": "approval", "status": "passed", "evidence": {}}],
                       updates=[{"type": "plugin", "slug": "shop", "from": "1.0", "to": "2.0", "status": "applying"}])
    journal = state / "runs" / "20261126-101500-ab12" / "journal.jsonl"
    journal.write_text("\n".join(json.dumps(e) for e in [
        {"at": "2026-11-26T10:15:00Z", "event": "gate.begin", "step": "6.1"},
        {"at": "2026-11-26T10:15:01Z", "event": "gate", "step": "6.1", "status": "passed"},
        {"at": "2026-11-26T10:15:02Z", "event": "gate.begin", "step": "6.2"},
        {"at": "2026-11-26T10:15:09Z", "event": "backup.begin"}]) + "\n")
    stream = io.StringIO()
    terminal.render(facts_module.load(state, "20261126-101500-ab12"), Console(file=stream, width=200))
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(": running")
    assert "  … 6.2 backup: running" in lines
    assert "  · 6.3 apply: not reached" in lines
    assert "  plugin shop 1.0 → 2.0: applying" in lines
    assert lines[-1].startswith("last journal event: backup.begin at 2026-11-26 10:15:09 UTC. If no wpgate process")
    assert "wpgate resume 20261126-101500-ab12" in lines[-1]


def test_a_rollback_on_request_of_a_complete_run_reads_as_such_with_its_own_times(tmp_path):
    state = run_folder(tmp_path, error=None, gates=[], history=[
        {"status": "complete", "at": "2026-11-26T10:16:15Z"},
        {"status": "rolled_back", "at": "2026-11-26T14:02:00Z", "reason": "requested", "by": "ana@laptop"}],
        database_rollback={"database": "kept", "why": "the release changed nothing in the database that matters",
                           "visitors_rows": [{"table": "wp_comments", "new": 1, "changed": 0, "removed": 0,
                                              "fate": "stay"}]})
    (state / "runs" / "20261126-101500-ab12" / "journal.jsonl").write_text("\n".join(json.dumps(event) for event in [
        {"at": "2026-11-26T10:15:03Z", "event": "apply.begin", "index": 0},
        {"at": "2026-11-26T10:15:09Z", "event": "apply.done", "index": 0},
        {"at": "2026-11-26T14:01:50Z", "event": "rollback.begin"},
        {"at": "2026-11-26T14:01:55Z", "event": "put_back.done", "type": "plugin", "slug": "shop"},
        {"at": "2026-11-26T14:02:00Z", "event": "rollback.done"}]) + "\n")
    facts = facts_module.load(state, "20261126-101500-ab12")
    headline, meaning, _ = facts.outcome
    assert headline == "Rolled back on request"
    assert "completed at 2026-11-26 10:16:15 UTC" in meaning and "by ana@laptop at 2026-11-26 14:02:00 UTC" in meaning
    assert "A check failed" not in meaning
    text = markdown.render(facts)
    assert "took 1 min 15 s" in text and "**Why:**" not in text
    assert "- 2026-11-26 14:02:00 UTC: rolled back (requested by ana@laptop)" in text
    assert "| rolled back at 14:01:55 UTC | 10:15:09 UTC | 6 s |" in text  # applied at its time, rolled back at its own
    assert "The database was kept as it was, with every row written since" in text
    assert "Visitors' rows in wp_comments (1 new): stayed live" in text
    page = html.render(facts)
    assert "Rolled back on request" in page and "rolled back at 14:01:55" in page


def test_an_automatic_rollback_names_the_gate_that_failed(tmp_path):
    state = run_folder(tmp_path, history=[{"status": "rolled_back", "at": "2026-11-26T10:16:00Z",
                                           "reason": "6.3 apply"}])
    facts = facts_module.load(state, "20261126-101500-ab12")
    assert facts.outcome[0] == "Rolled back" and facts.requested_rollback() is None
    assert facts.history_lines() == ["2026-11-26 10:16:00 UTC: rolled back (gate 6.3 apply failed)"]


def test_the_apply_table_names_what_installed_each_update(tmp_path):
    """Not "bulk upgrade": that reads as if plugins went in bulk; each went alone through WordPress's upgrader."""
    applied = [{"type": "core", "slug": "wordpress", "to": "6.5.5", "method": "core_upgrade",
                "database": {"from": 53496, "to": 57155, "upgraded": True}},
               {"type": "plugin", "slug": "shop", "to": "2.0", "method": "bulk_upgrade", "database": None},
               {"type": "theme", "slug": "child", "to": "1.1", "method": "install"}]
    state = run_folder(tmp_path, status="complete", gates=[
        {"step": "6.3", "name": "apply", "status": "passed", "evidence": {"applied": applied}}])
    facts = facts_module.load(state, "20261126-101500-ab12")
    [table] = gate_view(facts.gate("6.3")).tables
    assert table.headers[3] == "Installed with"
    assert [row[3] for row in table.rows] == [
        "WordPress's core upgrader", "WordPress's plugin upgrader, this plugin alone",
        "WordPress's theme installer (the theme was not on the site)"]
    page = html.render(facts)
    assert "bulk" not in page.lower() and "bulk" not in markdown.render(facts).lower()
    assert "plugin upgrader, this plugin alone" in page
