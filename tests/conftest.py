"""Shared fixtures: one real-services test bed per test session."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from wpgate.testbed import TestBed
from wpgate.testbed.cores import cache_dir


def pytest_configure(config: pytest.Config) -> None:
    # WordPress cores (and the npm tarball they come from) are built once per machine under
    # $WPGATE_CACHE, else ~/.cache/wpgate. Pin the choice in the environment so that the
    # wpgate commands the tests start use the same cache and never fetch again.
    os.environ.setdefault("WPGATE_CACHE", str(cache_dir()))


@pytest.fixture(scope="session")
def bed() -> Iterator[TestBed]:
    """A TestBed for the whole session: MariaDB starts with the first site; all is stopped at
    the end of the session."""
    with TestBed() as test_bed:
        yield test_bed


@pytest.fixture(scope="session")
def wpgate_cache() -> Path:
    return cache_dir()
