"""What the CDN purgers share: an API call with a token, retried as `http.send` does, and the
provider's own message when it says no."""

from __future__ import annotations

import json
from typing import Any, Callable

import httpx

from wpgate.caches import PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.command import Secret


def call(name: str, method: str, url: str, *, headers: dict[str, str | Secret], token: Secret,
         body: Any = None, message: Callable[[Any], str | None],
         ok: Callable[[httpx.Response, Any], bool]) -> tuple[int, Any]:
    """Call a CDN's API: its status and JSON answer (None for an empty body) when `ok` says it
    succeeded, else PurgeFailed with the provider's own message (from `message`), the token never in it."""
    if not token.value:
        raise PurgeFailed(f"{name}: its token is not set (see token_env in the config)", {"layer": name})
    with cache_http.client() as http:
        response = cache_http.send(http, method, url, what=name, headers=headers, json=body)
    secrets = [token.value]
    answer: Any = None
    if response.content.strip():
        try:
            answer = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PurgeFailed(f"{name}: the API answered {response.status_code} with something that is not JSON: "
                              f"{cache_http.body_line(response, secrets)!r}",
                              {"layer": name, "status": response.status_code}) from None
    if ok(response, answer):
        return response.status_code, answer
    said = _safe(message, answer) or cache_http.body_line(response, secrets) or "no message"
    hint = ""
    if response.status_code in (401, 403):
        hint = ": check the token (and its permissions) in the variable token_env names"
    elif response.status_code == 429:
        hint = ": still rate limited after retrying; run `wpgate purge` again later"
    elif response.status_code >= 500:
        hint = ": the provider kept failing; retried"
    raise PurgeFailed(f"{name}: {method} {url} answered {response.status_code}: "
                      f"{' '.join(said.split())[:300]}{hint}", {"layer": name, "status": response.status_code})


def _safe(message: Callable[[Any], str | None], answer: Any) -> str | None:
    try:
        return message(answer)
    except (AttributeError, KeyError, TypeError, IndexError):
        return None
