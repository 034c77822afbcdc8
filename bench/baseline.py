"""The baseline both deploy benchmarks measure wpgate against: what a maintainer's script would do with no
gates. Each update's zip handed to WordPress's upgrader (the bridge actions wpgate uses, updating in place as
the Dashboard does, with WordPress's own maintenance page while an active component changes), then, after
core, the database upgrade; no checks, no journal, no swap, no OPcache reset."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from wpgate import release as release_module, upgrader
from wpgate.bridge import Bridge
from wpgate.config import SiteConfig
from wpgate.transports import LocalTransport


def upgrade_alone(site, manifest: Path, state: Path) -> None:
    """Apply the release's updates to the test-bed `site` with WordPress's upgrader alone. `state` is the
    state folder that holds the release's artifacts."""
    bridge = Bridge("plain", SiteConfig(path=str(site.path), url=site.url), LocalTransport())
    packages = Path(tempfile.mkdtemp(prefix="bench-packages-"))
    try:
        for update in release_module.load(manifest).updates:
            package = packages / Path(update.artifact.path).name  # the upgrader consumes its package: a copy
            shutil.copy(state / update.artifact.path, package)
            upgrader.install_component(bridge, kind=update.type, slug=update.slug, package=str(package),
                                       version=update.to_version)
            if update.type == "core":
                upgrader.upgrade_database(bridge)
    finally:
        shutil.rmtree(packages, ignore_errors=True)
