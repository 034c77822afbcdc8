"""What a page's HTML says about the PHP behind it: fatal-error pages, PHP's own error text, maintenance, assets."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

CRITICAL_ERROR = "There has been a critical error on this website"
MAINTENANCE = "Briefly unavailable for scheduled maintenance"
# wp_die()'s default page (a fatal error handled by WordPress, a database error, a refused request).
WP_DIE = re.compile(r"""<body[^>]*\bid=["']error-page["']""", re.I)
DATABASE_ERROR = "Error establishing a database connection"
# PHP's display_errors text, with or without html_errors: "<b>Warning</b>:  msg in <b>/x.php</b> on line <b>3</b>".
PHP_ERROR = re.compile(
    r"(?:<b>)?(?P<level>Fatal error|Parse error|Catchable fatal error|Recoverable fatal error|Warning|Notice|"
    r"Deprecated|Strict Standards)(?:</b>)?:\s+(?P<message>.{1,600}?)\s+in\s+(?:<b>)?(?P<file>[^<\s]+?\.(?:php|inc))"
    r"(?:</b>)?\s+on\s+line\s+(?:<b>)?(?P<line>\d+)", re.S)
FATAL_LEVELS = {"Fatal error", "Parse error", "Catchable fatal error", "Recoverable fatal error"}


def plain(text: str, limit: int = 300) -> str:
    """HTML as one short line of text."""
    text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[:limit] + "…"


def php_errors(body: str) -> list[dict[str, str]]:
    """PHP error messages printed into the page, each as {level, message, file, line}."""
    return [{"level": m["level"], "message": plain(m["message"], 240), "file": m["file"], "line": m["line"]}
            for m in PHP_ERROR.finditer(body)]


def fatal_marker(body: str) -> str | None:
    """Which of WordPress's error pages this is, if any."""
    if CRITICAL_ERROR in body:
        return f"WordPress's critical-error page ('{CRITICAL_ERROR}')"
    if DATABASE_ERROR in body:
        return f"WordPress's '{DATABASE_ERROR}' page"
    if WP_DIE.search(body):
        return "a wp_die() error page"
    return None


def is_maintenance(status: int, body: str) -> bool:
    return status == 503 and MAINTENANCE in body


def is_complete(body: str) -> bool:
    return "</html>" in body[-4096:].lower() or "</html>" in body.lower()


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name.lower(): value or "" for name, value in attrs}
        if tag == "link" and "stylesheet" in values.get("rel", "").lower().split() and values.get("href"):
            self.found.append(("stylesheet", values["href"]))
        elif tag == "script" and values.get("src"):
            self.found.append(("script", values["src"]))
        elif tag == "img" and values.get("src") and not values["src"].startswith("data:"):
            self.found.append(("image", values["src"]))


def same_site_assets(body: str, page_url: str, site_url: str) -> list[tuple[str, str]]:
    """(kind, absolute URL) of each stylesheet, script and image the page loads from the site itself."""
    parser = _Assets()
    try:
        parser.feed(body)
        parser.close()
    except Exception:  # noqa: BLE001 - a page too broken to parse has its other problems reported
        pass
    site = urlsplit(site_url)
    assets: dict[str, str] = {}
    for kind, reference in parser.found:
        url = urljoin(page_url, reference.strip())
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and parts.netloc == site.netloc:
            assets.setdefault(url.split("#", 1)[0], kind)
    return [(kind, url) for url, kind in assets.items()]


def error_notices(body: str) -> list[str]:
    """The text of wp-admin's error notices (`notice-error`, the old `error` class)."""
    notices = []
    for match in re.finditer(r"""<div\b[^>]*\bclass=["'](?P<class>[^"']*)["'][^>]*>(?P<inner>.*?)</div>""", body, re.S):
        classes = match["class"].split()
        if ("notice-error" in classes or {"error", "notice"} <= set(classes)) and "hidden" not in classes:
            text = plain(match["inner"], 240)
            if text:
                notices.append(text)
    return notices
