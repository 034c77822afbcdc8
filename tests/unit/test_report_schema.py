"""report.json's schema (shipped in the package) holds for what a run writes, and catches what breaks it."""

from __future__ import annotations

import json

from tests.support.report_schema import assert_valid_report, problems
from wpgate.run import Run, UpdateRecord, UpdateStatus


def _run(tmp_path) -> Run:
    run = Run(tmp_path, "production", "2026-11-26-1")
    run.updates = [UpdateRecord("core", "wordpress", "6.1.9", "6.5.5"),
                   UpdateRecord("plugin", "akismet", "5.0.2", "5.1")]
    run.backup = {"id": None, "path": None, "offsite": None, "sha256": None, "status": "pending"}
    return run


def test_a_run_that_rolled_back_writes_a_report_the_schema_accepts(tmp_path):
    run = _run(tmp_path)
    run.gate("6.1", "approval", "passed", {"approved_by": "Ana"})
    first = run.updates[0]
    first.status, first.install_began, first.live, first.aside = UpdateStatus.ROLLED_BACK, True, "/srv/www", "/srv/aside"
    run.updates[1].status, run.updates[1].partly_applied = UpdateStatus.PENDING, True
    run.gate("6.3", "apply", "failed", {"error": "the page is cut off"})
    run.extra["rollback"] = {"attempted": True, "problems": []}
    run.finish("rolled_back", "the page is cut off")
    report = json.loads((run.folder / "report.json").read_text())
    assert_valid_report(report)
    assert report["updates"][0] == {"type": "core", "slug": "wordpress", "from": "6.1.9", "to": "6.5.5",
                                    "status": "rolled_back", "live": "/srv/www", "aside": "/srv/aside",
                                    "install_began": True}
    assert report["history"][0]["reason"] == "6.3 apply"


def test_a_record_read_back_keeps_its_values_and_unknown_keys(tmp_path):
    run = _run(tmp_path)
    run.updates[0].install_began = True
    run.write_report()
    document = json.loads((run.folder / "report.json").read_text())
    document["updates"][0]["note"] = "written by a later wpgate"
    (run.folder / "report.json").write_text(json.dumps(document))
    run.close()
    again = Run.reopen(tmp_path, run.id)
    assert again.changed and again.updates[0].status is UpdateStatus.PENDING
    assert again.report()["updates"][0] == document["updates"][0]
    again.close()


def test_the_schema_catches_a_broken_report(tmp_path):
    run = _run(tmp_path)
    report = run.report()
    run.close()
    assert problems(report) == []
    broken = report | {"status": "finished", "updates": [report["updates"][0] | {"status": "installed"}]}
    del broken["history"]
    found = problems(broken)
    assert any(line.startswith("status:") for line in found), found
    assert any(line.startswith("updates/0/status:") for line in found), found
    assert any("'history' is a required property" in line for line in found), found
