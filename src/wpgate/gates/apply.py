"""Gate 6.3 (apply): each update, in manifest order, from its own artifact, re-read after (6.4, order, proves the
order from the journal: gates/order.py)."""

from __future__ import annotations

import shlex
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from wpgate import aside as asides
from wpgate import artifacts, inventory, upgrader
from wpgate.caches import Outcome
from wpgate.caches.opcache import Opcache
from wpgate.command import Command
from wpgate.errors import WpgateError
from wpgate.gates import GateFailed, Plan, monitor
from wpgate.gates import caches as caches_gate
from wpgate.release import Update, artifact_file
from wpgate.run import UpdateStatus

if TYPE_CHECKING:
    from wpgate.deployment import Deployment

STEP, NAME = "6.3", "apply"

# Once WordPress's maintenance file is written, requests already past its check still run: core files
# change only once they have ended. php-fpm's scoreboard says which are running, and a built-in server of one
# process runs one at a time (Opcache.drain); where the web server cannot tell (mod_php, the built-in server's
# several processes, an OPcache reload command), they get this long. A page renders in well under a second on an idle host;
# on a loaded one (the test suite's 2 cores, 4 workers) 1 s let one request meet the new files.
DRAIN_SECONDS = 2.0


def describe(deployment: "Deployment") -> Plan:
    """All `--dry-run` shows of the gate: its plan. It checks nothing it could not check only by changing the
    site (the OPcache reset is tried by the deploy, before the first change)."""
    return Plan(heading="The apply gate would do, in this order:", lines=plan(deployment))


def plan(deployment: "Deployment") -> list[str]:
    """What apply will do, in order: what the dry run shows and the deploy says before it asks."""
    lines = [f"0. before any change: reset the web server's OPcache once to prove it can be "
             f"({Opcache(caches_gate.target(deployment)).describe()})"]
    if deployment.aside is not None:
        lines[0] += f"; old versions are kept in {deployment.aside.describe()}"
    for number, update in enumerate(deployment.release.updates, 1):
        how = ("Core_Upgrader with maintenance on, the web server's OPcache reset, the database upgrade in a "
               "fresh PHP process, maintenance off" if update.type == "core" else
               f"WordPress's {update.type} upgrader, as the Dashboard's Update now does (its hooks fire as there), "
               "unpacks it beside the live folder, where it is checked against the artifact; then it is swapped "
               "in by rename, with no maintenance page, and the web server's OPcache is reset before the probe")
        lines.append(f"{number}. {update.type} {update.slug}: {update.from_version} → {update.to_version} "
                     f"from {update.artifact.path} ({how})")
    return lines


def summary(evidence: dict[str, Any]) -> str:
    return ", ".join(f"{a['type']} {a['slug']} {a['to']}" for a in evidence["applied"])


def workdir(deployment: "Deployment") -> str:
    return deployment.aside.run_folder(deployment.run.id)


def live_path(deployment: "Deployment", update: Update) -> str:
    paths = deployment.before.data["paths"]
    if update.type == "core":
        return paths["abspath"]
    return f"{paths['plugins' if update.type == 'plugin' else 'themes']}/{update.slug}"


def aside_path(deployment: "Deployment", update: Update) -> str:
    return deployment.aside.kept(deployment.run.id, update.type, update.slug)


def undo_instructions(deployment: "Deployment", update: Update) -> str:
    """How a person puts one component back by hand from what apply kept aside."""
    live, aside = shlex.quote(live_path(deployment, update)), shlex.quote(aside_path(deployment, update))
    opened = (f"chmod 700 {shlex.quote(workdir(deployment))} && " if deployment.aside.sealed else "")
    if update.type == "core":
        return (f"core: {opened}cp -a {aside}/. {live}/ and restore the database from your backup "
                "(the core update upgraded it)")
    return f"{update.type} {update.slug}: {opened}rm -rf {live} && mv {aside} {live}"


def run(deployment: "Deployment") -> dict[str, Any]:
    try:
        ready = web_opcache(deployment, None)
    except WpgateError as error:
        raise GateFailed(f"the web server's OPcache cannot be reset, so visitors and the probes could get old "
                         f"code after each update: {error}") from None
    prepare(deployment)
    results = [apply_one(deployment, index, update) for index, update in enumerate(deployment.release.updates)]
    return {"applied": results, "workdir": workdir(deployment), "web_opcache": ready.result,
            "old_versions_kept": deployment.aside.describe()}


def web_opcache(deployment: "Deployment", index: int | None) -> Outcome:
    """Bring the web server's PHP in line with the files on disk: gate 6.5's OPcache reset (a one-shot
    request, or the configured reload command). The CLI process that installed the files cannot: the
    web server keeps its own compiled code, for revalidate_freq seconds or, without validate_timestamps,
    until reset."""
    with deployment.run.action("web_opcache", **({"index": index} if index is not None else {})) as done:
        outcome = Opcache(caches_gate.target(deployment)).purge()
        done["result"] = outcome.result
    return outcome


def prepare(deployment: "Deployment") -> None:
    """The run's folder on the host, for the old versions, the new ones before their swap, and the packages:
    owner only, and closed to everyone (mode 000) between wpgate's steps where it is inside the web root."""
    transport, aside = deployment.transport, deployment.aside
    folder = workdir(deployment)
    with deployment.run.action("prepare", workdir=folder, how=aside.how):
        transport.check(Command.of("sh", "-c", '[ ! -d "$1" ] || chmod 700 -- "$1"', "sh", folder))
        transport.check(Command.of("mkdir", "-p", *aside.parts(deployment.run.id)))
        transport.check(Command.of("chmod", "700", aside.folder, folder))
        if aside.sealed:
            for path, text in aside.guard_files().items():
                transport.check(Command.of("sh", "-c", 'test -e "$1" || printf "%s" "$2" > "$1"', "sh", path, text))
            asides.seal(transport, folder)


def clean_up(deployment: "Deployment") -> None:
    """After a complete run the old versions are not needed, and should not stay on the host."""
    with deployment.run.action("clean_up", workdir=workdir(deployment)):
        deployment.aside.remove_run_folder(deployment.transport, deployment.run.id)


def apply_one(deployment: "Deployment", index: int, update: Update) -> dict[str, Any]:
    run, transport = deployment.run, deployment.transport
    entry = run.updates[index]
    deployment.say(f"  applying {update.label}")
    with run.action("apply", index=index, type=update.type, slug=update.slug, to=update.to_version) as done:
        with deployment.aside.opened(transport, run.id):
            live, aside = live_path(deployment, update), aside_path(deployment, update)
            if update.type == "core":
                with run.action("aside", index=index, source=live, aside=aside):
                    names = _keep_aside(deployment, update, live, aside)
                # What rollback puts back, and what it may remove as added by the new core (rollback.py).
                entry.aside_names = names
            entry.live, entry.aside, entry.undo = live, aside, undo_instructions(deployment, update)

            local = artifact_file(deployment.settings.state_dir, update.artifact)
            package = f"{deployment.aside.packages(run.id)}/{local.name}"
            with run.action("upload", index=index, package=package):
                transport.upload(local, package, progress=f"    uploading {local.name}")
            remote_sha256 = transport.sha256(package)
            if remote_sha256 != update.artifact.sha256:
                raise GateFailed(f"{update.label}: the artifact arrived damaged on the host "
                                 f"(sha256 {remote_sha256[:12]}…)",
                                 {"update": index, "expected": update.artifact.sha256, "found": remote_sha256})
            run.event("artifact.verified", index=index, sha256=remote_sha256)
            # WordPress's upgrader may delete the package it unpacks: it gets a copy of its own.
            install_copy = str(PurePosixPath(package).with_suffix(".install.zip"))
            with run.action("copy_package", index=index, package=install_copy):
                transport.check(Command.of("cp", "--", package, install_copy))

            # From here the site itself changes.
            run.changed = True
            entry.status, entry.install_began = UpdateStatus.APPLYING, True
            run.write_report()
            if update.type == "core":
                installed, database, web = _install_core(deployment, index, update, install_copy)
            else:
                installed, database = _swap_in(deployment, index, update, install_copy, local), None
                web = _after_swap(deployment, index, update, live, aside)
            with run.action("remove_packages", index=index):
                transport.check(Command.of("rm", "-f", "--", package, install_copy))

        found = verify(deployment, index, update)
        entry.status = UpdateStatus.APPLIED
        done["version"] = found
    run.write_report()
    probe = monitor.probe(deployment, index, update)  # names this update when the site broke here
    return {"type": update.type, "slug": update.slug, "to": found, "method": installed.get("method"),
            "aside": aside, "database": database, "web_opcache": web.result if web else None,
            "maintenance": "on while the core files changed" if update.type == "core" else
            "none: unpacked beside the live folder, checked, swapped in by rename",
            **({"probe": probe} if probe else {})}


def _keep_aside(deployment: "Deployment", update: Update, live: str, aside: str) -> list[str]:
    """A copy of core as it is now: its folders and root files; the names copied."""
    transport = deployment.transport
    core_files = artifacts.CORE_FOLDERS + tuple(artifacts.core_root_files(transport, live))
    transport.check(Command.of("mkdir", "-p", aside))
    transport.check(Command.of("cp", "-a", "--", *core_files, aside + "/", cwd=live))
    return list(core_files)


def _swap_in(deployment: "Deployment", index: int, update: Update, package: str, local: Path) -> dict[str, Any]:
    """A plugin or theme, with no maintenance page: WordPress's upgrader unpacks the package into the run's
    folder (on the live folder's filesystem), wpgate's PHP checks every file there against the artifact, then
    two renames, one right after the other, put the live folder aside and the new one in its place. The
    upgrader's hooks fire as in the Dashboard's Update now (upgrader_process_complete with action "update",
    the plugin's active state kept). A failure before the swap leaves the live folder as it was."""
    run = deployment.run
    swap = upgrader.Swap(live=live_path(deployment, update),
                         staged=deployment.aside.staged(run.id, update.type, update.slug),
                         aside=aside_path(deployment, update), files=artifacts.file_hashes(local))
    try:
        with run.action("install", index=index, staged=swap.staged) as done:
            installed = upgrader.install_component(deployment.bridge, kind=update.type, slug=update.slug,
                                                   package=package, version=update.to_version, swap=swap)
            done.update(method=installed.get("method"), swapped=installed.get("swapped"))
    except WpgateError as error:
        raise GateFailed(f"{update.label}: WordPress's upgrader failed: {error}", {"update": index}) from None
    return installed


def _after_swap(deployment: "Deployment", index: int, update: Update, live: str, aside: str) -> Outcome:
    """The web server's PHP in line with the new folder before the probe runs and the next update starts."""
    try:
        web = web_opcache(deployment, index)
    except WpgateError as error:
        raise GateFailed(f"{update.label}: the web server's PHP may still run the old code: {error}",
                         {"update": index}) from None
    deployment.run.event("swapped", index=index, type=update.type, slug=update.slug, live=live, aside=aside)
    return web


def _install_core(deployment: "Deployment", index: int, update: Update,
                  package: str) -> tuple[dict[str, Any], Any, Outcome | None]:
    """Maintenance on (WordPress's upgrader writes the file, wpgate keeps it) → the files → the web
    server's OPcache reset → the database upgrade → maintenance off. So no visitor, probe or next update
    meets code compiled from the old files beside the new ones. Maintenance is off afterwards whatever
    happened, and a later failure never hides the upgrader's own error."""
    run, bridge = deployment.run, deployment.bridge
    failure: GateFailed | None = None
    installed: dict[str, Any] = {}
    database = None
    web: Outcome | None = None
    try:
        with run.action("install", index=index) as done, \
                Opcache(caches_gate.target(deployment)).drain_point() as drain:
            upgrader.maintenance_page_on(bridge, deployment.before.content_dir)
            installed = upgrader.install_component(bridge, kind=update.type, slug=update.slug,
                                                   package=package, version=update.to_version,
                                                   hold_maintenance=True, drain_seconds=DRAIN_SECONDS,
                                                   drain_url=drain and drain.url, drain_token=drain and drain.token)
            done.update(method=installed.get("method"), drain=installed.get("drain"))
    except WpgateError as error:
        failure = GateFailed(f"{update.label}: WordPress's upgrader failed: {error}", {"update": index})
    # Also after a failed install: the files may have changed half-way, and the rollback's own
    # requests should not meet stale code either.
    try:
        web = web_opcache(deployment, index)
    except WpgateError as error:
        if failure is None:
            failure = GateFailed(f"{update.label}: the web server's PHP may still run the old code: {error}",
                                 {"update": index})
    if failure is None:
        try:
            with run.action("upgrade_database", index=index) as done:
                database = (upgrader.upgrade_database(bridge) if _schema_changes(installed) else
                            {"from": installed["db_version"], "to": installed["db_version"],
                             "wordpress": installed.get("version"), "upgraded": False,
                             "skipped": "the new files expect the db_version the database has"})
                done.update(database)
        except WpgateError as error:
            failure = GateFailed(f"{update.label}: WordPress's upgrader failed: {error}", {"update": index})
    try:
        with run.action("maintenance_off", index=index):
            upgrader.maintenance_off(bridge, deployment.before.content_dir)
    except WpgateError as error:
        if failure is None:
            raise GateFailed(f"{update.label}: could not turn maintenance mode off: {error}") from None
    if failure is not None:
        raise failure
    return installed, database, web


def _schema_changes(installed: dict[str, Any]) -> bool:
    """Whether the core just installed needs WordPress's database upgrade: its files expect another
    db_version than the database has (a minor release keeps it; wp_upgrade() would return at once, after
    loading WordPress in another process, while visitors get the maintenance page)."""
    has, expects = installed.get("db_version"), installed.get("files_db_version")
    return not (isinstance(has, int) and has == expects)


def verify(deployment: "Deployment", index: int, update: Update) -> str:
    """Never trust the upgrader's word: read the version, the active state and the files again."""
    local = artifact_file(deployment.settings.state_dir, update.artifact)
    after = inventory.read(deployment.bridge)
    found = after.version_of(update.type, update.slug)
    if found != update.to_version:
        raise GateFailed(f"{update.label}: after the upgrade the site reports {found or 'nothing'}, "
                         f"not {update.to_version}", {"update": index, "found": found})
    if update.type == "plugin":
        was, now = deployment.before.plugins[update.slug], after.plugins[update.slug]
        for key in ("active", "network_active"):
            if was[key] != now[key]:
                raise GateFailed(f"{update.label}: {key} was {was[key]} before the update and is {now[key]} after")
    elif update.type == "theme" and deployment.before.themes[update.slug]["active"] != after.themes[update.slug]["active"]:
        raise GateFailed(f"{update.label}: the theme's active state changed")
    if update.type == "core" and after.database_behind():
        raise GateFailed(f"{update.label}: {after.database_behind()}")
    mismatched, extra = _file_mismatches(deployment, update, local)
    if extra:
        # A plugin may write into its own folder as soon as a request loads it: noted, not fatal.
        deployment.run.event("apply.extra_files", index=index, files=extra[:50])
    if mismatched:
        raise GateFailed(f"{update.label}: {len(mismatched)} installed files differ from the artifact, "
                         f"e.g. {', '.join(mismatched[:3])}", {"update": index, "files": mismatched[:50]})
    return found


def _file_mismatches(deployment: "Deployment", update: Update, local_artifact: Path) -> tuple[list[str], list[str]]:
    """Artifact files missing or different on the site, and (plugins, themes) files the artifact lacks."""
    expected = artifacts.file_hashes(local_artifact)
    root = live_path(deployment, update)
    # Core: only the core's own files, never wp-content (uploads can be many gigabytes).
    scope = (artifacts.CORE_FOLDERS + tuple(artifacts.core_root_files(deployment.transport, root))
             if update.type == "core" else (".",))
    listing = deployment.transport.check(Command.of(
        "sh", "-c", 'cd "$1" && shift && find "$@" -type f -print0 | xargs -0 -r sha256sum', "sh",
        root, *scope), timeout=600)
    installed = {}
    for line in listing.text().splitlines():
        if line.startswith("\\"):
            continue  # sha256sum escapes a name holding a backslash or newline: left out, so reported
        digest, _, name = line.partition("  ")
        installed[name.removeprefix("./")] = digest
    mismatched = [name for name, digest in expected.items() if installed.get(name) != digest]
    extra = sorted(set(installed) - set(expected)) if update.type != "core" else []
    return mismatched, extra
