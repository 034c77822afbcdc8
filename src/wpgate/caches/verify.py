"""After the purge: fetch every key page through the public URL, as a visitor would (no cache-busting),
and check that it shows the release and that every asset it references on the site answers 200.

A component shows its version in the `?ver=` of the assets it enqueues (WordPress's default), and
core in its generator meta tag. A page is stale when it still carries a component's old version and
not its new one; where the answer's headers tell which cache served it, the failure names that layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from wpgate import web
from wpgate.caches import CacheSite, PurgeFailed

MAX_ASSETS = 150  # per run: a page that references more is checked on its first ones


@dataclass(frozen=True)
class Expectation:
    """What a page must show after the purge: `kind` `slug` at `new`, no longer at `old`."""

    kind: str
    slug: str
    old: str
    new: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.slug} {self.new}"


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.assets: list[str] = []
        self.generators: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "link" and "stylesheet" in attributes.get("rel", "").lower().split() and attributes.get("href"):
            self.assets.append(attributes["href"])
        elif tag in ("script", "img") and attributes.get("src"):
            self.assets.append(attributes["src"])
        elif tag == "meta" and attributes.get("name", "").lower() == "generator":
            self.generators.append(attributes.get("content", ""))


def verify(target: CacheSite, expectations: list[Expectation]) -> dict[str, Any]:
    """Evidence of what each key page shows; PurgeFailed naming the page (and the layer) when one is stale or broken."""
    problems: list[str] = []
    pages: dict[str, Any] = {}
    checked_assets: dict[str, int | str] = {}
    site = urlsplit(target.site.url)
    with web.client(timeout=30, follow_redirects=True, headers={"User-Agent": "wpgate"}) as http:
        for page in target.pages:
            url = target.page_url(page)
            try:
                response = http.get(url)
            except httpx.HTTPError as error:
                problems.append(f"{url} did not answer: {error}")
                continue
            record: dict[str, Any] = {"status": response.status_code}
            pages[page] = record
            if response.status_code != 200:
                problems.append(f"{url} answered {response.status_code}")
                continue
            parsed = _Page()
            parsed.feed(response.text)
            assets = [urljoin(str(response.url), asset) for asset in parsed.assets
                      if not asset.startswith(("data:", "blob:", "#"))]
            shows, stale, unseen = [], [], []
            for expectation in expectations:
                state = _state(expectation, assets, parsed.generators)
                {"new": shows, "old": stale, None: unseen}[state].append(expectation)
            record["shows"] = [e.label for e in shows]
            if unseen:
                record["not_shown"] = [f"{e.kind} {e.slug}" for e in unseen]
            if stale:
                layer = serving_layer(response)
                record.update(stale=[f"{e.kind} {e.slug} {e.old}" for e in stale], served_by=layer)
                problems.append(f"{url} still shows the old release ("
                                + ", ".join(f"{e.kind} {e.slug} {e.old}, not {e.new}" for e in stale)
                                + f"): served by {layer}")
            broken = []
            for asset in assets:
                parts = urlsplit(asset)
                if parts.scheme not in ("http", "https") or parts.netloc != site.netloc:
                    continue
                if asset not in checked_assets:
                    if len(checked_assets) >= MAX_ASSETS:
                        break
                    checked_assets[asset] = _status(http, asset)
                if checked_assets[asset] != 200:
                    broken.append(f"{asset} ({checked_assets[asset]})")
            record["assets"] = len({a for a in assets if urlsplit(a).netloc == site.netloc})
            if broken:
                record["broken_assets"] = broken
                problems.append(f"{url} references assets that do not load: {', '.join(broken[:5])}")
    evidence = {"pages": pages, "assets_checked": len(checked_assets)}
    if problems:
        raise PurgeFailed("; ".join(problems), {"verify": evidence, "problems": problems})
    return evidence


def _state(expectation: Expectation, assets: list[str], generators: list[str]) -> str | None:
    """"new" when the page shows the new version, "old" when only the old one, None when neither."""
    if expectation.kind == "core":
        versions = {g.split()[-1] for g in generators if g.startswith("WordPress ")}
    else:
        folder = f"/{expectation.kind}s/{expectation.slug}/"
        versions = set()
        for asset in assets:
            parts = urlsplit(asset)
            if folder in parts.path:
                versions.update(parse_qs(parts.query).get("ver", []))
    if expectation.new in versions:
        return "new"
    if expectation.old in versions:
        return "old"
    return None


def _status(http: httpx.Client, url: str) -> int | str:
    try:
        with http.stream("GET", url) as response:
            return response.status_code
    except httpx.HTTPError as error:
        return f"no answer: {type(error).__name__}"


# Page-cache plugins that sign the pages they serve.
_SIGNATURES = (
    (re.compile(r"WP-Super-Cache|WP Super Cache", re.I), "WP Super Cache (page-cache plugin)"),
    (re.compile(r"W3 Total Cache", re.I), "W3 Total Cache (page-cache plugin)"),
    (re.compile(r"This website is like a Rocket|WP Rocket", re.I), "WP Rocket (page-cache plugin)"),
    (re.compile(r"WP Fastest Cache", re.I), "WP Fastest Cache (page-cache plugin)"),
)


def serving_layer(response: httpx.Response) -> str:
    """Which layer most likely served this answer, from what it says about itself."""
    headers = response.headers
    cloudflare = headers.get("cf-cache-status", "")
    if cloudflare.upper() in ("HIT", "STALE", "UPDATING", "REVALIDATED"):
        return f"Cloudflare (cf-cache-status: {cloudflare})"
    if headers.get("cdn-cache", "").upper() == "HIT":
        return "Bunny CDN (CDN-Cache: HIT)"
    x_cache, age = headers.get("x-cache", ""), headers.get("age", "0")
    if "cache-" in headers.get("x-served-by", "") and "HIT" in x_cache.upper():
        return f"Fastly (X-Cache: {x_cache})"
    varnish = "varnish" in headers.get("via", "").lower() or "x-varnish" in headers
    if "HIT" in x_cache.upper() or (age.isdigit() and int(age) > 0) or len(headers.get("x-varnish", "").split()) > 1:
        return f"{'Varnish' if varnish else 'a proxy cache'} (X-Cache: {x_cache or '-'}, Age: {age})"
    for name in ("x-fastcgi-cache", "x-cache-status", "x-nginx-cache"):
        if headers.get(name, "").upper() == "HIT":
            return f"nginx's cache ({name}: HIT)"
    if headers.get("x-litespeed-cache", "").lower() == "hit":
        return "LiteSpeed Cache (X-LiteSpeed-Cache: hit)"
    if headers.get("x-wpgate-page-cache", "").upper() == "HIT":
        return "wpgate Page Cache (page-cache plugin)"
    for pattern, layer in _SIGNATURES:
        if pattern.search(response.text[-3000:]):
            return layer
    return "the web server's PHP itself (its OPcache may still hold the old code)"
