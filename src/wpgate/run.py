"""A deploy run's folder: the journal (one event a line, flushed to disk), inventories, evidence, report.json."""

from __future__ import annotations

import getpass
import logging
import json
import os
import re
import secrets
import socket
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from wpgate import faults, redact
from wpgate.errors import BadInput

STATUSES = ("complete", "refused", "rolled_back", "rollback_failed", "running")
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{4}")  # matched whole


class UpdateStatus(str, Enum):
    """Where one update of the release stands (report.json's `updates[].status`)."""

    PENDING = "pending"          # not begun, or begun and not verified (then `partly_applied`)
    APPLYING = "applying"        # the site changes for it now; a run cut short here is resumed or rolled back
    APPLIED = "applied"          # in place, its version re-read from the site
    ROLLED_BACK = "rolled_back"  # put back to its `from` version


@dataclass
class UpdateRecord:
    """One update as the run records it: the manifest's facts, its status, and what rollback needs."""

    type: str
    slug: str
    from_version: str | None
    to_version: str
    status: UpdateStatus = UpdateStatus.PENDING
    aside_names: list[str] | None = None  # core: the old core's root names, kept aside (rollback.py)
    live: str | None = None               # the folder visitors are served from
    aside: str | None = None              # where its old version was kept
    undo: str | None = None               # how a person puts it back by hand
    install_began: bool = False           # the site itself began to change for it
    partly_applied: bool = False          # it began and the run stopped before it was verified
    unknown: dict[str, Any] = field(default_factory=dict)  # keys of a record written by another wpgate, kept

    def as_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"type": self.type, "slug": self.slug, "from": self.from_version,
                                    "to": self.to_version, "status": UpdateStatus(self.status).value}
        for key in ("aside_names", "live", "aside", "undo"):
            if getattr(self, key) is not None:
                document[key] = getattr(self, key)
        for key in ("install_began", "partly_applied"):
            if getattr(self, key):
                document[key] = True
        return document | self.unknown

    @classmethod
    def of(cls, data: Any) -> "UpdateRecord":
        """A record read back from report.json, as it is: check_record (rollback.py) judges its values."""
        data = data if isinstance(data, dict) else {}
        known = {"type", "slug", "from", "to", "status", "aside_names", "live", "aside", "undo", "install_began",
                 "partly_applied"}
        status = data.get("status")
        return cls(data.get("type"), data.get("slug"), data.get("from"), data.get("to"),  # type: ignore[arg-type]
                   UpdateStatus(status) if status in {s.value for s in UpdateStatus} else UpdateStatus.PENDING,
                   aside_names=data.get("aside_names"), live=data.get("live"), aside=data.get("aside"),
                   undo=data.get("undo"), install_began=bool(data.get("install_began")),
                   partly_applied=bool(data.get("partly_applied")),
                   unknown={key: value for key, value in data.items() if key not in known})


Observer = Callable[[dict[str, Any]], None]

# Who hears each journal event, as the dict written: the process's own (the crash tests' fault hook, from the
# environment) and those of the caller in whose context a run is opened (a library user's `on_event`).
_process_observers: list[Observer] = faults.observers_from_environment()
_observers: ContextVar[tuple[Observer, ...]] = ContextVar("wpgate_journal_observers", default=())


@contextmanager
def observing(callback: Observer) -> Iterator[None]:
    """Every run opened inside this block tells `callback` each event its journal writes (after it is on disk).
    The callback hears, it does not steer: an exception it raises is logged and the run goes on."""
    token = _observers.set(_observers.get() + (callback,))
    try:
        yield
    finally:
        _observers.reset(token)


def _quietly(callback: Observer) -> Observer:
    def hear(event: dict[str, Any]) -> None:
        try:
            callback(event)
        except Exception:  # noqa: BLE001 (a listener's bug never changes what happens to production)
            logging.getLogger(__name__).warning("an on_event callback failed", exc_info=True)
    return hear


def open_private(path: Path) -> BinaryIO:
    """A file only its owner can read, from its first byte (a database dump, the rows of visitors):
    created 0600, never widened by the umask, and set back to 0600 when it existed already."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "wb")


def private_folder(path: Path) -> None:
    """A run's folder holds database dumps: owner only (what an earlier wpgate made 0755 included)."""
    path.chmod(0o700)


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def who() -> str:
    """Who asked, as `user@host`: the person at this terminal, or the account a job runs as."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


class Run:
    """Everything a deploy records, written as it happens so that a crash leaves a true account."""

    FOLDER = "runs"  # under the state folder: one folder per run
    STATUSES = STATUSES

    def __init__(self, state_dir: Path, site: str, release_id: str, run_id: str | None = None) -> None:
        self.id = run_id or new_run_id()
        self.folder = state_dir / self.FOLDER / self.id
        try:
            self.folder.mkdir(parents=True, exist_ok=False, mode=0o700)
        except FileExistsError:
            if run_id:  # named by a rollout: that run exists, so another process is on it
                raise BadInput(f"run {run_id} exists already in {state_dir / self.FOLDER}: another process started it; "
                               f"`wpgate resume {run_id}` finishes it") from None
            self.id = new_run_id()  # two runs in the same second drew the same suffix
            self.folder = state_dir / self.FOLDER / self.id
            self.folder.mkdir(parents=True, exist_ok=False, mode=0o700)
        except OSError as error:
            raise BadInput(f"{self.folder}: cannot create the run's folder: {error.strerror} "
                           "(check state_dir in the config)") from None
        private_folder(self.folder)
        self.site = site
        self.release_id = release_id
        self.status = "running"
        self.started = time.monotonic()
        self.started_at = utc_now()
        self.gates: list[dict[str, Any]] = []
        self.updates: list[UpdateRecord] = []
        self.backup: dict[str, Any] | None = None
        self.error: str | None = None
        self.changed = False  # set just before the first change to the site itself
        self.extra: dict[str, Any] = {}
        self.history: list[dict[str, Any]] = []  # every status the run ended in, in order
        self.seconds: float | None = None  # set: how long the run took is fixed (a later rollback is its own)
        self.observers = _observers_now()
        self._journal = open(self.folder / "journal.jsonl", "a", encoding="utf-8")
        self.write_report()  # a run killed at its first event still has a record to resume from
        self.event("run.start", site=site, release=release_id)

    @classmethod
    def reopen(cls, state_dir: Path, run_id: str) -> "Run":
        """An earlier run, to be resumed or rolled back: its record is read back and its journal
        goes on where it stopped."""
        report = load_report(state_dir, run_id)
        run = cls.__new__(cls)
        run.id = report["run"]
        run.folder = state_dir / "runs" / run.id
        run.site = report["site"]
        run.release_id = report["release"]
        run.status = report["status"]
        run.started = time.monotonic() - float(report.get("seconds") or 0)
        run.started_at = report.get("started_at", "")
        run.gates = report.get("gates", [])
        run.updates = [UpdateRecord.of(entry) for entry in report.get("updates", [])]
        run.backup = report.get("backup")
        run.error = report.get("error")
        run.seconds = None
        history = report.get("history")
        run.history = list(history) if isinstance(history, list) else _ends_in_journal(run.folder / "journal.jsonl")
        known = {"run", "site", "release", "status", "started_at", "seconds", "gates", "updates", "backup", "error",
                 "history"}
        run.extra = {key: value for key, value in report.items() if key not in known}
        run.changed = any(entry.install_began for entry in run.updates)
        run.observers = _observers_now()
        run._journal = open(run.folder / "journal.jsonl", "a", encoding="utf-8")
        return run

    def keep_duration(self) -> None:
        """What follows (a rollback asked for later) does not count in how long the run took: the time the
        release was live is no part of it; the rollback's own time is in the journal."""
        self.seconds = round(time.monotonic() - self.started, 2)

    def load_json(self, name: str) -> Any:
        path = self.folder / name
        return json.loads(path.read_text()) if path.exists() else None

    def event(self, name: str, /, **data: Any) -> None:
        """Append one event and force it to disk before going on."""
        event = redact.value({"at": utc_now(), "event": name, **data})
        line = json.dumps(event, sort_keys=False, default=str)
        self._journal.write(line + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        for observer in self.observers:
            observer(json.loads(line))  # each hears its own copy, as the journal holds it

    @contextmanager
    def action(self, name: str, /, **data: Any) -> Iterator[dict[str, Any]]:
        """Journal an action on the site before it starts and after it ends, however it ends.
        The dict yielded collects what the `.done` event should say."""
        self.event(f"{name}.begin", **data)
        outcome: dict[str, Any] = {}
        try:
            yield outcome
        except BaseException as error:
            self.event(f"{name}.failed", error=str(error) or type(error).__name__, **data)
            raise
        self.event(f"{name}.done", **data, **outcome)

    def gate(self, step: str, name: str, status: str, evidence: dict[str, Any] | None = None) -> None:
        entry = {"step": step, "name": name, "status": status, "evidence": evidence or {}}
        self.gates = [g for g in self.gates if g["step"] != step] + [entry]
        self.gates.sort(key=lambda g: g["step"])
        self.event("gate", step=step, name=name, status=status)
        self.write_report()

    def save_json(self, name: str, data: Any) -> Path:
        path = self.folder / name
        path.write_text(json.dumps(redact.value(data), indent=2, default=str))
        return path

    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "run": self.id, "site": self.site, "release": self.release_id, "status": self.status,
            "started_at": self.started_at,
            "seconds": self.seconds if self.seconds is not None else round(time.monotonic() - self.started, 2),
            "gates": self.gates, "updates": [entry.as_dict() for entry in self.updates], "backup": self.backup,
        }
        if self.error:
            document["error"] = self.error
        document.update(self.extra)
        document["history"] = self.history
        return redact.value(document)  # what the journal, report.json, --json and notifications see

    def write_report(self) -> None:
        path = self.folder / "report.json"
        partial = path.with_name("report.json.part")
        partial.write_text(json.dumps(self.report(), indent=2, default=str))
        partial.replace(path)

    def close(self) -> None:
        """Stop writing without ending the run (it stays as it was, to be resumed)."""
        if not self._journal.closed:
            self._journal.close()

    def finish(self, status: str, error: str | None = None, *, reason: str | None = None,
               by: str | None = None) -> None:
        """End the run with `status`, added to its history with the time, and for a rollback why (`reason`:
        "requested", or the gate that failed) and who asked (`by`)."""
        assert status in self.STATUSES
        self.status = status
        self.error = error
        if self.seconds is None:  # how long it took is fixed once it ends: every later report says the same
            self.seconds = round(time.monotonic() - self.started, 2)
        ended: dict[str, Any] = {"status": status, "at": utc_now()}
        if status in ("rolled_back", "rollback_failed"):
            ended["reason"] = reason or self.failed_gate() or ("interrupted" if error == "interrupted" else "error")
        elif reason:
            ended["reason"] = reason
        if by:
            ended["by"] = by
        self.history.append(ended)
        self.event("run.end", status=status, **({"error": error} if error else {}),
                   **{key: value for key, value in ended.items() if key in ("reason", "by")})
        self.write_report()
        self._journal.close()

    def failed_gate(self) -> str | None:
        """The gate that failed, as `6.6 monitor`: why an automatic rollback happened."""
        failed = next((gate for gate in self.gates if gate.get("status") == "failed"), None)
        return f"{failed['step']} {failed['name']}" if failed else None


def _observers_now() -> tuple[Observer, ...]:
    """A run's listeners, fixed when it is opened: a thread it starts later writes events they hear too.
    The caller's are heard first; the process's own (a fault hook that may kill it) last."""
    return tuple(_quietly(callback) for callback in _observers.get()) + tuple(_process_observers)


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The journal's events; a line cut short by a crash is left out."""
    events = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def _ends_in_journal(path: Path) -> list[dict[str, Any]]:
    """A run recorded before wpgate kept its history: the statuses it ended in, from the journal."""
    return [{"status": event["status"], "at": event.get("at", "")} for event in read_journal(path)
            if event.get("event") == "run.end" and event.get("status") in STATUSES]


RESTORES_FOLDER = "restores"  # wpgate restore's records (restore.RestoreRecord)


def record_folder(state_dir: Path, run_id: str) -> Path:
    """Where a run's record lies: `runs/RUN_ID`, or a restore's `restores/RUN_ID` (`wpgate restore` keeps its
    own, apart from the runs that resume and rollback take)."""
    folder = state_dir / Run.FOLDER / run_id
    restored = state_dir / RESTORES_FOLDER / run_id
    return restored if not folder.exists() and restored.exists() else folder


def load_report(state_dir: Path, run_id: str) -> dict[str, Any]:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise BadInput(f"{run_id!r} is not a run id (they look like 20261126-101500-ab12)")
    path = record_folder(state_dir, run_id) / "report.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"no run {run_id} in {state_dir / 'runs'}") from None
    except (OSError, json.JSONDecodeError) as error:
        raise BadInput(f"{path}: cannot read the report: {error}") from None


def latest_run(state_dir: Path) -> str | None:
    runs = state_dir / "runs"
    if not runs.is_dir():
        return None
    names = sorted(p.name for p in runs.iterdir() if (p / "report.json").exists())
    return names[-1] if names else None


def rollbacks(state_dir: Path, site: str | None, release_id: str) -> list[dict[str, str]]:
    """Every run of this release on this site (any site: None) that ended rolled back (on request or after a failed check,
    proved or not): its id, when the rollback ended (the journal's last `run.end`) and why, oldest first."""
    runs = state_dir / "runs"
    found = []
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        try:
            report = json.loads((folder / "report.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if site not in (None, report.get("site")) or report.get("release") != release_id or \
                report.get("status") not in ("rolled_back", "rollback_failed"):
            continue
        ended = ""
        try:
            for line in (folder / "journal.jsonl").read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event.get("event") == "run.end" and event.get("status") == report["status"]:
                    ended = str(event.get("at") or "")
        except OSError:
            pass
        reason = (str(report.get("error") or "").strip().splitlines() or ["no reason recorded"])[0]
        last = (report.get("history") or [{}])[-1]
        if isinstance(last, dict) and last.get("reason") == "requested":
            reason = "rollback requested"
        found.append({"run": folder.name, "site": str(report.get("site")), "status": report["status"],
                      "at": ended or report.get("started_at", ""), "reason": reason})
    return found
