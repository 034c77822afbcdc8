"""The fixture plugins and themes the test bed installs: real WordPress packages, written for
wpgate, each in several versions, some of them carrying one deliberate fault.

Each fixture is one template folder under ``fixtures/plugins/SLUG`` or ``fixtures/themes/SLUG``.
A version is that folder with ``{{VERSION}}`` (and any other ``{{TOKEN}}``) filled in, each
``/* {{PLACEHOLDER}} */`` line replaced by a part from the folder's ``_parts/`` (or removed),
and the files the version does not ship left out. Templates and parts are valid PHP as they
stand, so what differs between versions is visible in a few lines of this module.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

_SOURCES = Path(__file__).with_name("fixtures")
_PARTS_FOLDER = "_parts"
_PLACEHOLDER = re.compile(r"/\* \{\{([A-Z_]+)\}\} \*/")
_TOKEN = re.compile(r"\{\{([A-Z_]+)\}\}")


@dataclass(frozen=True)
class _Release:
    """How one version differs from its fixture's template."""

    parts: Mapping[str, str] = field(default_factory=dict)  # placeholder -> part file name (no .php)
    tokens: Mapping[str, str] = field(default_factory=dict)  # {{TOKEN}} -> text, besides VERSION
    without: frozenset[str] = frozenset()  # template files (relative paths) this version leaves out


_HEALTHY = _Release()

FAULTS: dict[str, tuple[str, str]] = {
    "fatal_on_load": ("wpgate-faulty", "2.0.1"),
    "fatal_while_rendering": ("wpgate-faulty", "2.0.2"),
    "fatal_in_admin": ("wpgate-faulty", "2.0.3"),
    "layout_broken": ("wpgate-faulty", "2.0.4"),
    "content_gone": ("wpgate-faulty", "2.0.5"),
    "fatal_in_log_only": ("wpgate-faulty", "2.0.6"),
    "error_page_200": ("wpgate-faulty", "2.0.7"),
}
# Faults that sabotage wpgate itself rather than the site: not among the monitor's FAULTS.
SABOTAGE: dict[str, tuple[str, str]] = {
    "spoils_its_aside_copy": ("wpgate-faulty", "2.1.0"),
}
# Faults that only `wpgate qa` fails (gate 6.6 looks at fatal errors only): not among the monitor's FAULTS.
QA_FAULTS: dict[str, tuple[str, str]] = {
    "warning_in_log": ("wpgate-faulty", "2.0.8"),
}

# Versions oldest first: the order a test bed applies them in.
_PLUGIN_RELEASES: dict[str, dict[str, _Release]] = {
    "wpgate-hello": {
        "1.0.0": _Release(parts={"INCLUDES": "require-legacy"}, without=frozenset({"includes/extra.php"})),
        "1.1.0": _Release(without=frozenset({"includes/legacy.php", "includes/extra.php"})),
        "1.2.0": _Release(parts={"INCLUDES": "require-extra"}, without=frozenset({"includes/legacy.php"})),
    },
    "wpgate-notes": dict.fromkeys(("1.0.0", "1.1.0", "2.0.0"), _HEALTHY),
    "wpgate-seo": dict.fromkeys(("3.0.0", "3.1.0"), _HEALTHY),
    "wpgate-shop": {
        "1.0.0": _HEALTHY,
        "2.0.0": _Release(parts={"MIGRATION": "migration"}, tokens={"DB_VERSION": "2"}),
        # The same schema as 2.0.0: an update that changes no table, only the code (and its own option).
        "2.0.1": _Release(parts={"MIGRATION": "migration"}, tokens={"DB_VERSION": "2"}),
        # Migrates the database, then fails on the front end: a change that must be rolled back with the database.
        "2.1.0": _Release(parts={"MIGRATION": "migration", "FAULT": "footer-fatal"}, tokens={"DB_VERSION": "3"}),
        # 2.1.0's migration (column `note`), healthy: a release that changes a table's schema and stays up.
        "2.2.0": _Release(parts={"MIGRATION": "migration"}, tokens={"DB_VERSION": "3"}),
    },
    "wpgate-faulty": {
        "1.0.0": _HEALTHY,
        "1.1.0": _HEALTHY,
        **{version: _Release(parts={"FAULT": fault}) for fault, (_, version) in {**FAULTS, **QA_FAULTS, **SABOTAGE}.items()},
    },
    "wpgate-noisy": dict.fromkeys(("1.0.0", "1.1.0"), _HEALTHY),
    "wpgate-clock": dict.fromkeys(("1.0.0", "1.1.0"), _HEALTHY),
    # A page cache as real ones work: pages written to disk and served from there, a public purge.
    "wpgate-pagecache": dict.fromkeys(("1.0.0",), _HEALTHY),
    # A page cache with an advanced-cache.php drop-in that answers GETs from disk and exits, as WP Super Cache's does.
    "wpgate-diskcache": dict.fromkeys(("1.0.0",), _HEALTHY),
}

_THEME_RELEASES: dict[str, dict[str, _Release]] = {
    "wpgate-parent": dict.fromkeys(("1.0.0", "1.1.0", "1.2.0"), _HEALTHY),
    "wpgate-child": dict.fromkeys(("1.0.0", "1.1.0"), _HEALTHY),  # Template: wpgate-parent
}

PLUGINS: dict[str, tuple[str, ...]] = {slug: tuple(releases) for slug, releases in _PLUGIN_RELEASES.items()}
THEMES: dict[str, tuple[str, ...]] = {slug: tuple(releases) for slug, releases in _THEME_RELEASES.items()}


def write_plugin(plugins_dir: Path, slug: str, version: str) -> Path:
    """Write plugin SLUG at VERSION as ``plugins_dir/SLUG/``, replacing what was there; return that folder."""
    return _write("plugin", _PLUGIN_RELEASES, Path(plugins_dir), slug, version)


def write_theme(themes_dir: Path, slug: str, version: str) -> Path:
    """Write theme SLUG at VERSION as ``themes_dir/SLUG/``, replacing what was there; return that folder."""
    return _write("theme", _THEME_RELEASES, Path(themes_dir), slug, version)


def plugin_marker(slug: str, version: str) -> str:
    """The HTML comment that plugin SLUG at VERSION prints in the footer of front-end pages."""
    _release("plugin", _PLUGIN_RELEASES, slug, version)
    return f"<!-- {slug} {version} -->"


def theme_marker(slug: str, version: str) -> str:
    """The HTML comment that theme SLUG at VERSION prints in the footer of front-end pages."""
    _release("theme", _THEME_RELEASES, slug, version)
    return f"<!-- {slug} {version} -->"


def _release(kind: str, catalogue: dict[str, dict[str, _Release]], slug: str, version: str) -> _Release:
    if slug not in catalogue:
        raise ValueError(f"no fixture {kind} {slug!r}; available {kind}s: {', '.join(catalogue)}")
    releases = catalogue[slug]
    if version not in releases:
        raise ValueError(f"fixture {kind} {slug} has no version {version!r}; available: {', '.join(releases)}")
    return releases[version]


def _write(kind: str, catalogue: dict[str, dict[str, _Release]], parent: Path, slug: str, version: str) -> Path:
    release = _release(kind, catalogue, slug, version)
    source = _SOURCES / f"{kind}s" / slug
    target = parent / slug
    replaced_seconds: dict[str, int] = {}
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        replaced_seconds = {path.relative_to(target).as_posix(): int(path.stat().st_mtime)
                            for path in target.rglob("*") if path.is_file()}
        shutil.rmtree(target)
    tokens = {"VERSION": version, **release.tokens}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source).as_posix()
        if path.is_dir() or relative.startswith(_PARTS_FOLDER + "/") or relative in release.without:
            continue
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_text(_render(path.read_text(encoding="utf-8"), source, release, tokens), encoding="utf-8")
        # OPcache compares modification times in whole seconds: a file rewritten within the
        # second of the one it replaces would look unchanged to a web server that caches code.
        previous = replaced_seconds.get(relative)
        if previous is not None and int(destination.stat().st_mtime) <= previous:
            os.utime(destination, (previous + 1, previous + 1))
    return target


def _render(text: str, source: Path, release: _Release, tokens: Mapping[str, str]) -> str:
    def part(match: re.Match[str]) -> str:
        name = release.parts.get(match[1])
        if name is None:
            return ""
        code = (source / _PARTS_FOLDER / f"{name}.php").read_text(encoding="utf-8")
        return code.removeprefix("<?php").strip("\n")

    return _TOKEN.sub(lambda match: tokens[match[1]], _PLACEHOLDER.sub(part, text))
