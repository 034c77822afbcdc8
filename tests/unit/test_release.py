"""Release manifests: parsing every bad input, order rules, and the digest that freezes an approval."""

from pathlib import Path

import pytest

from wpgate import release as release_module
from wpgate.errors import BadInput
from wpgate.release import Artifact, Release, Update, order_problems

SHA = "a" * 64


def update(kind, slug, old="1.0", new="1.1", parent=None):
    return Update(kind, slug, old, new, Artifact(f"artifacts/{kind}-{slug}.zip", SHA), parent)


def manifest_text(updates: str) -> str:
    return f"wpgate: 1\nid: 2026-11-26-1\nstaging: {{site: staging, url: http://staging.test}}\nupdates:\n{updates}"


def entry(kind, slug, old="1.0", new="1.1", extra=""):
    return (f"  - {{type: {kind}, slug: {slug}, from: '{old}', to: '{new}'{extra}, "
            f"artifact: {{path: artifacts/{slug}.zip, sha256: '{SHA}'}}}}\n")


def load_text(tmp_path: Path, text: str) -> Release:
    path = tmp_path / "release.yml"
    path.write_text(text)
    return release_module.load(path)


def test_a_valid_manifest_round_trips(tmp_path):
    text = manifest_text(entry("core", "wordpress", "6.1.9", "6.2.6") + entry("plugin", "akismet", "5.0.2", "5.1")
                         + entry("theme", "child", extra=", parent: parent"))
    loaded = load_text(tmp_path, text)
    assert [u.slug for u in loaded.updates] == ["wordpress", "akismet", "child"]
    assert loaded.updates[2].parent == "parent"
    release_module.save(loaded, tmp_path / "again.yml")
    again = release_module.load(tmp_path / "again.yml")
    assert again == loaded
    assert again.digest() == loaded.digest()


def test_versions_are_never_read_as_numbers(tmp_path):
    # Unquoted, YAML would read 5.10 as the float 5.1: a different version.
    text = manifest_text("  - {type: plugin, slug: akismet, from: 5.9, to: 5.10, "
                         f"artifact: {{path: a.zip, sha256: '{SHA}'}}}}\n")
    loaded = load_text(tmp_path, text)
    assert (loaded.updates[0].from_version, loaded.updates[0].to_version) == ("5.9", "5.10")


@pytest.mark.parametrize("bad, expected", [
    (entry("plugin", "../../etc"), "slug"),
    (entry("plugin", "a;rm"), "slug"),
    (entry("plugin", "Akismet"), "slug"),
    (entry("plugin", "ok", new="1.1; rm -rf /"), "to"),
    (entry("plugin", "ok", new="$(id)"), "to"),
    (entry("plugin", "ok", old="1.0", new="1.0"), "nothing to update"),
    (entry("widget", "ok"), "type"),
    (entry("core", "notwordpress"), "core's slug"),
    ("  - {type: plugin, slug: ok, from: '1', to: '2', artifact: {path: /etc/passwd.zip, sha256: '" + SHA + "'}}\n",
     "inside the state folder"),
    ("  - {type: plugin, slug: ok, from: '1', to: '2', artifact: {path: ../x.zip, sha256: '" + SHA + "'}}\n",
     "inside the state folder"),
    ("  - {type: plugin, slug: ok, from: '1', to: '2', artifact: {path: x.zip, sha256: 'abc'}}\n", "sha256"),
    ("  - {type: plugin, slug: ok, from: '1', to: '2', bonus: 1, artifact: {path: x.zip, sha256: '" + SHA + "'}}\n",
     "bonus: unknown key"),
    (entry("plugin", "ok", extra=", parent: p"), "only a theme has a parent"),
])
def test_bad_entries_are_bad_input(tmp_path, bad, expected):
    with pytest.raises(BadInput) as caught:
        load_text(tmp_path, manifest_text(bad))
    assert expected in str(caught.value)
    assert caught.value.exit_code == 2


def test_every_problem_is_listed(tmp_path):
    with pytest.raises(BadInput) as caught:
        load_text(tmp_path, manifest_text(entry("plugin", "../x") + entry("theme", "t", new="$(x)")))
    assert "3 problems" in str(caught.value)  # the bad slug also makes a bad artifact path


@pytest.mark.parametrize("text, expected", [
    ("updates: [", "not valid YAML"),
    ("just text", "must be a mapping"),
    ("wpgate: 2\nid: x\nstaging: {site: s, url: u}\nupdates: []\n", "not supported"),
    ("wpgate: 1\nid: x\nstaging: {site: s, url: u}\nupdates: []\n", "non-empty list"),
])
def test_malformed_manifests(tmp_path, text, expected):
    with pytest.raises(BadInput, match=expected):
        load_text(tmp_path, text)


def test_missing_manifest(tmp_path):
    with pytest.raises(BadInput, match="no such release manifest"):
        release_module.load(tmp_path / "nope.yml")


def test_order_rules():
    assert order_problems([update("core", "wordpress"), update("plugin", "a"), update("theme", "t")]) == []
    assert "comes after" in order_problems([update("theme", "t"), update("plugin", "a")])[0]
    assert "comes after" in order_problems([update("plugin", "a"), update("core", "wordpress")])[0]
    assert "listed twice" in order_problems([update("plugin", "a"), update("plugin", "a")])[0]
    child_first = [update("theme", "child", parent="parent"), update("theme", "parent")]
    assert "before its parent" in order_problems(child_first)[0]
    assert order_problems(list(reversed(child_first))) == []


def test_theme_before_plugin_in_a_file_is_refused(tmp_path):
    with pytest.raises(BadInput, match="the order is core, then plugins, then themes"):
        load_text(tmp_path, manifest_text(entry("theme", "t") + entry("plugin", "p")))


def test_digest_covers_body_and_qa_and_nothing_else():
    release = Release("r1", "staging", "http://s", (update("plugin", "a"),))
    qa = {"checks": [{"name": "home", "required": True, "status": "passed"}], "issues": [], "notes": []}
    approved = release.approved(by="ana", at="2026-11-26T10:00:00Z", qa=qa)
    assert approved.approval.digest == approved.digest()
    assert approved.digest().startswith("sha256:")
    edited = Release("r1", "staging", "http://s", (update("plugin", "a", new="1.2"),), approved.approval, qa)
    assert edited.digest() != approved.approval.digest
    other_qa = {**qa, "notes": [{"text": "later", "status": "open"}]}
    assert approved.digest(other_qa) != approved.approval.digest
    # Who approved and when are not part of what is frozen.
    assert release.approved(by="bo", at="2027-01-01T00:00:00Z", qa=qa).approval.digest == approved.approval.digest


def test_a_qa_record_keeps_its_numbers_through_approval_and_the_saved_manifest(tmp_path):
    """`id: 12` in qa.yml stays the number 12 in the approved manifest (not the string '12'), and the
    digest computed at approval is the one the saved manifest gives back."""
    from wpgate import qa as qa_record

    qa_path = tmp_path / "qa.yml"
    qa_path.write_text("checks:\n  - {name: home, required: true, status: passed}\n"
                       "issues:\n  - {id: 12, title: slider, status: resolved, resolution: reset, by: 2026-11-26}\n"
                       "notes: []\n")
    qa = qa_record.load(qa_path)
    assert qa["issues"][0]["id"] == 12 and qa["issues"][0]["by"] == "2026-11-26"
    approved = load_text(tmp_path, manifest_text(entry("plugin", "akismet", "5.0.2", "5.10"))).approved(
        by="Ana", at="2026-11-26T10:00:00Z", qa=qa)
    release_module.save(approved, tmp_path / "approved.yml")
    assert "id: 12\n" in (tmp_path / "approved.yml").read_text()
    again = release_module.load(tmp_path / "approved.yml")
    assert again.qa["issues"][0]["id"] == 12 and again.updates[0].to_version == "5.10"
    assert again.digest() == approved.approval.digest
