"""The site's files in a backup: what the archive leaves out, its index, and a restored tree compared with it.

The archive is GNU tar's, compressed with gzip, made on the host and streamed to disk there. Its
index (`files.index`) is tar's own verbose listing written as it archived (`-vv --index-file`,
numeric owners, names escaped), so it says exactly what went into the archive.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from wpgate.aside import LEGACY_NAME

ASIDE_NAME = LEGACY_NAME  # where apply keeps its copies when they must be inside the root (aside.py)
_ENTRY = re.compile(r"^(\S)\S* (\S+) +(\S+) (\S+) (\S+) (.*)$")
_ESCAPES = {"\\": 0x5C, "n": 0x0A, "t": 0x09, "a": 0x07, "b": 0x08, "f": 0x0C, "r": 0x0D, "v": 0x0B,
            "?": 0x3F, " ": 0x20, '"': 0x22, "'": 0x27}
_TAR_TYPES = {"-": "f", "h": "f", "d": "d", "l": "l", "p": "p", "s": "s", "c": "c", "b": "b"}


@dataclass(frozen=True)
class Entry:
    """One member of the archive: its kind as find(1) names it (f, d, l, …) and, for files, its size."""

    kind: str
    size: int | None


def exclusions(root: str, *others: str | None) -> list[str]:
    """tar options that leave out every folder named `wpgate-aside` (apply's copies, wherever the content
    folder is) and any of `others` (the backup folder, a local off-site copy) lying inside the WordPress
    root. Names are literal; `others` are anchored at the root."""
    options = ["--no-wildcards", "--no-anchored", f"--exclude={ASIDE_NAME}", "--anchored"]
    for path in others:
        relative = inside(root, path) if path else None
        if relative:
            options.append(f"--exclude=./{relative}")
    return options


def prune(root: str, *others: str | None) -> list[str]:
    """The find(1) expression that leaves out what `exclusions` leaves out of the archive."""
    expression = ["(", "-name", ASIDE_NAME]
    for path in others:
        relative = inside(root, path) if path else None
        if relative:
            expression += ["-o", "-path", "./" + re.sub(r"([*?\[\]\\])", r"\\\1", relative)]
    return expression + [")", "-prune", "-o"]


def inside(root: str, path: str) -> str | None:
    """`path` relative to `root` when it lies inside it (not the root itself), else None."""
    root = posixpath.normpath(root)
    path = posixpath.normpath(path)
    if root == "/":
        return path.lstrip("/") or None
    if path.startswith(root + "/"):
        return path[len(root) + 1:]
    return None


def contains(path: str, root: str) -> bool:
    """Whether `root` lies inside `path` or is `path`: the root would hold its own backups' parent."""
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return root == path or root.startswith(path.rstrip("/") + "/")


def unescape(name: str) -> bytes:
    """A name as tar's `escape` quoting style wrote it, back to its bytes."""
    out = bytearray()
    index = 0
    while index < len(name):
        char = name[index]
        if char != "\\" or index + 1 == len(name):
            out += char.encode("utf-8", "surrogateescape")
            index += 1
            continue
        following = name[index + 1]
        octal = re.match(r"[0-7]{1,3}", name[index + 1:index + 4])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            index += 1 + len(octal.group(0))
        else:
            out.append(_ESCAPES.get(following, ord(following) if ord(following) < 128 else 0x3F))
            index += 2
    return bytes(out)


def _member(name: str) -> bytes:
    path = unescape(name)
    if path.startswith(b"./"):
        path = path[2:]
    return path.rstrip(b"/")


def parse_index(text: str) -> dict[bytes, Entry]:
    """tar's `-vv --numeric-owner` listing: member path (relative, no `./`) -> Entry. The root is left out."""
    entries: dict[bytes, Entry] = {}
    for line in text.splitlines():
        match = _ENTRY.match(line)
        if not match:
            continue
        kind_char, _owner, size, _date, _time, name = match.groups()
        kind = _TAR_TYPES.get(kind_char, kind_char)
        if kind_char == "l":
            name = name.split(" -> ", 1)[0]
        elif kind_char == "h":
            name = name.split(" link to ", 1)[0]
        path = _member(name)
        if not path or path == b".":
            continue
        entries[path] = Entry(kind, int(size) if kind_char == "-" and size.isdigit() else None)
    return entries


def count_index_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if _ENTRY.match(line))


def parse_tree(output: bytes) -> dict[bytes, Entry]:
    """`find . -mindepth 1 -printf '%y %s %P\\0'` of a restored tree: path -> Entry."""
    entries: dict[bytes, Entry] = {}
    for record in output.split(b"\0"):
        if not record:
            continue
        kind, size, path = record.split(b" ", 2)
        text_kind = kind.decode()
        entries[path] = Entry(text_kind, int(size) if text_kind == "f" else None)
    return entries


def compare(index: dict[bytes, Entry], tree: dict[bytes, Entry], limit: int = 20) -> list[str]:
    """What the restored tree lacks, has too many of, or holds differently from the archive's index."""
    problems: list[str] = []
    missing = sorted(set(index) - set(tree))
    extra = sorted(set(tree) - set(index))
    different = []
    for path in sorted(set(index) & set(tree)):
        want, got = index[path], tree[path]
        if want.kind != got.kind:
            different.append(f"{_show(path)} is a {got.kind}, the archive says {want.kind}")
        elif want.size is not None and want.size != got.size:
            different.append(f"{_show(path)} has {got.size} bytes, the archive says {want.size}")
    for label, items in (("missing after restore", [_show(p) for p in missing]),
                         ("not in the archive's index", [_show(p) for p in extra]),
                         ("restored differently", different)):
        if items:
            shown = ", ".join(items[:limit]) + (f" … and {len(items) - limit} more" if len(items) > limit else "")
            problems.append(f"files {label} ({len(items)}): {shown}")
    return problems


def _show(path: bytes) -> str:
    """A path for a one-line message: undecodable bytes and control characters escaped."""
    text = path.decode("utf-8", "backslashreplace")
    return re.sub(r"[\x00-\x1f\x7f]", lambda match: repr(match.group(0))[1:-1], text)


def totals(index: dict[bytes, Entry]) -> dict[str, int]:
    files = [entry for entry in index.values() if entry.kind == "f"]
    return {"entries": len(index), "files": len(files), "bytes": sum(entry.size or 0 for entry in files)}
