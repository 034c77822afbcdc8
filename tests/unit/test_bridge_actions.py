"""The PHP bridge's index of actions against its Python callers: every action Python asks for is in the
index, every action in the index is asked for by Python (no dead action), and every handler exists. The
bridge's files join into one program that PHP parses."""

from __future__ import annotations

import ast
import re
import subprocess
from importlib import resources
from pathlib import Path

from wpgate import bridge, upgrader

SOURCE = Path(bridge.__file__).resolve().parents[1]  # src/wpgate
PHP_FOLDER = resources.files("wpgate.bridge").joinpath("php")


def php_index() -> dict[str, str]:
    """actions.php's table: action name → handler function."""
    text = PHP_FOLDER.joinpath("actions.php").read_text()
    table = re.search(r"\$wpgate_actions = array\((.*?)\n\);", text, re.S)
    assert table, "actions.php holds no $wpgate_actions table"
    return dict(re.findall(r"'([a-z_]+)'\s*=>\s*'([a-z_]+)'", table.group(1)))


def php_functions() -> set[str]:
    return {name for part in bridge.PARTS
            for name in re.findall(r"^function (\w+)\(", PHP_FOLDER.joinpath(f"{part}.php").read_text(), re.M)}


def python_calls() -> dict[str, list[str]]:
    """Every action name wpgate's Python passes to a bridge's call(), with where: a literal, or
    f"install_{kind}" (one for each kind the upgrader takes)."""
    found: dict[str, list[str]] = {}
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "call"
                    and "bridge" in ast.unparse(node.func.value).lower() and node.args):
                continue
            where = f"{path.relative_to(SOURCE)}:{node.lineno}"
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                names = [first.value]
            elif isinstance(first, ast.JoinedStr) and ast.unparse(first) == "f'install_{kind}'":
                names = [f"install_{kind}" for kind in upgrader.TYPES]
            else:
                raise AssertionError(f"{where}: a bridge action this test cannot read: {ast.unparse(first)}")
            for name in names:
                found.setdefault(name, []).append(where)
    return found


def test_every_action_python_asks_for_is_in_the_index():
    index, calls = php_index(), python_calls()
    assert calls, "no bridge.call(...) found in the package"
    missing = {name: where for name, where in calls.items() if name not in index}
    assert not missing, f"actions Python calls that the bridge's index lacks: {missing}"


def test_no_dead_action_in_the_index():
    dead = set(php_index()) - set(python_calls())
    assert not dead, f"actions in the bridge's index that no Python code calls: {sorted(dead)}"


def test_every_handler_exists_and_every_action_function_is_indexed():
    index, functions = php_index(), php_functions()
    assert set(index.values()) <= functions, set(index.values()) - functions
    unindexed = {name for name in functions if name.startswith("wpgate_action_")} - set(index.values())
    assert not unindexed, f"action functions the index does not name: {sorted(unindexed)}"


def test_the_files_are_the_parts_and_join_into_one_program_php_parses(tmp_path):
    assert sorted(p.name for p in PHP_FOLDER.iterdir() if p.name.endswith(".php")) == sorted(
        f"{part}.php" for part in bridge.PARTS)
    program = bridge.php_source()
    assert program.startswith(b"<?php\n") and program.count(b"<?php") == 1
    assert bridge.PARTS[0] == "boot" and bridge.PARTS[-1] == "actions"
    path = tmp_path / "bridge.php"
    path.write_bytes(program)
    checked = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
