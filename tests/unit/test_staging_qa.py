"""`wpgate qa`'s pieces without a site: the error log looked back on from staging's updates, the staging
inventory's digest, and the QA record rewritten beside people's entries (their comments kept)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import yaml

from wpgate import qa
from wpgate.checks.error_log import ErrorLogCheck, message, split_at, stamped_at
from wpgate.errors import BadInput
from wpgate.inventory import Inventory
from wpgate.transports import LocalTransport

ROOT = "/srv/staging"
UPDATES = stamped_at("[26-Nov-2026 10:00:00 UTC] x")
LOG = """[26-Nov-2026 09:00:00 UTC] PHP Warning:  Undefined variable $old in /srv/staging/wp-content/plugins/a/a.php on line 3
[26-Nov-2026 10:00:05 UTC] PHP Warning:  Undefined variable $old in /srv/staging/wp-content/plugins/a/a.php on line 3
[26-Nov-2026 10:00:06 UTC] PHP Warning:  Undefined array key "colour" in /srv/staging/wp-content/plugins/b/b.php on line 9
[26-Nov-2026 10:00:07 UTC] PHP Deprecated:  Creation of dynamic property X::$y is deprecated in /srv/staging/wp-content/themes/t/functions.php on line 4
[26-Nov-2026 10:00:08 UTC] PHP Warning:  Both sites say this in /srv/staging/wp-includes/update.php on line 2
[26-Nov-2026 10:00:09 UTC] PHP Notice:  a notice is not counted in /srv/staging/x.php on line 1
"""


class _Watch:
    """What the error-log check uses of a Watch: the transport, its state, the config, the site's root."""

    def __init__(self, log, warnings="fail"):
        self.transport = LocalTransport()
        self.config = SimpleNamespace(error_log=str(log), php_warnings=warnings)
        self.site = SimpleNamespace(path=ROOT)
        self.state = {}

    def settle(self):
        pass


@pytest.mark.parametrize("warnings", ["fail", "warn"])
def test_the_log_since_staging_s_updates_counts_new_warnings_not_the_site_s_own(tmp_path, warnings):
    log = tmp_path / "debug.log"
    log.write_text(LOG)
    check, watch = ErrorLogCheck(), _Watch(log, warnings)
    # The baseline site logs the update check's warning too, from its own root.
    known = {message("[26-Nov-2026 08:00:00 UTC] PHP Warning:  Both sites say this in /srv/prod/wp-includes/update.php "
                     "on line 2", "/srv/prod")}
    watch.state["error_log"] = check.since_updates(watch, UPDATES, known)
    found = check.run(watch, "staging")
    new = ['PHP Warning:  Undefined array key "colour" in /srv/staging/wp-content/plugins/b/b.php on line 9',
           "PHP Deprecated:  Creation of dynamic property X::$y is deprecated in "
           "/srv/staging/wp-content/themes/t/functions.php on line 4"]
    assert [line.split("] ", 1)[1] for line in found.evidence["new_warning_lines"]] == new
    assert found.evidence["known_before"] == 2  # $old was there before the updates; update.php is the baseline's too
    if warnings == "fail":
        assert found.status == "failed" and [p.subject for p in found.problems] == new
        assert found.problems[0].line() == f"error log: new PHP warning in {log}: {new[0]} (error_log check)"
    else:
        assert found.status == "passed" and not found.problems
        assert "warnings are reported only (checks.php_warnings: warn)" in found.detail
    with log.open("a") as file:
        file.write("[26-Nov-2026 10:01:00 UTC] PHP Fatal error:  Uncaught Error: boom in /srv/staging/c.php:3\n"
                   "Stack trace:\n#0 {main}\n")
    fatal = check.run(watch, "staging")  # a later pass reads on from where this one stopped
    assert fatal.status == "failed" and fatal.evidence["new_fatal_lines"][0].endswith("boom in /srv/staging/c.php:3")
    assert fatal.evidence["new_warning_lines"] == []


def test_log_time_stamps_and_what_counts_as_before():
    assert stamped_at("[26-Nov-2026 10:00:00 UTC] PHP Warning:  x") == 1795687200.0
    assert stamped_at("[26-Nov-2026 11:00:00 Europe/Paris] PHP Warning:  x") == 1795687200.0
    assert stamped_at("PHP Warning:  no stamp") is None and stamped_at("[26-Foo-2026 10:00:00 UTC] x") is None
    before, after = split_at("no stamp yet\n[26-Nov-2026 09:59:59 UTC] a\n#0 trace of a\n"
                             "[26-Nov-2026 10:00:00 UTC] b\n#0 trace of b\n", UPDATES + 0.7)
    assert before == ["[26-Nov-2026 09:59:59 UTC] a", "#0 trace of a"]
    assert after == ["no stamp yet", "[26-Nov-2026 10:00:00 UTC] b", "#0 trace of b"]
    assert message("[26-Nov-2026 09:00:00 UTC] PHP Warning:  x in /srv/staging/a.php on line 1", "/srv/staging/") == \
        "PHP Warning:  x in ABSPATH/a.php on line 1"


def _inventory(**changes):
    data = {"core": {"version": "6.5.5", "db_version": 57155, "files_db_version": 57155},
            "plugins": [{"slug": "a", "file": "a/a.php", "name": "A", "version": "1.0", "active": True,
                         "network_active": False},
                        {"slug": "b", "file": "b/b.php", "name": "B", "version": "2.0", "active": False,
                         "network_active": False}],
            "themes": [{"slug": "t", "name": "T", "version": "1.1", "active": True, "parent": None}],
            "mu_plugins": [], "dropins": [], "php_version": "8.2.7", "home": "http://s.example", "paths": {}}
    data.update(changes)
    return Inventory(data)


def test_the_inventory_digest_covers_versions_and_activation_not_order_or_url():
    digest = _inventory().digest()
    assert digest.startswith("sha256:") and len(digest) == 71
    reordered = _inventory()
    reordered.data["plugins"].reverse()
    assert reordered.digest() == digest
    assert _inventory(home="http://elsewhere.example", php_version="8.3.0").digest() == digest
    deactivated = _inventory()
    deactivated.data["plugins"][0]["active"] = False
    updated = _inventory()
    updated.data["themes"][0]["version"] = "1.2"
    dropin = _inventory(dropins=[{"file": "object-cache.php", "version": "1"}])
    assert len({digest, deactivated.digest(), updated.digest(), dropin.digest()}) == 4


PEOPLE = """# QA of the november release
checks:
  - {name: checkout works, required: true, status: passed}   # Ana, three orders
  - {name: "wpgate: page / answers", required: true, status: failed, evidence: old}
issues:
  - {id: 12, title: slider overlaps header, status: resolved, resolution: "theme option reset"}
notes: []   # nothing left
"""
SECTION = {"at": "2026-11-26T10:00:00Z", "staging": {"site": "staging", "url": "http://s", "inventory": "sha256:1"}}


def _entries(status="passed"):
    return [{"name": "wpgate: page / answers", "required": True, "status": status, "evidence": "200, a whole page",
             "at": "2026-11-26T10:00:00Z"},
            {"name": "wpgate: wp-admin works", "required": True, "status": "passed", "evidence": "200",
             "at": "2026-11-26T10:00:00Z"}]


def _write(path, entries):
    qa.write(path, entries, {**SECTION, "checks": qa.checks_digest(entries)})


def test_a_rewrite_replaces_wpgate_s_entries_and_keeps_people_s_with_their_comments(tmp_path):
    path = tmp_path / "qa.yml"
    path.write_text(PEOPLE)
    path.chmod(0o640)
    for status in ("failed", "passed"):  # twice: the second run replaces the first's entries
        _write(path, _entries(status))
    text = path.read_text()
    assert text.startswith("# QA of the november release\n") and "# Ana, three orders" in text and "# nothing left" in text
    record = qa.load(path)
    assert [check["name"] for check in record["checks"]] == [
        "checkout works", "wpgate: page / answers", "wpgate: wp-admin works"]
    assert record["checks"][1]["status"] == "passed" and record["checks"][2]["evidence"] == "200"
    assert record["issues"][0]["id"] == 12 and record["notes"] == []
    assert record["wpgate"]["staging"]["inventory"] == "sha256:1"
    assert qa.refusals(record) == []
    assert "2 machine-made checks by `wpgate qa` on staging at 2026-11-26T10:00:00Z" in qa.machine_summary(record)
    assert path.stat().st_mode & 0o777 == 0o640 and [p.name for p in tmp_path.iterdir()] == ["qa.yml"]


def test_a_new_record_holds_wpgate_s_entries_and_empty_issues_and_notes(tmp_path):
    path = tmp_path / "qa.yml"
    _write(path, _entries())
    record = qa.load(path)
    assert len(record["checks"]) == 2 and record["issues"] == [] and record["notes"] == []
    assert qa.refusals(record) == []


def test_wpgate_s_entries_edited_by_hand_or_without_their_section_are_refused(tmp_path):
    path = tmp_path / "qa.yml"
    _write(path, _entries("failed"))
    document = yaml.safe_load(path.read_text())
    document["checks"][0]["status"] = "passed"
    path.write_text(yaml.safe_dump(document))
    assert any("changed by hand since `wpgate qa` wrote them at 2026-11-26T10:00:00Z" in reason
               for reason in qa.refusals(qa.load(path)))
    del document["wpgate"]
    path.write_text(yaml.safe_dump(document))
    assert any("without the `wpgate:` section" in reason for reason in qa.refusals(qa.load(path)))
    path.write_text(yaml.safe_dump({"checks": [], "wpgate": {"at": "x", "staging": "s", "checks": "sha256:1"}}))
    with pytest.raises(BadInput, match="wpgate.staging: must be a mapping"):
        qa.load(path)


def test_the_release_s_components_must_be_active_on_staging_as_on_production():
    from wpgate.staging_qa import components

    release = [("plugin", "a", "0.9", "1.0"), ("plugin", "b", "1.9", "2.0"), ("theme", "t", "1.0", "1.1")]
    production = _inventory()
    production.data["plugins"][1]["active"] = False
    assert components(release, _inventory(), production).status == "passed"
    staging = _inventory()
    staging.data["plugins"][0]["active"] = False  # the update QA never ran
    staging.data["themes"] = [{**staging.data["themes"][0], "active": False},
                              {"slug": "other", "name": "O", "version": "1", "active": True, "parent": None}]
    found = components(release, staging, production)
    assert found.status == "failed"
    assert [problem.subject for problem in found.problems] == ["a", "t"]
    assert "plugin a 0.9 → 1.0 is active on production but not on staging" in found.problems[0].what
    assert "staging shows other" in found.problems[1].what
    broken = _inventory(load_error="PHP Fatal error: boom")
    assert "fails to load" in components(release, broken, production).problems[0].what


def test_wpgate_s_entries_pass_gate_6_1_after_the_manifest_round_trip(tmp_path):
    """Approve copies the record into the manifest; deploy reads it back (every scalar text but numbers and
    booleans) and checks the entries' digest again: it must still hold."""
    from tests.unit.test_release import entry, load_text, manifest_text
    from wpgate import release as release_module

    path = tmp_path / "qa.yml"
    path.write_text(PEOPLE)
    entries = _entries()
    entries[1]["evidence"] = "200"  # a number, once YAML reads it back
    _write(path, entries)
    record = qa.load(path)
    assert qa.refusals(record) == []
    approved = load_text(tmp_path, manifest_text(entry("plugin", "akismet", "5.0.2", "5.1"))).approved(
        by="Ana", at="2026-11-26T10:00:00Z", qa=record)
    release_module.save(approved, tmp_path / "approved.yml")
    again = release_module.load(tmp_path / "approved.yml")
    assert again.digest() == approved.approval.digest and qa.refusals(again.qa) == []
