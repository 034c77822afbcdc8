"""The layout check: screenshots of each key page before the first change and after, compared pixel by pixel.

Headless Chromium is the system's own (Debian's `chromium`, or `$WPGATE_CHROMIUM`), driven by Playwright
through its executable path: Playwright's browser downloads are never used. Only configured when
`checks.visual_threshold` is set. `checks.visual_mask` selectors are hidden (visibility: hidden, so the
layout around them stays) before each capture. Before, after and diff images are kept in the run's folder.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wpgate import browser
from wpgate.checks import Check, Problem, Result
from wpgate.config import SiteConfig
from wpgate.errors import BadInput
from wpgate.words import plural

if TYPE_CHECKING:
    from wpgate.checks import Watch

NEEDED_FOR = "the layout check (checks.visual_threshold)"
VIEWPORT = {"width": 1280, "height": 800}
# A pixel counts as changed when one of its channels moved by more than this (of 255): anti-aliasing does not.
CHANNEL_TOLERANCE = 24
_HIDE = """selectors => { for (const selector of selectors) {
  for (const element of document.querySelectorAll(selector)) element.style.setProperty('visibility', 'hidden', 'important');
} }"""


def page_name(path: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.strip("/")).strip("-.")
    return name or "home"


def page_names(paths: list[str]) -> dict[str, str]:
    """Each key page's screenshot name, unique (`/shop` and `/shop/` would share one)."""
    names: dict[str, str] = {}
    for path in paths:
        name, number = page_name(path), 1
        while (name if number == 1 else f"{name}-{number}") in names.values():
            number += 1
        names[path] = name if number == 1 else f"{name}-{number}"
    return names


def capture(urls: dict[str, str], masks: list[str], folder: Path) -> dict[str, Path]:
    """Screenshot each {name: url} into folder/NAME.png, whole page, masks hidden; one fresh browser profile."""
    from playwright.sync_api import Error as PlaywrightError

    folder.mkdir(parents=True, exist_ok=True)
    shots: dict[str, Path] = {}
    try:
        with browser.context(width=VIEWPORT["width"], height=VIEWPORT["height"], needed_for=NEEDED_FOR,
                             device_scale_factor=1, reduced_motion="reduce", service_workers="block") as context:
            page = context.new_page()
            for name, url in urls.items():
                page.goto(url, wait_until="load", timeout=30_000)
                if masks:
                    page.evaluate(_HIDE, masks)
                shots[name] = folder / f"{name}.png"
                page.screenshot(path=str(shots[name]), full_page=True, animations="disabled", caret="hide")
    except PlaywrightError as error:
        raise BrowserFailed(f"Chromium failed: {str(error).splitlines()[0]}") from None
    return shots


class BrowserFailed(Exception):
    """The browser could not take the screenshots: nothing is known about the layout."""


def compare(before: Path, after: Path, diff: Path) -> float:
    """The share of pixels that changed (an area only one image has counts as changed); writes a diff image:
    the after image faded, changed pixels in red."""
    from PIL import Image, ImageChops, ImageDraw

    with Image.open(before) as first, Image.open(after) as second:
        old, new = first.convert("RGB"), second.convert("RGB")
    width, height = max(old.width, new.width), max(old.height, new.height)
    canvases = []
    for image in (old, new):
        canvas = Image.new("RGB", (width, height), (255, 255, 255))
        canvas.paste(image, (0, 0))
        canvases.append(canvas)
    red, green, blue = ImageChops.difference(*canvases).split()
    channel_max = ImageChops.lighter(ImageChops.lighter(red, green), blue)
    changed = channel_max.point(lambda value: 255 if value > CHANNEL_TOLERANCE else 0)
    common_width, common_height = min(old.width, new.width), min(old.height, new.height)
    draw = ImageDraw.Draw(changed)
    if common_width < width:
        draw.rectangle((common_width, 0, width - 1, height - 1), fill=255)
    if common_height < height:
        draw.rectangle((0, common_height, width - 1, height - 1), fill=255)
    count = changed.histogram()[255]
    faded = Image.blend(canvases[1], Image.new("RGB", (width, height), (255, 255, 255)), 0.7)
    faded.paste(Image.new("RGB", (width, height), (230, 0, 0)), (0, 0), changed)
    diff.parent.mkdir(parents=True, exist_ok=True)
    faded.save(diff)
    return count / float(width * height)


class LayoutCheck(Check):
    name = "layout"
    unconfigured = "set checks.visual_threshold to compare screenshots"

    @classmethod
    def configured(cls, site: SiteConfig) -> bool:
        return site.checks.visual_threshold is not None

    def describe(self, site: SiteConfig) -> str:
        masks = f", {', '.join(site.checks.visual_mask)} hidden" if site.checks.visual_mask else ""
        return (f"layout: screenshots of {', '.join(site.checks.pages)} before and after, at most "
                f"{site.checks.visual_threshold:.2%} of pixels changed{masks}")

    def precondition(self, watch: "Watch") -> dict[str, Any] | None:
        """The screenshots need the system's Chromium: ChromiumMissing (exit 2) when there is none."""
        return {"check": "browser", "status": "passed",
                "detail": f"Chromium for the layout check: {browser.executable(NEEDED_FOR)}"}

    def _folder(self, watch: "Watch", label: str) -> Path:
        if watch.folder is None:
            return Path(tempfile.mkdtemp(prefix="wpgate-screenshots-"))
        return watch.folder / "screenshots" / re.sub(r"[^A-Za-z0-9._-]+", "-", label)

    def baseline(self, watch: "Watch") -> dict[str, Any]:
        urls = {name: watch.url(path) for path, name in page_names(watch.config.pages).items()}
        try:
            shots = capture(urls, watch.config.visual_mask, self._folder(watch, "before"))
        except BrowserFailed as error:
            raise BadInput(f"layout check: {error}") from None
        return {"before": {name: str(path) for name, path in shots.items()}}

    def run(self, watch: "Watch", label: str, quick: bool = False) -> Result:
        before = watch.state.get(self.name, {}).get("before")
        if not before:
            return Result(self.name, "skipped", "no screenshots from before a change to compare with "
                                                "(the layout is compared within a deploy)")
        threshold = watch.config.visual_threshold or 0.0
        folder = self._folder(watch, label)
        names = page_names(watch.config.pages)
        urls = {name: watch.url(path) for path, name in names.items()}
        try:
            shots = capture(urls, watch.config.visual_mask, folder)
        except BrowserFailed as error:
            problem = Problem(self.name, f"no screenshots: {error}", None, "browser", "", {"error": str(error)})
            return Result(self.name, "failed", str(error), [problem])
        problems, pages = [], {}
        for path, name in names.items():
            diff = folder / f"{name}-diff.png"
            share = compare(Path(before[name]), shots[name], diff)
            pages[path] = {"changed": round(share, 6), "before": before[name], "after": str(shots[name]),
                           "diff": str(diff)}
            if share > threshold:
                problems.append(Problem(self.name, f"{share:.2%} of the page's pixels changed, more than the "
                                        f"threshold {threshold:.2%} (diff image {diff})", path, "changed", "",
                                        pages[path]))
        return Result(self.name, "failed" if problems else "passed",
                      f"{plural(len(pages), 'page')} within {threshold:.2%}" if not problems else "", problems,
                      {"threshold": threshold, "pages": pages})
