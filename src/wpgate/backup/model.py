"""What a backup is (its id, parts and manifest) and the small helpers every backup module shares."""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from wpgate.backup.database import BackupError
from wpgate.command import Command
from wpgate.config import BackupConfig, SiteConfig
from wpgate.errors import WpgateError
from wpgate.transports import Transport

FORMAT = 1
ID = re.compile(r"(?P<site>[A-Za-z0-9][A-Za-z0-9._-]*)-(?P<stamp>\d{8}-\d{6})-[0-9a-f]{4}")  # matched whole
DUMP, ARCHIVE, INDEX, INVENTORY, TABLES, MANIFEST = (
    "database.sql.gz", "files.tar.gz", "files.index", "inventory.json", "tables.json", "manifest.json")
PARTS = (DUMP, ARCHIVE, INDEX, INVENTORY, TABLES)
DISK_FULL = ("No space left on device", "Disk quota exceeded")

Progress = Callable[[str], None]


@dataclass
class Backup:
    """One backup, as its manifest describes it: where it lies on the host and off-site, and what it holds."""

    id: str
    site: str
    created_at: str
    folder: str
    offsite: str | None
    parts: dict[str, dict[str, Any]]
    inventory: dict[str, Any]
    tables: dict[str, dict[str, Any]]
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_sha256: str = ""

    def path(self, part: str) -> str:
        return self.parts[part]["path"]

    @property
    def created(self) -> datetime:
        return datetime.strptime(self.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)

    def age_seconds(self, now: datetime | None = None) -> float:
        return ((now or datetime.now(timezone.utc)) - self.created).total_seconds()

    @property
    def changed_during_backup(self) -> list[str]:
        return list(self.manifest.get("database", {}).get("changed_during_backup", []))

    def record(self) -> dict[str, Any]:
        """What a run's journal and report say about it (`sha256` is the manifest's, which lists every part's)."""
        return {"id": self.id, "path": self.folder, "offsite": self.offsite, "sha256": self.manifest_sha256,
                "sha256_of": MANIFEST, "created_at": self.created_at,
                "parts": {name: part["sha256"] for name, part in self.parts.items()}}


def backup_config(site_name: str, site: SiteConfig) -> BackupConfig:
    if site.backup is None:
        raise BackupError(f"site {site_name} has no `backup:` settings: set backup.dir (on the site's host) "
                          "and backup.offsite (on this machine) in the config")
    return site.backup


def new_id(site_name: str, when: datetime) -> str:
    return f"{site_name}-{when:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def site_of(backup_id: str) -> str:
    """The site name a backup id starts with."""
    match = ID.fullmatch(backup_id or "")
    if not match:
        raise BackupError(f"{backup_id!r} is not a backup id (they look like production-20261126-101500-ab12)")
    return match.group("site")


def remove_on_host(transport: Transport, *paths: str) -> None:
    try:
        transport.run(Command.of("rm", "-rf", "--", *paths))
    except WpgateError:
        pass  # the error that stopped the backup is the one to report


def json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def last_lines(text: str, count: int = 3) -> str:
    return " / ".join(line.strip() for line in text.strip().splitlines()[-count:])


def tables_from(raw: Any) -> dict[str, dict[str, Any]]:
    if not raw:  # PHP's empty array arrives as a JSON list
        return {}
    return {str(name): {"rows": int(stats["rows"]), "checksum": stats.get("checksum")}
            for name, stats in sorted(raw.items())}


def with_paths(parts: dict[str, dict[str, Any]], folder: str) -> dict[str, dict[str, Any]]:
    return {name: {"path": f"{folder}/{name}", **part} for name, part in parts.items()}


def is_disk_full(text: str) -> bool:
    return any(sign in text for sign in DISK_FULL)


class InBackground:
    """One host command run on a thread of its own; `result()` waits for it and returns (or raises) its outcome."""

    def __init__(self, work: Callable[[], Any]) -> None:
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(work,), daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], Any]) -> None:
        try:
            self._value = work()
        except BaseException as error:  # handed to the caller by result()
            self._error = error

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self) -> None:
        self._thread.join()

    def result(self) -> Any:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value
