"""Whether the web server could hand a backup to anyone who asks: a backup folder under the document root.

A backup holds `wp-config.php`, and with it the database password; the account wpgate writes backups
as is usually the one PHP runs as, and so the one that serves files: owner-only permissions do not
keep the web server out. A backup folder is refused when

- it is the site's WordPress root (`path`) or lies under it, as written in the config;
- it lies under the root once symbolic links are resolved on the host;
- the site's URL serves a marker file written there: wpgate writes one, the way backups are written
  (a private folder, an owner-only file), and asks for it at every address the folder could have on the
  site: under the site's URL through any link in the root that leads to it, and under the site's
  origin for the two folders above the root, which could be the document root. A 200 with the marker's
  content is the proof. A folder served some other way (another virtual host, an alias) is not found.
"""

from __future__ import annotations

import posixpath
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from wpgate import web
from wpgate.backup.files import inside
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import GateRefused
from wpgate.transports import LocalTransport, Transport

PROBE_PREFIX = "wpgate-probe-"
PROBE_FILE = "marker.txt"
TIMEOUT = httpx.Timeout(15.0, connect=10.0)
# A document root above WordPress's is its parent (WordPress in a subfolder) or, rarely, the one above.
# Higher folders are not asked: a request for a file that is not there is a page WordPress renders.
LEVELS_ABOVE_ROOT = 2

# Every link under the root that leads to a folder: its path from the root, then where it leads.
_LINKS = r"""
root=$1
find "$root" -type l -exec sh -c '
for link do
  [ -d "$link" ] || continue
  target=$(realpath -- "$link") || continue
  printf "%s\0%s\0" "${link#"$0"/}" "$target"
done' "$root" {} +
"""

# The marker: a private folder and an owner-only file, as a backup's. The folder is made when missing;
# the script says whether it made it.
_WRITE = r"""
umask 077
dir=$1 folder=$2 content=$3
if [ -d "$dir" ]; then echo existed; else mkdir -p -- "$dir" || exit 1; echo made; fi
mkdir -- "$dir/$folder" && printf '%s' "$content" > "$dir/$folder/marker.txt"
"""

_REMOVE = r"""
rm -rf -- "$1/$2"
if [ "$3" = made ]; then rmdir -- "$1" 2>/dev/null; fi
exit 0
"""


class BackupExposed(GateRefused):
    """A backup folder the web server serves (or would): exit 3, before any backup is written there."""


@dataclass
class Probe:
    """What was asked and answered: the evidence of gate 6.2 and of `wpgate backup`."""

    key: str
    folder: str
    resolved: str
    requests: list[dict[str, Any]] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {"key": self.key, "folder": self.folder, "resolved": self.resolved, "requests": self.requests}


def folders(site_name: str, site: SiteConfig, transport: Transport) -> list[tuple[str, str]]:
    """The (key, folder) pairs to check: the backup folder, and the off-site copy when it shares the site's machine."""
    if site.backup is None:
        return []
    found = [(f"sites.{site_name}.backup.dir", site.backup.dir)]
    if site.backup.offsite and isinstance(transport, LocalTransport):
        found.append((f"sites.{site_name}.backup.offsite", site.backup.offsite))
    return found


def refuse_by_path(site_name: str, site: SiteConfig, transport: Transport) -> None:
    """Refuse, without touching the host, a backup folder written under the WordPress root."""
    for key, folder in folders(site_name, site, transport):
        if _under(folder, site.path):
            raise BackupExposed(_message(key, folder, f"lies inside the site's WordPress root {site.path}"))


def check(site_name: str, site: SiteConfig, transport: Transport) -> list[dict[str, Any]]:
    """Refuse (BackupExposed) any backup folder of the site that lies under its document root or that its
    URL serves; return what was checked, for the evidence."""
    refuse_by_path(site_name, site, transport)
    root = _resolve(transport, site.path)
    links = None
    probes = []
    for key, folder in folders(site_name, site, transport):
        resolved = _resolve(transport, folder)
        if _under(resolved, root):
            raise BackupExposed(_message(key, folder, f"leads to {resolved}, inside the site's WordPress root "
                                                      f"{root} (by a symbolic link)"))
        if links is None:
            links = _links(transport, root)
        probe = Probe(key, folder, resolved)
        urls = candidate_urls(site.url, root, resolved, links)
        if urls:
            _probe(transport, probe, urls)
        probes.append(probe.record())
    return probes


def candidate_urls(url: str, root: str, folder: str, links: list[tuple[str, str]]) -> list[str]:
    """Where `folder` (resolved) could be served: through a link in the root (under the site's URL), and
    under the site's origin for each folder above the root that holds it (a document root above WordPress's)."""
    candidates = []
    for link, target in links:
        relative = "" if folder == target else inside(target, folder)
        if relative is not None:
            candidates.append(_join(url, posixpath.join(link, relative) if relative else link))
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    above = posixpath.dirname(root)
    for _ in range(LEVELS_ABOVE_ROOT):
        if above in ("/", ""):
            break
        relative = inside(above, folder)
        if relative is not None:
            candidates.append(_join(origin, relative))
        above = posixpath.dirname(above)
    return list(dict.fromkeys(candidates))


def _probe(transport: Transport, probe: Probe, urls: list[str]) -> None:
    token = secrets.token_hex(16)
    name = PROBE_PREFIX + secrets.token_hex(6)
    content = f"wpgate backup exposure probe {token}\n"
    written = transport.run(Command.of("sh", "-c", _WRITE, "sh", probe.resolved, name, content))
    if not written.ok:
        # The backup itself will fail to write there and say why; nothing is exposed by this check.
        probe.requests.append({"error": f"cannot write a marker in {probe.resolved}: {written.error_text()}"})
        return
    made = written.text().strip().splitlines()[0] if written.text().strip() else "existed"
    try:
        with web.client(timeout=TIMEOUT, follow_redirects=False, headers={"User-Agent": "wpgate"}) as http:
            for base in urls:
                address = f"{base}/{name}/{PROBE_FILE}"
                try:
                    response = http.get(address)
                except httpx.HTTPError as error:
                    probe.requests.append({"url": address, "answer": f"{type(error).__name__}"})
                    continue
                served = response.status_code == 200 and token in response.text
                probe.requests.append({"url": address, "status": response.status_code, "served": served})
                if served:
                    raise BackupExposed(_message(
                        probe.key, probe.folder,
                        f"is served by the web server: GET {address} answered 200 with the marker file wpgate "
                        "wrote there"))
    finally:
        transport.run(Command.of("sh", "-c", _REMOVE, "sh", probe.resolved, name, made))


def _message(key: str, folder: str, why: str) -> str:
    return (f"{key} {folder} {why}: anyone could download its archives, wp-config.php and its database "
            f"password with them; set {key.rsplit('.', 1)[1]} to a folder outside the web server's document root")


def _links(transport: Transport, root: str) -> list[tuple[str, str]]:
    result = transport.run(Command.of("sh", "-c", _LINKS, "sh", root))
    fields = result.stdout.decode("utf-8", "surrogateescape").split("\0")
    return [(fields[index], fields[index + 1]) for index in range(0, len(fields) - 1, 2)]


def _resolve(transport: Transport, path: str) -> str:
    """The path with every symbolic link resolved on the host (missing parts kept as written)."""
    result = transport.run(Command.of("realpath", "-m", "--", path))
    resolved = result.text().strip() if result.ok else ""
    return resolved if resolved.startswith("/") else posixpath.normpath(path)


def _under(path: str, root: str) -> bool:
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path == root or inside(root, path) is not None


def _join(base: str, relative: str) -> str:
    return base.rstrip("/") + "/" + quote(relative.strip("/"))
