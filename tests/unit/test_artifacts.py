"""Approval compares staging with a planned artifact without packing it again (`artifacts.captures_as`):
it must say "the same" exactly when a capture now would give the same zip."""

from __future__ import annotations

from pathlib import Path

import pytest

from wpgate import artifacts
from wpgate.inventory import Inventory
from wpgate.transports.local import LocalTransport


def _site(root: Path) -> Inventory:
    plugin = root / "wp-content" / "plugins" / "hello"
    (plugin / "includes").mkdir(parents=True)
    (plugin / "hello.php").write_text("<?php\n/* Plugin Name: Hello\n * Version: 1.0.0 */\n")
    (plugin / "includes" / "admin.php").write_text("<?php // admin\n")
    (plugin / "readme.txt").write_text("=== Hello ===\n")
    (plugin / "empty").mkdir()
    return Inventory({"paths": {"plugins": str(root / "wp-content" / "plugins"),
                                "themes": str(root / "wp-content" / "themes"), "abspath": str(root)}})


@pytest.fixture()
def planned(tmp_path: Path) -> tuple[Inventory, Path, Path]:
    found = _site(tmp_path / "site")
    capture = artifacts.capture(LocalTransport(), found, "plugin", "hello", "1.0.0", tmp_path / "state" / "artifacts",
                                tmp_path / "state")
    return found, capture.file, tmp_path / "site" / "wp-content" / "plugins" / "hello"


def test_an_unchanged_component_captures_as_its_artifact(planned):
    found, zip_path, _ = planned
    assert artifacts.captures_as(LocalTransport(), found, "plugin", "hello", zip_path)


@pytest.mark.parametrize("change", [
    lambda plugin: (plugin / "readme.txt").write_text("=== Hello, edited ===\n"),
    lambda plugin: (plugin / "includes" / "admin.php").chmod(0o600),
    lambda plugin: (plugin / "includes" / "new.php").write_text("<?php // new\n"),
    lambda plugin: (plugin / "readme.txt").unlink(),
    lambda plugin: (plugin / "empty").rmdir(),
    lambda plugin: (plugin / "empty").chmod(0o700),
], ids=["content", "mode", "file added", "file removed", "folder removed", "folder mode"])
def test_any_change_a_capture_would_pack_is_told(planned, change):
    found, zip_path, plugin = planned
    change(plugin)
    again = artifacts.capture(LocalTransport(), found, "plugin", "hello", "1.0.0", zip_path.parent, zip_path.parent.parent)
    assert again.file != zip_path  # the capture differs: so must the comparison
    assert not artifacts.captures_as(LocalTransport(), found, "plugin", "hello", zip_path)


def test_a_zip_of_another_top_folder_is_not_the_component(planned, tmp_path):
    found, zip_path, _ = planned
    renamed = tmp_path / "other.zip"
    artifacts.pack({}, renamed, "another", lambda member: b"")
    assert not artifacts.captures_as(LocalTransport(), found, "plugin", "hello", renamed)
