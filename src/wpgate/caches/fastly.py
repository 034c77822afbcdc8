"""Fastly: purge everything a service holds (`POST /service/{id}/purge_all`, the Fastly-Key header)."""

from __future__ import annotations

from typing import Any

from wpgate.caches import CacheSite, Outcome, PurgeFailed, cdn
from wpgate.config_types import ApiId, EnvName, HttpUrl, Strict


class FastlyCache(Strict):
    service: ApiId
    token_env: EnvName
    api: HttpUrl = "https://api.fastly.com"


class Fastly:
    name = "fastly"
    kind = "cdn"
    Options = FastlyCache

    def __init__(self, target: CacheSite, options: FastlyCache) -> None:
        self.target = target
        self.options = options

    @property
    def endpoint(self) -> str:
        return f"{self.options.api}/service/{self.options.service}/purge_all"

    def describe(self) -> str:
        return f"POST {self.endpoint}"

    def check_access(self) -> dict[str, Any]:
        """The token, read-only: `GET /tokens/self` gives its scope and services; it must be allowed to purge
        everything (scope `purge_all` or `global`) on this service (or on all of them)."""
        token = self.target.secret(self.options.token_env)
        url = f"{self.options.api}/tokens/self"
        _, answer = cdn.call(self.name, "GET", url, token=token,
                             headers={"Fastly-Key": token, "Accept": "application/json"}, message=_message,
                             ok=lambda response, answer: response.is_success and isinstance(answer, dict))
        scopes = str(answer.get("scope") or "").split()
        services = [str(service) for service in answer.get("services") or []]
        if not {"purge_all", "global"} & set(scopes):
            raise PurgeFailed(f"fastly: the token in ${self.options.token_env} may not purge everything (its scope is "
                              f"{' '.join(scopes) or 'empty'}; purge_all or global is needed): use a token with that "
                              "scope", {"layer": self.name})
        if services and self.options.service not in services:
            raise PurgeFailed(f"fastly: the token in ${self.options.token_env} is limited to service(s) "
                              f"{', '.join(services)}, not {self.options.service}: use a token for that service",
                              {"layer": self.name})
        where = f"service {self.options.service}" if services else "every service"
        return {"check": "fastly credentials", "status": "passed",
                "detail": f"the token in ${self.options.token_env} may purge everything on {where} (GET {url})"}

    def purge(self) -> Outcome:
        token = self.target.secret(self.options.token_env)
        _, answer = cdn.call(self.name, "POST", self.endpoint, token=token,
                             headers={"Fastly-Key": token, "Accept": "application/json"}, message=_message,
                             ok=lambda response, answer: response.is_success and isinstance(answer, dict)
                             and answer.get("status") == "ok")
        return Outcome(self.name, self.describe(), f"status {answer.get('status')}")


def _message(answer: Any) -> str | None:
    """Fastly's `msg` and `detail`."""
    parts = [str(answer.get(key)) for key in ("msg", "detail") if answer.get(key)]
    return ": ".join(parts) or None
