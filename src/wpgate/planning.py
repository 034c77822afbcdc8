"""`wpgate plan`: the difference between staging and production, captured from staging as a release manifest."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wpgate import artifacts, inventory
from wpgate.bridge import Bridge
from wpgate.config import Settings, SiteConfig
from wpgate.errors import BadInput, GateRefused
from wpgate.inventory import Inventory
from wpgate.command import Command
from wpgate.output import Output
from wpgate.release import SLUG, VERSION, Release, Update, save
from wpgate.transports import Transport, for_site


@dataclass
class Difference:
    """What differs between the two sites, sorted into updates and what wpgate leaves alone."""

    updates: list[tuple[str, str, str, str]] = field(default_factory=list)  # (type, slug, from, to)
    not_replicated: list[str] = field(default_factory=list)


def compare(staging: Inventory, production: Inventory) -> Difference:
    difference = Difference()
    if staging.core_version != production.core_version:
        _check_version("core", "wordpress", production.core_version, staging.core_version)
        difference.updates.append(("core", "wordpress", production.core_version, staging.core_version))
    for kind, ours, theirs in (("plugin", production.plugins, staging.plugins),
                               ("theme", production.themes, staging.themes)):
        for slug in sorted(set(ours) | set(theirs)):
            if slug not in ours:
                difference.not_replicated.append(f"{kind} {slug} {theirs[slug]['version']} is only on staging")
            elif slug not in theirs:
                difference.not_replicated.append(f"{kind} {slug} {ours[slug]['version']} is only on production")
            elif ours[slug]["version"] != theirs[slug]["version"]:
                if kind == "plugin" and "/" not in ours[slug]["file"]:
                    difference.not_replicated.append(
                        f"plugin {slug} is a single file ({ours[slug]['file']}): update it by hand")
                    continue
                _check_version(kind, slug, ours[slug]["version"], theirs[slug]["version"])
                parent = theirs[slug].get("parent")
                for name in (slug, parent) if parent else (slug,):
                    if not SLUG.fullmatch(name):
                        raise BadInput(f"{kind} folder {name!r} is not a valid slug: wpgate cannot plan it")
                difference.updates.append((kind, slug, ours[slug]["version"], theirs[slug]["version"]))
            elif kind == "plugin" and ours[slug]["active"] != theirs[slug]["active"]:
                state = "active" if theirs[slug]["active"] else "inactive"
                difference.not_replicated.append(f"plugin {slug} is {state} on staging only: "
                                                 "activation is not replicated")
    for kind in ("mu_plugins", "dropins"):
        ours = {item["file"]: item.get("version") for item in production.data[kind]}
        theirs = {item["file"]: item.get("version") for item in staging.data[kind]}
        if ours != theirs:
            difference.not_replicated.append(f"{kind.replace('_', '-')} differ between the sites: "
                                             "wpgate does not replicate them")
    return difference


def _check_version(kind: str, slug: str, production: str, staging: str) -> None:
    for side, version in (("production", production), ("staging", staging)):
        if not VERSION.fullmatch(version or ""):
            raise BadInput(f"{kind} {slug} on {side} has version {version!r}, which is not a WordPress "
                           "version string: wpgate cannot plan it")


def plan(settings: Settings, staging_name: str, production_name: str, output: Path,
         console: Output) -> Release | None:
    if staging_name == production_name:
        raise BadInput("--from and --to name the same site")
    if production_name in settings.model.groups:
        return plan_group(settings, staging_name, production_name, output, console)
    staging_site = settings.site(staging_name)
    production_site = settings.site(production_name)
    _check_output(output)
    with for_site(staging_site) as staging_transport, for_site(production_site) as production_transport:
        staging_inventory = _read_staging(staging_name, staging_site, staging_transport)
        production_inventory = inventory.read(Bridge(production_name, production_site, production_transport))
        difference = compare(staging_inventory, production_inventory)
        for line in difference.not_replicated:
            console.print(f"  not replicated: {line}", markup=False)
        if not difference.updates:
            console.print(f"{staging_name} and {production_name} hold the same versions: nothing to plan.")
            return None
        captured = _capture(settings.state_dir, staging_name, staging_transport, staging_inventory,
                            difference.updates, console)
        plugins = plugin_order(staging_transport, staging_inventory, [u for u in captured if u.type == "plugin"])
    return _write_release(settings.state_dir, staging_name, staging_site.url, captured, plugins, output, console)


def _check_output(output: Path) -> None:
    """The manifest may be written at `output`: it holds no approved release, and its folder is writable."""
    if output.exists() and re.search(r"^approval:", output.read_text(errors="replace"), re.M):
        raise BadInput(f"{output} holds an approved release: write the new plan elsewhere with -o")
    if not output.parent.is_dir() or not os.access(output.parent, os.W_OK):
        raise BadInput(f"{output}: its folder does not exist or is not writable")


def _read_staging(staging_name: str, staging_site: SiteConfig, staging_transport: Transport) -> Inventory:
    """Staging's inventory; a staging site that does not load is refused."""
    staging_inventory = inventory.read(Bridge(staging_name, staging_site, staging_transport))
    if staging_inventory.data.get("load_error"):
        raise GateRefused(f"staging ({staging_name}) is broken: {staging_inventory.data['load_error']}; "
                          "a release is planned from a staging site that works")
    return staging_inventory


def _capture(state_dir: Path, staging_name: str, staging_transport: Transport, staging_inventory: Inventory,
             updates: list[tuple[str, str, str | None, str]], console: Output) -> list[Update]:
    """Each update (type, slug, from, to; `from` None in a group release) captured from staging as an
    artifact in the state folder, in the order given."""
    captured: list[Update] = []
    for kind, slug, from_version, to_version in updates:
        console.print(f"  capturing {kind} {slug} {to_version} from {staging_name}…", markup=False)
        capture = artifacts.capture(staging_transport, staging_inventory, kind, slug, to_version,
                                    state_dir / "artifacts", state_dir)
        parent = staging_inventory.themes[slug]["parent"] if kind == "theme" else None
        captured.append(Update(type=kind, slug=slug, from_version=from_version, to_version=to_version,
                               artifact=capture.artifact, parent=parent))
    return captured


def _write_release(state_dir: Path, staging_name: str, staging_url: str, captured: list[Update],
                   plugins: PluginOrder, output: Path, console: Output, **group: dict[str, Any]) -> Release:
    """The release of the captured updates in the required order (plugins as staging updated them, said
    first), written at `output` and kept in the state folder. `group`: a group release's sites and skipped."""
    for line in plugins.lines(staging_name):
        console.print(f"  {line}", markup=False, soft_wrap=True)
    release = Release(id=_next_release_id(state_dir), staging_site=staging_name, staging_url=staging_url,
                      updates=tuple(in_order(captured, plugins.updates)), **group)
    save(release, output)
    (state_dir / "releases").mkdir(parents=True, exist_ok=True)
    save(release, state_dir / "releases" / f"{release.id}.yml")
    return release


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """A WordPress version as PHP's version_compare() orders it, near enough: numbers as numbers, and a
    pre-release word (alpha, beta, RC) below the release it precedes."""
    key: list[tuple[int, int | str]] = []
    for part in re.findall(r"\d+|[A-Za-z]+", version):
        key.append((2, int(part)) if part.isdigit() else (0, part.lower()))
    return tuple(key + [(1, 0)])


def is_newer(version: str, than: str) -> bool:
    return version_key(version) > version_key(than)


def plan_group(settings: Settings, staging_name: str, group: str, output: Path,
               console: Output) -> Release | None:
    """One release for every site of a group: every update any site needs (its `from` per site, under `sites`),
    each captured once from staging. A site holding a component newer than the release is skipped and named:
    wpgate never downgrades."""
    members = settings.group(group)
    if staging_name in members:
        raise BadInput(f"--from {staging_name} is a site of group {group}: plan from a staging site outside it")
    staging_site = settings.site(staging_name)
    _check_output(output)
    sites: dict[str, dict[str, str]] = {}
    skipped: dict[str, str] = {}
    wanted: dict[tuple[str, str], str] = {}  # (type, slug) -> staging's version
    with for_site(staging_site) as staging_transport:
        staging_inventory = _read_staging(staging_name, staging_site, staging_transport)
        for name in members:
            site = settings.site(name)
            with for_site(site) as transport:
                found = inventory.read(Bridge(name, site, transport))
            if found.data.get("load_error"):
                skipped[name] = f"the site is broken: {found.data['load_error']}"
                continue
            difference = compare(staging_inventory, found)
            newer = [f"{slug} {ours} is newer than the release's {theirs}"
                     for kind, slug, ours, theirs in difference.updates if is_newer(ours, theirs)]
            if newer:
                skipped[name] = "; ".join(newer)
            elif not difference.updates:
                skipped[name] = "holds the release's versions already"
            else:
                sites[name] = {slug: ours for kind, slug, ours, theirs in difference.updates}
                for kind, slug, ours, theirs in difference.updates:
                    wanted[(kind, slug)] = theirs
            for line in difference.not_replicated:
                console.print(f"  {name}: not replicated: {line}", markup=False)
        for name, reason in skipped.items():
            console.print(f"  skipped {name}: {reason}", markup=False, soft_wrap=True)
        if not wanted:
            console.print(f"no site of group {group} needs an update from {staging_name}: nothing to plan.")
            return None
        captured = _capture(settings.state_dir, staging_name, staging_transport, staging_inventory,
                            [(kind, slug, None, to_version) for (kind, slug), to_version in sorted(wanted.items())],
                            console)
        plugins = plugin_order(staging_transport, staging_inventory, [u for u in captured if u.type == "plugin"])
    return _write_release(settings.state_dir, staging_name, staging_site.url, captured, plugins, output, console,
                          sites=sites, skipped=skipped)


# WordPress keeps no record of when it updated each plugin (its upgraders store only the failures of
# automatic updates), so the order comes from the plugins' folders: an update puts a new folder in place
# (renamed from wp-content/upgrade/, or copied), which sets the folder's change time (ctime). ctime
# cannot be set back by hand or by an archive tool, and `find` reads it to the nanosecond where the file
# system keeps it; the files' modification times inside may be the package's (PclZip sets them) and say
# nothing of the order.
ORDER_SOURCE = ("the change times (ctime) of staging's plugin folders, to the nanosecond: WordPress keeps no "
                "record of when it updated each plugin")


@dataclass
class PluginOrder:
    """The plugins in the order staging updated them, where that order was read, and the updates it
    cannot tell apart (folders changed at the same moment: listed alphabetically, to be reordered by hand)."""

    updates: list[Update]
    source: str
    changed: dict[str, int] = field(default_factory=dict)  # slug -> change time, nanoseconds since 1970
    ties: list[list[str]] = field(default_factory=list)

    def lines(self, staging_name: str) -> list[str]:
        """What `plan` says about the order: its source, each plugin's time, and every tie."""
        if len(self.updates) < 2:
            return []
        lines = [f"plugin order: as {staging_name} updated them, read from {self.source}:"]
        for number, update in enumerate(self.updates, 1):
            when = self.changed.get(update.slug)
            lines.append(f"  {number}. {update.slug}  " + (_timestamp(when) if when is not None else "time unknown"))
        for slugs in self.ties:
            lines.append(f"tie: {_and(slugs)} changed at the same moment on {staging_name}, so the order "
                         "between them is unknown: they are listed alphabetically. If staging updated them in "
                         "another order, reorder them in the manifest's `updates` before approving "
                         "(the approval's digest covers the order)")
        return lines


def plugin_order(transport: Transport, staging: Inventory, plugins: list[Update]) -> PluginOrder:
    """`plugins` in the order staging updated them: by their folders' change times, oldest first."""
    if not plugins:
        return PluginOrder([], ORDER_SOURCE)
    base = staging.data["paths"]["plugins"]
    found = transport.run(Command.of("find", *(f"{base}/{u.slug}" for u in plugins), "-maxdepth", "0",
                                     "-printf", "%C@ %f\\n"))
    return order_plugins(plugins, parse_change_times(found.text()))


def order_plugins(plugins: list[Update], changed: dict[str, int]) -> PluginOrder:
    """Oldest change first; equal times (a tie) and unknown ones alphabetically, each tie named."""
    known = {u.slug: changed[u.slug] for u in plugins if u.slug in changed}
    ordered = sorted(plugins, key=lambda u: (u.slug not in known, known.get(u.slug, 0), u.slug))
    groups: dict[int, list[str]] = {}
    for slug, when in known.items():
        groups.setdefault(when, []).append(slug)
    ties = [sorted(slugs) for when, slugs in sorted(groups.items()) if len(slugs) > 1]
    unknown = sorted(u.slug for u in plugins if u.slug not in known)
    if len(unknown) > 1:
        ties.append(unknown)
    return PluginOrder(ordered, ORDER_SOURCE, known, ties)


def parse_change_times(text: str) -> dict[str, int]:
    """`find -printf '%C@ %f\\n'` lines: {folder name: change time in nanoseconds} (integers, exact)."""
    times = {}
    for line in text.splitlines():
        stamp, _, name = line.partition(" ")
        seconds, _, fraction = stamp.partition(".")
        if not seconds.isdigit() or (fraction and not fraction.isdigit()) or not name:
            continue
        times[name] = int(seconds) * 1_000_000_000 + int((fraction + "0" * 9)[:9])
    return times


def in_order(updates: list[Update], plugins: list[Update] | None = None) -> list[Update]:
    """Core, then plugins (in the order given, else by slug), then themes with every parent before its
    children (else by slug)."""
    core = [u for u in updates if u.type == "core"]
    if plugins is None:
        plugins = sorted((u for u in updates if u.type == "plugin"), key=lambda u: u.slug)
    themes = sorted((u for u in updates if u.type == "theme"), key=lambda u: u.slug)
    ordered_themes: list[Update] = []
    placed: set[str] = set()
    slugs = {t.slug for t in themes}

    def place(theme: Update) -> None:
        if theme.slug in placed:
            return
        if theme.parent in slugs and theme.parent not in placed:
            place(next(t for t in themes if t.slug == theme.parent))
        placed.add(theme.slug)
        ordered_themes.append(theme)

    for theme in themes:
        place(theme)
    return core + list(plugins) + ordered_themes


def _timestamp(nanoseconds: int) -> str:
    seconds, rest = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"{moment}.{rest:09d} UTC"


def _and(words: list[str]) -> str:
    return ", ".join(words[:-1]) + f" and {words[-1]}" if len(words) > 1 else "".join(words)


def _next_release_id(state_dir: Path) -> str:
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    releases = state_dir / "releases"
    taken = {p.stem for p in releases.glob(f"{today}-*.yml")} if releases.is_dir() else set()
    numbers = [int(m.group(1)) for name in taken if (m := re.match(rf"^{today}-(\d+)$", name))]
    return f"{today}-{max(numbers, default=0) + 1}"
