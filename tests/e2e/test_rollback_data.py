"""A rollback keeps what visitors wrote. One production site lives through two releases, each deployed,
written to by visitors (a comment, an order of the shop plugin, a customer account) and then rolled back
on request: the first changes no table (the database stays, every row with it), the second migrates the
shop's table (the database goes back; the comment and the account come back, the order cannot: its
table's schema changed, it is exported). `--dry-run` tells all of that first, with the counts, and
changes nothing; the run's record tells the completion and the rollback apart."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import WPGATE, assert_unchanged, fingerprint, site_entry, wpgate, wpgate_json, write_config, \
    write_qa

pytestmark = pytest.mark.e2e


def approve(folder: Path, config: Path, name: str) -> Path:
    release = folder / name
    result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config)
    assert result.returncode == 0, result.stderr
    result = wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana", config=config)
    assert result.returncode == 0, result.stderr
    return release


def visitors_write(site, tag: str, *, note: bool = False) -> None:
    """What visitors do on a live shop: a comment, an order, a new customer account."""
    order = f"'item' => 'order {tag}', 'created_at' => '2026-11-26 10:00:00'" + (", 'note' => 'gift'" if note else "")
    site.php(f"""
        wp_insert_comment(['comment_post_ID' => 1, 'comment_author' => 'Visitor {tag}',
                           'comment_content' => 'Comment {tag}', 'comment_approved' => 1]);
        wp_insert_user(['user_login' => 'customer{tag}', 'user_pass' => 'x-Pass-1234',
                        'user_email' => 'customer{tag}@example.com']);
        global $wpdb;
        $wpdb->insert($wpdb->prefix . 'wpgate_shop_orders', [{order}]);
    """)


def live(site, tag: str) -> dict[str, bool]:
    return {"comment": bool(site.sql(f"SELECT 1 FROM wp_comments WHERE comment_author = 'Visitor {tag}'").strip()),
            "account": bool(site.sql(f"SELECT 1 FROM wp_users WHERE user_login = 'customer{tag}'").strip()),
            "order": bool(site.sql(f"SELECT 1 FROM wp_wpgate_shop_orders WHERE item = 'order {tag}'").strip())}


def deploy(release: Path, config: Path) -> str:
    result = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["run"]


def plugins(config: Path) -> dict[str, str]:
    return {p["slug"]: p["version"] for p in wpgate_json("inventory", "production", config=config)["plugins"]}


def prompt(run: str, config: Path, answer: bytes) -> tuple[int, str]:
    """`wpgate rollback RUN` at a terminal: what it shows before asking, answered with `answer`."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([str(WPGATE), "-c", str(config), "rollback", run], stdin=terminal, stdout=terminal,
                               stderr=terminal, close_fds=True)
    os.close(terminal)
    shown = b""
    while b"Roll back now?" not in shown:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.write(controller, answer)
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    return process.wait(timeout=120), shown.decode(errors="replace").replace("\r", "")


@pytest.fixture(scope="module")
def shop(bed, tmp_path_factory):
    """Production with wpgate-shop 2.0.0 (its orders table) and wpgate-hello 1.0.0; release 1 updates only
    wpgate-hello (no table changes), release 2 also wpgate-shop to 2.2.0, whose migration adds a column."""
    folder = tmp_path_factory.mktemp("rollback-data")
    staging = bed.create_site("data-staging", plugins={"wpgate-hello": "1.2.0", "wpgate-shop": "2.0.0"})
    production = bed.create_site("data-prod", plugins={"wpgate-hello": "1.0.0", "wpgate-shop": "2.0.0"})
    production.php("echo 1;")  # the shop's table is created as WordPress first loads it
    config = write_config(folder, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    first = approve(folder, config, "release-1.yml")
    staging.install_plugin("wpgate-shop", "2.2.0")
    second = approve(folder, config, "release-2.yml")
    return {"folder": folder, "config": config, "production": production, "first": first, "second": second}


def test_a_release_that_changed_no_table_is_rolled_back_with_every_visitors_row(shop):
    config, production = shop["config"], shop["production"]
    run = deploy(shop["first"], config)
    visitors_write(production, "A")
    assert live(production, "A") == {"comment": True, "account": True, "order": True}

    # The dry run says what will happen, with the counts, and changes nothing (not even the run's record).
    before = fingerprint(production)
    record = (shop["folder"] / "state" / "runs" / run / "report.json").read_text()
    dry = wpgate("rollback", run, "--dry-run", "--json", config=config)
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"backup: production-\d{8}-\d{6}-[0-9a-f]{4}, taken .* \(.* ago\)", dry.stderr), dry.stderr
    assert "database: stays as it is" in dry.stderr and "the release changed nothing in the database" in dry.stderr
    assert re.search(r"wp_comments: 1 row \(1 new\): they stay", dry.stderr), dry.stderr
    assert re.search(r"wp_wpgate_shop_orders: 1 row \(1 new\): they stay", dry.stderr), dry.stderr
    assert re.search(r"wp_users: 1 row \(1 new\): they stay", dry.stderr), dry.stderr
    planned = json.loads(dry.stdout)["rollback_plan"]
    assert planned["database"] == "kept" and planned["could_proceed"]
    assert {"table": "wp_comments", "new": 1, "changed": 0, "removed": 0, "fate": "stay"} in planned["visitors_rows"]
    forced = wpgate("rollback", run, "--dry-run", "--restore-database", config=config)
    assert forced.returncode == 0, forced.stderr
    assert "database: goes back to the backup: restored on request (--restore-database)" in forced.stderr
    assert re.search(r"wp_comments: 1 row \(1 new\): they are put back", forced.stderr), forced.stderr
    assert_unchanged(before, fingerprint(production))
    assert (shop["folder"] / "state" / "runs" / run / "report.json").read_text() == record

    # At a terminal the prompt shows the same before asking; "no" changes nothing.
    code, shown = prompt(run, config, b"n\n")
    assert code == 3, shown
    assert "puts back plugin wpgate-hello 1.0.0 (now 1.2.0)" in shown and "database: stays as it is" in shown
    assert re.search(r"wp_comments: 1 row \(1 new\): they stay", shown), shown
    assert_unchanged(before, fingerprint(production))

    rolled = wpgate("rollback", run, "--yes", "--json", config=config)
    assert rolled.returncode == 0, rolled.stderr
    report = json.loads(rolled.stdout)
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert report["database_rollback"]["database"] == "kept"
    assert "saved_before_restore" not in report["database_rollback"]
    assert plugins(config)["wpgate-hello"] == "1.0.0"
    assert live(production, "A") == {"comment": True, "account": True, "order": True}
    assert "the database stays as it is" in rolled.stderr

    # The record: completed, then rolled back on request, each with its own time; nothing failed.
    history = report["history"]
    assert [entry["status"] for entry in history] == ["complete", "rolled_back"], history
    assert history[1]["reason"] == "requested" and re.fullmatch(r"[^@\s]+@\S+", history[1]["by"]), history
    assert history[0]["at"] <= history[1]["at"] and "error" not in report
    status = wpgate("status", run, config=config)
    assert status.returncode == 0 and "rolled back on request" in status.stderr.lower(), status.stderr
    assert "A check failed" not in status.stderr
    markdown = wpgate("report", run, config=config).stdout
    assert "Rolled back on request" in markdown and "A check failed" not in markdown
    assert "Completed at" in markdown or "completed at" in markdown, markdown
    html = shop["folder"] / "report-1.html"
    assert wpgate("report", run, "--html", str(html), config=config).returncode == 0
    assert "Rolled back on request" in html.read_text()


def test_a_release_that_migrated_is_rolled_back_with_its_database_and_visitors_rows_put_back(shop):
    config, production = shop["config"], shop["production"]
    run = deploy(shop["second"], config)
    assert "note" in production.sql("SHOW COLUMNS FROM wp_wpgate_shop_orders")
    visitors_write(production, "B", note=True)
    production.sql("UPDATE wp_comments SET comment_content = 'Edited by its author' WHERE comment_author = 'Visitor A'")
    # A row the release changed, edited since: a conflict, never put back over the restored one.
    production.sql("UPDATE wp_options SET option_value = '4' WHERE option_name = 'wpgate_shop_db_version'")

    dry = wpgate("rollback", run, "--dry-run", config=config)
    assert dry.returncode == 0, dry.stderr
    assert "database: goes back to the backup: the release changed the database" in dry.stderr, dry.stderr
    assert "table wp_wpgate_shop_orders: its schema changed" in dry.stderr
    assert re.search(r"wp_comments: 2 rows \(1 new, 1 changed\): they are put back", dry.stderr), dry.stderr
    assert re.search(r"wp_users: 1 row \(1 new\): they are put back", dry.stderr), dry.stderr
    assert re.search(r"wp_wpgate_shop_orders: 1 row \(1 new\): they leave the live site \(the release changed its "
                     r"schema", dry.stderr), dry.stderr

    kept = wpgate("rollback", run, "--dry-run", "--keep-database", config=config)
    assert kept.returncode == 0, kept.stderr
    assert "database: stays as it is, nothing in it is restored: kept on request (--keep-database); the release " \
           "changed the database" in kept.stderr

    # Where the rows cannot be copied aside to be put back (here: a side database that is the site's own), the
    # database is not restored and the rollback is not complete (exit 5); a rollback run again finishes it.
    settings = yaml.safe_load(config.read_text())
    settings["sites"]["production"]["backup"]["verify_database"] = production.db_name
    broken = shop["folder"] / "wpgate-no-side-copy.yml"
    broken.write_text(yaml.safe_dump(settings, sort_keys=False))
    failed = wpgate("rollback", run, "--yes", "--json", config=broken)
    assert failed.returncode == 5, failed.stderr
    report = json.loads(failed.stdout)
    assert report["status"] == "rollback_failed" and report["database_rollback"]["database"] == "not restored"
    saved = report["database_rollback"]["saved_before_restore"]
    assert any("was not restored" in problem and saved in problem for problem in report["rollback"]["problems"])
    assert "note" in production.sql("SHOW COLUMNS FROM wp_wpgate_shop_orders")
    assert live(production, "B") == {"comment": True, "account": True, "order": True}

    # A rollback killed right after the database went back, before visitors' rows are put back: the next
    # one goes on from the copy it made of them, and names the dump that attempt saved.
    killed = subprocess.Popen([str(WPGATE), "-c", str(config), "rollback", run, "--yes"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "WPGATE_TEST_PAUSE_AFTER": "restore_database.done"})
    while killed.poll() is None and Path(f"/proc/{killed.pid}/stat").read_text().split(") ")[1][0] != "T":
        time.sleep(0.2)
    killed.kill()
    killed.wait()
    assert not live(production, "B")["comment"]  # the backup's rows only

    rolled = wpgate("rollback", run, "--yes", "--json", config=config)
    assert rolled.returncode == 0, rolled.stderr
    report = json.loads(rolled.stdout)
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    database = report["database_rollback"]
    assert database["saved_before_restore"].endswith("database-before-rollback-2.sql"), database
    assert "Comment B" in Path(database["saved_before_restore"]).read_text()
    assert [attempt["saved_before_restore"] for attempt in report["database_rollback_attempts"]][:1] == [saved]
    assert database["database"] == "restored" and database["backup"] == report["backup"]["id"]
    assert {slug: version for slug, version in plugins(config).items() if slug.startswith("wpgate-")} == {
        "wpgate-hello": "1.0.0", "wpgate-shop": "2.0.0"}
    # The database went back: the shop's schema, its db version and the upgrader's record as before the run ...
    assert "note" not in production.sql("SHOW COLUMNS FROM wp_wpgate_shop_orders")
    assert production.sql("SELECT option_value FROM wp_options WHERE option_name = 'wpgate_shop_db_version'").strip() == "2"
    assert not production.sql("SELECT 1 FROM wp_options WHERE option_name = 'wpgate_shop_upgraded_by_upgrader'").strip()
    # ... with what visitors wrote put back where the table kept its schema, and the order exported.
    assert live(production, "B") == {"comment": True, "account": True, "order": False}
    assert live(production, "A") == {"comment": True, "account": True, "order": True}
    assert production.sql("SELECT comment_content FROM wp_comments WHERE comment_author = 'Visitor A'").strip() == \
        "Edited by its author"
    assert production.sql("SELECT meta_value FROM wp_usermeta m JOIN wp_users u ON u.ID = m.user_id "
                          "WHERE u.user_login = 'customerB' AND m.meta_key = 'nickname'").strip() == "customerB"
    tables = {entry["table"]: entry for entry in database["rows_since_backup"]["tables"]}
    assert tables["wp_comments"]["put_back"] >= 2 and tables["wp_users"]["put_back"] == 1
    assert "schema" in tables["wp_wpgate_shop_orders"]["not_put_back"]
    assert tables["wp_options"]["conflicts"] >= 1, tables["wp_options"]
    exported = Path(database["rows_since_backup"]["file"]).read_text()
    assert "order B" in exported and "Comment B" not in exported
    assert f"{production.db_name}_wpgate_rows" not in production.sql("SHOW DATABASES")
    assert [entry["status"] for entry in report["history"]] == ["complete", "rollback_failed", "rolled_back"]
    # Maintenance is on from the database's save to the put-back of visitors' rows: nobody writes in between.
    journal = [json.loads(line)["event"] for line in
               (shop["folder"] / "state" / "runs" / run / "journal.jsonl").read_text().splitlines()]
    on, off = journal.index("maintenance_on.done"), len(journal) - 1 - journal[::-1].index("maintenance_off.done")
    assert on < journal.index("save_database.begin") < journal.index("put_back_rows.done") < off, journal


def test_keep_and_restore_database_together_are_refused(shop):
    result = wpgate("rollback", "20261126-101500-ab12", "--keep-database", "--restore-database", "--yes",
                    config=shop["config"])
    assert result.returncode == 2 and "contradict" in result.stderr
