"""QA records: DESIGN.md's refusal rules, and malformed records as bad input."""

import pytest

from wpgate import qa
from wpgate.errors import BadInput

CLEAN = """
checks:
  - {name: home page renders, required: true, status: passed}
  - {name: newsletter, required: false, status: failed}
issues:
  - {id: 12, title: slider overlaps header, status: resolved, resolution: "theme option reset"}
notes:
  - {text: check the footer, status: closed}
"""


def load(tmp_path, text):
    path = tmp_path / "qa.yml"
    path.write_text(text)
    return qa.load(path)


def test_a_clean_record_has_no_refusals(tmp_path):
    assert qa.refusals(load(tmp_path, CLEAN)) == []


@pytest.mark.parametrize("change, reason", [
    (("status: passed}", "status: failed}"), "'home page renders' is failed"),
    (("status: passed}", "status: pending}"), "is pending"),
    (("status: resolved, resolution: \"theme option reset\"", "status: open"), "is open, not resolved"),
    (("status: resolved, resolution: \"theme option reset\"", "status: resolved"), "no resolution"),
    (("status: resolved, resolution: \"theme option reset\"", "status: resolved, resolution: ' '"), "no resolution"),
    (("status: closed}", "status: open}"), "still open"),
    (("required: true, status: passed", "status: skipped"), "is skipped"),
])
def test_each_rule_refuses(tmp_path, change, reason):
    record = load(tmp_path, CLEAN.replace(*change))
    reasons = qa.refusals(record)
    assert len(reasons) == 1 and reason in reasons[0], reasons


def test_all_reasons_are_listed_together(tmp_path):
    text = CLEAN.replace("status: passed}", "status: failed}").replace("status: closed}", "status: open}")
    assert len(qa.refusals(load(tmp_path, text))) == 2


def test_no_checks_is_refused(tmp_path):
    assert "no checks" in qa.refusals(load(tmp_path, "checks: []\n"))[0]


@pytest.mark.parametrize("text, expected", [
    ("checks: [", "not valid YAML"),
    ("- a", "must be a mapping"),
    ("issues: []", "checks: required key is missing"),
    ("checks: [{name: a, status: green}]", "is not one of"),
    ("checks: [{name: a, status: passed, required: maybe}]", "true or false"),
    ("checks: [{name: a, status: passed, colour: red}]", "colour: unknown key"),
    ("checks: []\nextra: 1", "extra: unknown key"),
    ("checks: [{status: passed}]", "name: required key is missing"),
])
def test_malformed_records_are_bad_input(tmp_path, text, expected):
    with pytest.raises(BadInput, match=expected):
        load(tmp_path, text)
