"""Gate 6.1's own checks on a manifest, in process: the digest that freezes an approval, the QA record it
copied in, and the artifacts' sha256, each refused before anything reaches a site."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from wpgate import config
from wpgate.gates import GateFailed, approval
from wpgate.inventory import Inventory
from wpgate.deployment import Deployment
from wpgate.session import SiteSession
from wpgate.release import Artifact, Release, Update
from wpgate.run import Run

QA = {"checks": [{"name": "home page renders", "required": True, "status": "passed"}], "issues": [], "notes": []}


@pytest.fixture
def state(tmp_path: Path) -> Path:
    (tmp_path / "wpgate.yml").write_text(
        "state_dir: state\nsites:\n  staging: {path: /srv/staging, url: http://staging.test}\n"
        "  production: {path: /srv/production, url: http://production.test}\n")
    return tmp_path


def artifact(state: Path, slug: str, body: bytes) -> Artifact:
    path = state / "state" / "artifacts" / f"{slug}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return Artifact(f"artifacts/{slug}.zip", hashlib.sha256(body).hexdigest())


def plugin_zip(slug: str, version: str) -> bytes:
    """A well-formed plugin zip: one folder named after the plugin, its main file at `version`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{slug}/{slug}.php", f"<?php\n/*\nPlugin Name: {slug}\nVersion: {version}\n*/\n")
    return buffer.getvalue()


def approved_release(state: Path) -> Release:
    update = Update("plugin", "akismet", "5.0.2", "5.1", artifact(state, "akismet", plugin_zip("akismet", "5.1")))
    return Release("2026-11-26-1", "staging", "http://staging.test", (update,)).approved(
        by="Ana", at="2026-11-26T10:00:00Z", qa=QA)


def deployment(state: Path, release: Release) -> Deployment:
    settings = config.load(state / "wpgate.yml")
    before = Inventory({"core": {"version": "6.5.5", "db_version": 57155, "files_db_version": 57155},
                        "plugins": [{"slug": "akismet", "version": "5.0.2", "active": True}], "themes": []})
    run = Run(settings.state_dir, "production", release.id)
    # The gate reads the release, the state folder and the facts read before it; it never reaches the site.
    session = SiteSession("production", settings.site("production"), transport=None, bridge=None)  # type: ignore[arg-type]
    return Deployment(settings, session, release, run=run, console=Console(stderr=True), before=before,
                      state_before={"maintenance": False, "core_updater_lock": False})


def test_an_intact_approval_passes(state):
    evidence = approval.check(deployment(state, approved_release(state)))
    assert evidence["artifacts_verified"] == 1 and evidence["drift"] == []


def test_an_update_edited_after_approval_is_refused_by_its_digest(state):
    release = approved_release(state)
    edited = replace(release, updates=(replace(release.updates[0], to_version="5.2"),))
    with pytest.raises(GateFailed, match=r"edited after approval \(digest mismatch\)") as refused:
        approval.check(deployment(state, edited))
    assert refused.value.evidence["digest"] == edited.digest() != release.approval.digest


def test_a_qa_record_edited_after_approval_is_refused_by_its_digest(state):
    release = approved_release(state)
    # Still a clean record, so only the digest can tell: a check's name was changed after approval.
    qa = {**QA, "checks": [{**QA["checks"][0], "name": "home page renders, mostly"}]}
    with pytest.raises(GateFailed, match=r"edited after approval \(digest mismatch\)"):
        approval.check(deployment(state, replace(release, qa=qa)))


def test_an_approval_digest_written_by_hand_is_refused(state):
    release = approved_release(state)
    forged = replace(release, approval=replace(release.approval, digest="sha256:" + "0" * 64))
    with pytest.raises(GateFailed, match="digest mismatch"):
        approval.check(deployment(state, forged))


def test_an_artifact_changed_after_approval_is_refused_by_its_sha256(state):
    release = approved_release(state)
    (state / "state" / "artifacts" / "akismet.zip").write_bytes(b"another zip")
    with pytest.raises(GateFailed, match="artifact of plugin akismet does not match its sha256") as refused:
        approval.check(deployment(state, release))
    assert "digest mismatch" not in str(refused.value)
