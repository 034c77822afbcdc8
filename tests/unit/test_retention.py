"""Retention's decisions: which backups and artifacts go, by dates, runs and releases; and its config keys."""

from datetime import datetime, timedelta, timezone

import pytest

from wpgate import config
from wpgate.backup import retention
from wpgate.backup.retention import ReleaseFacts, RunFacts
from wpgate.errors import ConfigError

NOW = datetime(2026, 11, 29, 22, 0, tzinfo=timezone.utc)


def backups_at(*hours_ago: float) -> list[tuple[str, datetime]]:
    """Backups `hours_ago` before NOW, named b<hours>."""
    return [(f"b{hours:g}", NOW - timedelta(hours=hours)) for hours in hours_ago]


def kept(decisions) -> list[str]:
    return [decision.name for decision in decisions if decision.keep]


def gone(decisions) -> list[str]:
    return [decision.name for decision in decisions if not decision.keep]


def test_without_retention_every_backup_is_kept():
    decisions = retention.backups(backups_at(1, 30, 300), [], keep_last=None, keep_daily=None)
    assert gone(decisions) == []
    assert all("no retention set" in " ".join(decision.reasons) for decision in decisions)


def test_keep_last_keeps_the_newest_and_removes_the_rest():
    decisions = retention.backups(backups_at(5, 1, 3, 2, 4), [], keep_last=2, keep_daily=None)
    assert [decision.name for decision in decisions] == ["b1", "b2", "b3", "b4", "b5"]  # newest first
    assert kept(decisions) == ["b1", "b2"]
    assert "the newest backup" in decisions[0].reasons


def test_keep_daily_keeps_the_newest_of_each_recent_day_that_has_one():
    # NOW is 22:00: 1h and 3h ago are today; 23h and 25h ago yesterday; 50h ago two days back; 100h four days back.
    decisions = retention.backups(backups_at(1, 3, 23, 25, 50, 100), [], keep_last=1, keep_daily=3)
    assert kept(decisions) == ["b1", "b23", "b50"]
    assert any("keep_daily 3" in reason for reason in decisions[2].reasons)


def test_keep_daily_alone_still_keeps_the_newest():
    decisions = retention.backups(backups_at(1, 2, 30), [], keep_last=None, keep_daily=0)
    assert kept(decisions) == ["b1"]


def test_a_run_not_ended_or_failed_to_roll_back_keeps_its_backup_however_old():
    runs = [RunFacts("r-running", "production", "running", backup="b200"),
            RunFacts("r-failed", "production", "rollback_failed", backup="b300"),
            RunFacts("r-back", "production", "rolled_back", backup="b100"),
            RunFacts("r-refused", "production", "refused", backup="b50")]
    decisions = retention.backups(backups_at(1, 50, 100, 200, 300), runs, keep_last=1, keep_daily=None)
    assert kept(decisions) == ["b1", "b200", "b300"]
    assert gone(decisions) == ["b50", "b100"]
    assert any("r-running has not ended" in reason for reason in decisions[3].reasons)


def test_complete_runs_keep_their_backups_as_far_as_keep_last():
    runs = [RunFacts(f"r{hours}", "production", "complete", backup=f"b{hours}",
                     ended_at=(NOW - timedelta(hours=hours - 0.5)).isoformat()) for hours in (10, 20, 30)]
    # Five newer backups taken by hand: keep_last 2 keeps them by count, and the two newest complete runs'.
    decisions = retention.backups(backups_at(1, 2, 3, 4, 5, 10, 20, 30), runs, keep_last=2, keep_daily=None)
    assert kept(decisions) == ["b1", "b2", "b10", "b20"]
    assert gone(decisions) == ["b3", "b4", "b5", "b30"]


def test_the_newest_backup_is_kept_even_when_a_run_protects_none():
    decisions = retention.backups(backups_at(3), [], keep_last=1, keep_daily=0)
    assert kept(decisions) == ["b3"]


def test_artifacts_of_a_release_not_yet_deployed_are_kept_and_of_a_deployed_one_removed():
    releases = [ReleaseFacts("2026-11-29-1", ("artifacts/core-a.zip", "artifacts/plugin-b.zip")),
                ReleaseFacts("2026-11-29-2", ("artifacts/plugin-b.zip", "artifacts/plugin-c.zip"))]
    runs = [RunFacts("r1", "production", "complete", release="2026-11-29-1",
                     artifacts=("artifacts/core-a.zip", "artifacts/plugin-b.zip"))]
    names = ["artifacts/core-a.zip", "artifacts/plugin-b.zip", "artifacts/plugin-c.zip"]
    decisions = retention.artifacts(names, releases, runs)
    assert gone(decisions) == ["artifacts/core-a.zip"]
    assert kept(decisions) == ["artifacts/plugin-b.zip", "artifacts/plugin-c.zip"]


def test_artifacts_of_a_run_that_may_resume_are_kept_and_unknown_ones_too():
    runs = [RunFacts("r1", "production", "running", release="x", artifacts=("artifacts/a.zip",)),
            RunFacts("r2", "production", "rolled_back", release="y", artifacts=("artifacts/b.zip",))]
    decisions = retention.artifacts(["artifacts/a.zip", "artifacts/b.zip", "artifacts/orphan.zip"], [], runs)
    assert kept(decisions) == ["artifacts/a.zip", "artifacts/orphan.zip"]
    assert gone(decisions) == ["artifacts/b.zip"]
    assert "no saved release or run refers to it" in decisions[2].reasons[0]


def test_an_unreadable_release_keeps_every_artifact():
    runs = [RunFacts("r2", "production", "complete", release="y", artifacts=("artifacts/b.zip",))]
    decisions = retention.artifacts(["artifacts/b.zip"], [], runs, unreadable=["releases/broken.yml"])
    assert gone(decisions) == []


BASE = """
sites:
  production:
    path: /srv/www/example
    url: https://example.com
    backup: {dir: /var/backups/wpgate, offsite: /mnt/offsite, %s}
"""


@pytest.mark.parametrize("keys, expected", [("keep_last: 3, keep_daily: 7", (3, 7)), ("keep_daily: 0", (None, 0)),
                                            ("verify_database: x", (None, None))])
def test_retention_keys_are_read(tmp_path, keys, expected):
    path = tmp_path / "wpgate.yml"
    path.write_text(BASE % keys)
    backup = config.load(path).site("production").backup
    assert (backup.keep_last, backup.keep_daily) == expected


@pytest.mark.parametrize("keys, key", [("keep_last: 0", "keep_last"), ("keep_last: '3'", "keep_last"),
                                       ("keep_last: true", "keep_last"), ("keep_daily: -1", "keep_daily"),
                                       ("keep_daily: 1.5", "keep_daily")])
def test_bad_retention_values_are_refused_with_their_key(tmp_path, keys, key):
    path = tmp_path / "wpgate.yml"
    path.write_text(BASE % keys)
    with pytest.raises(ConfigError) as raised:
        config.load(path)
    assert f"sites.production.backup.{key}" in str(raised.value)
    assert raised.value.exit_code == 2
