"""Artifacts: a component captured from staging as a zip that the same tree always turns into the same bytes."""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

from wpgate.command import Command
from wpgate.errors import SiteError
from wpgate.inventory import Inventory
from wpgate.release import Artifact, sha256_file
from wpgate.transports import Transport

# The files of WordPress itself at the root of ABSPATH: never wp-config.php, never wp-content/.
CORE_FOLDERS = ("wp-admin", "wp-includes")
_CORE_ROOT_FILE = re.compile(r"^(wp-(?!config\.php$)[a-z-]+\.php|index\.php|xmlrpc\.php|license\.txt|readme\.html)$")
ZIP_TIME = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Capture:
    """A component captured from a site: its artifact, its zip here, and how many files it holds."""

    artifact: Artifact
    file: Path
    files: int


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
    artifacts_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wpgate-capture-", dir=artifacts_dir) as scratch:
        packed = Path(scratch) / "artifact.zip"
        with _streamed(transport, inventory, kind, slug, Path(scratch)) as (tree, read):
            pack(tree, packed, _top(kind, slug), read)
        sha256 = sha256_file(packed)
        name = f"{kind}-{slug}-{version}-{sha256[:12]}.zip"
        final = artifacts_dir / name
        if not final.exists():
            shutil.move(packed, final)
    files = sum(1 for entry in tree.values() if entry.member is not None)
    relative = final.relative_to(state_dir).as_posix()
    return Capture(Artifact(path=relative, sha256=sha256), final, files)


def captures_as(transport: Transport, inventory: Inventory, kind: str, slug: str, zip_path: Path) -> bool:
    """Whether capturing the component from the site now would give exactly the zip at `zip_path`, told
    without packing: the same entries, modes and bytes as `pack` would write (its sha256 is then the same;
    the caller checks the zip's own). About half the CPU of a capture, which deflates every file again."""
    with tempfile.TemporaryDirectory(prefix="wpgate-compare-", dir=zip_path.parent) as scratch:
        with _streamed(transport, inventory, kind, slug, Path(scratch)) as (tree, read):
            listed = _listing(tree, read)
    return listed == _zip_listing(zip_path, _top(kind, slug))


def _top(kind: str, slug: str) -> str:
    """The folder an artifact's files are under: the slug, or `wordpress` for core."""
    return "wordpress" if kind == "core" else slug


@contextmanager
def _streamed(transport: Transport, inventory: Inventory, kind: str, slug: str,
              scratch: Path) -> Iterator[tuple[dict[PurePosixPath, Entry], Callable[[tarfile.TarInfo], bytes]]]:
    """The component's files streamed from the site's host (a tar into `scratch`): its tree, by path below
    its top folder, and a reader of a file's bytes, one file at a time (a plugin may hold hundreds of MB)."""
    base, entries = component_location(inventory, kind, slug)
    if kind == "core":
        entries += core_root_files(transport, base)
    else:
        _require_folder(transport, base, slug, kind)
    _refuse_hard_links(transport, base, entries, f"{kind} {slug}")
    archive = scratch / "component.tar"
    with open(archive, "wb") as stream:
        transport.check(Command.of("tar", "-C", base, "-cf", "-", "--", *entries), stdout=stream)
    with tarfile.open(archive, "r:") as tar:
        tree = _entries(tar, f"{kind} {slug}")
        yield (tree if kind == "core" else _below(tree, slug),
               lambda member: tar.extractfile(member).read())  # type: ignore[union-attr]


def _listing(tree: dict[PurePosixPath, Entry], read: Callable[[tarfile.TarInfo], bytes]) -> list[tuple[str, int, str]]:
    """What `pack` writes of a tree: each entry's path (a folder's ends in /), its mode as packed, its bytes' sha256."""
    listed = []
    for name in sorted(tree):
        entry = tree[name]
        if entry.member is None:
            listed.append((f"{name.as_posix()}/", FOLDER_MODE & entry.mode, ""))
        else:
            listed.append((name.as_posix(), FILE_MODE & entry.mode, hashlib.sha256(read(entry.member)).hexdigest()))
    return listed


def _zip_listing(zip_path: Path, top: str) -> list[tuple[str, int, str]] | None:
    """The same of a zip `pack` wrote under `top` (None: not such a zip)."""
    listed = []
    with zipfile.ZipFile(zip_path) as archive:
        infos = archive.infolist()
        if not infos or infos[0].filename != f"{top}/":
            return None
        for info in infos[1:]:
            if not info.filename.startswith(f"{top}/"):
                return None
            name = info.filename[len(top) + 1:]
            mode = (info.external_attr >> 16) & 0o777
            listed.append((name, mode, "" if info.is_dir() else hashlib.sha256(archive.read(info)).hexdigest()))
    return listed


def _require_folder(transport: Transport, base: str, slug: str, kind: str) -> None:
    if not transport.run(Command.of("test", "-d", f"{base}/{slug}")).ok:
        raise SiteError(f"{transport.name}: {kind} {slug} is not a folder in {base}: "
                        "single-file plugins cannot be replicated, update them by hand")


def core_root_files(transport: Transport, abspath: str) -> list[str]:
    """The core's own files at the root of ABSPATH on the host (wp-login.php, index.php, …)."""
    listing = transport.check(Command.of("find", abspath, "-maxdepth", "1", "-type", "f", "-printf", "%f\\n"))
    return sorted(name for name in listing.text().splitlines() if is_core_root_file(name))


def _refuse_hard_links(transport: Transport, base: str, entries: list[str], what: str) -> None:
    """A file with a second name elsewhere (a hard link to a private file outside WordPress, say)
    would be packed as an ordinary file of the component: refused, as links are."""
    paths = [f"{base}/{entry}" for entry in entries]
    found = transport.check(Command.of("find", *paths, "-type", "f", "-links", "+1", "-print")).text().split("\n")
    linked = [path for path in found if path]
    if linked:
        more = f" and {len(linked) - 1} more" if len(linked) > 1 else ""
        raise SiteError(f"{what}: {linked[0]}{more} has more than one hard link (the same file under another "
                        "name, maybe outside WordPress); components with links cannot be replicated safely: "
                        "replace it by a copy")


@dataclass(frozen=True)
class Entry:
    """A file (its tar member) or a folder (none) of a component, with its permission bits."""

    mode: int
    member: tarfile.TarInfo | None = None


def _entries(tar: tarfile.TarFile, what: str) -> dict[PurePosixPath, Entry]:
    """A tar stream's entries, by path, extracted nowhere: regular files and folders only, no path outside
    the component. Folders the stream implies but does not list are added."""
    tree: dict[PurePosixPath, Entry] = {}
    for member in tar:
        name = PurePosixPath(member.name)
        if name.is_absolute() or ".." in name.parts or not name.parts:
            raise SiteError(f"{what}: refusing a path outside the component: {member.name}")
        if member.issym() or member.islnk():
            raise SiteError(f"{what}: {member.name} is a link; components with links cannot be "
                            "replicated safely")
        if not (member.isfile() or member.isdir()):
            raise SiteError(f"{what}: {member.name} is not a regular file or folder")
        tree[name] = Entry(member.mode & 0o777, member if member.isfile() else None)
    for name in list(tree):
        for parent in name.parents[:-1]:  # ends before "."
            tree.setdefault(parent, Entry(FOLDER_MODE))
    return tree


def _below(tree: dict[PurePosixPath, Entry], top: str) -> dict[PurePosixPath, Entry]:
    """The entries inside folder `top`, by their path below it."""
    return {name.relative_to(top): entry for name, entry in tree.items()
            if name.parts[0] == top and name != PurePosixPath(top)}


FILE_MODE, FOLDER_MODE = 0o644, 0o755


def pack(tree: dict[PurePosixPath, Entry], destination: Path, top: str,
         read: Callable[[tarfile.TarInfo], bytes]) -> None:
    """Zip `tree` under the folder name `top`, each file's bytes from `read`: sorted entries, fixed times, so
    the same files always give the same bytes. Modes are 0644 for files and 0755 for folders, narrowed to the
    source's own: a file private on staging is never packed readable by all."""
    # Level 1: WordPress's core packs in half the CPU time of the default level, for a zip about a
    # tenth larger; the zip only travels to the site's host and is consumed there.
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        folder = zipfile.ZipInfo(f"{top}/", date_time=ZIP_TIME)
        folder.external_attr = (0o40755 << 16) | 0x10
        archive.writestr(folder, b"")
        for name in sorted(tree):
            entry = tree[name]
            if entry.member is None:
                info = zipfile.ZipInfo(f"{top}/{name.as_posix()}/", date_time=ZIP_TIME)
                info.external_attr = ((stat.S_IFDIR | (FOLDER_MODE & entry.mode)) << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info = zipfile.ZipInfo(f"{top}/{name.as_posix()}", date_time=ZIP_TIME)
                info.external_attr = (stat.S_IFREG | (FILE_MODE & entry.mode)) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, read(entry.member), compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)


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


_CORE_REQUIRED = ("wp-includes/version.php", "readme.html", "wp-admin/includes/update-core.php")
_FILE_TYPES = (0, stat.S_IFREG, stat.S_IFDIR)  # 0: a zip made without Unix modes


def structure_problems(zip_path: Path, kind: str, slug: str, version: str) -> list[str]:
    """What would make the upgrader refuse this artifact, or install something else than planned,
    read before anything changes (gate 6.1): one top folder (`SLUG/`, or `wordpress/` for core), no
    entry outside it, no link or special file, the component at `version`; a core one without
    wp-config.php or wp-content/. The bridge checks the same again on the host."""
    what = f"artifact of {kind} {slug}"
    top = "wordpress" if kind == "core" else slug
    try:
        with zipfile.ZipFile(zip_path) as archive:
            entries = archive.infolist()
            problems = _entry_problems(entries, what, top)
            if not entries:
                return [f"{what}: {zip_path.name} is an empty zip archive"]
            if problems:
                return problems
            names = {info.filename for info in entries}
            if kind == "core":
                problems += check_core_artifact(zip_path)
                problems += [f"{what}: {zip_path.name} has no {top}/{required}: not a WordPress core package"
                             for required in _CORE_REQUIRED if f"{top}/{required}" not in names]
                if problems:
                    return problems
                found = _core_version(_read(archive, f"{top}/wp-includes/version.php", 65536))
            elif kind == "theme":
                style = _read(archive, f"{top}/style.css") if f"{top}/style.css" in names else ""
                if not header(style, "Theme Name"):
                    return [f"{what}: {zip_path.name} has no {top}/style.css with a Theme Name header"]
                found = header(style, "Version")
            else:
                found = None
                for name in sorted(n for n in names if re.fullmatch(re.escape(top) + r"/[^/]+\.php", n)):
                    text = _read(archive, name)
                    if header(text, "Plugin Name"):
                        found = header(text, "Version")
                        break
                if found is None:
                    return [f"{what}: {zip_path.name} has no PHP file with a Plugin Name header directly in {top}/"]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError) as error:
        return [f"{what}: {zip_path.name} is not a readable zip archive ({error})"]
    if found != version:
        return [f"{what}: {zip_path.name} holds version {found or '(none)'}, not {version}"]
    return []


def _entry_problems(entries: list[zipfile.ZipInfo], what: str, top: str) -> list[str]:
    problems = []
    for info in entries:
        name = info.filename
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or ".." in parts or not parts or parts[0] != top:
            problems.append(f"{what}: the entry {name!r} lies outside its {top}/ folder")
        elif stat.S_IFMT(info.external_attr >> 16) not in _FILE_TYPES:
            kind = "a symbolic link" if stat.S_ISLNK(info.external_attr >> 16) else "not a regular file or folder"
            problems.append(f"{what}: the entry {name!r} is {kind}")
        if len(problems) >= 5:
            break  # a hostile archive may hold thousands: the first ones say enough
    return problems


def _read(archive: zipfile.ZipFile, name: str, limit: int = 8192) -> str:
    with archive.open(name) as handle:
        return handle.read(limit).decode("utf-8", "replace")


def header(text: str, name: str) -> str:
    """A WordPress file header (`Version: 1.2`), read as the bridge (and WordPress) read it."""
    found = re.search(r"^(?:[ \t]*<\?php)?[ \t/*#@]*" + re.escape(name) + r":(.*)$", text or "",
                      re.MULTILINE | re.IGNORECASE)
    return re.sub(r"\s*(?:\*/|\?>).*", "", found.group(1)).strip() if found else ""


def _core_version(text: str) -> str | None:
    found = re.search(r"\$wp_version\s*=\s*'([^']+)'", text or "")
    return found.group(1) if found else None
