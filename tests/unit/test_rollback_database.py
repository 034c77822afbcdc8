"""What a run changed in the database, told apart from what visitors wrote (snapshot.py): the decision a
rollback takes from two snapshots, and the rows it would keep, put back or leave, per table."""

from __future__ import annotations

from wpgate.backup import snapshot
from wpgate.backup.snapshot import Snapshot, TableState


def table(rows: dict[str, str], schema: str = "s1", key: tuple[str, ...] = ("id",)) -> TableState:
    return TableState(schema, ["id", "name", "value"], list(key), dict(rows))


def state(**tables: TableState) -> Snapshot:
    return Snapshot("2026-11-26T10:15:00Z", "wp_", tables)


H = "0123456789abcdef"  # a row hash (16 hex digits); a mark may follow it


def test_caches_cron_and_sessions_are_no_change_of_the_release():
    before = state(wp_options=table({"k1": "a" * 16, "cron": "b" * 16 + "c", "tok": "c" * 16 + "s"}),
                   wp_comments=table({"c1": H}))
    after = state(wp_options=table({"k1": "a" * 16, "cron": "d" * 16 + "c", "tok": "e" * 16 + "s",
                                    "t_new": "f" * 16 + "c"}), wp_comments=table({"c1": H}))
    assert snapshot.release_changes(before, after) == []
    changes = snapshot.compare(before, after)
    assert changes["wp_options"].marked == 3 and not changes["wp_options"].matters


def test_a_changed_option_a_new_table_or_a_new_column_is_a_change_of_the_release():
    before = state(wp_options=table({"k1": "a" * 16}), wp_shop=table({"o1": H}))
    after = state(wp_options=table({"k1": "9" * 16, "k2": "8" * 16}), wp_shop=table({"o1": H}, schema="s2"),
                  wp_new=table({}))
    described = [change.describe() for change in snapshot.release_changes(before, after)]
    assert described == ["table wp_new created", "table wp_options: 1 row added, 1 row changed",
                         "table wp_shop: its schema changed"]


def test_rows_visitors_wrote_are_told_from_the_runs_own_and_from_caches():
    before = state(wp_options=table({"version": "1" * 16, "blogname": "2" * 16}),
                   wp_comments=table({"c1": "3" * 16}), wp_shop=table({"o1": "4" * 16}))
    after = state(wp_options=table({"version": "5" * 16, "blogname": "2" * 16}),  # the run changed `version`
                  wp_comments=table({"c1": "3" * 16}), wp_shop=table({"o1": "4" * 16}, schema="s2"))
    now = state(wp_options=table({"version": "5" * 16, "blogname": "6" * 16, "_transient_x": "7" * 16 + "c"}),
                wp_comments=table({"c1": "8" * 16, "c2": "9" * 16}),
                wp_shop=table({"o1": "4" * 16, "o2": "a" * 16}, schema="s2"))
    found = {rows.table: rows for rows in snapshot.visitors_rows(before, after, now)}
    assert (found["wp_options"].changed, found["wp_options"].new) == (1, 0)  # blogname; not version, not the cache
    assert (found["wp_comments"].new, found["wp_comments"].changed) == (1, 1)
    assert found["wp_comments"].unsafe is None and found["wp_comments"].words() == "2 rows (1 new, 1 changed)"
    assert found["wp_shop"].unsafe == "the release changed its schema" and found["wp_shop"].new == 1
    # A row the run changed is the run's while it stays as the run left it, a visitor's once changed again.
    assert snapshot.is_the_runs("version", "5" * 16, before, after, "wp_options")
    assert not snapshot.is_the_runs("version", "b" * 16, before, after, "wp_options")
    assert not snapshot.is_the_runs("blogname", "6" * 16, before, after, "wp_options")
    assert snapshot.unsafe_reason("wp_comments", before, None) == "the run stopped before its snapshot after apply"
    assert snapshot.unsafe_reason("wp_new", before, after) == "the run created this table"
    keyless = state(wp_log=TableState("s1", ["line"], [], {}))
    assert snapshot.unsafe_reason("wp_log", keyless, keyless) == "it has no primary key"


def test_row_marks_follow_wordpress_names_and_multisite_blogs():
    assert snapshot.base_name("wp_2_options", "wp_") == "options" and snapshot.base_name("other", "wp_") == "other"
    sql = snapshot.mark_sql("wp_2_options", "wp_", ["option_id", "option_name"], "t")
    assert "\\\\_transient\\\\_%" in sql and "'cron'" in sql and "THEN 'c'" in sql and "THEN 's'" in sql
    assert snapshot.mark_sql("wp_woocommerce_sessions", "wp_", ["session_id"], "t") == "'s'"
    assert snapshot.mark_sql("wp_posts", "wp_", ["ID"], "t") == "''"
    assert snapshot.hash_sql(["a`b"], "s") == "LEFT(MD5(CONCAT_WS(',', CAST(QUOTE(s.`a``b`) AS BINARY))), 16)"


def test_a_snapshot_is_saved_private_and_read_back(tmp_path):
    taken = state(wp_options=table({"k1": "a" * 16 + "c"}))
    path = tmp_path / snapshot.BEFORE
    snapshot.save(taken, path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert snapshot.load(path) == taken
    path.write_bytes(b"not gzip")
    assert snapshot.load(path) is None and snapshot.load(tmp_path / "missing.json.gz") is None


def test_a_dry_run_does_not_say_the_rollback_could_proceed_when_it_would_not_be_proved():
    from wpgate import recovery
    from wpgate.rollback_database import Plan

    assert recovery.dry_run_blocker(Plan(False, "the release changed nothing")) is None
    assert recovery.dry_run_blocker(Plan(True, "the release changed the database", backup=object())) is None
    missing = Plan(True, "the release changed the database", problem="the run has no backup to restore it from")
    assert "the run has no backup" in recovery.dry_run_blocker(missing)
    assert "cannot be told" in recovery.dry_run_blocker(None)


def test_without_the_snapshot_after_apply_visitors_rows_are_not_said_to_be_none():
    from wpgate import rollback_database
    from wpgate.rollback_database import Plan

    before = state(wp_comments=table({"c1": H}))
    now = state(wp_comments=table({"c1": H, "c2": "9" * 16}))
    counted, why = rollback_database.count_visitors(before, None, now)
    assert counted == [] and "cannot tell which rows are visitors'" in why
    counted, why = rollback_database.count_visitors(before, before, now)
    assert why is None and counted[0].new == 1
    kept = Plan(False, "the release changed nothing", before=before,
                uncounted=rollback_database.count_visitors(before, None, now)[1])
    text = "\n".join(rollback_database.describe(kept))
    assert "cannot tell which rows are visitors'" in text and "began: none" not in text
    assert kept.record()["visitors_rows_not_counted"].startswith("cannot tell") and "visitors_rows" not in kept.record()


def test_a_row_the_release_changed_and_someone_edited_since_is_a_conflict_never_put_back():
    from wpgate.backup import rows

    before = state(wp_options=table({"version": "1" * 16, "blogname": "2" * 16, "gone": "3" * 16}))
    after = state(wp_options=table({"version": "5" * 16, "blogname": "2" * 16, "gone": "4" * 16}))
    written = [("version", "6" * 16), ("blogname", "7" * 16)]  # both edited after apply
    back, removals, conflicts = rows.choose("wp_options", written, ["gone"], before, after)
    assert back == ["blogname"] and removals == [] and conflicts == 2
    # As the run left it: the run's own, neither put back nor a conflict.
    back, removals, conflicts = rows.choose("wp_options", [("version", "5" * 16)], [], before, after)
    assert (back, removals, conflicts) == ([], [], 0)
    entry = rows.TableRows("wp_options", changed=2, conflicts=2)
    assert entry.record()["conflicts"] == 2 and "conflict" in entry.describe()


def test_a_job_the_release_queued_in_action_scheduler_is_a_change_of_the_release():
    before = state(wp_actionscheduler_actions=table({"a1": H + "s"}), wp_woocommerce_sessions=table({}))
    after = state(wp_actionscheduler_actions=table({"a1": "1" * 16 + "s", "a2": H + "s"}),
                  wp_woocommerce_sessions=table({"s1": H + "s"}))
    described = [change.describe() for change in snapshot.release_changes(before, after)]
    assert described == ["table wp_actionscheduler_actions: 1 job queued"]


def test_a_rollback_resumed_after_a_kill_keeps_the_database_decision_it_was_given():
    from wpgate import recovery

    record = {recovery.DATABASE_MODE: "restore"}
    assert recovery.database_mode(record, None) == "restore"
    assert recovery.database_mode(record, "keep") == "keep"
    assert recovery.database_mode({}, None) is None
