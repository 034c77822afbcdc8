"""Cloudflare: API v4 purge of a zone, everything or the listed URLs (30 a request, as the API allows)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from wpgate.caches import CacheSite, Outcome, cdn
from wpgate.command import Secret
from wpgate.config_types import ApiId, EnvName, HttpUrl, Strict, is_http_url
from wpgate.words import plural

FILES_PER_REQUEST = 30


# `api:` on a CDN entry is the provider's API base: changed only to reach a proxy or a test server.
class CloudflareCache(Strict):
    zone: ApiId
    token_env: EnvName
    urls: list[str] = Field(default_factory=list)  # empty: purge everything; a path is on the site's URL
    api: HttpUrl = "https://api.cloudflare.com/client/v4"

    @field_validator("urls")
    @classmethod
    def _urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not ((url.startswith("/") and not re.search(r"[\s\x00-\x1f\x7f]", url)) or is_http_url(url)):
                raise ValueError(f"{url!r}: give a path on the site (/shop/) or a whole http(s) URL")
        return urls


class Cloudflare:
    name = "cloudflare"
    kind = "cdn"
    Options = CloudflareCache

    def __init__(self, target: CacheSite, options: CloudflareCache) -> None:
        self.target = target
        self.options = options

    @property
    def endpoint(self) -> str:
        return f"{self.options.api}/zones/{self.options.zone}/purge_cache"

    def files(self) -> list[str]:
        return [self.target.site.url + url if url.startswith("/") else url for url in self.options.urls]

    def describe(self) -> str:
        what = plural(len(self.files()), "URL") if self.options.urls else "everything"
        return f"POST {self.endpoint} ({what})"

    def check_access(self) -> dict[str, Any]:
        """The token, read-only: Cloudflare's token verification (`GET /user/tokens/verify`) says whether it
        is valid and active. Whether it may purge this zone only the purge itself shows."""
        token = self.target.secret(self.options.token_env)
        url = f"{self.options.api}/user/tokens/verify"
        _, answer = cdn.call(self.name, "GET", url, token=token, headers={"Authorization": _bearer(token)},
                             message=_errors, ok=lambda response, answer: response.is_success
                             and isinstance(answer, dict) and answer.get("success") is True
                             and (answer.get("result") or {}).get("status") == "active")
        return {"check": "cloudflare credentials", "status": "passed",
                "detail": f"the token in ${self.options.token_env} is valid and active (GET {url}); whether it "
                          f"may purge zone {self.options.zone} shows only when it purges"}

    def purge(self) -> Outcome:
        token = self.target.secret(self.options.token_env)
        files = self.files()
        bodies: list[dict[str, Any]] = ([{"files": files[i:i + FILES_PER_REQUEST]}
                                         for i in range(0, len(files), FILES_PER_REQUEST)]
                                        if files else [{"purge_everything": True}])
        ids = []
        for body in bodies:
            _, answer = cdn.call(self.name, "POST", self.endpoint, token=token, body=body,
                                 headers={"Authorization": _bearer(token)},
                                 message=_errors, ok=lambda response, answer: response.is_success
                                 and isinstance(answer, dict) and answer.get("success") is True)
            ids.append(str((answer.get("result") or {}).get("id", "")))
        return Outcome(self.name, self.describe(), f"success (purge id {', '.join(i for i in ids if i) or 'none'})")


def _bearer(token: Secret) -> Secret:
    return Secret(f"Bearer {token.value}")


def _errors(answer: Any) -> str | None:
    """Cloudflare's `errors[].message` (with its code)."""
    errors = answer.get("errors") or []
    return "; ".join(f"{e.get('message')} (code {e.get('code')})" for e in errors if isinstance(e, dict)) or None
