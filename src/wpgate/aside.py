"""Where a run keeps what it takes out of a site and what it is about to put in: the plugins, themes and core
files it replaces (what a rollback puts back), the new plugins and themes unpacked before they are swapped
in, the uploaded packages, and the site's lock.

Never where the web server serves files if it can be helped: on nginx (no .htaccess) or `php -S`, any PHP
file under the web root can be requested and runs, and an old plugin version may have known holes. Swapping
a component in or putting one back is a rename, so the folder must also be on the filesystem of the site's
folders (ABSPATH, plugins, themes). The first of these that fits is taken:

1. `above_root`: `<the folder above ABSPATH>/.wpgate-aside-<ABSPATH's name>`, when that folder can be
   written and WordPress is served at the root of its host (its site URL has no path: otherwise the folder
   above ABSPATH is the web root itself).
2. `backup_dir`: `<backup.dir>/.wpgate-aside-<site>`, when backup.dir exists, can be written and lies
   outside the WordPress root.
3. `in_web_root`: `<wp-content>/wpgate-aside`, as wpgate did before; each run's folder is then mode 000
   whenever wpgate is not working in it, so that no user but root can read it (the web server's user
   included, even when it owns the files), and Apache refuses it (.htaccess).

A run records its choice (report.json `aside`) before it takes the lock; resume and rollback read it back
from there (`of_run`), and a run recorded before wpgate kept that record used 3's folder. Every path in
the folder is built here, and only here.
"""

from __future__ import annotations

import posixpath
import re
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import urlsplit

from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import BadInput
from wpgate.transports import Transport

ABOVE_ROOT, BACKUP_DIR, IN_WEB_ROOT = "above_root", "backup_dir", "in_web_root"
WAYS = (ABOVE_ROOT, BACKUP_DIR, IN_WEB_ROOT)
LEGACY_NAME = "wpgate-aside"  # the folder inside wp-content (way 3, and every run of an earlier wpgate)
PREFIX = ".wpgate-aside-"  # the folder outside the web root (ways 1 and 2)
# A path inside any of those folders, as an error message names it.
PATH_IN_ASIDE = re.compile(r"\S*/\.?" + re.escape(LEGACY_NAME) + r"[^/\s]*/\S*")
# Inside the web root only: Apache's refusal, and no listing where the server would list a folder.
GUARD_FILES = {"index.php": "<?php\n// Silence is golden.\n",
               ".htaccess": "Require all denied\n<IfModule !mod_authz_core.c>\nDeny from all\n</IfModule>\n"}

_WHY = {
    ABOVE_ROOT: "outside the web root, in the folder above the WordPress root (same filesystem)",
    BACKUP_DIR: "outside the web root, in backup.dir (same filesystem)",
    IN_WEB_ROOT: ("inside the web root (no folder outside it on the site's filesystem can be written): each run's "
                  "folder is mode 000 while wpgate is not working in it, so the web server's user cannot read it "
                  "(unless it runs as root), and Apache refuses it"),
}


@dataclass(frozen=True)
class Aside:
    """The site's aside folder (the lock, and one folder per run) and which way it was chosen."""

    folder: str
    how: str

    @property
    def sealed(self) -> bool:
        """Whether each run's folder is closed (mode 000) between wpgate's own steps."""
        return self.how == IN_WEB_ROOT

    def run_folder(self, run_id: str) -> str:
        return f"{self.folder}/{run_id}"

    def kept(self, run_id: str, kind: str, slug: str) -> str:
        """Where the component's old version waits for a rollback."""
        return f"{self.run_folder(run_id)}/core" if kind == "core" else f"{self._kept_of(run_id, kind)}/{slug}"

    def staged(self, run_id: str, kind: str, slug: str) -> str:
        """Where a plugin's or theme's new version is unpacked and checked before it is swapped in."""
        return f"{self._staged_of(run_id, kind)}/{slug}"

    def packages(self, run_id: str) -> str:
        return f"{self.run_folder(run_id)}/packages"

    def parts(self, run_id: str) -> list[str]:
        """The run folder's folders, made before apply's first copy: the packages, the old and the new versions."""
        return [self.packages(run_id), *(where(run_id, kind) for where in (self._kept_of, self._staged_of)
                                         for kind in ("plugin", "theme"))]

    def _kept_of(self, run_id: str, kind: str) -> str:
        return f"{self.run_folder(run_id)}/{kind}s"

    def _staged_of(self, run_id: str, kind: str) -> str:
        return f"{self.run_folder(run_id)}/new/{kind}s"

    def guard_files(self) -> dict[str, str]:
        """Inside the web root: each guard file's path in the folder, and its text."""
        return {f"{self.folder}/{name}": text for name, text in GUARD_FILES.items()}

    def record(self) -> dict[str, str]:
        """What the run's report keeps, for resume and rollback; also the apply gate's evidence."""
        return {"folder": self.folder, "how": self.how, "why": _WHY[self.how]}

    def describe(self) -> str:
        return f"{self.folder}: {_WHY[self.how]}"

    @contextmanager
    def opened(self, transport: Transport, run_id: str) -> Iterator[None]:
        """The run's folder open to wpgate (its owner) for the steps inside, closed again afterwards however
        they end; nothing to do where the folder is outside the web root."""
        if not self.sealed:
            yield
            return
        folder = self.run_folder(run_id)
        transport.check(Command.of("sh", "-c", '[ ! -d "$1" ] || chmod 700 -- "$1"', "sh", folder))
        try:
            yield
        finally:
            seal(transport, folder)

    def remove_run_folder(self, transport: Transport, run_id: str) -> None:
        """The run's folder and all in it (open first: rm cannot go into a folder of mode 000)."""
        transport.check(Command.of("sh", "-c", '[ ! -d "$1" ] || chmod 700 -- "$1"; rm -rf -- "$1"', "sh",
                                   self.run_folder(run_id)))


def seal(transport: Transport, folder: str) -> None:
    transport.check(Command.of("sh", "-c", '[ ! -d "$1" ] || chmod 000 -- "$1"', "sh", folder))


def candidates(site_name: str, site: SiteConfig, paths: dict[str, Any]) -> dict[str, str]:
    """Each way's folder for this site, from its paths alone (way -> folder): what a recorded choice may be."""
    root = str(paths["abspath"]).rstrip("/") or "/"
    found = {}
    parent = posixpath.dirname(root)
    if root != "/" and parent:
        found[ABOVE_ROOT] = f"{parent.rstrip('/')}/{PREFIX}{posixpath.basename(root)}"
    if site.backup is not None and site.backup.dir and not _inside(root, site.backup.dir):
        found[BACKUP_DIR] = f"{site.backup.dir.rstrip('/')}/{PREFIX}{site_name}"
    found[IN_WEB_ROOT] = f"{str(paths['content']).rstrip('/')}/{LEGACY_NAME}"
    return found


@dataclass(frozen=True)
class Facts:
    """What the choice needs to know of a folder on the host: its filesystem and whether wpgate may write
    in it (None: it does not exist)."""

    device: str | None
    writable: bool = False


def decide(site_name: str, site: SiteConfig, paths: dict[str, Any], site_url: str,
           facts: dict[str, Facts]) -> Aside:
    """The first way that fits (see the module's account), from facts read on the host: `facts` holds one
    entry per path of `paths` (abspath, plugins, themes) and per candidate's parent folder."""
    found = candidates(site_name, site, paths)
    devices = {facts[key].device for key in ("abspath", "plugins", "themes")}
    site_devices = devices if None not in devices and len(devices) == 1 else None
    at_host_root = urlsplit(site_url).path.strip("/") == ""
    for how in (ABOVE_ROOT, BACKUP_DIR):
        if how not in found or (how == ABOVE_ROOT and not at_host_root):
            continue
        parent = facts.get(posixpath.dirname(found[how]))
        if site_devices and parent and parent.writable and {parent.device} == site_devices:
            return Aside(found[how], how)
    return Aside(found[IN_WEB_ROOT], IN_WEB_ROOT)


# Per path: its filesystem's device number and whether it can be written, or "- -" when it is no folder.
_FACTS = r"""
for path; do
  if [ -d "$path" ]; then
    printf '%s %s\n' "$(stat -L -c %d -- "$path")" "$(if [ -w "$path" ]; then echo w; else echo -; fi)"
  else
    echo '- -'
  fi
done
"""


def choose(transport: Transport, site_name: str, site: SiteConfig, paths: dict[str, Any], site_url: str) -> Aside:
    """Where this run keeps its copies, read on the host (one command)."""
    found = candidates(site_name, site, paths)
    asked = [str(paths[key]) for key in ("abspath", "plugins", "themes")]
    asked += [posixpath.dirname(found[how]) for how in (ABOVE_ROOT, BACKUP_DIR) if how in found]
    lines = transport.check(Command.of("sh", "-c", _FACTS, "sh", *asked)).text().splitlines()
    answers = {}
    for path, line in zip(asked, lines):
        device, _, writable = line.partition(" ")
        answers[path] = Facts(None if device == "-" else device, writable == "w")
    facts = {key: answers[str(paths[key])] for key in ("abspath", "plugins", "themes")} | answers
    return decide(site_name, site, paths, site_url, facts)


def of_run(run_extra: dict[str, Any], run_id: str, site_name: str, site: SiteConfig, paths: dict[str, Any]) -> Aside:
    """The folder a run recorded, checked to be one this site's copies may be in (a record changed by hand
    must not steer renames and removals elsewhere); a run recorded before wpgate kept it used wp-content's."""
    found = candidates(site_name, site, paths)
    record = run_extra.get("aside")
    if record is None:
        return Aside(found[IN_WEB_ROOT], IN_WEB_ROOT)
    how = record.get("how") if isinstance(record, dict) else None
    folder = record.get("folder") if isinstance(record, dict) else None
    if how not in found or found[how] != folder:
        raise BadInput(f"run {run_id}: its report keeps its copies in {folder!r} ({how}), which is not one of this "
                       f"site's aside folders ({', '.join(found.values())}): the run's record was changed; "
                       "nothing was changed")
    return Aside(folder, how)


def lock_file(folder: str) -> str:
    """The site's lock in an aside folder (lock.py)."""
    return f"{folder}/lock"


def lock_paths(site_name: str, site: SiteConfig, paths: dict[str, Any]) -> list[str]:
    """Every place a run of this site may hold its lock: a run must see the others' whatever folder it chose."""
    return [lock_file(folder) for folder in candidates(site_name, site, paths).values()]


def _inside(root: str, path: str) -> bool:
    root, path = posixpath.normpath(root), posixpath.normpath(path)
    return path == root or path.startswith(root.rstrip("/") + "/")
