"""Debian's Chromium, driven headless through Playwright: renders a report page the way a reader's browser does.

Playwright's own browser builds are never downloaded: the system's `chromium` (or $WPGATE_CHROMIUM) is
launched with a throw-away profile and without any of its background network traffic.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


class ChromiumMissing(RuntimeError):
    pass


def executable() -> str:
    found = os.environ.get("WPGATE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        raise ChromiumMissing("no chromium found: install Debian's chromium package or set WPGATE_CHROMIUM")
    return found


@contextmanager
def browser_context(width: int = 1280, height: int = 900) -> Iterator[object]:
    """A Playwright browser context on the system's Chromium, headless, in a temporary profile."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="wpgate-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=executable(), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height})
        try:
            yield context
        finally:
            context.close()


@dataclass
class Rendered:
    title: str
    images: int
    broken_images: list[str]
    scroll_width: int
    viewport_width: int
    text: str


def render_page(path: Path, screenshot: Path | None = None, *, width: int = 1280) -> Rendered:
    """Open a local HTML file, wait for it to load, measure it, and optionally save a full-page PNG."""
    with browser_context(width=width) as context:
        page = context.new_page()
        # A self-contained report needs no network: any request leaving the page is refused.
        page.route("http*://**", lambda route: route.abort())
        page.goto(path.resolve().as_uri(), wait_until="load")
        measured = page.evaluate("""() => ({
            title: document.title,
            images: document.images.length,
            broken: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
                         .map(i => i.alt || i.src.slice(0, 40)),
            scrollWidth: document.documentElement.scrollWidth,
            viewportWidth: window.innerWidth,
            text: document.body.innerText,
        })""")
        if screenshot is not None:
            page.screenshot(path=str(screenshot), full_page=True)
    return Rendered(measured["title"], measured["images"], measured["broken"], measured["scrollWidth"],
                    measured["viewportWidth"], measured["text"])
