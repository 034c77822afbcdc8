"""Drive the installed `wpgate` command as a user would, and write configs for test-bed sites."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import yaml

WPGATE = Path(sys.executable).with_name("wpgate")


def site_entry(site, *, ssh=None, **extra: Any) -> dict[str, Any]:
    """A `sites:` entry for a test-bed site; `ssh` is the bed's SshServer to reach it through."""
    entry: dict[str, Any] = {"path": str(site.path), "url": site.url}
    if ssh is not None:
        entry["ssh"] = ssh.alias
        entry["ssh_config"] = str(ssh.config_path)
    entry.update(extra)
    return entry


def write_config(folder: Path, sites: dict[str, dict[str, Any]], *, backups: bool = True, **top: Any) -> Path:
    """A wpgate.yml for these sites; each gets a backup folder and an off-site folder of its own
    under `folder` unless it says otherwise (gate 6.2 requires both), and a 1s monitoring window
    unless its `checks` give one."""
    if backups:
        for name, entry in sites.items():
            entry.setdefault("backup", {"dir": str(folder / "backups" / name), "offsite": str(folder / "offsite")})
    for entry in sites.values():
        # Gate 6.6 watches for the window: a short one keeps the suite's many deploys quick.
        entry.setdefault("checks", {}).setdefault("window", "1s")
    path = folder / "wpgate.yml"
    path.write_text(yaml.safe_dump({**top, "sites": sites}, sort_keys=False))
    return path


def wpgate(*args: str, config: Path | None = None, env: dict[str, str] | None = None,
           timeout: float = 300) -> subprocess.CompletedProcess[str]:
    argv = [str(WPGATE)] + (["-c", str(config)] if config else []) + list(args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def wpgate_paused_after(event: str, act: Callable[[], None], *args: str, config: Path,
                        timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run wpgate stopped (SIGSTOP) right after the journal's first `event` (WPGATE_TEST_PAUSE_AFTER); `act()`,
    then let it go on to its end."""
    argv = [str(WPGATE), "-c", str(config), *args]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               stdin=subprocess.DEVNULL,
                               env={**os.environ, **(env or {}), "WPGATE_TEST_PAUSE_AFTER": event})
    try:
        deadline = time.monotonic() + timeout  # a guard against a hang, not a measure
        while not stopped(process.pid):
            assert process.poll() is None, f"wpgate ended before {event}: {process.communicate()}"
            assert time.monotonic() < deadline, f"wpgate never reached {event}"
            time.sleep(0.05)
        try:
            act()
        finally:
            os.kill(process.pid, signal.SIGCONT)
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2:].split()[0] == "T"


def wpgate_json(*args: str, config: Path) -> Any:
    result = wpgate(*args, "--json", config=config)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The run failed with `code` and said so in one line, without a traceback."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    text = result.stderr.strip()
    assert "Traceback" not in text, text
    assert len(text.splitlines()) == 1, text
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    return text


def aside_root(site) -> Path:
    """Where wpgate keeps a run's copies of a test-bed site, and the site's lock: beside the site's root, outside
    the web root (src/wpgate/aside.py; a test-bed site is served at the root of its host)."""
    root = Path(site.path)
    return root.parent / f".wpgate-aside-{root.name}"


def fingerprint(site) -> dict[str, Any]:
    """Every file under the site's root (but its PHP log) and every table's checksum: equal fingerprints
    mean production was left byte-for-byte as it was. wpgate keeps nothing of its own under the root."""
    import hashlib

    files = {}
    root = Path(site.path)
    for path in sorted(root.rglob("*")):
        if path.is_file() and path != root / "wp-content/debug.log":
            files[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    tables = site.sql("SHOW TABLES").split()
    checksums = site.sql("CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables) + " EXTENDED")
    return {"files": files, "tables": checksums}


def assert_unchanged(before: dict[str, Any], after: dict[str, Any]) -> None:
    changed = sorted(k for k in set(before["files"]) | set(after["files"])
                     if before["files"].get(k) != after["files"].get(k))
    assert not changed, f"files changed: {changed[:10]}"
    if before["tables"] != after["tables"]:
        was, now = set(before["tables"].splitlines()), set(after["tables"].splitlines())
        raise AssertionError(f"the database changed: {sorted(was ^ now)[:10]}")


def assert_rolled_back(before: dict[str, Any], after: dict[str, Any]) -> None:
    """Production is byte-for-byte as `before` (every file, every table's checksum), read without
    wpgate's own inventory: nothing changed, nothing appeared."""
    assert_unchanged(before, after)


def write_qa(folder: Path, **changes: Any) -> Path:
    record = {
        "checks": [{"name": "home page renders", "required": True, "status": "passed"},
                   {"name": "checkout works", "required": True, "status": "passed"}],
        "issues": [{"id": 12, "title": "slider overlaps header", "status": "resolved",
                    "resolution": "theme option reset"}],
        "notes": [],
    }
    record.update(changes)
    path = folder / "qa.yml"
    path.write_text(yaml.safe_dump(record, sort_keys=False))
    return path


def but_caches(site, print_: dict[str, Any]) -> dict[str, Any]:
    """A fingerprint whose wp_options is compared row by row, but for WordPress's caches and cron schedule
    (transients, `cron`): WordPress rewrites them whenever it loads, and a rollback that keeps the database
    leaves them as they are (they are no change of the release's, nor anyone's data)."""
    options = next(line for line in print_["tables"].splitlines() if line.split("\t")[0].endswith(".wp_options"))
    rows = site.sql("SELECT option_name, MD5(option_value), autoload FROM wp_options WHERE option_name <> 'cron' "
                    "AND option_name NOT LIKE '\\_transient\\_%' AND option_name NOT LIKE '\\_site\\_transient\\_%' "
                    "ORDER BY option_id")
    return {**print_, "tables": print_["tables"].replace(options, "") + rows}
