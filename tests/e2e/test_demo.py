"""`wpgate demo` with the installed command: the whole procedure on its own pair, and nothing left running after."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import WPGATE, assert_one_line_error, wpgate
from wpgate.testbed.process import port_answers

pytestmark = pytest.mark.e2e

STEPS = [
    "$ wpgate -c demo/wpgate.yml inventory production",
    "$ wpgate -c demo/wpgate.yml plan --from staging --to production -o demo/release.yml",
    '$ wpgate -c demo/wpgate.yml approve demo/release.yml --qa demo/qa.yml --by "wpgate demo"',
    "$ wpgate -c demo/wpgate.yml deploy demo/release.yml --to production --dry-run",
    "$ wpgate -c demo/wpgate.yml deploy demo/release.yml --to production --yes",
    "$ wpgate -c demo/wpgate.yml inventory production",
    "$ wpgate -c demo/wpgate.yml status",
    "$ wpgate -c demo/wpgate.yml report RUN --html demo/report.html",
]


def run_demo(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(WPGATE), "demo", "--dir", "demo", *options], cwd=folder, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def find_steps(output: str, steps: list[str], run_id: str) -> list[str]:
    """Each step's output, in order; every step must be there."""
    starts = []
    for step in steps:
        step = step.replace("RUN", run_id)
        found = output.find(step + "\n", starts[-1] + 1 if starts else 0)
        assert found >= 0, f"{step!r} missing (or out of order) in:\n{output}"
        starts.append(found)
    return [output[start:end] for start, end in zip(starts, starts[1:] + [len(output)])]


def only_run(demo: Path) -> Path:
    runs = list((demo / ".wpgate" / "runs").iterdir())
    assert len(runs) == 1, runs  # the dry run leaves no run behind
    return runs[0]


def bed_root(config: Path) -> Path:
    """The test bed's folder, found from the sites' paths (BED/sites/NAME) in the demo's config."""
    sites = yaml.safe_load(config.read_text())["sites"]
    roots = {Path(site["path"]).parents[1] for site in sites.values()}
    assert len(roots) == 1, roots
    return roots.pop()


def assert_nothing_left_running(config: Path) -> None:
    """The sites' ports are closed and no process (MariaDB, nginx, php-fpm, php -S) still names the bed's folder."""
    sites = yaml.safe_load(config.read_text())["sites"]
    ports = [int(site["url"].rsplit(":", 1)[1]) for site in sites.values()]
    assert len(ports) == 2
    assert [port for port in ports if port_answers(port)] == []
    root = bed_root(config)
    assert not root.exists(), f"{root} was left behind"
    survivors = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(root) in command:
                survivors.append(f"{entry.name}: {command}")
    assert survivors == []


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    return {"folder": folder, "result": run_demo(folder)}


def test_demo_runs_every_step_and_completes(demo_run):
    result = demo_run["result"]
    assert result.returncode == 0, result.stderr
    output = result.stderr
    assert "Traceback" not in output
    assert result.stdout == ""  # every command's human view goes to stderr, as the user's would
    outputs = find_steps(output, STEPS, only_run(demo_run["folder"] / "demo").name)
    assert "WordPress 6.1.9" in outputs[0]
    assert "written to demo/release.yml" in outputs[1]
    assert "approved release" in outputs[2]
    assert "dry run: nothing was changed" in outputs[3]
    assert "complete: production holds release" in outputs[4]
    assert "WordPress 6.5.5" in outputs[5]
    assert outputs[6].splitlines()[1].endswith(": complete")
    assert "(complete) written to demo/report.html" in outputs[7]
    assert "wpgate demo complete" in output
    # Where everything is, and how to run the steps by hand on one's own sites.
    assert "config:      demo/wpgate.yml" in output
    assert "release:     demo/release.yml (approved)" in output
    assert "QA record:   demo/qa.yml" in output
    assert "run report:  demo/.wpgate/runs/" in output
    assert "HTML report: demo/report.html (open it in a browser)" in output
    assert "wpgate plan --from staging --to production -o release.yml" in output
    assert "wpgate report RUN_ID --html report.html" in output
    assert "sites stop now" in output


def test_demo_watches_production_for_a_short_window_only(demo_run):
    """The demo stays quick because its monitoring window is short and nothing waits on the network
    (no time is measured here: a wall time depends on the machine, not on the demo)."""
    assert demo_run["result"].returncode == 0, demo_run["result"].stderr
    demo = demo_run["folder"] / "demo"
    config = yaml.safe_load((demo / "wpgate.yml").read_text())
    assert config["sites"]["production"]["checks"]["window"] == "10s"
    report = json.loads((only_run(demo) / "report.json").read_text())
    monitor = {gate["step"]: gate for gate in report["gates"]}["6.6"]
    assert monitor["status"] == "passed" and monitor["evidence"]["window"] == 10
    assert monitor["evidence"]["passes"] >= 1


def test_demo_leaves_its_files_and_a_complete_run(demo_run):
    assert demo_run["result"].returncode == 0, demo_run["result"].stderr
    demo = demo_run["folder"] / "demo"
    config = yaml.safe_load((demo / "wpgate.yml").read_text())
    assert set(config["sites"]) == {"staging", "production"}
    qa = yaml.safe_load((demo / "qa.yml").read_text())
    assert {check["status"] for check in qa["checks"]} == {"passed"}
    assert [issue["status"] for issue in qa["issues"]] == ["resolved"]
    release = yaml.safe_load((demo / "release.yml").read_text())
    assert release["approval"]["by"] == "wpgate demo"
    assert release["approval"]["digest"].startswith("sha256:")
    assert release["qa"]["checks"] == qa["checks"]  # the QA record, copied in by approve
    assert [issue["title"] for issue in release["qa"]["issues"]] == [issue["title"] for issue in qa["issues"]]
    assert [(u["type"], u["slug"]) for u in release["updates"]][0] == ("core", "wordpress")
    runs = [only_run(demo)]
    report = json.loads((runs[0] / "report.json").read_text())
    assert report["status"] == "complete"
    assert report["release"] == release["id"]
    assert {u["status"] for u in report["updates"]} == {"applied"}
    assert f"run report:  demo/.wpgate/runs/{runs[0].name}/report.json" in demo_run["result"].stderr
    assert "<h2>Complete</h2>" in (demo / "report.html").read_text()


def test_demo_stops_every_server_it_started(demo_run):
    assert demo_run["result"].returncode == 0, demo_run["result"].stderr
    assert_nothing_left_running(demo_run["folder"] / "demo" / "wpgate.yml")


def test_a_second_demo_replaces_the_first_and_broken_shows_the_rollback(demo_run, tmp_path):
    """A copy of the first demo's folder is replaced (the folder the other tests read stays as it is, so
    this test may run in any order). `--broken`: the deploy exits 4 (the faulty update caught after the
    change, production rolled back), which is the demo's expected course: exit 0."""
    assert demo_run["result"].returncode == 0, demo_run["result"].stderr
    shutil.copytree(demo_run["folder"] / "demo", tmp_path / "demo", symlinks=True)
    result = run_demo(tmp_path, "--broken")
    assert result.returncode == 0, result.stderr
    demo = tmp_path / "demo"
    run = only_run(demo)
    output = result.stderr
    assert "Traceback" not in output and result.stdout == ""
    assert "wpgate-faulty │ 1.1.0      │ 2.0.1" in output  # part of the release
    outputs = find_steps(output, STEPS, run.name)
    assert "rolled back: production is proved back at its pre-deployment state" in outputs[4]
    assert "WordPress 6.1.9" in outputs[5] and "wpgate-faulty │ 1.1.0" in outputs[5]
    assert outputs[6].splitlines()[1].endswith(": rolled_back")
    assert "wpgate demo --broken complete" in output
    assert "culprit named by the report: plugin wpgate-faulty 1.1.0 → 2.0.1" in output
    assert "HTML report: demo/report.html (open it in a browser)" in output
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "rolled_back" and report["rollback"]["problems"] == []
    assert "approval" in yaml.safe_load((demo / "release.yml").read_text())

    from tests.support.chromium import render_page

    rendered = render_page(demo / "report.html", width=1280)
    assert rendered.title.startswith(f"Release {report['release']} to production: Rolled back")
    assert "Culprit: plugin wpgate-faulty 1.1.0 → 2.0.1" in rendered.text
    assert "put back at 1.1.0" in rendered.text and "Rollback" in rendered.text
    assert rendered.scroll_width <= rendered.viewport_width
    assert_nothing_left_running(demo / "wpgate.yml")


def test_demo_refuses_a_folder_that_is_not_its_own(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "notes.txt").write_text("mine")
    result = wpgate("demo", "--dir", str(tmp_path / "demo"))
    assert_one_line_error(result, 2, "not empty", "--dir")
    assert (tmp_path / "demo" / "notes.txt").read_text() == "mine"


def test_ctrl_c_stops_the_demo_and_its_servers(tmp_path):
    """Ctrl-C in a terminal reaches the whole foreground process group: the demo and the step it runs. The
    demo starts with SIGINT's default action, as a terminal's foreground job has it: a process that ignores
    SIGINT (as some library's worker in this test process may have left it) passes that on to its children,
    and Python then never raises KeyboardInterrupt."""
    process = subprocess.Popen([str(WPGATE), "demo", "--dir", "demo"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                               start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if line.startswith("$ wpgate -c demo/wpgate.yml plan "):
                break
        else:
            pytest.fail("the demo ended before its plan step:\n" + "".join(seen))
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        rest, _ = process.communicate(timeout=300)  # a bound on a hang, not a timing: the servers stop
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    output = "".join(seen) + rest
    assert process.returncode == 130, (signal.getsignal(signal.SIGINT), output)
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith("wpgate demo: interrupted during `wpgate -c demo/wpgate.yml plan "), output
    assert_nothing_left_running(tmp_path / "demo" / "wpgate.yml")


def test_a_failed_step_stops_the_demo_with_its_exit_code(tmp_path, monkeypatch, capfd):
    """The failure path of the step runner, in process, with a step that exits 2 (a missing config)."""
    from rich.console import Console

    from wpgate import demo, testbed

    class NoBed:
        def __init__(self) -> None:
            self.closed = False

        def close(self) -> None:
            self.closed = True

    beds = []
    monkeypatch.setattr(testbed, "TestBed", lambda: beds.append(NoBed()) or beds[-1])
    monkeypatch.setattr(demo, "_build", lambda bed, folder, shown, console, broken: None)
    monkeypatch.setattr(demo, "_steps", lambda shown, broken: [
        demo.Step("a step that fails", ["-c", f"{shown}/missing.yml", "status"]),
        demo.Step("never run", ["--version"]),
    ])
    monkeypatch.chdir(tmp_path)
    code = demo.run(tmp_path / "demo", Console(stderr=True, soft_wrap=True))
    assert code == 2
    assert beds and beds[0].closed
    output = capfd.readouterr().err
    assert "$ wpgate -c demo/missing.yml status" in output
    assert "$ wpgate --version" not in output
    assert output.strip().splitlines()[-1] == ("wpgate demo: stopped at `wpgate -c demo/missing.yml status` "
                                              "(exit 2); stopping the demo's servers.")


def test_a_step_that_should_fail_but_succeeds_stops_the_demo(tmp_path, monkeypatch, capfd):
    """--broken expects its deploy to exit 4; a deploy that exits 0 means the fault went unseen: the demo fails (1)."""
    from rich.console import Console

    from wpgate import demo, testbed

    monkeypatch.setattr(testbed, "TestBed", lambda: type("NoBed", (), {"close": lambda self: None})())
    monkeypatch.setattr(demo, "_build", lambda bed, folder, shown, console, broken: None)
    monkeypatch.setattr(demo, "_steps", lambda shown, broken: [demo.Step("a deploy expected to fail", ["--version"], 4)])
    monkeypatch.chdir(tmp_path)
    assert demo.run(tmp_path / "demo", Console(stderr=True, soft_wrap=True), broken=True) == 1
    assert capfd.readouterr().err.strip().splitlines()[-1] == (
        "wpgate demo: stopped at `wpgate --version` (exit 0, expected 4); stopping the demo's servers.")


def test_only_a_demo_folder_is_replaced(tmp_path):
    """A config the demo wrote (or, before it said so, one naming only sites of a test bed that is gone) may be
    replaced; a config naming real sites may not."""
    from wpgate import demo

    config = tmp_path / "wpgate.yml"
    gone = tmp_path / "wpgate-bed-gone" / "sites"
    config.write_text(yaml.safe_dump({"state_dir": ".wpgate", "sites": {
        "staging": {"path": str(gone / "staging"), "url": "http://127.0.0.1:1"},
        "production": {"path": str(gone / "production"), "url": "http://127.0.0.1:2"}}}))
    assert demo._earlier_demo(config)
    (gone / "production").mkdir(parents=True)  # the bed is still there: not a leftover
    assert not demo._earlier_demo(config)
    config.write_text(yaml.safe_dump({"sites": {"production": {"path": "/srv/www/example", "url": "https://x"}}}))
    assert not demo._earlier_demo(config)
    config.write_text(demo.MARKER + config.read_text())
    assert demo._earlier_demo(config)
    config.write_text("sites: [")
    assert not demo._earlier_demo(config)
