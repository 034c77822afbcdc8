"""Applying retention: `wpgate prune SITE [--dry-run]`, and the last step of a complete deploy.

Reads the site's backups (backup.dir on its host, or its restic repository), the runs and saved releases in state_dir, decides with
retention.py, then removes what goes: a backup's own parts and manifest off-site, then on the host, then its
folder when nothing else is left in it (a file someone put there is never removed, and its folder stays),
or with restic its three snapshots in both repositories (`restic forget --prune`);
and the zips in state_dir/artifacts that no run or release can still need.
"""

from __future__ import annotations

import json
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

from wpgate import release as release_module
from wpgate.backup import offsite, remote, retention
from wpgate.backup.engines import listed
from wpgate.backup.model import ID, MANIFEST, PARTS, Backup, backup_config
from wpgate.command import Command
from wpgate.config import Settings, SiteConfig
from wpgate.errors import ExitStatus, WpgateError
from wpgate.run import RUN_ID
from wpgate.transports import Transport, for_site

Say = Callable[[str], None]

# The manifest goes first: a folder without it is no longer a backup to anyone (find() skips it), so an
# interruption never leaves a "backup" with missing parts behind.
_REMOVE = r"""
folder=$1
shift
cd -- "$folder" || exit 1
rm -f -- "$@" || exit 1
cd / && rmdir -- "$folder" 2>/dev/null || echo "left: other files remain in the folder"
"""


def read_runs(state_dir: Path) -> tuple[list[retention.RunFacts], list[str]]:
    """Every run in state_dir/runs (id, site, status, backup, its release's artifacts); and what could not be read."""
    runs, unreadable = [], []
    folder = state_dir / "runs"
    for run_folder in sorted(folder.iterdir()) if folder.is_dir() else []:
        if not RUN_ID.fullmatch(run_folder.name):
            continue
        try:
            report = json.loads((run_folder / "report.json").read_text())
        except FileNotFoundError:
            continue  # a run folder made an instant before its first report: it has nothing yet
        except (OSError, json.JSONDecodeError):
            unreadable.append(str(run_folder / "report.json"))
            continue
        artifacts: tuple[str, ...] = ()
        if (run_folder / "release.yml").exists():
            try:
                artifacts = _artifacts_of(release_module.load(run_folder / "release.yml"))
            except WpgateError:
                unreadable.append(str(run_folder / "release.yml"))
        history = report.get("history") or [{}]
        backup = report.get("backup") or {}
        runs.append(retention.RunFacts(
            id=run_folder.name, site=str(report.get("site")), status=str(report.get("status")),
            release=str(report.get("release")), backup=backup.get("id") if isinstance(backup, dict) else None,
            artifacts=artifacts, ended_at=str(history[-1].get("at", "")) if isinstance(history[-1], dict) else ""))
    return runs, unreadable


def read_releases(state_dir: Path) -> tuple[list[retention.ReleaseFacts], list[str]]:
    releases, unreadable = [], []
    folder = state_dir / "releases"
    for path in sorted(folder.glob("*.yml")) if folder.is_dir() else []:
        try:
            loaded = release_module.load(path)
        except WpgateError:
            unreadable.append(str(path))
            continue
        releases.append(retention.ReleaseFacts(loaded.id, _artifacts_of(loaded)))
    return releases, unreadable


def _artifacts_of(loaded: release_module.Release) -> tuple[str, ...]:
    return tuple(update.artifact.path for update in loaded.updates)


def prune(settings: Settings, site_name: str, *, dry_run: bool, say: Say = lambda text: None,
          lock: bool = True) -> dict[str, Any]:
    """Apply retention to the site's backups and to the artifacts; the decisions and what was removed.
    Unless a dry run (or `lock` is False), the site's lock is held meanwhile, as a run holds it: no deploy,
    rollback or resume decides on a backup while it is being removed."""
    site = settings.site(site_name)
    config = backup_config(site_name, site)
    state_dir = settings.state_dir
    runs, unreadable_runs = read_runs(state_dir)
    with for_site(site) as transport, ExitStack() as held:
        if lock and not dry_run:
            held.enter_context(_site_lock(site_name, site, transport))
        found = listed(site_name, site, transport)
        site_runs = [run for run in runs if run.site == site_name]
        decisions = retention.backups([(backup.id, backup.created) for backup in found], site_runs,
                                      keep_last=config.keep_last, keep_daily=config.keep_daily)
        if unreadable_runs:
            for decision in decisions:
                if not decision.keep:
                    decision.keep = True
                    decision.reasons = [f"cannot read {', '.join(unreadable_runs)}: kept, to be safe"]
        by_id = {backup.id: backup for backup in found}
        going = [by_id[decision.name] for decision in decisions if not decision.keep]
        outcomes = {} if dry_run else remove_backups(transport, site_name, site, going)
        backups_out = []
        for decision in decisions:
            entry = decision.as_dict() | {"path": by_id[decision.name].folder, "offsite": by_id[decision.name].offsite}
            if decision.name in outcomes:
                entry["removed"], entry["problems"] = outcomes[decision.name]
            backups_out.append(entry)
    releases, unreadable_releases = read_releases(state_dir)
    artifacts_dir = state_dir / "artifacts"
    names = sorted(path.relative_to(state_dir).as_posix() for path in artifacts_dir.glob("*.zip")) \
        if artifacts_dir.is_dir() else []
    artifacts_out = []
    for decision in retention.artifacts(names, releases, runs, [*unreadable_runs, *unreadable_releases]):
        entry = decision.as_dict() | {"bytes": (state_dir / decision.name).stat().st_size}
        if not decision.keep and not dry_run:
            try:
                (state_dir / decision.name).unlink()
                entry["removed"], entry["problems"] = True, []
            except OSError as error:
                entry["removed"], entry["problems"] = False, [f"cannot remove {state_dir / decision.name}: {error.strerror}"]
        artifacts_out.append(entry)
    result = {"site": site_name, "dry_run": dry_run, "keep_last": config.keep_last, "keep_daily": config.keep_daily,
              "backups": backups_out, "artifacts": artifacts_out}
    result["problems"] = [problem for entry in [*backups_out, *artifacts_out] for problem in entry.get("problems", [])]
    for line in lines(result):
        say(line)
    return result


@contextmanager
def _site_lock(site_name: str, site: SiteConfig, transport: Transport) -> Iterator[None]:
    """The site's lock, where a run would take it (aside.py), held under a `prune-…` name."""
    from wpgate import aside as asides, inventory
    from wpgate.bridge import Bridge
    from wpgate.lock import SiteLock

    found = inventory.read(Bridge(site_name, site, transport))
    paths = found.data["paths"]
    chosen = asides.choose(transport, site_name, site, paths, found.data.get("site_url") or site.url)
    holder = SiteLock.of_site(transport, chosen, f"prune-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}", site_name,
                              site, paths)
    holder.acquire()
    try:
        yield
    finally:
        holder.release()


def refuse_if_incomplete(result: dict[str, Any]) -> None:
    """`wpgate prune` exits 5 when a removal it decided on failed: a person must look (the lines say what)."""
    failed = [entry["name"] for entry in [*result["backups"], *result["artifacts"]]
              if not entry["keep"] and entry.get("removed") is False]
    if failed:
        raise RemovalIncomplete(f"prune of {result['site']}: could not remove {', '.join(failed)}: "
                                + "; ".join(result["problems"][:3]))


class RemovalIncomplete(WpgateError):
    """A removal retention decided on failed: exit 5, a person must act."""

    exit_code = ExitStatus.ROLLBACK_INCOMPLETE


def remove_backups(transport: Transport, site_name: str, site: SiteConfig,
                   backups: list[Backup]) -> dict[str, tuple[bool, list[str]]]:
    """Remove the backups retention lets go; for each, (removed, problems). With restic, one `restic forget
    --prune` per repository for them all."""
    if backup_config(site_name, site).engine == "restic":
        from wpgate.backup import restic

        return {name: (not problems, problems) for name, problems in restic.forget(backups, site, transport).items()}
    return {backup.id: remove_backup(transport, site_name, site, backup) for backup in backups}


def remove_backup(transport: Transport, site_name: str, site: SiteConfig, backup: Backup) -> tuple[bool, list[str]]:
    """Remove one backup of the archive engine: its manifest and parts off-site, then on the host; (removed,
    problems). The off-site copy goes first: when it cannot be removed, the host's copy stays whole, where the
    next `wpgate prune` finds it and tries again (without it, nothing would name the copy left off-site)."""
    config = backup_config(site_name, site)
    if not ID.fullmatch(backup.id) or backup.folder != f"{config.dir}/{backup.id}":
        return False, [f"{backup.folder} is not a backup folder of {site_name}: left alone"]
    names = [MANIFEST, *[name for name in backup.parts if name in PARTS]]
    problems = []
    if remote.is_remote(config.offsite):
        try:
            problems += remote.target(config).remove(backup.id, names)
        except WpgateError as error:
            problems.append(f"off-site, cannot remove {backup.id}: {error}")
    elif config.offsite:
        copy = offsite.folder(config.offsite, backup.id)
        if copy.is_dir():
            try:
                (copy / MANIFEST).unlink(missing_ok=True)
                for name in names[1:]:
                    (copy / name).unlink(missing_ok=True)
                try:
                    copy.rmdir()
                except OSError:
                    problems.append(f"off-site, {copy} holds files wpgate did not write: the backup's own files "
                                    "were removed, the folder and those files were left")
            except OSError as error:
                problems.append(f"off-site, cannot remove {copy}: {error.strerror}")
    if any("cannot remove" in problem for problem in problems):
        return False, problems + [f"the copy on {transport.name} ({backup.folder}) was left whole: run `wpgate "
                                  "prune` again once the off-site copy can be removed"]
    try:
        result = transport.run(Command.of("sh", "-c", _REMOVE, "sh", backup.folder, *names))
    except WpgateError as error:
        return False, problems + [f"on {transport.name}, cannot remove {backup.folder}: {error}"]
    if not result.ok:
        return False, problems + [f"on {transport.name}, cannot remove {backup.folder}: {result.error_text(200)}"]
    if "left:" in result.text():
        problems.append(f"on {transport.name}, {backup.folder} holds files wpgate did not write: "
                        "the backup's own files were removed, the folder and those files were left")
    return True, problems


def lines(result: dict[str, Any]) -> list[str]:
    """The human view: one line per backup and artifact, then a summary."""
    going = "would remove" if result["dry_run"] else "removed"
    out = []
    for entry in result["backups"]:
        if entry["keep"]:
            out.append(f"kept backup {entry['name']}: {'; '.join(entry['reasons'])}")
        elif result["dry_run"] or entry.get("removed"):
            where = " and off-site" if entry.get("offsite") else ""
            out.append(f"{going} backup {entry['name']} (on the host{where}): {'; '.join(entry['reasons'])}")
        else:
            out.append(f"could not remove backup {entry['name']}: {'; '.join(entry['problems'])}")
    for entry in result["artifacts"]:
        size = offsite.human_size(entry["bytes"])
        if entry["keep"]:
            out.append(f"kept artifact {entry['name']} ({size}): {'; '.join(entry['reasons'])}")
        elif result["dry_run"] or entry.get("removed"):
            out.append(f"{going} artifact {entry['name']} ({size}): {'; '.join(entry['reasons'])}")
        else:
            out.append(f"could not remove artifact {entry['name']}: {'; '.join(entry['problems'])}")
    out += [f"warning: {problem}" for entry in [*result["backups"], *result["artifacts"]] if entry.get("removed")
            for problem in entry.get("problems", [])]
    def gone(entries: list[dict[str, Any]]) -> int:  # a removal that failed is not counted as one
        return sum(1 for entry in entries if not entry["keep"] and (result["dry_run"] or entry.get("removed")))

    gone_backups, gone_artifacts = gone(result["backups"]), gone(result["artifacts"])
    out.append(f"{'dry run: ' if result['dry_run'] else ''}{result['site']}: {going} {gone_backups} of "
               f"{len(result['backups'])} backups and {gone_artifacts} of {len(result['artifacts'])} artifacts")
    return out
