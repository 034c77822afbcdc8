"""Core's database upgrade runs, in a process of its own while visitors get the maintenance page, only when
the new files expect another db_version than the database has (WordPress's wp_upgrade() returns at once
otherwise: a minor release such as 6.1.9 → 6.2.6 keeps 53496)."""

from __future__ import annotations

from wpgate.gates.apply import _schema_changes


def test_a_release_that_keeps_the_db_version_needs_no_database_upgrade():
    assert not _schema_changes({"db_version": 53496, "files_db_version": 53496})


def test_a_new_db_version_or_one_not_known_runs_the_upgrade():
    assert _schema_changes({"db_version": 56657, "files_db_version": 57155})
    assert _schema_changes({"db_version": 53496, "files_db_version": None})  # version.php unreadable: upgrade
    assert _schema_changes({})
