"""One run per site at a time: a lock file on the site's host naming the run, the host and the pid."""

from __future__ import annotations

import json
import os
import socket
from typing import Any

from wpgate.aside import GUARD_FILES, Aside, lock_file, lock_paths
from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import GateRefused
from wpgate.run import utc_now
from wpgate.transports import Transport

_CREATE_ONLY = 'set -C; printf "%s" "$2" > "$1"'  # noclobber: fails when the lock exists
# The folder goes with the last lock when nothing else is in it (another run's copies, a person's files)
# but the files that keep web requests out of it: a run that ends well leaves nothing behind.
_REMOVE_IF_IDLE = r"""
folder=$1
shift
for path in "$folder"/* "$folder"/.[!.]* "$folder"/..?*; do
  [ -e "$path" ] || [ -L "$path" ] || continue
  name=${path##*/} guard=no
  for keep in "$@"; do [ "$name" = "$keep" ] && guard=yes; done
  [ "$guard" = yes ] || exit 0
done
for keep in "$@"; do rm -f -- "$folder/$keep"; done
rmdir -- "$folder" 2>/dev/null || true
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SiteLock:
    """Held by a run from its first look at production to its end; a crashed run's lock stays
    until that run is resumed or rolled back, or a person breaks it."""

    def __init__(self, transport: Transport, folder: str, run_id: str, site_name: str,
                 elsewhere: list[str] | None = None) -> None:
        self.transport = transport
        self.path = lock_file(folder)
        self.folder = folder
        self.run_id = run_id
        self.site_name = site_name
        # Where other runs of the site may hold theirs: an earlier wpgate's (inside wp-content), or a run that
        # found its folder elsewhere (see aside.py). A lock there stops this run as one here would.
        self.elsewhere = [path for path in elsewhere or [] if path != self.path]
        self.held = False

    @classmethod
    def of_site(cls, transport: Transport, aside: Aside, holder_id: str, site_name: str, site: SiteConfig,
                paths: dict[str, Any]) -> "SiteLock":
        """The site's lock in the aside folder chosen for it, minding every other place a run of the site may
        hold one (aside.lock_paths); `holder_id` is the run's id (or prune's name)."""
        return cls(transport, aside.folder, holder_id, site_name, elsewhere=lock_paths(site_name, site, paths))

    def holder(self, path: str | None = None) -> dict[str, Any] | None:
        result = self.transport.run(Command.of("cat", "--", path or self.path))
        if not result.ok:
            return None
        try:
            return json.loads(result.text())
        except json.JSONDecodeError:
            return {"run": "?", "host": "?", "pid": 0, "since": "?", "unreadable": result.text()[:200]}

    def acquire(self, *, break_lock: bool = False) -> dict[str, Any] | None:
        """Take the lock; returns the lock it broke or took over, if any."""
        me = json.dumps({"run": self.run_id, "host": socket.gethostname(), "pid": os.getpid(), "since": utc_now()})
        broken = None
        for path in self.elsewhere:
            other = self.holder(path)
            if other is None or other.get("run") == self.run_id:
                continue
            if not break_lock:
                raise GateRefused(self.describe(other) + f" (its lock: {path})")
            self.transport.check(Command.of("rm", "-f", "--", path))
            broken = other
        self.transport.check(Command.of("mkdir", "-p", self.folder))
        self.transport.check(Command.of("chmod", "700", self.folder))
        if self.transport.run(Command.of("sh", "-c", _CREATE_ONLY, "sh", self.path, me)).ok:
            self.held = True
            return broken
        holder = self.holder() or {}
        same_run = holder.get("run") == self.run_id
        if not (same_run or break_lock):
            raise GateRefused(self.describe(holder))
        self.transport.check(Command.of("sh", "-c", 'printf "%s" "$2" > "$1"', "sh", self.path, me))
        self.held = True
        return holder

    def describe(self, holder: dict[str, Any]) -> str:
        text = (f"site {self.site_name} is locked by run {holder.get('run')} (host {holder.get('host')}, "
                f"pid {holder.get('pid')}, since {holder.get('since')})")
        if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int) \
                and not _alive(holder["pid"]):
            return (text + ": that process is gone, so the lock is stale. Run `wpgate resume "
                    f"{holder.get('run')}` to finish or roll back that run; --break-lock only once you "
                    "know the site is in a state you accept")
        return text + ": wait for it to end (a stale lock is broken only with --break-lock)"

    def release(self) -> None:
        if not self.held:
            return
        holder = self.holder()
        if holder and holder.get("run") == self.run_id:
            self.transport.run(Command.of("rm", "-f", "--", self.path))
            self.transport.run(Command.of("sh", "-c", _REMOVE_IF_IDLE, "sh", self.folder, *GUARD_FILES))
        self.held = False
