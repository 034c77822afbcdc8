"""Gate 6.2's restore proof on a host whose database user has ALL on its own database and nothing else
(it may not create `<DB_NAME>_wpgate_verify`): the proof runs in the site's own database under a scratch
table prefix, no live table changes, no scratch table is left, also after wpgate is killed mid-proof."""

from __future__ import annotations

import json
import shutil

import pytest

from tests.e2e.helpers import site_entry, wpgate, write_config, write_qa

pytestmark = pytest.mark.e2e

OLD = {"wpgate-hello": "1.0.0", "wpgate-shop": "1.0.0"}
NEW = {"wpgate-hello": "1.2.0", "wpgate-shop": "1.0.0"}


def live_checksums(site) -> str:
    tables = [t for t in site.sql("SHOW TABLES").split() if not t.startswith("wpgatev_")]
    return site.sql("CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables) + " EXTENDED")


def scratch_tables(site) -> list[str]:
    return [t for t in site.sql("SHOW TABLES").split() if t.startswith("wpgatev_")]


def journal(config, run_id: str) -> list[dict]:
    path = config.parent / "state" / "runs" / run_id / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def own_database(bed, tmp_path_factory):
    folder = tmp_path_factory.mktemp("grants")
    staging = bed.create_site("grants-staging", core="6.5.5", plugins=NEW)
    production = bed.create_site("grants-prod", core="6.5.5", plugins=OLD, own_database_only=True)
    denied = bed.database().sql(f"SHOW GRANTS FOR '{production.db_user}'@'127.0.0.1'")
    assert "_wpgate" not in denied, denied
    config = write_config(folder, {"staging": site_entry(staging), "production": site_entry(production)},
                          state_dir="state")
    release = folder / "release.yml"
    assert wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=config).returncode == 0
    assert wpgate("approve", str(release), "--qa", str(write_qa(folder)), "--by", "Ana", config=config).returncode == 0
    yield {"config": config, "release": release, "production": production, "staging": staging}
    for site in (staging, production):
        site.stop()


def test_backup_and_its_restore_proof_need_no_grant_beyond_the_sites_database(own_database):
    site, config = own_database["production"], own_database["config"]
    taken = wpgate("backup", "production", "--json", config=config)
    assert taken.returncode == 0, taken.stderr
    backup_id = json.loads(taken.stdout)["id"]
    before = live_checksums(site)
    verified = wpgate("restore", backup_id, "--verify", "--json", config=config)
    assert verified.returncode == 0, verified.stderr
    report = json.loads(verified.stdout)
    assert report["restorable"] and report["problems"] == []
    assert report["compared"]["scratch"]["database"] == site.db_name
    assert report["compared"]["scratch"]["prefix"].startswith("wpgatev_")
    assert report["compared"]["tables"] == len(before.splitlines())
    assert live_checksums(site) == before
    assert scratch_tables(site) == []


def test_a_kill_during_the_proof_leaves_scratch_tables_that_resume_drops(own_database):
    site, config = own_database["production"], own_database["config"]
    # First learn where the proof's journal event falls in a deploy that takes its own backup (no
    # backup is there to check first, so both deploys journal the same events up to the proof).
    shutil.rmtree(config.parent / "backups" / "production", ignore_errors=True)
    dry = wpgate("deploy", str(own_database["release"]), "--to", "production", "--yes", "--json", config=config,
                 env={"WPGATE_TEST_KILL_AT": "100000"})
    run_id = json.loads(dry.stdout)["run"]
    assert dry.returncode == 0, dry.stderr
    events = [entry["event"] for entry in journal(config, run_id)]
    created = events.index("backup.scratch_tables.created") + 1
    assert "backup.scratch_tables.dropped" in events
    assert scratch_tables(site) == []
    # A rollback that restores the database (asked for: the release changed nothing in it) compares the rows
    # written since in scratch tables of the site's own database, and puts back what a visitor wrote.
    site.php("wp_insert_comment(['comment_post_ID' => 1, 'comment_author' => 'Visitor Grant', "
             "'comment_content' => 'Written after the deploy', 'comment_approved' => 1]);")
    rollback = wpgate("rollback", run_id, "--yes", "--restore-database", "--json", config=config)
    assert rollback.returncode == 0, rollback.stderr
    restored = json.loads(rollback.stdout)["database_rollback"]
    assert restored["database"] == "restored" and "error" not in restored["rows_since_backup"], restored
    assert site.sql("SELECT 1 FROM wp_comments WHERE comment_author = 'Visitor Grant'").strip()
    events = [entry["event"] for entry in journal(config, run_id)]
    assert {"backup.scratch_tables.created", "backup.scratch_tables.dropped"} <= set(events[events.index("rollback.begin"):])
    assert scratch_tables(site) == []
    # A release rolled back on a site needs a fresh approval before it deploys there again.
    again = wpgate("approve", str(own_database["release"]), "--qa", str(write_qa(config.parent)), "--by", "Ana",
                   config=config)
    assert again.returncode == 0, again.stderr

    shutil.rmtree(config.parent / "backups" / "production", ignore_errors=True)
    before = live_checksums(site)
    killed = wpgate("deploy", str(own_database["release"]), "--to", "production", "--yes", config=config,
                    env={"WPGATE_TEST_KILL_AT": str(created)})
    assert killed.returncode == -9, killed.stderr
    runs = sorted((config.parent / "state" / "runs").iterdir(), key=lambda path: path.stat().st_mtime)
    killed_run = runs[-1].name
    entry = journal(config, killed_run)[-1]
    assert entry["event"] == "backup.scratch_tables.created"
    # What a host command killed half-way through its load leaves: the prefix's tables, full.
    prefix = entry["prefix"]
    site.sql(f"CREATE TABLE `{prefix}wp_options` AS SELECT * FROM wp_options;"
             f" CREATE TABLE `{prefix}wp_posts` LIKE wp_posts;")
    assert len(scratch_tables(site)) == 2

    resumed = wpgate("resume", killed_run, config=config)
    assert resumed.returncode == 0, resumed.stderr
    assert scratch_tables(site) == []
    assert live_checksums(site) == before
    assert "backup.scratch_tables.dropped" in [e["event"] for e in journal(config, killed_run)]
