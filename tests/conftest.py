"""Shared fixtures: one real-services test bed per test session."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from wpgate.testbed import TestBed
from wpgate.testbed.cores import cache_dir
from wpgate.testbed.process import CLI_CODE_CACHE, set_port_range

# Parallel workers (pytest-xdist) each hand out ports from a range of their own, below the kernel's
# ephemeral ports (32768 and up), so that two workers never start servers on the same port.
_PORTS_PER_WORKER = 1500
_FIRST_PORT = 20000


def pytest_configure(config: pytest.Config) -> None:
    # WordPress cores (and the npm tarball they come from) are built once per machine under
    # $WPGATE_CACHE, else ~/.cache/wpgate. Pin the choice in the environment so that the
    # wpgate commands the tests start use the same cache and never fetch again.
    os.environ.setdefault("WPGATE_CACHE", str(cache_dir()))
    # The crash matrices kill at a sample drawn with this seed: a new one each session (printed in
    # the header, so coverage accumulates over runs and any run can be replayed). Workers inherit it.
    if not os.environ.get("WPGATE_CRASH_SEED", "").isdigit():
        os.environ["WPGATE_CRASH_SEED"] = str(random.SystemRandom().randrange(1, 1_000_000))
    if CLI_CODE_CACHE not in os.environ:  # the parallel workers inherit the session's
        _cli_code_cache()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        first = _FIRST_PORT + int(worker[2:]) * _PORTS_PER_WORKER
        if first + _PORTS_PER_WORKER > 32768:
            raise pytest.UsageError("too many test workers for the port ranges: use -n 8 or fewer")
        set_port_range(first, first + _PORTS_PER_WORKER - 1)


_made_here: list[Path] = []  # the code cache this process made, removed when the session ends


def _cli_code_cache() -> None:
    """Command-line PHP (every bridge call wpgate makes, the bed's own) compiles WordPress again in each
    process: about 0.25 s of CPU, thousands of times in a run. OPcache's file cache, shared by the
    session's processes, makes that about 0.05 s. It still compares each file's modification time
    (and skips files changed in the last 2 seconds), as on a host that turns on opcache.enable_cli;
    the bed's web servers keep their own OPcache (testbed/process.py), and a removed site's cached
    code goes with it. Over ssh, PHP runs with the host's settings."""
    folder = Path(tempfile.mkdtemp(prefix="wpgate-php-cli-"))
    (folder / "cache").mkdir()
    (folder / "ini").mkdir()
    (folder / "ini" / "wpgate-tests-cli-cache.ini").write_text(
        f"opcache.enable_cli=1\nopcache.file_cache={folder / 'cache'}\nopcache.file_cache_only=1\n")
    os.environ[CLI_CODE_CACHE] = str(folder)
    _made_here.append(folder)
    # An empty part keeps PHP's own scan folder (conf.d) in the list.
    os.environ["PHP_INI_SCAN_DIR"] = f"{os.environ.get('PHP_INI_SCAN_DIR', '')}:{folder / 'ini'}"


def pytest_unconfigure(config: pytest.Config) -> None:
    if _made_here:
        shutil.rmtree(_made_here[0], ignore_errors=True)


# The e2e modules that take longest (a clean run's durations), started right after the crash shards.
_LONGEST = ("test_rollout.py", "test_deploy.py", "test_monitor.py", "test_demo.py", "test_rollback_safety.py",
            "test_visitors.py", "test_restic.py", "test_upgrader.py", "test_caches.py", "test_hostile.py")


def _start_order(item: pytest.Item) -> tuple[int, int]:
    """Longest first, so that no long test starts last and runs alone: the crash shards, the longest e2e
    modules, the other e2e modules, the test bed's, then the unit tests (seconds each) to fill the gaps.
    Make runs pytest-xdist with --no-loadscope-reorder, which keeps this order (its default puts the
    groups with the most tests first, and a crash shard is one test)."""
    path = item.path
    if item.get_closest_marker("crash_shard"):
        return (0, 0)
    if path.parent.name == "e2e" and path.name in _LONGEST:
        return (1, _LONGEST.index(path.name))
    return ({"e2e": 2, "testbed": 3}.get(path.parent.name, 4), 0)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into the node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For parallel runs (`--dist loadgroup`): a module's tests stay together in one process, so its
    fixtures are built once, but each shard of a crash matrix is a group of its own; longest first."""
    for item in items:
        if item.get_closest_marker("crash_shard"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid))
        else:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))
    items.sort(key=_start_order)


def pytest_report_header(config: pytest.Config) -> list[str]:
    full = " (full matrix)" if os.environ.get("WPGATE_CRASH_FULL") == "1" else ""
    seed = os.environ["WPGATE_CRASH_SEED"]
    return [f"crash matrix seed: {seed}{full}; replay with WPGATE_CRASH_SEED={seed}"]


_beds: list[TestBed] = []


@pytest.fixture(scope="session")
def bed() -> Iterator[TestBed]:
    """A TestBed for the whole session: MariaDB starts with the first site; all is stopped at
    the end of the session."""
    with TestBed() as test_bed:
        _beds.append(test_bed)
        yield test_bed


@pytest.fixture(scope="module", autouse=True)
def _sites_last_as_long_as_their_module() -> Iterator[None]:
    """The sites a module made are removed (servers, files, database) when it ends: the test bed's
    folder is on tmpfs, and a whole session's sites would not fit in memory."""
    before = {name for test_bed in _beds for name in test_bed.sites}
    yield
    for test_bed in _beds:
        for name, site in list(test_bed.sites.items()):
            if name not in before:
                test_bed.remove_site(site)


@pytest.fixture(scope="session")
def wpgate_cache() -> Path:
    return cache_dir()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    # Also at the end, where a failing run's reader looks (-q hides the header).
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    seed = os.environ["WPGATE_CRASH_SEED"]
    terminalreporter.write_line(f"crash matrix seed: {seed} (replay with WPGATE_CRASH_SEED={seed})")
