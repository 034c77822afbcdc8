"""The apply primitives: install one component with WordPress's own upgrader classes from a zip on
the site's host, upgrade the database, and read what an update may leave behind.

Each call is one PHP process on the host (see `wpgate.bridge`). The PHP side follows what the
Dashboard does ("Update now" for plugins and themes, Core_Upgrader for core) with the offer
pointing at the local zip, and checks its own result; the caller still re-reads the inventory.

Result of `install_component` (every kind):
    kind, slug, version (read back from the files), method ("bulk_upgrade" | "install" for
    plugins and themes, "core_upgrade" for core), user (the administrator acted as, or None),
    messages (the upgrader's feedback), seconds.
  plugin: file (main plugin file), active, network_active, warnings (temporary backup problems)
  theme: active, parent, warnings
  core: from (the version before), db_version (unchanged: see `upgrade_database`),
        files_db_version, db_upgrade_request_blocked (update_core()'s loopback was answered here)
"""

from __future__ import annotations


from dataclasses import dataclass
from typing import Any, Callable

from wpgate.bridge import Bridge
from wpgate.command import Command
from wpgate.errors import BridgeError
from wpgate.release import TYPES

# Errors the PHP side reports itself, naming the component; anything else (a fatal, wp_die(), no
# answer) is told which update it interrupted.
_REPORTED = ("upgrade_failed", "bad_request")


class UpgradeError(BridgeError):
    """WordPress's upgrader refused or failed to install a component, or installed something other
    than what was asked for. The message holds the upgrader's own words."""


@dataclass(frozen=True)
class Swap:
    """Where a plugin or theme is unpacked (`staged`, on the live folder's filesystem, outside the web root),
    checked against the artifact's files (`files`: relative path -> sha256), and where the live folder
    (`live`) goes when the new one takes its place (`aside`)."""

    live: str
    staged: str
    aside: str
    files: dict[str, str]

    def params(self) -> dict[str, Any]:
        return {"live": self.live, "staged": self.staged, "aside": self.aside, "files": self.files}


def install_component(bridge: Bridge, *, kind: str, slug: str, package: str, version: str,
                      hold_maintenance: bool = False, drain_seconds: float = 0.0,
                      drain_url: str | None = None, drain_token: str | None = None,
                      swap: Swap | None = None) -> dict[str, Any]:
    """Install `kind` `slug` at `version` from `package`, an absolute path on the site's host to a
    zip made for this call, outside wp-content/upgrade/. The package is consumed: deleted
    afterwards, also when the install fails (a path refused outright is left alone).

    Plugins and themes: bulk_upgrade() as the Dashboard's "Update now" when the component is
    installed (active state kept, upgrader_process_complete fired with action "update"), install()
    with overwrite when its folder is missing. Core: Core_Upgrader::upgrade(); run
    `upgrade_database` next. WordPress is loaded with its plugins, as an admin request.

    With `hold_maintenance`, the maintenance file WordPress writes while the files change is left in
    place (WordPress would remove it at once): the caller removes it with `maintenance_off` once the
    web server's PHP runs the new files. Then files change only once the requests already past WordPress's
    maintenance check have finished on the old files: the PHP side requests `drain_url` (the drain file
    of caches/opcache.py, whose answer carries `drain_token`), and waits `drain_seconds` where that
    cannot tell. The result's `drain` says which.

    With `swap` (plugins and themes), WordPress's upgrader installs the package into `swap.staged` instead
    of over the live folder, and writes no maintenance file; the PHP side checks the staged files against
    `swap.files` and the version, then renames the live folder to `swap.aside` and the staged one into its
    place, before WordPress's upgrader_post_install filters end and upgrader_process_complete fires. The
    result then also says `swapped` (true). Nothing in the live folder changes before the renames, and a
    failure of the second rename puts the first back.
    """
    if kind not in TYPES:
        raise ValueError(f"kind must be one of {', '.join(TYPES)}, not {kind!r}")
    if swap is not None and (kind == "core" or hold_maintenance):
        raise ValueError("a swap is for plugins and themes, and holds no maintenance")
    params = {"slug": slug, "package": package, "version": version, "hold_maintenance": hold_maintenance,
              "drain_seconds": drain_seconds, **({"swap": swap.params()} if swap else {}),
              **({"drain_url": drain_url, "drain_token": drain_token} if drain_url else {})}
    try:
        return bridge.call(f"install_{kind}", params, admin=True, load_extensions=True)
    except BridgeError as error:
        raise _upgrade_error(error, f"installing {kind} {slug} {version}") from None


def upgrade_database(bridge: Bridge) -> dict[str, Any]:
    """Run WordPress's database upgrade (wp_upgrade()) in a fresh PHP process, which loads the core
    files now on disk as wp-admin/upgrade.php does (no plugins, no theme).

    Returns {"from": db_version before, "to": db_version after, "wordpress": version of the files,
    "upgraded": whether anything changed}, plus "multisite" (a note) on a network: only the main
    site and the network tables are upgraded there.
    """
    try:
        return bridge.call("upgrade_db")
    except BridgeError as error:
        raise _upgrade_error(error, "upgrading the database") from None


def site_state(bridge: Bridge) -> dict[str, Any]:
    """What an update may leave behind, read with plugins and theme skipped (so it works on a site
    they break): {"maintenance": .maintenance present, "core_updater_lock": the option
    core_updater.lock present, "upgrade_leftovers": absolute paths of the entries in
    wp-content/upgrade/ and in wp-content/upgrade-temp-backup/(plugins|themes)/}."""
    return bridge.call("site_state", load_extensions=False)


def _maintenance_file(bridge: Bridge) -> str:
    return f"{bridge.site.path.rstrip('/')}/.maintenance"


def maintenance_on_drained(bridge: Bridge, drain: Callable[[], dict[str, Any]], content: str | None) -> dict[str, Any]:
    """Maintenance on (with wpgate's page: `maintenance_page_on`), then `drain()`: the wait for the requests
    that began before it to finish (they may still write to the database or load files about to change); no
    wait when it was on already. Returns what the drain saw."""
    path = _maintenance_file(bridge)
    was_on = bridge.transport.exists(path)
    maintenance_page_on(bridge, content)
    maintenance_on(bridge)
    return {"how": "on already"} if was_on else drain()


def maintenance_on(bridge: Bridge) -> None:
    """Write ABSPATH/.maintenance as WordPress's upgrader does (visitors get its 503 page, nobody writes
    to the database), through the transport, without loading WordPress; its time is the host's."""
    path = _maintenance_file(bridge)
    bridge.transport.check(Command.of("sh", "-c", 'printf \'<?php $upgrading = %s; ?>\' "$(date +%s)" > "$1.wpgate" '
                                      '&& mv -f -- "$1.wpgate" "$1"', "sh", path))


def maintenance_off(bridge: Bridge, content: str | None) -> bool:
    """Remove ABSPATH/.maintenance, then wpgate's maintenance page, through the transport, without loading
    WordPress (it must work when WordPress cannot load). Returns whether the file was there."""
    path = _maintenance_file(bridge)
    present = bridge.transport.exists(path)
    if present:
        bridge.transport.check(Command.of("rm", "-f", "--", path))
    maintenance_page_off(bridge, content)
    return present


# While core's files change, a request that meets WordPress's maintenance file gets its 503 page from
# wp_maintenance(), which loads functions.php and the translation files first: files of the old core, the
# new one or both (the web server's OPcache holds some compiled, the disk has others), so that page itself
# could die half-way. WordPress shows WP_CONTENT_DIR/maintenance.php instead when there is one, and loads
# nothing more of core to do it: wpgate puts this page there while maintenance is on, unless the site has
# its own.
MAINTENANCE_PAGE_MARK = "wpgate: the maintenance page"
_MAINTENANCE_PAGE = """<?php
// %(mark)s, shown by WordPress while wpgate changes core's files; wpgate removes it right after.
$wpgate_protocol = isset( $_SERVER['SERVER_PROTOCOL'] ) ? (string) $_SERVER['SERVER_PROTOCOL'] : '';
if ( ! in_array( $wpgate_protocol, array( 'HTTP/1.1', 'HTTP/2', 'HTTP/2.0', 'HTTP/3' ), true ) ) {
	$wpgate_protocol = 'HTTP/1.0';
}
header( "$wpgate_protocol 503 Service Unavailable", true, 503 );
header( 'Content-Type: text/html; charset=utf-8' );
header( 'Retry-After: 600' );
header( 'Cache-Control: no-cache, must-revalidate, max-age=0, no-store, private' );
?><!DOCTYPE html>
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex,nofollow">
<title>Maintenance</title>
</head>
<body>
<p>Briefly unavailable for scheduled maintenance. Check back in a minute.</p>
</body>
</html>
"""


def _maintenance_page(bridge: Bridge, content: str | None) -> str:
    return f"{(content or bridge.site.path.rstrip('/') + '/wp-content').rstrip('/')}/maintenance.php"


def maintenance_page_on(bridge: Bridge, content: str | None) -> None:
    """wpgate's maintenance page in the content folder (`content`, WP_CONTENT_DIR), unless the site has a
    maintenance.php of its own there: written aside, then renamed into place."""
    page = _maintenance_page(bridge, content)
    bridge.transport.check(Command.of("sh", "-c", '[ -e "$1" ] || { printf %s "$2" > "$1.wpgate" && '
                                      'mv -f -- "$1.wpgate" "$1"; }', "sh", page,
                                      _MAINTENANCE_PAGE % {"mark": MAINTENANCE_PAGE_MARK}))


def maintenance_page_off(bridge: Bridge, content: str | None) -> None:
    """Remove wpgate's maintenance page (a maintenance.php without its mark is the site's own: kept)."""
    page = _maintenance_page(bridge, content)
    bridge.transport.check(Command.of("sh", "-c", '[ ! -e "$1" ] || ! grep -qF -- "$2" "$1" || rm -f -- "$1"',
                                      "sh", page, MAINTENANCE_PAGE_MARK))


def _upgrade_error(error: BridgeError, doing: str) -> UpgradeError:
    message = error.message if error.kind in _REPORTED else f"{doing}: {error.message}"
    return UpgradeError(message, kind=error.kind, file=error.file, line=error.line, output=error.output,
                        hint=error.hint)
