"""Scratch tables of a restore proof in the site's own database, for hosts whose database user may not
create a scratch database: named under a prefix of their own, written in a journal before they exist,
dropped afterwards, and dropped by the next command on the site when a crash left them behind.

The journal is `STATE_DIR/scratch/SITE.jsonl`, one line per event (`created`, `dropped`), flushed to
disk before the host is asked to do anything: a prefix `created` and never `dropped` may have tables.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path
from typing import Any, Callable

from wpgate.run import utc_now

PREFIX_START = "wpgatev_"
_PREFIX = re.compile(r"wpgatev_[0-9a-f]{6}_")
# MariaDB's and MySQL's longest table (and constraint) name.
NAME_LIMIT = 64


def new_prefix() -> str:
    return f"{PREFIX_START}{secrets.token_hex(3)}_"


def is_prefix(prefix: str) -> bool:
    return bool(_PREFIX.fullmatch(prefix))


class ScratchJournal:
    """The scratch prefixes one site's restore proofs used, and whether their tables are gone."""

    def __init__(self, state_dir: Path, site_name: str,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        self.path = Path(state_dir) / "scratch" / f"{site_name}.jsonl"
        # A run's own journal hears of them too (gate 6.2's evidence, and `resume` reads the site's journal).
        self.on_event = on_event

    def _write(self, event: str, **data: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"at": utc_now(), "event": event, **data})
        with open(self.path, "a", encoding="utf-8") as journal:
            journal.write(line + "\n")
            journal.flush()
            os.fsync(journal.fileno())
        if self.on_event:
            self.on_event(f"backup.scratch_tables.{event}", data)

    def created(self, database: str, prefix: str) -> None:
        self._write("created", database=database, prefix=prefix)

    def dropped(self, database: str, prefix: str) -> None:
        self._write("dropped", database=database, prefix=prefix)

    def pending(self) -> list[dict[str, str]]:
        """Prefixes recorded as created and not as dropped, oldest first: {"database", "prefix"}."""
        if not self.path.exists():
            return []
        open_prefixes: dict[tuple[str, str], dict[str, str]] = {}
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash: the `created` before it is still open
            prefix, database = str(entry.get("prefix", "")), str(entry.get("database", ""))
            if not is_prefix(prefix):
                continue
            if entry.get("event") == "created":
                open_prefixes[(database, prefix)] = {"database": database, "prefix": prefix}
            elif entry.get("event") == "dropped":
                open_prefixes.pop((database, prefix), None)
        return list(open_prefixes.values())
