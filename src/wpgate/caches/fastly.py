"""Fastly: purge everything a service holds (`POST /service/{id}/purge_all`, the Fastly-Key header)."""

from __future__ import annotations

from typing import Any

from wpgate.caches import CacheSite, Outcome, cdn
from wpgate.config import FastlyCache


class Fastly:
    name = "fastly"
    kind = "cdn"

    def __init__(self, target: CacheSite, options: FastlyCache) -> None:
        self.target = target
        self.options = options

    @property
    def endpoint(self) -> str:
        return f"{self.options.api}/service/{self.options.service}/purge_all"

    def describe(self) -> str:
        return f"POST {self.endpoint}"

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
