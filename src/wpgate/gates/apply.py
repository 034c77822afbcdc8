"""Gates 6.3 (apply) and 6.4 (order): each update, in manifest order, from its own artifact, re-read after."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from wpgate import artifacts, inventory, upgrader
from wpgate.command import Command
from wpgate.errors import WpgateError
from wpgate.gates import GateFailed
from wpgate.release import Update, artifact_file

if TYPE_CHECKING:
    from wpgate.pipeline import Deployment

STEP, NAME = "6.3", "apply"
ORDER_STEP, ORDER_NAME = "6.4", "order"

# Kept aside and uploaded here: beside the site's own files, so that putting a component back is a
# rename on the same filesystem. The folder refuses web requests on Apache; see the README for nginx.
ASIDE_FOLDER = "wpgate-aside"
_PROTECT = {"index.php": "<?php\n// Silence is golden.\n",
            ".htaccess": "Require all denied\n<IfModule !mod_authz_core.c>\nDeny from all\n</IfModule>\n"}


def describe(deployment: "Deployment") -> list[str]:
    """What apply will do, in order: all that `--dry-run` shows."""
    lines = []
    for number, update in enumerate(deployment.release.updates, 1):
        how = "Core_Upgrader, then the database upgrade" if update.type == "core" else \
            f"{update.type.capitalize()}_Upgrader::bulk_upgrade of this one {update.type}"
        lines.append(f"{number}. {update.type} {update.slug}: {update.from_version} → {update.to_version} "
                     f"from {update.artifact.path} ({how})")
    return lines


def workdir(deployment: "Deployment") -> str:
    return f"{deployment.before.data['paths']['content']}/{ASIDE_FOLDER}/{deployment.run.id}"


def live_path(deployment: "Deployment", update: Update) -> str:
    paths = deployment.before.data["paths"]
    if update.type == "core":
        return paths["abspath"]
    return f"{paths['plugins' if update.type == 'plugin' else 'themes']}/{update.slug}"


def aside_path(deployment: "Deployment", update: Update) -> str:
    if update.type == "core":
        return f"{workdir(deployment)}/core"
    return f"{workdir(deployment)}/{update.type}s/{update.slug}"


def undo_instructions(deployment: "Deployment", update: Update) -> str:
    """How a person puts one component back by hand from what apply kept aside."""
    live, aside = shlex.quote(live_path(deployment, update)), shlex.quote(aside_path(deployment, update))
    if update.type == "core":
        return (f"core: cp -a {aside}/. {live}/ and restore the database from your backup "
                "(the core update upgraded it)")
    return f"{update.type} {update.slug}: rm -rf {live} && mv {aside} {live}"


def run(deployment: "Deployment") -> dict[str, Any]:
    prepare(deployment)
    results = []
    for index, update in enumerate(deployment.release.updates):
        results.append(apply_one(deployment, index, update))
    return {"applied": results}


def prepare(deployment: "Deployment") -> None:
    transport = deployment.transport
    folder = workdir(deployment)
    transport.check(Command.of("mkdir", "-p", f"{folder}/packages", f"{folder}/plugins", f"{folder}/themes"))
    parent = folder.rsplit("/", 1)[0]
    for name, text in _PROTECT.items():
        transport.check(Command.of("sh", "-c", 'test -e "$1" || printf "%s" "$2" > "$1"', "sh",
                                   f"{parent}/{name}", text))
    deployment.run.event("apply.prepared", workdir=folder)


def apply_one(deployment: "Deployment", index: int, update: Update) -> dict[str, Any]:
    run, transport, bridge = deployment.run, deployment.transport, deployment.bridge
    entry = run.updates[index]
    label = f"{update.type} {update.slug} {update.from_version} → {update.to_version}"
    deployment.say(f"  applying {label}")
    run.event("apply.begin", index=index, type=update.type, slug=update.slug, to=update.to_version)

    # Keep the current component aside, so that it can be put back.
    live, aside = live_path(deployment, update), aside_path(deployment, update)
    run.event("aside.begin", index=index, source=live, aside=aside)
    if update.type == "core":
        core_files = artifacts.CORE_FOLDERS + tuple(
            name for name in _root_files(deployment) if artifacts.is_core_root_file(name))
        transport.check(Command.of("mkdir", "-p", aside))
        transport.check(Command.of("cp", "-a", "--", *core_files, aside + "/", cwd=live))
    else:
        transport.check(Command.of("cp", "-a", "--", live, aside))
    entry["undo"] = undo_instructions(deployment, update)
    run.event("aside.done", index=index, aside=aside)

    # Send the artifact to the host and prove it arrived intact.
    local = artifact_file(deployment.settings.state_dir, update.artifact)
    package = f"{workdir(deployment)}/packages/{local.name}"
    transport.upload(local, package)
    remote_sha256 = transport.sha256(package)
    if remote_sha256 != update.artifact.sha256:
        raise GateFailed(f"{label}: the artifact arrived damaged on the host (sha256 {remote_sha256[:12]}…)",
                         {"update": index, "expected": update.artifact.sha256, "found": remote_sha256})
    run.event("artifact.verified", index=index, package=package, sha256=remote_sha256)
    # WordPress's upgrader deletes the package it unpacks: it gets a copy.
    install_copy = package[: -len(".zip")] + ".install.zip"
    transport.check(Command.of("cp", "--", package, install_copy))

    # From here production changes.
    run.changed = True
    entry["status"] = "applying"
    run.event("install.begin", index=index)
    try:
        installed = upgrader.install_component(bridge, kind=update.type, slug=update.slug,
                                               package=install_copy, version=update.to_version)
        database = upgrader.upgrade_database(bridge) if update.type == "core" else None
    except WpgateError as error:
        raise GateFailed(f"{label}: WordPress's upgrader failed: {error}", {"update": index}) from None
    finally:
        _maintenance_off(deployment)
    run.event("install.done", index=index, result=installed, database=database)

    # Never trust the upgrader's word: read the site again.
    after = inventory.read(bridge)
    found = after.version_of(update.type, update.slug)
    if found != update.to_version:
        raise GateFailed(f"{label}: after the upgrade the site reports {found or 'nothing'}, not {update.to_version}",
                         {"update": index, "found": found})
    _check_active_state(deployment, after, update, label)
    if update.type == "core" and after.data["core"]["db_version"] != after.data["core"]["files_db_version"]:
        raise GateFailed(f"{label}: the database is at version {after.data['core']['db_version']}, "
                         f"the files expect {after.data['core']['files_db_version']}")
    mismatched, extra = _file_mismatches(deployment, update, local)
    if extra:
        # A plugin may write into its own folder as soon as a request loads it: noted, not fatal.
        run.event("apply.extra_files", index=index, files=extra[:50])
    if mismatched:
        raise GateFailed(f"{label}: {len(mismatched)} installed files differ from the artifact, "
                         f"e.g. {', '.join(mismatched[:3])}", {"update": index, "files": mismatched[:50]})
    entry["status"] = "applied"
    entry["aside"] = aside
    run.event("apply.done", index=index, version=found)
    run.write_report()
    return {"type": update.type, "slug": update.slug, "to": found, "method": installed.get("method"),
            "aside": aside, "database": database}


def _root_files(deployment: "Deployment") -> list[str]:
    listing = deployment.transport.check(Command.of(
        "find", deployment.before.data["paths"]["abspath"], "-maxdepth", "1", "-type", "f", "-printf", "%f\\n"))
    return sorted(listing.text().splitlines())


def _maintenance_off(deployment: "Deployment") -> None:
    """Maintenance mode is on only while files change: whatever happened, it is off now."""
    path = f"{deployment.before.data['paths']['abspath']}/.maintenance"
    deployment.transport.check(Command.of("rm", "-f", "--", path))
    deployment.run.event("maintenance.off", path=path)


def _check_active_state(deployment: "Deployment", after: inventory.Inventory, update: Update, label: str) -> None:
    if update.type == "plugin":
        was, now = deployment.before.plugins[update.slug], after.plugins[update.slug]
        for key in ("active", "network_active"):
            if was[key] != now[key]:
                raise GateFailed(f"{label}: {key} was {was[key]} before the update and is {now[key]} after")
    elif update.type == "theme":
        if deployment.before.themes[update.slug]["active"] != after.themes[update.slug]["active"]:
            raise GateFailed(f"{label}: the theme's active state changed")


def _file_mismatches(deployment: "Deployment", update: Update, local_artifact) -> tuple[list[str], list[str]]:
    """Artifact files missing or different on the site, and (plugins, themes) files the artifact lacks."""
    expected = artifacts.file_hashes(local_artifact)
    listing = deployment.transport.check(Command.of(
        "sh", "-c", 'cd "$1" && find . -type f -print0 | xargs -0 -r sha256sum', "sh",
        live_path(deployment, update)), timeout=600)
    installed = {}
    for line in listing.text().splitlines():
        digest, _, name = line.partition("  ")
        installed[name.removeprefix("./")] = digest
    mismatched = [name for name, digest in expected.items() if installed.get(name) != digest]
    extra = sorted(set(installed) - set(expected)) if update.type != "core" else []
    return mismatched, extra
