"""A generic webhook: one request that purges a layer wpgate has no module for (a host's panel, a CI job)."""

from __future__ import annotations

from typing import Literal

from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.command import Secret
from wpgate.config_types import EnvName, HttpUrl, Strict


class WebhookCache(Strict):
    """Any other layer: a URL that purges it when called (`Authorization: Bearer` from token_env)."""

    url: HttpUrl
    method: Literal["POST", "PUT", "GET"] = "POST"
    token_env: EnvName | None = None


class Webhook:
    name = "webhook"
    kind = "cdn"
    Options = WebhookCache

    def __init__(self, target: CacheSite, options: WebhookCache) -> None:
        self.target = target
        self.options = options

    def describe(self) -> str:
        auth = " with a bearer token" if self.options.token_env else ""
        return f"{self.options.method} {self.options.url}{auth}"

    def purge(self) -> Outcome:
        headers: dict[str, str | Secret] = {}
        secrets: list[str] = []
        if self.options.token_env:
            token = self.target.secret(self.options.token_env)
            if not token.value:
                raise PurgeFailed("webhook: its token is not set (see token_env in the config)", {"layer": self.name})
            headers["Authorization"] = Secret(f"Bearer {token.value}")
            secrets.append(token.value)
        body = None if self.options.method == "GET" else {
            "event": "wpgate.purge", "site": self.target.name, "url": self.target.site.url}
        with cache_http.client() as http:
            response = cache_http.send(http, self.options.method, self.options.url, what="webhook",
                                       headers=headers, json=body)
        if not response.is_success:
            raise PurgeFailed(f"webhook: {self.options.method} {self.options.url} answered {response.status_code}: "
                              f"{cache_http.body_line(response, secrets) or 'no message'}",
                              {"layer": self.name, "status": response.status_code})
        return Outcome(self.name, self.describe(), str(response.status_code))
