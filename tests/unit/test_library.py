"""The library's face (DESIGN.md's Library): cheap to import, errors with exit codes, no terminal in the engine."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import wpgate
from wpgate.errors import ExitStatus


def _modules_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after `statement`."""
    code = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(done.stdout))


def test_import_wpgate_is_cheap_and_the_names_come_on_first_use():
    loaded = _modules_after("import wpgate")
    assert not {"wpgate.project", "wpgate.config", "click", "rich", "pydantic"} & loaded
    loaded = _modules_after("import wpgate; wpgate.Project")
    assert "wpgate.project" in loaded
    with pytest.raises(AttributeError):
        wpgate.NoSuchName  # noqa: B018


SOURCE = Path(wpgate.__file__).parent
# The engine: the library's face and what it runs. The command line (cli.py) and the views it renders with
# (inventory_view.py, progress_view.py, report/terminal.py, demo.py) are the terminal's side.
ENGINE = ["project.py", "pipeline.py", "ending.py", "recovery.py", "run.py", "progress.py", "output.py", "inventory.py",
          "session.py", "deployment.py", "gates/order.py", "checks/__init__.py", "caches/__init__.py",
          "planning.py", "staging_qa.py", "gates/approval.py", "gates/backup.py", "gates/apply.py",
          "gates/caches.py", "gates/monitor.py", "gates/completion.py", "caches/commands.py", "backup/commands.py",
          "backup/prune.py", "notify/__init__.py", "transports/base.py"]


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", ENGINE)
def test_the_engine_imports_no_terminal_library(module):
    assert not {"click", "rich"} & _imported(SOURCE / module)


def test_exported_names_are_the_error_hierarchy():
    assert wpgate.ConfigError.__mro__[1:].count(wpgate.WpgateError) == 1
    assert wpgate.ExitStatus is ExitStatus


def test_a_bad_config_raises_config_error_with_exit_code_2(tmp_path):
    with pytest.raises(wpgate.ConfigError) as missing:
        wpgate.Project.load(tmp_path / "absent.yml")
    assert missing.value.exit_code == ExitStatus.BAD_INPUT == 2
    path = tmp_path / "wpgate.yml"
    path.write_text("sites:\n  production: {path: relative, url: ftp://x, colour: blue}\n")
    with pytest.raises(wpgate.WpgateError) as invalid:
        wpgate.Project.load(path)
    assert isinstance(invalid.value, wpgate.ConfigError) and invalid.value.exit_code == 2
    assert "sites.production" in str(invalid.value)


def test_a_good_config_loads_and_bad_arguments_are_bad_input(tmp_path):
    path = tmp_path / "wpgate.yml"
    path.write_text("state_dir: state\nsites:\n  production: {path: /srv/www/example, url: https://example.com}\n")
    project = wpgate.Project.load(str(path))
    assert project.state_dir == (tmp_path / "state").resolve()
    with pytest.raises(wpgate.WpgateError) as bad:
        project.rollback("20261126-101500-ab12", database="sometimes")
    assert bad.value.exit_code == 2 and "database='sometimes'" in str(bad.value)
    with pytest.raises(wpgate.WpgateError) as none:
        project.report()
    assert none.value.exit_code == 2 and "no runs yet" in str(none.value)


def test_a_run_ending_error_becomes_a_result():
    from wpgate.errors import RolledBack
    from wpgate.project import RunResult

    error = RolledBack("gate 6.6 monitor failed")
    error.report = {"run": "20261126-101500-ab12", "status": "rolled_back"}
    result = RunResult.of_error(error)
    assert (result.status, result.exit_code, result.run_id) == ("rolled_back", 4, "20261126-101500-ab12")
    assert result.message == "gate 6.6 monitor failed" and result.report is error.report


def test_the_pipeline_is_a_table_of_design_md_gates_one_module_each():
    from wpgate import pipeline

    assert [(gate.STEP, gate.NAME) for gate in pipeline.GATES] == [
        ("6.1", "approval"), ("6.2", "backup"), ("6.3", "apply"), ("6.4", "order"), ("6.5", "caches"),
        ("6.6", "monitor"), ("6.7", "completion")]
    assert [gate.__name__ for gate in pipeline.GATES] == [f"wpgate.gates.{gate.NAME}" for gate in pipeline.GATES]
    # Each of the shape of gates.Gate: the dry run is their describe(), the deploy their run(), in this order.
    assert all(callable(getattr(gate, name)) for gate in pipeline.GATES for name in ("describe", "run", "summary"))
    assert set(pipeline.FINISHING) <= set(pipeline.GATES)
    assert list(pipeline.FINISHING) == sorted(pipeline.FINISHING, key=pipeline.GATES.index)
    schema = json.loads((SOURCE / "report" / "report.schema.json").read_text())
    assert schema["$defs"]["gate"]["properties"]["name"]["enum"] == [gate.NAME for gate in pipeline.GATES]
