"""The pieces of backups that need no site: option files, tar listings, comparisons, ids, explanations."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from wpgate import backup
from wpgate.backup import database, files
from wpgate.backup.database import BackupError, Credentials
from wpgate.command import MASK, Secret
from wpgate.config import BackupConfig
from wpgate.gates.backup import inventory_changes
from wpgate.transports import LocalTransport
from pydantic import ValidationError


def credentials(**changes) -> Credentials:
    facts = {"database": {"name": "wp_prod", "user": "wp", "password": 's3"c\\r#e t', "host": "db.example",
                          "port": 3307, "socket": None, "charset": "utf8mb4"}}
    facts["database"].update(changes)
    return Credentials.from_facts(facts)


def test_the_options_file_quotes_every_value_and_stays_secret():
    found = credentials()
    content = found.options_file()
    assert isinstance(content, Secret) and str(content) == MASK
    lines = content.value.splitlines()
    assert lines[0] == "[client]"
    assert 'password="s3\\"c\\\\r#e t"' in lines
    assert 'host="db.example"' in lines and "port=3307" in lines
    assert "s3" not in repr(found) and "s3" not in found.where()


def test_a_socket_is_given_instead_of_a_port():
    found = credentials(host="localhost", port=None, socket="/run/mysqld/mysqld.sock")
    assert 'socket="/run/mysqld/mysqld.sock"' in found.options_file().value
    assert "port=" not in found.options_file().value
    assert found.where() == "localhost (socket /run/mysqld/mysqld.sock)"


def test_an_odd_charset_falls_back_to_utf8mb4():
    assert credentials(charset="utf8; DROP").charset == "utf8mb4"
    assert credentials(charset="latin1").charset == "latin1"


@pytest.mark.parametrize("name", ["-wp", "wp prod", "wp`x", "a" * 65, ""])
def test_database_names_wpgate_cannot_quote_safely_are_refused(name):
    with pytest.raises(BackupError):
        credentials(name=name)


def test_the_scratch_database_is_named_after_the_site_database():
    assert database.scratch_name(credentials(), None) == "wp_prod_wpgate_verify"
    assert database.scratch_name(credentials(), "scratch_db") == "scratch_db"
    with pytest.raises(BackupError, match="the site's own database"):
        database.scratch_name(credentials(), "wp_prod")
    with pytest.raises(BackupError, match="verify_database"):
        database.scratch_name(credentials(name="w" * 60), None)


def test_connection_errors_are_explained_in_one_line():
    text = 'mariadb-dump: Got error: 2002: "Can\'t connect to server on \'db.example\' (115)" when trying to connect'
    message = database.explain(text, credentials(), "site prod (local)")
    assert message.startswith("site prod (local): the database server at db.example:3307 refuses connections")
    denied = database.explain("mariadb-dump: Got error: 1045: \"Access denied for user 'wp'@'x'\"", credentials(),
                              "site prod")
    assert "refused the user wp" in denied
    assert database.explain("something else", credentials(), "site prod") is None


def test_status_lines_are_read_from_script_output():
    assert database.parse_statuses("status dump 0\nnoise\nstatus tar 2\nstatus bad x\n") == {"dump": 0, "tar": 2}


def test_the_aside_folder_and_inner_backup_folders_are_excluded():
    options = files.exclusions("/srv/www", "/srv/www/wp-content/backups", "/var/off")
    assert options == ["--no-wildcards", "--no-anchored", "--exclude=wpgate-aside", "--anchored",
                       "--exclude=./wp-content/backups"]
    assert files.exclusions("/srv/www", "/srv/www-backups", None)[-1] == "--anchored"
    assert files.inside("/srv/www", "/srv/www") is None
    assert files.inside("/", "/backups") == "backups"


def test_find_prunes_what_tar_leaves_out():
    assert files.prune("/srv/www", "/srv/www/wp-content/b*ck[1]", None, "/elsewhere") == [
        "(", "-name", "wpgate-aside", "-o", "-path", "./wp-content/b\\*ck\\[1\\]", ")", "-prune", "-o"]


def test_tar_escapes_are_undone():
    assert files.unescape("a\\nb") == b"a\nb"
    assert files.unescape("\\351t\\303\\251") == b"\xe9t\xc3\xa9"
    assert files.unescape("back\\\\slash") == b"back\\slash"
    assert files.unescape("été") == "été".encode()


def test_a_real_tar_index_matches_the_tree_it_extracts_to(tmp_path):
    source = tmp_path / "source"
    (source / "a" / "sp ace").mkdir(parents=True)
    (source / "a" / "sp ace" / "f -> g").write_text("x")
    (source / "b").mkdir()
    (source / "b" / "new\nline").write_text("hello")
    (source / "b" / "link").symlink_to("../a")
    (source / "b" / "hard").hardlink_to(source / "b" / "new\nline")
    (source / "\xe9t\xe9.txt").write_bytes(b"\xff\xfe")
    (source / "wp-content" / "wpgate-aside").mkdir(parents=True)
    (source / "wp-content" / "wpgate-aside" / "skip.php").write_text("<?php")
    (source / "wp-content" / "wpgate-aside.php").write_text("<?php // a file of that name stays")
    archive, index_file = tmp_path / "files.tar", tmp_path / "files.index"
    subprocess.run(["tar", "-C", str(source), "--create", f"--file={archive}", "-vv", "--numeric-owner",
                    "--quoting-style=escape", f"--index-file={index_file}",
                    *files.exclusions(str(source)), "."], check=True, env={"LC_ALL": "C"})
    index = files.parse_index(index_file.read_text())
    # Of two hard links tar stores the first it meets as the file, the other as a link to it; which
    # comes first is the file system's directory order.
    assert sorted([index[b"b/new\nline"], index[b"b/hard"]], key=repr) == [files.Entry("f", 5), files.Entry("f", None)]
    assert index[b"b/link"].kind == "l"
    assert index["\xe9t\xe9.txt".encode()] == files.Entry("f", 2)
    assert index[b"a/sp ace/f -> g"] == files.Entry("f", 1)
    assert b"wp-content/wpgate-aside" not in index and b"wp-content/wpgate-aside.php" in index
    assert files.count_index_lines(index_file.read_text()) == len(index) + 1  # and the root itself

    restored = tmp_path / "restored"
    restored.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(restored)], check=True)
    listing = subprocess.run(["find", ".", "-mindepth", "1", "-printf", "%y %s %P\\0"], cwd=restored,
                             capture_output=True, check=True).stdout
    tree = files.parse_tree(listing)
    assert files.compare(index, tree) == []
    assert files.totals(tree)["files"] == 5

    # The one of the two hard links tar stored as the file (the other's size is the file's).
    stored = b"b/new\nline" if index[b"b/new\nline"].size == 5 else b"b/hard"
    (restored / stored.decode()).write_text("longer now")
    (restored / "a" / "sp ace" / "f -> g").unlink()
    (restored / "extra").write_text("")
    tree = files.parse_tree(subprocess.run(["find", ".", "-mindepth", "1", "-printf", "%y %s %P\\0"],
                                           cwd=restored, capture_output=True, check=True).stdout)
    problems = files.compare(index, tree)
    assert any("missing after restore (1): a/sp ace/f -> g" in p for p in problems)
    assert any("not in the archive's index (1): extra" in p for p in problems)
    shown = "b/new\\nline" if stored == b"b/new\nline" else "b/hard"
    assert any(f"{shown} has 10 bytes, the archive says 5" in p for p in problems), problems


def test_long_problem_lists_are_cut():
    index = {f"f{n}".encode(): files.Entry("f", 1) for n in range(30)}
    [problem] = files.compare(index, {})
    assert problem.startswith("files missing after restore (30): ") and problem.endswith("… and 10 more")


def test_backup_ids_name_their_site():
    assert backup.site_of("production-20261126-101500-ab12") == "production"
    assert backup.site_of("prod-2.eu-20261126-101500-00ff") == "prod-2.eu"
    for bad in ("production", "production-20261126-101500", "../x-20261126-101500-ab12", "p-20261126-101500-ABCD"):
        with pytest.raises(BackupError):
            backup.site_of(bad)


def test_table_differences_name_each_table():
    then = {"wp_a": {"rows": 1, "checksum": 10}, "wp_b": {"rows": 2, "checksum": 20},
            "wp_c": {"rows": 0, "checksum": 0}}
    now = {"wp_a": {"rows": 1, "checksum": 11}, "wp_b": {"rows": 3, "checksum": 20}, "wp_d": {"rows": 0, "checksum": 0}}
    problems = backup.table_differences(then, now, expected_label="the backup", found_label="production")
    assert problems == ["production lacks table(s) wp_c", "production has table(s) the backup lacks: wp_d",
                        "table wp_a: same 1 row but another checksum in production than in the backup",
                        "table wp_b: 2 rows in the backup, 3 in production"]
    assert backup.table_differences(then, now, expected_label="a", found_label="b",
                                    ignore=["wp_a", "wp_b", "wp_c", "wp_d"]) == []


def test_inventory_changes_are_what_a_deploy_changes():
    then = {"core": {"version": "6.1.9", "db_version": 53496},
            "plugins": [{"slug": "akismet", "version": "5.0", "active": True, "network_active": False}],
            "themes": [{"slug": "tt3", "version": "1.0", "active": True, "parent": None}],
            "mu_plugins": [], "dropins": [], "php_version": "8.2.1"}
    now = {**then, "php_version": "8.2.2",
           "plugins": [{"slug": "akismet", "version": "5.1", "active": True, "network_active": False},
                       {"slug": "new", "version": "1", "active": False, "network_active": False}]}
    assert inventory_changes(then, then) == []
    assert inventory_changes(then, now) == ["plugin akismet version 5.0 → 5.1", "plugin new appeared"]
    assert inventory_changes({}, now) == ["the backup holds no inventory"]


def test_backup_paths_must_be_absolute():
    assert BackupConfig(dir="/var/backups/", offsite="~/off").offsite == str(Path("~/off").expanduser())
    for bad in ({"dir": "backups"}, {"dir": "/b", "offsite": "off"}, {"dir": "/b", "verify_database": "x;y"}):
        with pytest.raises(ValidationError):
            BackupConfig(**bad)


def test_rows_compare_changed_tables_and_whole_rows():
    from wpgate.backup import rows

    backup = {"wp_posts": {"rows": 4, "checksum": 1}, "wp_options": {"rows": 9, "checksum": 2}}
    now = {"wp_posts": {"rows": 4, "checksum": 1}, "wp_options": {"rows": 9, "checksum": 3},
           "wp_shop": {"rows": 1, "checksum": 5}}
    assert rows.changed_tables(backup, now) == ["wp_options", "wp_shop"]
    assert rows.changed_tables(backup, {**now, "other_app": {"rows": 1, "checksum": 9}}, "wp_") == [
        "wp_options", "wp_shop"]  # a table outside WordPress's prefix: the restore leaves it alone
    assert rows._same_row(["id", "name"], ["id"], "s", "b") == "b.`id` = s.`id` AND b.`name` <=> s.`name`"
    assert rows._same_row(["a`b"], [], "s", "b") == "b.`a``b` <=> s.`a``b`"
    entry = rows.TableRows("wp_comments", new=1, changed=2, removed=0, examples=["2 · Vera"])
    assert entry.exported == 3 and "1 new and 2 changed" in entry.describe() and "Vera" in entry.describe()
    assert rows.TableRows("wp_x", created_by_run=True, rows=7).record() == {
        "table": "wp_x", "created_by_run": True, "rows": 7}


def test_where_a_backup_folder_could_be_served():
    """Through a link in the root that leads to it or above it, and from each folder above the root that
    holds it (a document root above WordPress's); never from "/"."""
    from wpgate.backup.exposure import candidate_urls

    links = [("wp-content/downloads", "/var/backups"), ("wp-content/other", "/srv/elsewhere")]
    assert candidate_urls("https://example.com/blog", "/srv/www/example/wp", "/var/backups/wpgate", links) == [
        "https://example.com/blog/wp-content/downloads/wpgate"]
    assert candidate_urls("https://example.com", "/srv/www/example/wp", "/srv/www/example/backups", []) == [
        "https://example.com/backups", "https://example.com/example/backups"]
    assert candidate_urls("https://example.com", "/srv/www/example", "/var/backups/wpgate", []) == []


def test_the_options_file_lives_in_a_private_folder_and_a_killed_run_s_day_old_folder_is_swept(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    stale, recent = tmp_path / "wpgate-db-stale1", tmp_path / "wpgate-db-recent"
    for folder in (stale, recent):
        folder.mkdir(mode=0o700)
        (folder / "client.cnf").write_text("[client]\npassword=old\n")
    old = time.time() - 2 * 86400
    os.utime(stale, (old, old))
    with database.options_file(LocalTransport(), credentials()) as path:
        written = Path(path)
        assert written.read_text() == credentials().options_file().value
        assert written.parent.stat().st_mode & 0o777 == 0o700 and written.stat().st_mode & 0o777 == 0o600
    assert not written.parent.exists() and not stale.exists()
    assert recent.exists()  # another run's, maybe in use


def test_both_engines_read_a_dump_s_tables_and_last_line_alike():
    # The scan both engines run (checks.SCAN_DUMP_SQL, through a real awk) and the one reading of its lines.
    from wpgate.backup.checks import SCAN_DUMP_SQL, dump_scan_problems
    from wpgate.backup.model import Backup

    def scan(sql: str) -> str:
        return subprocess.run(["sh", "-c", SCAN_DUMP_SQL], input=sql, capture_output=True, text=True,
                              check=True).stdout

    listed = Backup("p-20261126-101500-ab12", "p", "2026-11-26T10:15:00Z", "/b", None, {}, {},
                    {"wp_posts": {"rows": 1}, "wp_odd`name": {"rows": 0}})
    whole = ("-- MariaDB dump\nCREATE TABLE `wp_posts` (\n  `ID` bigint\n);\n"
             "CREATE TABLE `wp_odd``name` (\n  `a` int\n);\n"
             f"{database.COMPLETION_LINE} on 2026-11-26 10:15:00\n\n")
    assert dump_scan_problems(scan(whole), listed) == []
    assert dump_scan_problems(scan(whole), listed, {"wp_posts": {}, "wp_new": {}}) == [
        "the dump does not cover production's table(s): wp_new"]
    cut = whole.split("CREATE TABLE `wp_odd")[0] + "INSERT INTO `wp_posts` VALUES (1"
    assert dump_scan_problems(scan(cut), listed) == [
        "the dump is incomplete: it does not end with the dump client's completion line "
        f"(\"{database.COMPLETION_LINE} …\"); it ends with 'INSERT INTO `wp_posts` VALUES (1'",
        "the dump lacks table(s) the backup lists: wp_odd`name"]
