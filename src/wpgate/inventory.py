"""What is installed on a site: core and its database version, plugins, themes, must-use plugins, drop-ins."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from wpgate.bridge import Bridge
from wpgate.errors import BridgeError


@dataclass(frozen=True)
class Inventory:
    """A site's inventory as the bridge read it from disk, kept in the JSON form DESIGN.md gives."""

    data: dict[str, Any]

    @property
    def core_version(self) -> str:
        return self.data["core"]["version"]

    @property
    def content_dir(self) -> str:
        """WP_CONTENT_DIR, where WordPress looks for drop-ins."""
        return self.data["paths"]["content"]

    @property
    def plugins(self) -> dict[str, dict[str, Any]]:
        return {plugin["slug"]: plugin for plugin in self.data["plugins"]}

    @property
    def themes(self) -> dict[str, dict[str, Any]]:
        return {theme["slug"]: theme for theme in self.data["themes"]}

    def digest(self) -> str:
        """`sha256:…` over what is installed and how it is set: core and its database version, every plugin,
        theme, must-use plugin and drop-in with its version and active state. Equal digests: the same site
        as far as a release can tell (the URL, paths and PHP version are left out)."""
        data = self.data
        facts = {
            "core": {key: data["core"].get(key) for key in ("version", "db_version")},
            "plugins": sorted(([p["slug"], p["file"], p["version"], bool(p["active"]), bool(p.get("network_active"))]
                               for p in data["plugins"]), key=str),
            "themes": sorted(([t["slug"], t["version"], bool(t["active"]), t.get("parent")] for t in data["themes"]),
                             key=str),
            "mu_plugins": sorted(([m["file"], m.get("version")] for m in data.get("mu_plugins") or []), key=str),
            "dropins": sorted(([d["file"], d.get("version")] for d in data.get("dropins") or []), key=str),
        }
        canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def database_behind(self) -> str | None:
        """Why the database is not at the version the core files expect, or None when it is."""
        core = self.data["core"]
        if core["db_version"] == core["files_db_version"]:
            return None
        return f"the database is at version {core['db_version']}, the core files expect {core['files_db_version']}"

    def version_of(self, kind: str, slug: str) -> str | None:
        """The installed version of a component, or None when it is not installed."""
        if kind == "core":
            return self.core_version
        found = (self.plugins if kind == "plugin" else self.themes).get(slug)
        return found["version"] if found else None


def read(bridge: Bridge) -> Inventory:
    """Read the inventory with WordPress loaded as a visitor's request loads it.

    When a plugin or the theme breaks loading (a fatal, wp_die(), an exit), read it again with
    them skipped: a site that an update broke must still be readable, to roll it back. The
    inventory then says so in `load_error`.
    """
    try:
        return Inventory(bridge.call("inventory"))
    except BridgeError as error:
        if error.kind not in ("fatal", "wp_die", "exit", "exception"):
            raise
        data = bridge.call("inventory", load_extensions=False)
        data["load_error"] = error.message
        return Inventory(data)
