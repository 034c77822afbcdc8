"""Gate 6.2 (backup): before the first change, a fresh, complete, restorable backup with a verified off-site copy.

The newest backup of the site passes when: its parts' sha256 verify on the host and off-site; it is
younger than `max_age` and production has not changed since (inventory and every table's checksum
equal production's now); the files archive lists to its end and the dump is complete (it ends with
the dump client's completion line) and creates every table production has; and it restores into a
scratch database and folder equal to itself. When it does not pass, the gate takes a new backup and
checks it the same way (with `--require-existing-backup`, it refuses instead, every reason listed).

A backup the gate has just taken is not refused for tables that changed between its dump and the
check (visitors keep writing): they are named in the evidence, and rollback finds those rows by
comparing with the backup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wpgate import backup as backups
from wpgate import inventory
from wpgate.backup import Backup, exposure
from wpgate.backup import preconditions
from wpgate.backup.model import InBackground
from wpgate.errors import WpgateError, listing
from wpgate.gates import GateFailed, Plan

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

STEP, NAME = "6.2", "backup"

def check_preconditions(deployment: "Deployment") -> dict[str, Any]:
    """What the gate needs before it finds, takes or proves a backup, in the order it is checked: a backup
    folder and an off-site copy configured; the folder not under the WordPress root, writable by the account
    with room for the restore proof, and not served by the site (a marker file is written there, requested
    and removed); the off-site folder writable. The evidence, with one record per precondition; GateFailed."""
    site, site_name, transport = deployment.site, deployment.site_name, deployment.transport
    if site.backup is None or not site.backup.offsite:
        missing = "backup:" if site.backup is None else "backup.offsite"
        raise GateFailed(f"site {site_name} has no off-site backup copy configured ({missing} is not set): "
                         "set backup.dir (on the site's host) and backup.offsite (a folder on this machine) "
                         "in the config", {"configured": site.backup is not None})
    config = site.backup
    if config.engine == "restic":
        return _restic_preconditions(deployment)
    evidence: dict[str, Any] = {"dir": config.dir, "offsite": config.offsite, "max_age_seconds": config.max_age}
    held: list[dict[str, Any]] = []
    evidence["preconditions"] = held
    try:
        exposure.refuse_by_path(site_name, site, transport)
        held.append(preconditions.host_folder(site_name, site, transport))
        evidence["exposure"] = exposure.check(site_name, site, transport)
        held.append(preconditions.record("not served by the site", _probe_summary(evidence["exposure"])))
        held.append(preconditions.offsite_folder(site_name, site))
    except exposure.BackupExposed as error:
        raise GateFailed(error.message, evidence) from None
    except WpgateError as error:
        raise GateFailed(str(error), evidence) from None
    return evidence


def _restic_preconditions(deployment: "Deployment") -> dict[str, Any]:
    """With `engine: restic`: restic on the site's host, recent enough; its password set; the repository and
    the off-site one exist and open with it. Reads only."""
    from wpgate.backup import restic

    site, site_name, transport = deployment.site, deployment.site_name, deployment.transport
    config = site.backup
    assert config is not None
    evidence: dict[str, Any] = {"engine": "restic", "repository": config.repository, "offsite": config.offsite,
                                "dir": config.repository, "max_age_seconds": config.max_age}
    held: list[dict[str, Any]] = []
    evidence["preconditions"] = held
    tool = restic.Restic(site_name, site, transport)
    try:
        version = tool.version()
        held.append(preconditions.record("restic", f"restic {version} on {transport.name}"))
        offsite = InBackground(lambda: tool.opens(offsite=True))  # both at once: each derives the key anew
        try:
            tool.opens()
        finally:
            offsite.wait()
        held.append(preconditions.record("repository", f"{config.repository} opens with {config.password_env}"))
        offsite.result()
        held.append(preconditions.record("off-site repository", f"{config.offsite} opens with {config.password_env}"))
    except WpgateError as error:
        raise GateFailed(str(error), evidence) from None
    return evidence


def describe(deployment: "Deployment") -> Plan:
    """All `deploy --dry-run` runs of the gate: its preconditions, the way the restore proof would load the
    dump, and which backup a deploy would check first. Nothing is written but the exposure probe's marker
    file, removed at once. Its plan: what a deploy would do, and the evidence."""
    evidence = check_preconditions(deployment)
    site, site_name, transport = deployment.site, deployment.site_name, deployment.transport
    try:
        evidence["preconditions"].append(
            preconditions.restore_proof(site_name, site, transport, deployment.bridge))
        found = backups.find(site_name, site, transport, limit=1)
    except WpgateError as error:
        raise GateFailed(str(error), evidence) from None
    max_age = site.backup.max_age if site.backup else 0
    if not found:
        reason = (f"dry run: its preconditions hold; there is no backup of {site_name} in {evidence['dir']} yet: "
                  "deploy takes one, copies it off-site and proves it restorable before any change")
    else:
        newest = found[0]
        age = newest.age_seconds()
        evidence["newest"] = {"id": newest.id, "created_at": newest.created_at, "age_seconds": round(age)}
        if age > max_age:
            reason = (f"dry run: its preconditions hold; the newest backup, {newest.id}, is {_duration(age)} old "
                      f"(max_age {_duration(max_age)}): deploy takes a new one and proves it before any change")
        else:
            reason = (f"dry run: its preconditions hold; deploy checks the newest backup, {newest.id} "
                      f"({_duration(age)} old), and takes a new one if it does not pass")
    return Plan(reason, evidence)


def _probe_summary(probes: list[dict[str, Any]]) -> str:
    requests = [request for probe in probes for request in probe.get("requests", [])]
    asked = [request for request in requests if "url" in request]
    errors = [request["error"] for request in requests if "error" in request]
    if errors:
        return f"not probed: {errors[0]}"
    if not asked:
        return ("no address of the site leads to it that wpgate can see (no link in the root leads to it, and it "
                "is not under the two folders above the root)")
    answers = sorted({str(request.get("status", request.get("answer"))) for request in asked})
    return (f"{len(asked)} request(s) for a marker file written there (then removed) answered "
            f"{', '.join(answers)}, not the marker")


def run(deployment: "Deployment") -> dict[str, Any]:
    """Find (or take) a backup that passes every condition; record it in the run. Raises GateFailed.
    With the deploy's --require-existing-backup (`deployment.require_existing_backup`), it takes none."""
    require_existing = deployment.require_existing_backup
    evidence = check_preconditions(deployment)
    site, site_name, run = deployment.site, deployment.site_name, deployment.run
    config = site.backup
    assert config is not None
    where = config.repository if config.engine == "restic" else config.dir
    try:
        # Scratch tables a crashed restore proof left in the site's database go before anything is compared.
        leftovers = backups.drop_scratch_leftovers(scratch_journal(deployment), deployment.transport,
                                                   deployment.bridge)
        if leftovers:
            evidence["scratch_leftovers_dropped"] = leftovers
        before = deployment.before or inventory.read(deployment.bridge)
        tables_now = backups.table_checksums(site, deployment.transport, deployment.bridge)
        found = backups.find(site_name, site, deployment.transport, limit=1)
        run.event("backup.search", dir=where, found=[b.id for b in found])
        if found:
            newest = found[0]
            deployment.say(f"  checking the newest backup, {newest.id}")
            reasons = refusals(deployment, newest, before.data, tables_now, fresh=False)
            run.event("backup.checked", id=newest.id, passed=not reasons, reasons=reasons)
            evidence["existing"] = {"id": newest.id, "created_at": newest.created_at, "reasons": reasons}
            if not reasons:
                return _accept(deployment, newest, evidence, taken=False)
        else:
            reasons = [f"there is no backup of {site_name} in {where} on {deployment.transport.name}"]
            evidence["existing"] = None
        if require_existing:
            raise GateFailed(f"no backup of {site_name} passes (a new one may not be taken): "
                             + listing(reasons, "reasons"), evidence | {"reasons": reasons})
        deployment.say(f"  taking a new backup of {site_name} into {where}")
        with run.action("backup", site=site_name, into=where, copy_to=config.offsite) as done:
            taken = backups.take(site_name, site, deployment.transport, deployment.bridge,
                                 progress=lambda text: deployment.say(f"    {text}"),
                                 labels={"run": run.id, "release": deployment.release.id if deployment.release else ""})
            done.update(taken.record())
        reasons = refusals(deployment, taken, before.data, None, fresh=True)
        run.event("backup.checked", id=taken.id, passed=not reasons, reasons=reasons)
        if reasons:
            raise GateFailed(f"the backup just taken, {taken.id}, does not verify: " + listing(reasons, "reasons"),
                             evidence | {"taken": taken.record(), "reasons": reasons})
        return _accept(deployment, taken, evidence, taken=True)
    except GateFailed:
        raise  # the gate's own refusal, with its reasons: not a backup error to wrap
    except WpgateError as error:
        raise GateFailed(f"backup: {error}", evidence) from None


def refusals(deployment: "Deployment", backup: Backup, inventory_now: dict[str, Any],
             tables_now: dict[str, Any] | None, *, fresh: bool) -> list[str]:
    """Every reason the gate does not accept `backup`; the restore check runs only when nothing else failed."""
    site, transport, bridge = deployment.site, deployment.transport, deployment.bridge
    reasons = []
    max_age = site.backup.max_age if site.backup else 0
    age = backup.age_seconds()
    if not fresh and age > max_age:
        reasons.append(f"too old: taken {_duration(age)} ago ({backup.created_at}), more than max_age "
                       f"{_duration(max_age)}")
    changes = inventory_changes(backup.inventory, inventory_now)
    if changes:
        reasons.append("stale: production changed after the backup: " + ", ".join(changes[:10]))
    if tables_now is None:
        tables_now = backups.table_checksums(site, transport, bridge)
        changed = backups.table_differences(backup.tables, tables_now, expected_label="the backup",
                                            found_label="production")
        if changed:
            deployment.run.event("backup.changed_since", id=backup.id, tables=changed)
    else:
        changed = backups.table_differences(backup.tables, tables_now, expected_label="the backup",
                                            found_label="production")
        if changed:
            reasons.append("stale: production's database changed after the backup: " + "; ".join(changed[:10]))
    reasons += backups.verify_copies(backup, site, transport)
    reasons += backups.content_problems(backup, site, transport, tables_now)
    if reasons:
        return reasons
    deployment.say(f"  restoring {backup.id} into a scratch database and folder to prove it restorable")
    problems = backups.restore_check(backup, site, transport, bridge, journal=scratch_journal(deployment))
    return [f"not restorable: {problem}" for problem in problems]


def scratch_journal(deployment: "Deployment") -> backups.ScratchJournal:
    """The site's journal of scratch tables, each event also in the run's journal."""
    run = deployment.run
    return backups.ScratchJournal(deployment.settings.state_dir, deployment.site_name,
                                  on_event=lambda name, data: run.event(name, **data))


def inventory_changes(then: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What differs between two inventories in what a deploy changes: core, plugins, themes, mu-plugins, drop-ins."""
    changes = []
    if not then:
        return ["the backup holds no inventory"]
    for key in ("version", "db_version"):
        if then.get("core", {}).get(key) != now.get("core", {}).get(key):
            changes.append(f"core {key} {then.get('core', {}).get(key)} → {now.get('core', {}).get(key)}")
    for kind, key in (("plugin", "plugins"), ("theme", "themes")):
        was = {item["slug"]: item for item in then.get(key, [])}
        is_now = {item["slug"]: item for item in now.get(key, [])}
        for slug in sorted(set(was) | set(is_now)):
            old, new = was.get(slug), is_now.get(slug)
            if old is None or new is None:
                changes.append(f"{kind} {slug} {'appeared' if old is None else 'disappeared'}")
                continue
            for field in ("version", "active", "network_active", "parent"):
                if field in old and old.get(field) != new.get(field):
                    changes.append(f"{kind} {slug} {field} {old.get(field)} → {new.get(field)}")
    for key in ("mu_plugins", "dropins"):
        if then.get(key, []) != now.get(key, []):
            changes.append(f"{key.replace('_', '-')} changed")
    return changes


def _accept(deployment: "Deployment", backup: Backup, evidence: dict[str, Any], *, taken: bool) -> dict[str, Any]:
    record = backup.record() | {"taken_by_run": taken, "verified": True, "status": "verified"}
    deployment.run.backup = record
    deployment.run.event("backup.accepted", **record)
    deployment.run.write_report()
    return evidence | {"backup": record, "taken": taken,
                       "checks": ["sha256 of every part on the host and off-site", "age within max_age",
                                  "inventory and table checksums equal production's", "dump complete and "
                                  "covering every table", "archive lists completely",
                                  "restored into a scratch database and folder, equal to the backup"]}


def summary(evidence: dict[str, Any]) -> str:
    """The gate's line in deploy's output."""
    record = evidence.get("backup") or {}
    how = "taken now" if evidence.get("taken") else "existing"
    return f"{record.get('id')} ({how}): verified on the host and off-site, restorable"


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
