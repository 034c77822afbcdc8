"""Bunny CDN: purge a pull zone (`POST /pullzone/{id}/purgeCache`, the AccessKey header)."""

from __future__ import annotations

from typing import Any

from wpgate.caches import CacheSite, Outcome, cdn
from wpgate.config_types import ApiId, EnvName, HttpUrl, Strict


class BunnyCache(Strict):
    pull_zone: ApiId
    token_env: EnvName  # the account's API key, sent as the AccessKey header
    api: HttpUrl = "https://api.bunny.net"


class Bunny:
    name = "bunny"
    kind = "cdn"
    Options = BunnyCache

    def __init__(self, target: CacheSite, options: BunnyCache) -> None:
        self.target = target
        self.options = options

    @property
    def endpoint(self) -> str:
        return f"{self.options.api}/pullzone/{self.options.pull_zone}/purgeCache"

    def describe(self) -> str:
        return f"POST {self.endpoint}"

    def check_access(self) -> dict[str, Any]:
        """The key, read-only: `GET /pullzone/{id}` answers only with a key of the account that owns the zone."""
        token = self.target.secret(self.options.token_env)
        url = f"{self.options.api}/pullzone/{self.options.pull_zone}"
        _, answer = cdn.call(self.name, "GET", url, token=token,
                             headers={"AccessKey": token, "Accept": "application/json"}, message=_message,
                             ok=lambda response, answer: response.status_code == 200 and isinstance(answer, dict))
        name = f" ({answer.get('Name')})" if answer.get("Name") else ""
        return {"check": "bunny credentials", "status": "passed",
                "detail": f"the key in ${self.options.token_env} reads pull zone {self.options.pull_zone}{name} "
                          f"(GET {url})"}

    def purge(self) -> Outcome:
        token = self.target.secret(self.options.token_env)
        status, _ = cdn.call(self.name, "POST", self.endpoint, token=token,
                             headers={"AccessKey": token, "Accept": "application/json"}, message=_message,
                             ok=lambda response, answer: response.status_code in (200, 204))
        return Outcome(self.name, self.describe(), f"{status} (purged)")

def _message(answer: Any) -> str | None:
    """Bunny's `Message` (and the `Field` it is about)."""
    message = answer.get("Message") or answer.get("message")
    field = answer.get("Field")
    return f"{message} ({field})" if message and field else message
