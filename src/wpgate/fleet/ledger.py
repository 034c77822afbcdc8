"""`STATE_DIR/rollouts/ROLLOUT_ID/rollout.json`: the rollout's ledger, written by its controller alone, each
time whole (a temporary file, fsync, rename, fsync of the folder), so a crash leaves the last state or the
one before, never half of one."""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from wpgate import redact
from wpgate.errors import BadInput

ROLLOUT_ID = re.compile(r"rollout-\d{8}-\d{6}-[0-9a-f]{4}")  # matched whole
FINAL_SITE = ("complete", "refused", "rolled_back", "rollback_failed")
FINAL_ROLLOUT = ("complete", "halted", "refused")


def new_rollout_id() -> str:
    return "rollout-" + datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def is_rollout_id(text: str) -> bool:
    return bool(ROLLOUT_ID.fullmatch(text))


def folder(state_dir: Path, rollout_id: str) -> Path:
    return state_dir / "rollouts" / rollout_id


class Ledger:
    """The rollout's state as DESIGN.md shows it, plus what the controller needs to resume it."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    @classmethod
    def create(cls, state_dir: Path, rollout_id: str, data: dict[str, Any]) -> "Ledger":
        where = folder(state_dir, rollout_id)
        try:
            where.mkdir(parents=True, exist_ok=False, mode=0o700)
        except OSError as error:
            raise BadInput(f"{where}: cannot create the rollout's folder: {error.strerror}") from None
        ledger = cls(where / "rollout.json", data)
        ledger.save()
        return ledger

    @classmethod
    def load(cls, state_dir: Path, rollout_id: str) -> "Ledger":
        if not is_rollout_id(rollout_id):
            raise BadInput(f"{rollout_id!r} is not a rollout id (rollout-YYYYMMDD-HHMMSS-xxxx)")
        path = folder(state_dir, rollout_id) / "rollout.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BadInput(f"no rollout {rollout_id} in {state_dir / 'rollouts'}") from None
        except (OSError, ValueError) as error:
            raise BadInput(f"{path}: cannot read the rollout's ledger: {error}") from None
        return cls(path, data)

    @property
    def id(self) -> str:
        return self.data["rollout"]

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def sites(self) -> dict[str, dict[str, Any]]:
        return self.data["sites"]

    def site(self, name: str, **changes: Any) -> None:
        """Change a site's entry and write the ledger."""
        self.sites[name].update(changes)
        self.save()

    def save(self) -> None:
        # Masked as a run's report is: a site's error may quote a secret.
        text = json.dumps(redact.value(self.data), indent=2, ensure_ascii=False) + "\n"
        partial = self.path.with_name(self.path.name + ".part")
        with open(partial, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        partial.replace(self.path)
        descriptor = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def latest(state_dir: Path) -> str | None:
    root = state_dir / "rollouts"
    found = sorted(p.name for p in root.iterdir() if is_rollout_id(p.name)) if root.is_dir() else []
    return found[-1] if found else None
