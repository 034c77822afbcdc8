"""HTTP for purges and CDN APIs: honours 429 Retry-After (capped), retries transient failures a few
times, and keeps secrets out of every message."""

from __future__ import annotations

import email.utils
import logging
import time
from typing import Any

import httpx

from wpgate.caches import PurgeFailed
from wpgate.command import Secret, mask

log = logging.getLogger("wpgate.caches")

ATTEMPTS = 4                 # one try and three retries
MAX_RETRY_AFTER = 60.0       # the longest a 429's Retry-After is waited for, in seconds
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
TRANSIENT = {500, 502, 503, 504, 520, 521, 522, 523, 524}


def client() -> httpx.Client:
    return httpx.Client(timeout=TIMEOUT, headers={"User-Agent": "wpgate"}, follow_redirects=False)


def send(http: httpx.Client, method: str, url: str, *, what: str, headers: dict[str, str | Secret] | None = None,
         json: Any = None, attempts: int = ATTEMPTS, sleep=time.sleep) -> httpx.Response:
    """One request, retried on 429 (after its Retry-After), on 5xx and on time-outs or lost
    connections; the last answer is returned for the caller to judge. `what` names the layer in
    messages. Secret header values reach the server only."""
    real_headers = {name: value.value if isinstance(value, Secret) else value for name, value in (headers or {}).items()}
    secrets = [value.value for value in (headers or {}).values() if isinstance(value, Secret) and value.value]
    for attempt in range(1, attempts + 1):
        log.debug("%s: %s %s (try %d)", what, method, url, attempt)
        try:
            response = http.request(method, url, headers=real_headers, json=json)
        except httpx.HTTPError as error:
            problem = mask(f"{type(error).__name__}: {error}", secrets)
            if attempt == attempts:
                raise PurgeFailed(f"{what}: no answer from {url} after {attempts} tries ({problem})") from None
            sleep(_backoff(attempt))
            continue
        if response.status_code == 429 and attempt < attempts:
            wait = retry_after(response.headers.get("Retry-After"), default=_backoff(attempt))
            log.debug("%s: rate limited; waiting %.1fs as Retry-After asks", what, wait)
            sleep(wait)
            continue
        if response.status_code in TRANSIENT and attempt < attempts:
            sleep(_backoff(attempt))
            continue
        return response
    raise AssertionError("unreachable")


def retry_after(value: str | None, *, default: float) -> float:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), capped."""
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = default
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _backoff(attempt: int) -> float:
    return min(0.5 * 2 ** (attempt - 1), 8.0)


def body_line(response: httpx.Response, secrets: list[str] = (), limit: int = 200) -> str:
    """The start of a reply's body, on one line, secrets masked: for messages."""
    text = " ".join(response.text.split())
    text = mask(text, [s for s in secrets if s])
    return text[:limit] + ("…" if len(text) > limit else "")
