"""`wpgate backup SITE` and `wpgate restore BACKUP --verify`: the backup on its own, outside a deploy (a restore
onto the site is restore.py)."""

from __future__ import annotations

import time
from typing import Any

from wpgate import backup as backups
from wpgate.backup import exposure
from wpgate.backup.offsite import human_size
from wpgate.bridge import Bridge
from wpgate.config import Settings
from wpgate.errors import BadInput, GateRefused, listing
from wpgate.output import Output
from wpgate.transports import for_site
from wpgate.words import plural


def backup(settings: Settings, site_name: str, console: Output) -> dict[str, Any]:
    """Take one backup of the site and copy it off-site; print a summary; return its manifest."""
    site = settings.site(site_name)
    config = backups.backup_config(site_name, site)
    if not config.offsite:
        where = "a restic repository" if config.engine == "restic" else "a folder on this machine"
        raise BadInput(f"{settings.path}: sites.{site_name}.backup.offsite is not set: set it to {where} "
                       "for the backup's second copy")

    def progress(text: str) -> None:
        console.print(f"  {text}", markup=False, soft_wrap=True)

    started = time.monotonic()
    with for_site(site) as transport:
        probes = [] if config.engine == "restic" else exposure.check(site_name, site, transport)
        taken = backups.take(site_name, site, transport, Bridge(site_name, site, transport), progress=progress)
    seconds = time.monotonic() - started
    manifest = taken.manifest
    database, files = manifest["database"], manifest["files"]
    if backups.is_restic(taken):
        lines = [f"backup {taken.id} of {site_name}: {plural(database['tables'], 'table')} "
                 f"({plural(database['rows'], 'row')}), {plural(files['files'], 'file')} "
                 f"({human_size(files['bytes'] or 0)}) in {seconds:.1f}s",
                 f"  restic repository {taken.folder} on {transport.name}: files {files['new']} new, "
                 f"{files['changed']} changed, {files['unmodified']} unchanged; "
                 f"{human_size((files['bytes_added'] or 0) + (database['bytes_added'] or 0))} added",
                 f"  off-site: {taken.offsite}  (copied, checked with --read-data-subset, every snapshot found)"]
        for line in lines:
            console.print(line, markup=False, soft_wrap=True)
        return manifest | {"manifest_sha256": taken.manifest_sha256, "folder": taken.folder, "offsite": taken.offsite,
                           "snapshots": {part: value["snapshot"] for part, value in taken.parts.items()}}
    dump_size, archive_size = (human_size(taken.parts[name]["bytes"]) for name in ("database.sql.gz", "files.tar.gz"))
    lines = [f"backup {taken.id} of {site_name}: {plural(database['tables'], 'table')} ({plural(database['rows'], 'row')}), "
             f"{plural(files['files'], 'file')} ({human_size(files['bytes'])}) in {seconds:.1f}s",
             f"  on {transport.name}: {taken.folder}  (database {dump_size}, files {archive_size})",
             f"  off-site: {taken.offsite}  (every part's sha256 verified)"]
    lines += [f"  warning: {warning}" for warning in files.get("warnings", [])]
    if database.get("changed_during_backup"):
        lines.append("  note: these tables changed while the backup ran: "
                     + ", ".join(database["changed_during_backup"]))
    for line in lines:
        console.print(line, markup=False, soft_wrap=True)
    return manifest | {"manifest_sha256": taken.manifest_sha256, "folder": taken.folder, "offsite": taken.offsite,
                       "exposure": probes}


def restore_verify(settings: Settings, backup_id: str, *, console: Output) -> dict[str, Any]:
    """Check that a backup restores, touching nothing of the site; the report (`restorable`, `problems`, what
    was compared). Putting it onto the site is restore.py."""
    site_name = backups.site_of(backup_id)
    if site_name not in settings.model.sites:
        raise BadInput(f"backup {backup_id} belongs to site {site_name}, which {settings.path} does not configure")
    site = settings.site(site_name)
    backups.backup_config(site_name, site)
    started = time.monotonic()

    def progress(text: str) -> None:
        console.print(f"  {text}", markup=False, soft_wrap=True)

    with for_site(site) as transport:
        found = backups.find_one(backup_id, site_name, site, transport)
        bridge = Bridge(site_name, site, transport)
        progress(f"checking the sha256 of every part of {backup_id} on {transport.name} and off-site")
        problems = backups.verify_copies(found, site, transport)
        problems += [] if backups.is_restic(found) else backups.archive_problems(found, transport)
        journal = backups.ScratchJournal(settings.state_dir, site_name)
        leftovers = backups.drop_scratch_leftovers(journal, transport, bridge)
        if leftovers:
            progress(f"dropped scratch tables an interrupted restore check left: {', '.join(leftovers)}")
        checked = backups.check_restore(found, site, transport, bridge, progress=progress, journal=journal)
    problems += checked.problems
    report = {"backup": backup_id, "site": site_name, "folder": found.folder, "offsite": found.offsite,
              "restorable": not problems, "problems": problems, "compared": checked.compared,
              "seconds": round(time.monotonic() - started, 2)}
    if not problems:
        compared = checked.compared
        console.print(f"backup {backup_id} is restorable: {plural(compared.get('tables'), 'table')} "
                      f"({plural(compared.get('rows'), 'row')}) and {plural(compared.get('files'), 'file')} "
                      f"({human_size(compared.get('bytes', 0))}) restored equal to the backup; scratch copies removed",
                      markup=False, soft_wrap=True)
    return report


def refuse_unless_restorable(report: dict[str, Any]) -> None:
    if report["problems"]:
        raise GateRefused(f"backup {report['backup']} is not restorable: "
                          + listing(report["problems"], "problems"))
