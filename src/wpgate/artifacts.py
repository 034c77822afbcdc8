"""Artifacts: a component captured from staging as a zip that the same tree always turns into the same bytes."""

from __future__ import annotations

import hashlib
import re
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wpgate.command import Command
from wpgate.errors import SiteError
from wpgate.inventory import Inventory
from wpgate.release import Artifact, sha256_file
from wpgate.transports import Transport

# The files of WordPress itself at the root of ABSPATH: never wp-config.php, never wp-content/.
CORE_FOLDERS = ("wp-admin", "wp-includes")
_CORE_ROOT_FILE = re.compile(r"^(wp-(?!config\.php$)[a-z-]+\.php|index\.php|xmlrpc\.php|license\.txt|readme\.html)$")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Python's own guard against hostile archives, where this Python has it (3.11.4 and later).
_SAFE_EXTRACT = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


@dataclass(frozen=True)
class Capture:
    """A component captured from a site: its artifact, and when its files last changed there."""

    artifact: Artifact
    file: Path
    files: int
    last_modified: float


def component_location(inventory: Inventory, kind: str, slug: str) -> tuple[str, list[str]]:
    """(folder to archive from, entries in it) for a component on the site the inventory came from."""
    paths = inventory.data["paths"]
    if kind == "plugin":
        return paths["plugins"], [slug]
    if kind == "theme":
        return paths["themes"], [slug]
    return paths["abspath"], list(CORE_FOLDERS)


def is_core_root_file(name: str) -> bool:
    return bool(_CORE_ROOT_FILE.match(name))


def is_core_name(name: str) -> bool:
    """A name core has at the root of ABSPATH: one of its folders or its files."""
    return name in CORE_FOLDERS or is_core_root_file(name)


def capture(transport: Transport, inventory: Inventory, kind: str, slug: str, version: str,
            artifacts_dir: Path, state_dir: Path) -> Capture:
    """Stream the component's files from the site's host and pack them into a deterministic zip.

    Plugins and themes are zipped under their folder name, core under `wordpress/`, as WordPress's
    upgraders expect. The zip is named by its content's sha256, so a capture never overwrites
    a different one.
    """
    base, entries = component_location(inventory, kind, slug)
    if kind == "core":
        entries += core_root_files(transport, base)
    else:
        _require_folder(transport, base, slug, kind)
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wpgate-capture-", dir=artifacts_dir) as scratch:
        tree = Path(scratch) / "tree"
        tree.mkdir()
        archive = Path(scratch) / "component.tar"
        with open(archive, "wb") as stream:
            transport.check(Command.of("tar", "-C", base, "-cf", "-", "--", *entries), stdout=stream)
        last_modified, files = _unpack(archive, tree, f"{kind} {slug}")
        top = "wordpress" if kind == "core" else slug
        packed = Path(scratch) / "artifact.zip"
        pack(tree, packed, top)
        sha256 = sha256_file(packed)
        name = f"{kind}-{slug}-{version}-{sha256[:12]}.zip"
        final = artifacts_dir / name
        if not final.exists():
            shutil.move(packed, final)
    relative = final.relative_to(state_dir).as_posix()
    return Capture(Artifact(path=relative, sha256=sha256), final, files, last_modified)


def _require_folder(transport: Transport, base: str, slug: str, kind: str) -> None:
    if not transport.run(Command.of("test", "-d", f"{base}/{slug}")).ok:
        raise SiteError(f"{transport.name}: {kind} {slug} is not a folder in {base}: "
                        "single-file plugins cannot be replicated, update them by hand")


def core_root_files(transport: Transport, abspath: str) -> list[str]:
    """The core's own files at the root of ABSPATH on the host (wp-login.php, index.php, …)."""
    listing = transport.check(Command.of("find", abspath, "-maxdepth", "1", "-type", "f", "-printf", "%f\\n"))
    return sorted(name for name in listing.text().splitlines() if is_core_root_file(name))


def _unpack(archive: Path, tree: Path, what: str) -> tuple[float, int]:
    """Extract a tar stream safely: regular files and folders only, nothing outside `tree`."""
    last_modified = 0.0
    files = 0
    with tarfile.open(archive, "r:") as tar:
        for member in tar:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts:
                raise SiteError(f"{what}: refusing a path outside the component: {member.name}")
            if member.issym() or member.islnk():
                raise SiteError(f"{what}: {member.name} is a link; components with links cannot be "
                                "replicated safely")
            if not (member.isfile() or member.isdir()):
                raise SiteError(f"{what}: {member.name} is not a regular file or folder")
            if member.isfile():
                files += 1
                last_modified = max(last_modified, float(member.mtime))
            tar.extract(member, tree, set_attrs=False, **_SAFE_EXTRACT)
    return last_modified, files


def pack(tree: Path, destination: Path, top: str) -> None:
    """Zip `tree` under the folder name `top`: sorted entries, fixed times and modes, so the same
    files always give the same bytes."""
    source = tree if top == "wordpress" else tree / top
    entries = sorted(p for p in source.rglob("*"))
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        folder = zipfile.ZipInfo(f"{top}/", date_time=ZIP_TIME)
        folder.external_attr = (0o40755 << 16) | 0x10
        archive.writestr(folder, b"")
        for path in entries:
            relative = path.relative_to(source).as_posix()
            if path.is_dir():
                info = zipfile.ZipInfo(f"{top}/{relative}/", date_time=ZIP_TIME)
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(f"{top}/{relative}", date_time=ZIP_TIME)
                info.external_attr = 0o100644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)


def file_hashes(zip_path: Path) -> dict[str, str]:
    """sha256 of every file in an artifact, by its path below the top folder."""
    hashes = {}
    with zipfile.ZipFile(zip_path) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            relative = info.filename.split("/", 1)[1]
            with archive.open(info) as handle:
                hashes[relative] = hashlib.sha256(handle.read()).hexdigest()
    return hashes


def check_core_artifact(zip_path: Path) -> list[str]:
    """A core artifact holds core files only."""
    problems = []
    with zipfile.ZipFile(zip_path) as archive:
        for name in archive.namelist():
            relative = name.split("/", 1)[1] if "/" in name else name
            if relative == "wp-config.php" or relative.startswith("wp-content/"):
                problems.append(f"{zip_path.name} holds {relative}, which a core artifact must never hold")
    return problems
