"""Gate 6.1 (approval), and `wpgate approve` which writes the approval the gate checks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wpgate import artifacts, inventory, qa as qa_record, signing, upgrader
from wpgate import aside as asides
from wpgate.bridge import Bridge
from wpgate.config import Settings
from wpgate.errors import BadInput, GateRefused, WpgateError, listing
from wpgate.gates import GateFailed, Plan
from wpgate.lock import SiteLock
from wpgate.output import Output
from wpgate.release import Release, Update, artifact_file, order_problems, save, sha256_file
from wpgate import run as run_module
from wpgate.run import utc_now
from wpgate.transports import Transport, for_site
from wpgate.words import plural

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

STEP, NAME = "6.1", "approval"

def artifact_problems(release: Release, state_dir: Path) -> list[str]:
    """Every artifact is where the manifest says, with the sha256 it says, and shaped as its upgrader needs
    (artifacts.structure_problems): a broken one is refused here, before production changes."""
    problems = []
    for update in release.updates:
        path = artifact_file(state_dir, update.artifact)
        if not path.is_file():
            problems.append(f"artifact of {update.type} {update.slug} is missing: {path}")
            continue
        actual = sha256_file(path)
        if actual != update.artifact.sha256:
            problems.append(f"artifact of {update.type} {update.slug} does not match its sha256 "
                            f"(manifest {update.artifact.sha256[:12]}…, file {actual[:12]}…): {path}")
        else:
            problems += artifacts.structure_problems(path, update.type, update.slug, update.to_version)
    return problems


def approve(settings: Settings, release: Release, qa_path: Path, by: str, console: Output,
            key: Path | None = None) -> Release:
    """Check the QA record, the manifest and staging itself; write the approval or refuse (exit 3).
    With `key`, the approval's digest is signed by it as `by` (an OpenSSH signature)."""
    assert release.path is not None
    if not by.strip():
        raise BadInput("--by must name the person approving")
    if re.search(r"[\x00-\x1f\x7f]", by):
        raise BadInput("--by must be a name on one line, without control characters")
    if settings.approvers is not None and key is None:
        raise BadInput(f"the config's approvers ({settings.approvers}) requires signed approvals: "
                       "approve with --key SSH_KEY (the key listed there for you)")
    if release.approval is not None:
        # Frozen, but for a release rolled back since: its old approval no longer lets it deploy (gate 6.1).
        since = [rollback for rollback in run_module.rollbacks(settings.state_dir, None, release.id)
                 if release.approval.at <= rollback["at"]]
        if not since:
            raise GateRefused(f"{release.path}: already approved by {release.approval.by} at {release.approval.at}: "
                              "approval is frozen; plan a new release to change it")
        console.print(f"approving again: release {release.id} was rolled back on {since[-1]['site']} by run "
                      f"{since[-1]['run']} at {since[-1]['at']} (why: {since[-1]['reason']})", markup=False)
    qa = qa_record.load(qa_path)
    machine = qa_record.machine_summary(qa)
    if machine:
        console.print(f"QA record {qa_path}: {machine}", markup=False, soft_wrap=True)
    reasons = qa_record.refusals(qa)
    reasons += order_problems(release.updates)
    reasons += artifact_problems(release, settings.state_dir)
    reasons += staging_problems(settings, release, console, qa)
    if reasons:
        raise GateRefused(f"{release.path}: approval refused: {listing(reasons, 'reasons')}")
    by = by.strip()
    approved = release.approved(by=by, at=utc_now(), qa=qa,
                                sign=(lambda digest: signing.sign(digest, key, by)) if key else None)
    if settings.approvers is not None and approved.approval is not None:
        try:  # an approval deploy would refuse is never written: it would freeze the release unusable
            signing.verify(approved.approval.digest, approved.approval.signature, by, settings.approvers)
        except GateRefused as refusal:
            raise GateRefused(f"{release.path}: approval refused: {refusal.message}") from None
    save(approved, release.path)
    return approved


def staging_problems(settings: Settings, release: Release, console: Output,
                     qa: dict[str, Any] | None = None) -> list[str]:
    """Staging still holds exactly what was planned: each component, captured again, gives the
    same sha256; and, when `wpgate qa` checked it, the inventory it checked. What QA tested is what
    gets approved."""
    site = settings.site(release.staging_site)
    problems = []
    with for_site(site) as transport:
        found = inventory.read(Bridge(release.staging_site, site, transport))
        if found.data.get("load_error"):
            return [f"staging is broken: {found.data['load_error']}"]
        problems += _checked_staging_problems((qa or {}).get("wpgate"), release, found)
        for update in release.updates:
            version = found.version_of(update.type, update.slug)
            if version != update.to_version:
                problems.append(f"staging now has {update.type} {update.slug} at {version or 'nothing'}, "
                                f"not the planned {update.to_version}")
                continue
            console.print(f"  comparing {update.type} {update.slug} on staging with its artifact…", markup=False)
            if not _captures_as_planned(settings, transport, found, update):
                problems.append(f"staging's {update.type} {update.slug} {update.to_version} files changed "
                                "since the plan (its capture has another sha256): plan again")
    return problems


def _captures_as_planned(settings: Settings, transport: Transport, found: inventory.Inventory, update: Update) -> bool:
    """Staging's component, captured now, would be the planned artifact: compared with the artifact's
    zip when this machine has it unchanged, else captured again and its sha256 compared."""
    planned = artifact_file(settings.state_dir, update.artifact)
    if planned.is_file() and sha256_file(planned) == update.artifact.sha256:
        return artifacts.captures_as(transport, found, update.type, update.slug, planned)
    capture = artifacts.capture(transport, found, update.type, update.slug, update.to_version,
                                settings.state_dir / "artifacts", settings.state_dir)
    return capture.artifact.sha256 == update.artifact.sha256


def _checked_staging_problems(section: dict[str, Any] | None, release: Release, found: inventory.Inventory) -> list[str]:
    """The staging `wpgate qa` checked is the release's, and has not changed since (its inventory's digest)."""
    if not section:
        return []
    checked = section.get("staging") or {}
    if checked.get("site") != release.staging_site:
        return [f"`wpgate qa` checked site {checked.get('site')}, but the release comes from {release.staging_site}: "
                f"run `wpgate qa {release.staging_site}`"]
    now = found.digest()
    if checked.get("inventory") != now:
        return [f"staging changed since `wpgate qa` checked it at {section.get('at')} (inventory "
                f"{str(checked.get('inventory'))[:19]}… then, {now[:19]}… now): run `wpgate qa` again"]
    return []


def signature_evidence(settings: Settings, release: Release, digest: str, reasons: list[str]) -> dict[str, Any]:
    """Who signed the approval, as the config's approvers file proves it; or that nothing proves it.
    The signature must hold over the digest recomputed now (it covers every artifact's sha256)."""
    assert release.approval is not None
    approvers = settings.approvers
    signed = bool(release.approval.signature)
    if approvers is None:
        return {"signed": signed, "signature": (
            "signed, but not verified: the config names no approvers file" if signed else
            "unsigned: the config names no approvers file, so nothing proves who approved")}
    try:
        verified = signing.verify(digest, release.approval.signature, release.approval.by, approvers)
    except WpgateError as refusal:
        reasons.append(refusal.message)
        return {"signed": signed, "signature": f"not accepted by {approvers}"}
    return {"signed": True, "signature": f"verified: {verified.principal}'s key {verified.key} "
                                         f"(listed in {approvers})".replace("key  (", "key (")}


def _rolled_back_since_approval(deployment: "Deployment") -> list[str]:
    """A release rolled back on this site needs a fresh approval: whatever made it fail, or made someone
    take it back, was not known when it was approved."""
    release, approval = deployment.release, deployment.release.approval
    assert approval is not None
    reasons = []
    for rollback in run_module.rollbacks(deployment.settings.state_dir, deployment.site_name, release.id):
        # Times are to the second: an approval in the same second as a rollback came after it (a rollback
        # follows a deploy, which takes longer than a second after its approval).
        if rollback["run"] != deployment.run.id and approval.at < rollback["at"]:
            reasons.append(f"release {release.id} was rolled back on {deployment.site_name} by run {rollback['run']} "
                           f"at {rollback['at']} (why: {rollback['reason']}), after its approval at {approval.at}: "
                           "approve it again (`wpgate approve RELEASE --qa QA.yml --by NAME`) to deploy it again")
    return reasons[-1:]  # the latest says it; older ones are in `wpgate status`


def describe(deployment: "Deployment") -> Plan:
    """Gate 6.1 in a dry run: in full, as a deploy runs it, but the site's lock is not taken (who holds it is said)."""
    read_facts(deployment, dry_run=True, break_lock=False)
    evidence = check(deployment)
    return Plan(summary(evidence), evidence, status="passed")


def run(deployment: "Deployment") -> dict[str, Any]:
    """Gate 6.1 as a deploy runs it: production's facts read and the site's lock taken, then the approval
    checked against them."""
    read_facts(deployment, dry_run=False, break_lock=deployment.break_lock)
    return check(deployment)


def read_facts(deployment: "Deployment", *, dry_run: bool, break_lock: bool) -> None:
    """Production as it is before anything: its inventory, where the run keeps its copies (the aside folder), the
    site's lock, WordPress's maintenance and update-lock state; each saved in the run's folder as it is read."""
    run = deployment.run
    deployment.before = inventory.read(deployment.bridge)
    paths = deployment.before.data["paths"]
    deployment.aside = asides.choose(deployment.transport, deployment.site_name, deployment.site, paths,
                                     deployment.before.data.get("site_url") or deployment.site.url)
    run.extra["aside"] = deployment.aside.record()
    run.write_report()
    # Saved before the lock is taken: a run killed from here on can be resumed, its lock found.
    run.save_json("inventory-before.json", deployment.before.data)
    lock = SiteLock.of_site(deployment.transport, deployment.aside, run.id, deployment.site_name, deployment.site,
                            paths)
    if dry_run:
        holder = lock.holder()
        if holder:
            deployment.say(f"note: {lock.describe(holder)}")
    else:
        broken = lock.acquire(break_lock=break_lock)
        deployment.lock = lock
        run.event("lock.taken", path=lock.path, **({"broke": broken} if broken else {}))
    deployment.state_before = upgrader.site_state(deployment.bridge)
    run.save_json("state-before.json", deployment.state_before)
    run.event("inventory.before", core=deployment.before.core_version)


def summary(evidence: dict[str, Any]) -> str:
    return (f"approved by {evidence.get('approved_by')} ({evidence.get('signature')}), digest intact, "
            f"{plural(evidence.get('artifacts_verified'), 'artifact')} verified, no drift")


def check(deployment: "Deployment") -> dict[str, Any]:
    """Gate 6.1: approved, unchanged since, QA clean, in order, artifacts intact, no drift."""
    release = deployment.release
    reasons: list[str] = []
    evidence: dict[str, Any] = {"release": release.id}
    if release.approval is None:
        raise GateFailed(f"release {release.id} is not approved: run `wpgate approve` first")
    evidence.update(approved_by=release.approval.by, approved_at=release.approval.at)
    digest = release.digest()
    evidence["digest"] = digest
    if digest != release.approval.digest:
        reasons.append("the manifest or its QA record was edited after approval (digest mismatch)")
    evidence.update(signature_evidence(deployment.settings, release, digest, reasons))
    reasons += qa_record.refusals(release.qa or {})
    reasons += _rolled_back_since_approval(deployment)
    reasons += order_problems(release.updates)
    reasons += artifact_problems(release, deployment.settings.state_dir)
    before = deployment.before
    drift = []
    for update in release.updates:
        current = before.version_of(update.type, update.slug)
        if current != update.from_version:
            drift.append({"type": update.type, "slug": update.slug, "expected": update.from_version,
                          "found": current})
            reasons.append(f"drift: production has {update.type} {update.slug} at {current or 'nothing'}, "
                           f"the release expects {update.from_version}")
    evidence["drift"] = drift
    if before.data.get("load_error"):
        reasons.append(f"production is already broken before any change: {before.data['load_error']}")
    state = deployment.state_before or {}
    if state.get("maintenance"):
        reasons.append("production is in maintenance mode (.maintenance present): another update may be running")
    if state.get("core_updater_lock"):
        reasons.append("production holds WordPress's core_updater.lock: a core update is running or crashed")
    if reasons:
        raise GateFailed("; ".join(reasons), evidence | {"reasons": reasons})
    evidence["artifacts_verified"] = len(release.updates)
    return evidence
