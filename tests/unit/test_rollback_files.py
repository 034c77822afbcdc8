"""Rollback's own files and renames, on real folders with the real shell: private SQL files, core put back
name by name (again and again), wpgate's folder gone with the last lock."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wpgate.command import Command
from wpgate.errors import GateRefused
from wpgate.lock import SiteLock
from wpgate.rollback import _PUT_BACK_CORE, _PUT_BACK_FOLDER
from wpgate.run import Run, open_private
from wpgate.transports import LocalTransport


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_private_file_is_owner_only_from_its_first_byte_even_over_an_open_one(tmp_path):
    old = os.umask(0)
    try:
        fresh, existing = tmp_path / "fresh.sql", tmp_path / "existing.sql"
        existing.write_text("old")
        existing.chmod(0o644)
        for path in (fresh, existing):
            with open_private(path) as output:
                assert mode(path) == 0o600  # before anything is written
                output.write(b"-- dump")
            assert mode(path) == 0o600 and path.read_bytes() == b"-- dump"
    finally:
        os.umask(old)


def test_a_run_folder_is_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        run = Run(tmp_path, "production", "release-1")
        run.close()
    finally:
        os.umask(old)
    assert mode(run.folder) == 0o700


def core_tree(root: Path, version: str) -> None:
    for folder in ("wp-admin", "wp-includes"):
        (root / folder).mkdir(parents=True)
        (root / folder / "version.txt").write_text(version)
    for name in ("index.php", "wp-load.php"):
        (root / name).write_text(version)


def put_back(live: Path, aside: Path, kept: list[str], added: list[str]) -> None:
    LocalTransport().check(Command.of("sh", "-c", _PUT_BACK_CORE, "sh", str(live), str(aside),
                                      f"{aside}.replaced", "php", str(len(kept)), *kept, *added))


def contents(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): path.read_text() for path in sorted(root.rglob("*")) if path.is_file()}


def test_core_goes_back_name_by_name_and_again_from_where_it_stopped(tmp_path):
    live, aside, old = tmp_path / "site", tmp_path / "aside" / "core", tmp_path / "old"
    core_tree(old, "old")
    core_tree(aside, "old")
    core_tree(live, "new")
    (live / "wp-config.php").write_text("config")
    (live / "wp-new-file.php").write_text("new")  # added by the new core
    names = ["index.php", "wp-admin", "wp-includes", "wp-load.php"]
    put_back(live, aside, names[:2], [])  # a first rollback, killed after two names
    assert contents(live)["wp-admin/version.txt"] == "old" and contents(live)["wp-load.php"] == "new"
    put_back(live, aside, names[2:], ["wp-new-file.php"])  # run again: what is still aside, and the added file
    assert contents(live) == {**contents(old), "wp-config.php": "config"}
    assert not any(aside.iterdir())
    put_back(live, aside, [], [])  # and again, with nothing left aside: nothing changes
    assert contents(live) == {**contents(old), "wp-config.php": "config"}


def test_an_empty_copy_aside_removes_nothing(tmp_path):
    live, aside = tmp_path / "site", tmp_path / "aside" / "core"
    core_tree(live, "old")
    aside.mkdir(parents=True)
    before = contents(live)
    put_back(live, aside, [], [])
    assert contents(live) == before
    put_back(live, aside, ["index.php", "wp-admin", "wp-load.php"], [])  # names not aside: put back already
    assert contents(live) == before


def test_the_last_lock_takes_wpgate_folder_and_its_guards_with_it(tmp_path):
    folder = tmp_path / "wpgate-aside"
    transport = LocalTransport()
    lock = SiteLock(transport, str(folder), "20261126-101500-ab12", "production")
    assert lock.acquire() is None
    (folder / "index.php").write_text("<?php")
    (folder / ".htaccess").write_text("Require all denied")
    lock.release()
    assert not folder.exists()

    lock.acquire()
    (folder / "index.php").write_text("<?php")
    (folder / "20261126-090000-cd34").mkdir()  # another run's copies, kept for a person
    lock.release()
    assert sorted(path.name for path in folder.iterdir()) == ["20261126-090000-cd34", "index.php"]


def put_back_folder(live: Path, aside: Path) -> None:
    LocalTransport().check(Command.of("sh", "-c", _PUT_BACK_FOLDER, "sh", str(live), str(aside),
                                      f"{aside}.replaced", "php"))


def test_a_plugin_goes_back_by_two_renames_and_again_from_where_it_stopped(tmp_path):
    live, aside = tmp_path / "plugins" / "shop", tmp_path / "run" / "plugins" / "shop"
    trash = Path(f"{aside}.replaced")
    for folder, version in ((live, "new"), (aside, "old")):
        folder.mkdir(parents=True)
        (folder / "shop.php").write_text(version)
    old_inode = aside.stat().st_ino
    put_back_folder(live, aside)
    assert contents(live) == {"shop.php": "old"} and live.stat().st_ino == old_inode  # renamed, not copied
    assert not aside.exists() and not trash.exists()

    # A put-back killed between its two renames left no live folder, the new one in the trash, the copy aside.
    live.rename(aside)
    trash.mkdir()
    (trash / "shop.php").write_text("new")
    put_back_folder(live, aside)
    assert contents(live) == {"shop.php": "old"}
    assert not aside.exists() and not trash.exists()


def test_a_put_back_that_cannot_move_the_live_folder_leaves_it_in_place(tmp_path):
    live, aside = tmp_path / "plugins" / "shop", tmp_path / "run" / "plugins" / "shop"
    for folder, version in ((live, "new"), (aside, "old")):
        folder.mkdir(parents=True)
        (folder / "shop.php").write_text(version)
    result = LocalTransport().run(Command.of("sh", "-c", _PUT_BACK_FOLDER, "sh", str(live), str(aside),
                                             str(tmp_path / "no-such-folder" / "trash"), "php"))
    assert not result.ok and f"cannot move {live} out of the way" in result.error_text()
    assert contents(live) == {"shop.php": "new"} and contents(aside) == {"shop.php": "old"}


def test_a_lock_held_in_another_of_the_sites_folders_stops_a_run_and_is_broken_only_on_request(tmp_path):
    transport = LocalTransport()
    legacy = tmp_path / "wp-content" / "wpgate-aside"
    legacy.mkdir(parents=True)
    (legacy / "lock").write_text('{"run": "20261126-090000-cd34", "host": "elsewhere", "pid": 1, "since": "x"}')
    folder = tmp_path / ".wpgate-aside-site"
    lock = SiteLock(transport, str(folder), "20261126-101500-ab12", "production",
                    elsewhere=[str(legacy / "lock"), str(folder / "lock")])
    with pytest.raises(GateRefused, match=r"locked by run 20261126-090000-cd34 .*its lock: .*wp-content/wpgate-aside/lock"):
        lock.acquire()
    assert not folder.exists()
    assert lock.acquire(break_lock=True)["run"] == "20261126-090000-cd34"
    assert not (legacy / "lock").exists() and (folder / "lock").is_file()
    lock.release()
    assert not folder.exists()
