"""`wpgate qa` on a real staging + production pair: a healthy staging passes and approves; each fault of the
test bed's faulty plugin, put on staging and taken off again, fails its own named check and approval then
refuses; people's checks, issues, notes and comments survive every re-run; bad input leaves qa.yml as it was.

One pair for the module: each test breaks staging and restores it (the plugin's version and the error log)."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from tests.e2e.helpers import assert_one_line_error, site_entry, wpgate, write_config
from wpgate.testbed.bed import php_string
from wpgate.testbed.fixtures import FAULTS, QA_FAULTS

pytestmark = pytest.mark.e2e

PASSWORD_ENV = "WPGATE_TEST_QA_PASSWORD"
MASK = [".clock", "#latest-posts", ".wpgate-hello"]
PEOPLE = """# QA of the release, by the shop's team
checks:
  - {name: checkout works, required: true, status: passed}   # Ana tried three orders
issues:
  - {id: 12, title: slider overlaps header, status: resolved, resolution: "theme option reset"}
notes:
  - {text: look at the footer on phones, status: closed}
"""


@pytest.fixture(scope="module")
def pair(bed, tmp_path_factory):
    """Staging has the release (wpgate-hello, wpgate-clock and the theme updated); both sites look alike
    but for the clock's masked regions and the plugins' version lines."""
    folder = tmp_path_factory.mktemp("qa")
    production = bed.create_site("qa-prod", core="6.5.5", server="nginx",
                                 plugins={"wpgate-hello": "1.0.0", "wpgate-faulty": "1.1.0", "wpgate-clock": "1.0.0"},
                                 themes={"wpgate-parent": "1.0.0"}, theme="wpgate-parent")
    staging = bed.create_site("qa-staging", core="6.5.5", server="nginx",
                              plugins={"wpgate-hello": "1.2.0", "wpgate-faulty": "1.1.0", "wpgate-clock": "1.1.0"},
                              themes={"wpgate-parent": "1.1.0"}, theme="wpgate-parent")
    # Staging is a copy of production: the same title, and the monitor account with the same password.
    for site in (production, staging):
        site.sql("UPDATE wp_options SET option_value = 'wpgate shop' WHERE option_name = 'blogname'")
    staging.php(f"wp_set_password({php_string(production.admin_password)}, 1);")
    checks = {"pages": ["/", "/sample-page/"], "content": {"/": ["Hello world"]},
              "admin": {"user": production.admin_user, "password_env": PASSWORD_ENV}}
    # No screenshots (no browser) but where a test is about them.
    plain = write_config(folder, {"staging": site_entry(staging), "production": site_entry(production, checks=checks)},
                         backups=False, state_dir=str(folder / "state"))
    document = yaml.safe_load(plain.read_text())
    # Threshold 0: only the masks let staging pass, its clock, random number and version line differing.
    document["sites"]["production"]["checks"].update(visual_threshold=0.0, visual_mask=MASK)
    config = folder / "screenshots.yml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    record = folder / "qa.yml"
    record.write_text(PEOPLE)
    pair = {"folder": folder, "config": config, "plain": plain, "staging": staging, "production": production,
            "env": {PASSWORD_ENV: production.admin_password}, "record": record}
    pair["release"] = plan(pair, "release")  # approval refuses it test after test: it stays unapproved
    return pair


def qa(pair, *args: str, screenshots: bool = False):
    """`wpgate qa` over the module's record, which people's entries and earlier runs' fill."""
    return wpgate("qa", "staging", "--baseline", "production", "-o", str(pair["record"]), *args,
                  config=pair["config" if screenshots else "plain"], env=pair["env"])


def plan(pair, name: str) -> Path:
    release = pair["folder"] / f"{name}.yml"
    result = wpgate("plan", "--from", "staging", "--to", "production", "-o", str(release), config=pair["config"])
    assert result.returncode == 0, result.stderr
    return release


def approve(pair, release: Path, record: Path):
    return wpgate("approve", str(release), "--qa", str(record), "--by", "Ana", config=pair["config"])


def entries(record: Path) -> dict[str, dict]:
    return {check["name"]: check for check in yaml.safe_load(record.read_text())["checks"]}


def assert_people_kept(record: Path) -> None:
    """People's entries and comments are as they wrote them, whatever wpgate wrote beside them."""
    text = record.read_text()
    assert text.startswith("# QA of the release, by the shop's team\n")
    assert "# Ana tried three orders" in text
    document = yaml.safe_load(text)
    people = [check for check in document["checks"] if not check["name"].startswith("wpgate:")]
    assert people == [{"name": "checkout works", "required": True, "status": "passed"}]
    assert document["issues"] == [{"id": 12, "title": "slider overlaps header", "status": "resolved",
                                   "resolution": "theme option reset"}]
    assert document["notes"] == [{"text": "look at the footer on phones", "status": "closed"}]
    names = [check["name"] for check in document["checks"]]
    assert len(names) == len(set(names)), names  # a re-run replaced wpgate's entries, never added to them


@contextmanager
def broken(pair, fault: str) -> Iterator[None]:
    """Staging with wpgate-faulty at the faulty version (active), then put back at 1.1.0 with its error log
    as it was before: the next test finds staging as the module made it."""
    staging = pair["staging"]
    slug, version = {**FAULTS, **QA_FAULTS}[fault]
    log = staging.debug_log
    before = log.read_bytes() if log.exists() else b""
    staging.install_plugin(slug, version)
    try:
        yield
    finally:
        staging.install_plugin(slug, "1.1.0")
        log.write_bytes(before)


def test_a_healthy_staging_passes_and_approves(pair):
    record, page = pair["record"], pair["folder"] / "qa.html"
    result = qa(pair, "--html", str(page), "--json", screenshots=True)
    assert result.returncode == 0, result.stderr
    machine = {name: check for name, check in entries(record).items() if name.startswith("wpgate: ")}
    assert set(machine) == {
        "wpgate: page / answers", "wpgate: page /sample-page/ answers", "wpgate: wp-admin works",
        "wpgate: no new PHP error in the log", "wpgate: page / looks as on production",
        "wpgate: page /sample-page/ looks as on production", "wpgate: release components active as planned"}
    for check in machine.values():
        assert check["required"] is True and check["status"] == "passed" and check["evidence"], check
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", check["at"])
    assert "dashboard ok as admin" in machine["wpgate: wp-admin works"]["evidence"]
    assert_people_kept(record)

    document = json.loads(result.stdout)
    assert document["status"] == "passed" and document["skipped"] == {}
    assert {(u["type"], u["slug"], u["from"], u["to"]) for u in document["release"]} == {
        ("plugin", "wpgate-hello", "1.0.0", "1.2.0"), ("plugin", "wpgate-clock", "1.0.0", "1.1.0"),
        ("theme", "wpgate-parent", "1.0.0", "1.1.0")}
    section = yaml.safe_load(record.read_text())["wpgate"]
    assert section["staging"] == {"site": "staging", "url": pair["staging"].url, "inventory": document["inventory"]}
    assert section["baseline"]["site"] == "production" and section["at"] == machine["wpgate: page / answers"]["at"]
    for shot in document["results"]["layout"]["pages"].values():  # what differs is masked: nothing else does
        assert shot["changed"] == 0 and Path(shot["diff"]).is_file() and Path(shot["before"]).is_file()
    html = page.read_text()
    assert html.count("<img ") == 6 and "wpgate-hello" in html and "All 7 checks passed" in html
    assert pair["production"].admin_password not in result.stdout + result.stderr + record.read_text() + html

    approved = approve(pair, plan(pair, "healthy"), record)
    assert approved.returncode == 0, approved.stderr
    assert "7 machine-made checks by `wpgate qa` on staging against production at " in approved.stderr
    assert "1 by people" in approved.stderr


# fault: the check that fails, and what its evidence says
FAILURES = {
    "fatal_while_rendering": ("wpgate: page / answers", "answered 200 but the page is incomplete"),
    "content_gone": ("wpgate: page / answers", "the expected content 'Hello world' is missing"),
    "fatal_in_admin": ("wpgate: wp-admin works", "wp-admin's admin_init hooks die"),
    "warning_in_log": ("wpgate: no new PHP error in the log", "new PHP warning in "),
    "layout_broken": ("wpgate: page / looks as on production", "of the page's pixels changed, more than the threshold"),
}


@pytest.mark.parametrize("fault", list(FAILURES))
def test_each_fault_fails_its_named_check_and_approval_refuses(pair, fault):
    name, evidence = FAILURES[fault]
    record = pair["record"]
    with broken(pair, fault):
        result = qa(pair, screenshots=fault == "layout_broken")
        refused = approve(pair, pair["release"], record)
    assert result.returncode == 3, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("wpgate: error: staging staging fails ") and "the QA record is written to" in last, last
    check = entries(record)[name]
    assert check["status"] == "failed" and evidence in check["evidence"], check
    assert_people_kept(record)
    if fault != "layout_broken":  # compared with production, but its checks set no threshold: said, not hidden
        assert "layout: not checked (production's checks set no visual_threshold" in result.stderr, result.stderr
    if fault == "warning_in_log":  # only the log sees it: the pages themselves are whole and right
        assert entries(record)["wpgate: page / answers"]["status"] == "passed"
        assert "Undefined array key" in check["evidence"]
    assert refused.returncode == 3, refused.stderr
    assert f"required check '{name}' is failed, not passed" in refused.stderr


def test_approval_refuses_when_staging_changed_since_qa_or_wpgate_s_entries_were_edited(pair):
    record, release, staging = pair["record"], pair["release"], pair["staging"]
    assert qa(pair).returncode == 0  # a passing record again, after the faults
    assert_people_kept(record)
    staging.deactivate_plugin("wpgate-faulty")
    try:
        refused = approve(pair, release, record)
    finally:
        staging.activate_plugin("wpgate-faulty")
    assert refused.returncode == 3, refused.stderr
    assert "staging changed since `wpgate qa` checked it at" in refused.stderr
    assert "required check" not in refused.stderr  # that is the only reason
    edited = yaml.safe_load(record.read_text())
    machine = next(check for check in edited["checks"] if check["name"] == "wpgate: page / answers")
    machine["evidence"] += " (and I looked)"
    record.write_text(yaml.safe_dump(edited, sort_keys=False))
    refused = approve(pair, release, record)
    assert refused.returncode == 3 and "wpgate's own checks were changed by hand" in refused.stderr


def test_bad_input_is_one_line_and_leaves_the_record_as_it_was(pair, tmp_path):
    record = pair["record"]
    kept = record.read_bytes()
    broken_staging = yaml.safe_load(pair["config"].read_text())
    broken_staging["sites"]["staging"]["path"] = str(tmp_path / "no-wordpress-here")
    unreadable = tmp_path / "unreadable.yml"
    unreadable.write_text(yaml.safe_dump(broken_staging, sort_keys=False))
    cases = [
        (["qa", "nowhere", "--baseline", "production", "-o", str(record)], pair["config"], "no site named 'nowhere'"),
        (["qa", "staging", "--baseline", "elsewhere", "-o", str(record)], pair["config"], "no site named 'elsewhere'"),
        (["qa", "staging", "--baseline", "production", "-o", str(record)], unreadable, "staging site staging"),
        (["qa", "staging", "--baseline", "production", "-o", str(tmp_path / "missing" / "qa.yml")], pair["config"],
         "does not exist"),
        (["qa", "staging", "--baseline", "production", "-o", str(tmp_path)], pair["config"], "is a folder"),
        (["qa", "staging", "--baseline", "production", "-o", str(record), "--html", str(tmp_path / "no" / "a.html")],
         pair["config"], "does not exist"),
    ]
    for args, config, fragment in cases:
        assert_one_line_error(wpgate(*args, config=config, env=pair["env"]), 2, fragment)
        assert record.read_bytes() == kept
    record.write_text("checks: [unclosed\n")
    try:
        assert_one_line_error(qa(pair), 2, str(record))
        assert record.read_bytes() == b"checks: [unclosed\n"
    finally:
        record.write_bytes(kept)


def test_without_a_baseline_staging_is_checked_with_its_own_config(pair, tmp_path):
    """Staging's own checks: its key page, no monitor account, and PHP warnings reported only."""
    document = yaml.safe_load(pair["plain"].read_text())
    document["sites"]["staging"]["checks"]["php_warnings"] = "warn"
    config = tmp_path / "own.yml"
    config.write_text(yaml.safe_dump(document, sort_keys=False))
    record = tmp_path / "qa.yml"
    with broken(pair, "warning_in_log"):
        result = wpgate("qa", "staging", "-o", str(record), "--json", config=config)
    assert result.returncode == 0, result.stderr
    found = entries(record)
    assert set(found) == {"wpgate: page / answers", "wpgate: wp-admin works", "wpgate: no new PHP error in the log"}
    assert "dashboard skipped: no monitor account" in found["wpgate: wp-admin works"]["evidence"]
    assert "warnings are reported only (checks.php_warnings: warn)" in found["wpgate: no new PHP error in the log"]["evidence"]
    document = json.loads(result.stdout)
    assert document["baseline"] is None and document["release"] == [] and document["skipped"] == {}
    section = yaml.safe_load(record.read_text())["wpgate"]
    assert "baseline" not in section and section["staging"]["inventory"] == document["inventory"]
