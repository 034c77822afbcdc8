"""The system's Chromium (Debian's `chromium`, or `$WPGATE_CHROMIUM`), headless, driven by Playwright through
its executable path: Playwright's own browser downloads are never used. One place launches it, for the layout
check's screenshots and for rendering reports."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator

from wpgate.errors import BadInput

CHROMIUM_ENV = "WPGATE_CHROMIUM"
# Without the networking switches Chromium's own background connections are refused in closed
# networks and it stalls; the sandbox needs user namespaces that containers and root lack.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--hide-scrollbars", "--font-render-hinting=none"]


class ChromiumMissing(BadInput):
    """No Chromium on this machine."""


def executable(needed_for: str = "this") -> str:
    path = os.environ.get(CHROMIUM_ENV) or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
    if not path:
        raise ChromiumMissing(f"{needed_for} needs Chromium: install the system's chromium package or set "
                              f"{CHROMIUM_ENV} to its path")
    return path


# Within `kept_open()`: the browsers launched, by their options, left open for the next `context()` to use.
_kept: dict[str, Any] | None = None


@contextmanager
def kept_open() -> Iterator[None]:
    """Within it, `context()` calls with the same options share one browser, closed at the end: Chromium takes
    seconds to start, and `wpgate qa` screenshots two sites in turn."""
    global _kept
    if _kept is not None:
        yield
        return
    _kept = {}
    try:
        with ExitStack() as stack:
            _kept["stack"] = stack
            yield
    finally:
        _kept = None


@contextmanager
def context(*, width: int = 1280, height: int = 800, needed_for: str = "this", **options: Any) -> Iterator[Any]:
    """A Playwright browser context on the system's Chromium, headless, in a throw-away profile."""
    if _kept is not None:
        key = repr((width, height, sorted(options.items())))
        if key not in _kept:
            _kept[key] = _kept["stack"].enter_context(_launch(width, height, needed_for, options))
        yield _kept[key]
        return
    with _launch(width, height, needed_for, options) as browser:
        yield browser


@contextmanager
def _launch(width: int, height: int, needed_for: str, options: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = executable(needed_for)
    with tempfile.TemporaryDirectory(prefix="wpgate-chromium-") as profile, sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile, executable_path=path, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height}, **options)
        try:
            yield browser
        finally:
            browser.close()
