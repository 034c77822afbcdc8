"""The command line's arguments → exit code layer, run in this process with click's runner (in httpie's manner):
each case fails before any WordPress is needed, so no site is built. DESIGN.md's exit codes are the contract."""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from wpgate import cli
from wpgate.errors import ExitStatus, GateFailed, GateRefused, WpgateError


@dataclass
class Ended:
    code: int
    stdout: str
    stderr: str


def wpgate(*args: str, config: Path | None = None) -> Ended:
    """`wpgate ARGS` through cli.main, as the installed script runs it, its streams captured."""
    argv = (["-c", str(config)] if config else []) + list(args)
    previous = signal.getsignal(signal.SIGTERM)  # main() installs its own handler
    try:
        with CliRunner().isolation(env={"WPGATE_CONFIG": None}) as (stdout, stderr, _):
            try:
                cli.main(argv)
                code = 0
            except SystemExit as done:
                code = done.code
            sys.stdout.flush()
            sys.stderr.flush()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return Ended(code, stdout.getvalue().decode(), stderr.getvalue().decode())


def one_line_error(ended: Ended, code: int, *fragments: str) -> str:
    """The command ended with `code` and said why in one line, with no traceback."""
    assert ended.code == code, ended
    assert "Traceback" not in ended.stderr
    lines = [line for line in ended.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("wpgate: error: "), ended.stderr
    for fragment in fragments:
        assert fragment in lines[0], ended.stderr
    return lines[0]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """Two sites on this machine: one whose folder is gone, one whose folder holds no WordPress."""
    (tmp_path / "empty").mkdir()
    sites = {"gone": {"path": str(tmp_path / "gone"), "url": "http://127.0.0.1:9"},
             "empty": {"path": str(tmp_path / "empty"), "url": "http://127.0.0.1:9"}}
    path = tmp_path / "wpgate.yml"
    path.write_text(yaml.safe_dump({"sites": sites}))
    return path


def test_exit_statuses_are_design_md_s():
    assert {status.name: int(status) for status in ExitStatus} == {
        "COMPLETE": 0, "ERROR": 1, "BAD_INPUT": 2, "REFUSED": 3, "ROLLED_BACK": 4, "ROLLBACK_INCOMPLETE": 5,
        "INTERRUPTED": 130}


def test_a_gate_failing_is_part_of_the_hierarchy():
    failure = GateFailed("backup: no off-site copy", {"configured": False})
    assert isinstance(failure, WpgateError) and not isinstance(failure, GateRefused)
    assert failure.exit_code == ExitStatus.REFUSED and failure.evidence == {"configured": False}
    assert failure.message == str(failure) == "backup: no off-site copy"


def test_version_exits_0():
    ended = wpgate("--version")
    assert ended.code == ExitStatus.COMPLETE and "wpgate" in ended.stdout


@pytest.mark.parametrize("args", [[], ["no-such-command"], ["inventory"], ["inventory", "x", "--no-such-flag"],
                                  ["deploy", "release.yml"]])
def test_usage_errors_exit_2(args):
    ended = wpgate(*args)
    assert ended.code == ExitStatus.BAD_INPUT, ended
    assert "Traceback" not in ended.stderr


def test_a_config_file_that_does_not_exist(tmp_path):
    one_line_error(wpgate("inventory", "x", config=tmp_path / "missing.yml"), ExitStatus.BAD_INPUT,
                   "missing.yml")


def test_a_config_that_is_not_yaml(tmp_path):
    path = tmp_path / "wpgate.yml"
    path.write_text("sites: [unclosed\n")
    ended = wpgate("inventory", "x", config=path)
    assert ended.code == ExitStatus.BAD_INPUT and "not valid YAML" in ended.stderr, ended


def test_an_invalid_config_lists_its_problems(tmp_path):
    path = tmp_path / "wpgate.yml"
    path.write_text(yaml.safe_dump({"sites": {"x": {"url": "not a url", "colour": "red"}}}))
    ended = wpgate("inventory", "x", config=path)
    assert ended.code == ExitStatus.BAD_INPUT, ended
    assert "sites.x" in ended.stderr and "Traceback" not in ended.stderr


@pytest.mark.parametrize("command", ["inventory", "check", "purge", "backup"])
def test_an_unknown_site(config, command):
    one_line_error(wpgate(command, "nowhere", config=config), ExitStatus.BAD_INPUT, "nowhere")


@pytest.mark.parametrize("command", [["inventory"], ["check"], ["purge"], ["purge", "--dry-run"]])
def test_a_site_folder_that_is_gone(config, tmp_path, command):
    """As the README says for inventory: a wrong `path:` is bad input, for the commands that only read the
    site through its web server too (they once exited 3, the pages failing)."""
    one_line_error(wpgate(command[0], "gone", *command[1:], config=config), ExitStatus.BAD_INPUT,
                   f"no folder at {tmp_path / 'gone'}", "check `path:`")


@pytest.mark.parametrize("command", ["inventory", "check", "purge"])
def test_a_site_folder_without_wordpress(config, tmp_path, command):
    one_line_error(wpgate(command, "empty", config=config), ExitStatus.BAD_INPUT,
                   f"no WordPress at {tmp_path / 'empty'}")


def test_a_release_manifest_that_does_not_exist(config, tmp_path):
    ended = wpgate("deploy", str(tmp_path / "release.yml"), "--to", "gone", "--dry-run", config=config)
    one_line_error(ended, ExitStatus.BAD_INPUT, "release.yml")


def test_a_release_manifest_that_is_not_one(config, tmp_path):
    release = tmp_path / "release.yml"
    release.write_text("updates: 3\n")
    ended = wpgate("deploy", str(release), "--to", "gone", "--dry-run", config=config)
    assert ended.code == ExitStatus.BAD_INPUT and "Traceback" not in ended.stderr, ended
    assert "release.yml" in ended.stderr


def test_contradicting_rollback_flags(config):
    one_line_error(wpgate("rollback", "some-run", "--keep-database", "--restore-database", config=config),
                   ExitStatus.BAD_INPUT, "contradict")


@pytest.mark.parametrize("command", [["status"], ["report"]])
def test_no_runs_yet(config, command):
    one_line_error(wpgate(*command, config=config), ExitStatus.BAD_INPUT, "no runs yet")


@pytest.mark.parametrize("command", [["status", "no-such-run"], ["report", "no-such-run"],
                                     ["resume", "no-such-run"], ["rollback", "no-such-run", "--yes"]])
def test_an_unknown_run(config, command):
    ended = wpgate(*command, config=config)
    assert ended.code == ExitStatus.BAD_INPUT and "Traceback" not in ended.stderr, ended
    assert "no-such-run" in ended.stderr


def test_restore_asks_and_without_a_terminal_or_yes_refuses_in_one_line(config):
    """As rollback: no --yes and no terminal to ask on is bad input, said before the backup is even looked for."""
    one_line_error(wpgate("restore", "gone-20261126-101500-ab12", config=config), ExitStatus.BAD_INPUT,
                   "restore asks before changing production", "pass --yes")


@pytest.mark.parametrize("args, fragment", [
    (["not a backup", "--yes"], "is not a backup id"),
    (["elsewhere-20261126-101500-ab12", "--yes"], "site elsewhere, which"),
    (["gone-20261126-101500-ab12", "--yes"], "has no `backup:` settings"),
    (["gone-20261126-101500-ab12", "--verify", "--dry-run"], "--verify touches no site"),
])
def test_restore_bad_input(config, args, fragment):
    one_line_error(wpgate("restore", *args, config=config), ExitStatus.BAD_INPUT, fragment)


def test_restore_of_a_backup_that_is_not_there_is_refused_and_records_nothing(tmp_path):
    """An id no backup has is a wrong argument: exit 2, one line (as with --verify), no restore record, nothing
    written on the site."""
    (tmp_path / "site").mkdir()
    (tmp_path / "backups").mkdir()
    path = tmp_path / "wpgate.yml"
    path.write_text(yaml.safe_dump({"state_dir": "state", "sites": {"production": {
        "path": str(tmp_path / "site"), "url": "http://127.0.0.1:9",
        "backup": {"dir": str(tmp_path / "backups"), "offsite": str(tmp_path / "offsite")}}}}))
    for dry_run in ([], ["--dry-run"]):
        ended = wpgate("restore", "production-20261126-101500-ab12", "--yes", *dry_run, config=path)
        one_line_error(ended, ExitStatus.BAD_INPUT, "no backup production-20261126-101500-ab12")
    assert not (tmp_path / "state" / "restores").exists()
    assert list((tmp_path / "site").iterdir()) == [] and list((tmp_path / "backups").iterdir()) == []
