"""Pristine WordPress core trees for the test bed, built once per machine and cached.

6.1.9 is Debian's `wordpress` package; 6.2.6 to 6.5.5 come from the npm package
`@wp-playground/wordpress-builds`, whose zips hold the PHP files and whose `public/` folders
hold the static files the zips leave out. A core tree is complete WordPress without
`wp-config.php`; its `wp-content/` holds only components that are complete.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

from wpgate.testbed.process import TestBedError

CORE_VERSIONS: tuple[str, ...] = ("6.1.9", "6.2.6", "6.3.5", "6.4.5", "6.5.5")

DEBIAN_WORDPRESS = Path("/usr/share/wordpress")
PLAYGROUND_PACKAGE = "@wp-playground/wordpress-builds"
PLAYGROUND_VERSION = "0.9.19"
PLAYGROUND_TARBALL = f"wp-playground-wordpress-builds-{PLAYGROUND_VERSION}.tgz"

# Files of the playground builds that only make sense inside WordPress Playground.
_PLAYGROUND_ONLY = {"wp-config.php", ".default_theme", "wordpress-remote-asset-paths"}
_VERSION_LINE = re.compile(r"\$wp_version\s*=\s*'([^']+)'")


def cache_dir() -> Path:
    """`$WPGATE_CACHE`, else `~/.cache/wpgate`."""
    configured = os.environ.get("WPGATE_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "wpgate"


def core_dir(version: str) -> Path:
    """A ready, pristine core tree for `version` (one of CORE_VERSIONS), built on first use."""
    if version not in CORE_VERSIONS:
        raise TestBedError(f"no WordPress core {version!r} in the test bed "
                           f"(known: {', '.join(CORE_VERSIONS)})")
    cores = cache_dir() / "cores"
    target = cores / version
    if target.is_dir():
        return target
    cores.mkdir(parents=True, exist_ok=True)
    with locked(cores / ".lock"):
        if target.is_dir():  # another process built it while we waited
            return target
        building = Path(tempfile.mkdtemp(prefix=f".build-{version}-", dir=cores))
        try:
            if version == "6.1.9":
                _build_from_debian(building)
            else:
                _build_from_playground(building, version)
            found = read_core_version(building)
            if found != version:
                raise TestBedError(f"built WordPress core {version} but its version.php says "
                                   f"{found!r}")
            building.chmod(0o755)  # mkdtemp made it private
            os.rename(building, target)
        except BaseException:
            shutil.rmtree(building, ignore_errors=True)
            raise
    return target


def read_core_version(root: Path) -> str | None:
    """`$wp_version` as written in root's wp-includes/version.php, or None."""
    try:
        text = (root / "wp-includes" / "version.php").read_text()
    except OSError:
        return None
    match = _VERSION_LINE.search(text)
    return match.group(1) if match else None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Held while the file at `path` is locked: one process at a time, across processes."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_from_debian(destination: Path) -> None:
    if not (DEBIAN_WORDPRESS / "wp-includes" / "version.php").is_file():
        raise TestBedError(f"{DEBIAN_WORDPRESS} is missing: install the Debian packages "
                           "wordpress, wordpress-theme-twentytwentythree, "
                           "wordpress-theme-twentytwentytwo")
    # Debian's tree links to its own copies of bundled libraries (getID3, underscore, the CA
    # bundle): copy what the links point to, so the site holds ordinary files like a real one.
    # Debian's wp-config.php reads /etc/wordpress, and its .htaccess links there too: drop both.
    def skip_debian_files(folder: str, names: list[str]) -> set[str]:
        if Path(folder) == DEBIAN_WORDPRESS:
            return {"wp-config.php", ".htaccess"} & set(names)
        return set()

    shutil.copytree(DEBIAN_WORDPRESS, destination, symlinks=False, dirs_exist_ok=True,
                    ignore=skip_debian_files)
    themes = destination / "wp-content" / "themes"
    if not any((themes / name / "style.css").is_file() for name in ("twentytwentythree",
                                                                        "twentytwentytwo")):
        raise TestBedError("Debian's default themes are missing: install the Debian packages "
                           "wordpress-theme-twentytwentythree and wordpress-theme-twentytwentytwo")


def playground_tarball() -> Path:
    """The npm tarball of the playground builds, downloaded (`npm pack`) only when missing."""
    folder = cache_dir() / "npm"
    tarball = folder / PLAYGROUND_TARBALL
    if tarball.is_file():
        return tarball
    folder.mkdir(parents=True, exist_ok=True)
    with locked(folder / ".lock"):
        if tarball.is_file():
            return tarball
        downloading = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
        try:
            result = subprocess.run(
                ["npm", "pack", "--silent", "--pack-destination", str(downloading),
                 f"{PLAYGROUND_PACKAGE}@{PLAYGROUND_VERSION}"],
                capture_output=True, text=True, timeout=1800)
            packed = downloading / PLAYGROUND_TARBALL
            if result.returncode != 0 or not packed.is_file():
                raise TestBedError(f"npm pack {PLAYGROUND_PACKAGE}@{PLAYGROUND_VERSION} failed: "
                                   f"{result.stderr.strip() or result.stdout.strip()}")
            os.rename(packed, tarball)
        except FileNotFoundError as error:
            raise TestBedError("npm is needed once to fetch the WordPress 6.2-6.5 builds: "
                               "install the Debian package npm") from error
        finally:
            shutil.rmtree(downloading, ignore_errors=True)
    return tarball


def _build_from_playground(destination: Path, version: str) -> None:
    branch = ".".join(version.split(".")[:2])
    zip_member = f"package/src/wordpress/wp-{branch}.zip"
    public_prefix = f"package/public/wp-{branch}/"
    public = destination.parent / f"{destination.name}.public"
    zip_path = destination.parent / f"{destination.name}.zip"
    try:
        found_zip = _extract_from_tarball(playground_tarball(), zip_member, zip_path,
                                          public_prefix, public)
        if not found_zip:
            raise TestBedError(f"{PLAYGROUND_TARBALL} has no {zip_member}")
        kept_components = _unpack_core_zip(zip_path, destination)
        _merge_static_files(public, destination, kept_components)
    finally:
        shutil.rmtree(public, ignore_errors=True)
        zip_path.unlink(missing_ok=True)


def _safe_relative(name: str) -> PurePosixPath | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    return path


def _extract_from_tarball(tarball: Path, zip_member: str, zip_path: Path,
                          public_prefix: str, public: Path) -> bool:
    """Stream through the tarball once, writing the core zip and the public/ files only."""
    found_zip = False
    with tarfile.open(tarball, mode="r|gz") as archive:
        for member in archive:
            if member.name == zip_member and member.isfile():
                target = zip_path
                found_zip = True
            elif member.name.startswith(public_prefix) and member.isfile():
                relative = _safe_relative(member.name[len(public_prefix):])
                if relative is None:
                    continue
                target = public / relative
            else:
                continue
            source = archive.extractfile(member)
            if source is None:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, open(target, "wb") as output:
                shutil.copyfileobj(source, output, 1 << 20)
    return found_zip


def _playground_only(relative: PurePosixPath) -> bool:
    if len(relative.parts) == 1 and relative.name in _PLAYGROUND_ONLY:
        return True
    # The playground's SQLite database lives here; our sites use MariaDB.
    return relative.parts[:2] == ("wp-content", "database")


def _component(relative: PurePosixPath) -> tuple[str, str] | None:
    """("plugins"|"themes", folder name) when the path is inside a plugin or theme folder."""
    parts = relative.parts
    if len(parts) >= 4 and parts[0] == "wp-content" and parts[1] in ("plugins", "themes"):
        return parts[1], parts[2]
    return None


def _unpack_core_zip(zip_path: Path, destination: Path) -> set[tuple[str, str]]:
    """Unpack the zip's files; return the plugin and theme folders it carries."""
    components: set[tuple[str, str]] = set()
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            relative = _safe_relative(info.filename)
            if relative is None or info.is_dir() or _playground_only(relative):
                continue
            component = _component(relative)
            if component:
                components.add(component)
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, open(target, "wb") as output:
                shutil.copyfileobj(source, output, 1 << 20)
    return components


def _merge_static_files(public: Path, destination: Path, components: set[tuple[str, str]]) -> None:
    """Copy public/ over the tree. Plugins and themes whose PHP files the zip does not carry
    (static halves of Akismet, SQLite integration, older default themes) are left out, so that
    every component in the core tree is complete."""
    for path in sorted(public.rglob("*")):
        if path.is_dir():
            continue
        relative = PurePosixPath(path.relative_to(public).as_posix())
        if _playground_only(relative):
            continue
        component = _component(relative)
        if component and component not in components:
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
