"""Debian's Chromium, driven headless through Playwright: renders a report page the way a reader's browser does.

Playwright's own browser builds are never downloaded: the system's `chromium` (or $WPGATE_CHROMIUM) is
launched with a throw-away profile and without any of its background network traffic.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from wpgate import browser

@contextmanager
def browser_context(width: int = 1280, height: int = 900) -> Iterator[object]:
    """A Playwright browser context on the system's Chromium (wpgate.browser), for rendering test pages."""
    with browser.context(width=width, height=height, needed_for="rendering a report") as context:
        yield context


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
