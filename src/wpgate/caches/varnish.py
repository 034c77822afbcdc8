"""Varnish: PURGE or BAN requests to where it listens, with the site's Host, in the convention its VCL expects."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field

from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.config_types import HttpUrl, Strict
from wpgate.words import plural


class VarnishCache(Strict):
    """Varnish in front of the site: `url` is where it listens; purges go there with the site's Host."""

    url: HttpUrl
    method: Literal["PURGE", "BAN"] = "PURGE"
    # proxy-cache-purge: `/.*` with `X-Purge-Method: regex` (the Proxy Cache Purge plugin's VCL);
    # varnish-caching: `/.*` with `X-VC-Purge-Method: regex` and `X-VC-Purge-Host`;
    # exact: each key page (`checks.pages`) by its own URL.
    convention: Literal["proxy-cache-purge", "varnish-caching", "exact"] = "proxy-cache-purge"
    headers: dict[str, str] = Field(default_factory=dict)  # sent with every purge request


class Varnish:
    name = "varnish"
    kind = "server"
    Options = VarnishCache

    def __init__(self, target: CacheSite, options: VarnishCache) -> None:
        self.target = target
        self.options = options

    def requests(self) -> list[tuple[str, dict[str, str]]]:
        """(URL, headers) of each request sent to Varnish."""
        site = urlsplit(self.target.site.url)
        host, base = site.netloc, site.path.rstrip("/")
        options = self.options
        headers = {"Host": host}
        if options.convention == "proxy-cache-purge":
            found = [(f"{options.url}{base}/.*", {**headers, "X-Purge-Method": "regex"})]
        elif options.convention == "varnish-caching":
            found = [(f"{options.url}{base}/.*", {**headers, "X-VC-Purge-Method": "regex",
                                                    "X-VC-Purge-Host": site.hostname or host})]
        else:
            found = [(f"{options.url}{base}{page}", dict(headers)) for page in self.target.pages]
        return [(url, {**found_headers, **options.headers}) for url, found_headers in found]

    def describe(self) -> str:
        first, extra = self.requests()[0], len(self.requests()) - 1
        shown = ", ".join(f"{k}: {v}" for k, v in first[1].items() if k != "Host")
        more = f" and {plural(extra, 'more page')}" if extra else ""
        return f"{self.options.method} {first[0]}{f' ({shown})' if shown else ''}{more}"

    def purge(self) -> Outcome:
        results = []
        sender = "the site's host" if self.target.site.ssh else "this machine"
        for url, headers in self.requests():
            response = cache_http.to_server_cache(self.target, self.options.method, url, what="varnish",
                                                  headers=headers)
            if not 200 <= response.status_code < 300:
                raise PurgeFailed(f"varnish: {self.options.method} {url} answered {response.status_code} "
                                  f"{cache_http.body_line(response)}: check that its VCL accepts "
                                  f"{self.options.method} from {sender} (convention {self.options.convention})",
                                  {"layer": self.name, "status": response.status_code})
            results.append(f"{response.status_code} {cache_http.body_line(response, limit=60)}".strip())
        return Outcome(self.name, self.describe(), "; ".join(results))
