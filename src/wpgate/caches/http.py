"""HTTP for purges and CDN APIs: honours 429 Retry-After (capped), retries transient failures a few
times, and keeps secrets out of every message."""

from __future__ import annotations

import email.utils
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from wpgate import web
from wpgate.caches import CacheSite, PurgeFailed
from wpgate.command import Command, Secret, mask
from wpgate.transports import Transport

log = logging.getLogger("wpgate.caches")

ATTEMPTS = 4                 # one try and three retries
MAX_RETRY_AFTER = 60.0       # the longest a 429's Retry-After is waited for, in seconds
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
TRANSIENT = {500, 502, 503, 504, 520, 521, 522, 523, 524}


def client() -> httpx.Client:
    return web.client(timeout=TIMEOUT, headers={"User-Agent": "wpgate"}, follow_redirects=False)


def send(http: httpx.Client, method: str, url: str, *, what: str, headers: dict[str, str | Secret] | None = None,
         json: Any = None, attempts: int = ATTEMPTS, sleep=time.sleep, shown_url: str | None = None) -> httpx.Response:
    """One request, retried on 429 (after its Retry-After), on 5xx and on time-outs or lost
    connections; the last answer is returned for the caller to judge. `what` names the layer in
    messages; `shown_url` is the URL as logs and messages show it. Secret header values reach the
    server only."""
    shown_url = shown_url or url
    real_headers = {name: value.value if isinstance(value, Secret) else value for name, value in (headers or {}).items()}
    secrets = [value.value for value in (headers or {}).values() if isinstance(value, Secret) and value.value]
    for attempt in range(1, attempts + 1):
        log.debug("%s: %s %s (try %d)", what, method, shown_url, attempt)
        try:
            response = http.request(method, url, headers=real_headers, json=json)
        except httpx.HTTPError as error:
            problem = mask(f"{type(error).__name__}: {error}", secrets)
            if attempt == attempts:
                raise PurgeFailed(f"{what}: no answer from {shown_url} after {attempts} tries ({problem})") from None
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


def body_line(response: "httpx.Response | HostAnswer", secrets: list[str] = (), limit: int = 200) -> str:
    """The start of a reply's body, on one line, secrets masked: for messages."""
    text = " ".join(response.text.split())
    text = mask(text, [s for s in secrets if s])
    return text[:limit] + ("…" if len(text) > limit else "")


@dataclass
class HostAnswer:
    """What a request sent from the site's host gave: its status and body."""

    status_code: int
    text: str


def from_host(transport: Transport, method: str, url: str, *, what: str, headers: dict[str, str]) -> HostAnswer:
    """A request sent from the site's own host with its curl (through the site's transport): for a
    Varnish or nginx purge address that only the host reaches (127.0.0.1, an ACL of its own)."""
    argv = ["curl", "--silent", "--show-error", "--max-time", "30", "--request", method, "--output", "-",
            "--write-out", "\n%{http_code}"]
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    result = transport.run(Command.of(argv, "--", url), timeout=60)
    if not result.ok:
        detail = result.error_text() or f"exit status {result.returncode}"
        raise PurgeFailed(f"{what}: {method} {url} from {transport.name} failed: {detail} "
                          "(the request is sent from the site's host with curl)")
    body, _, status = result.text().rpartition("\n")
    if not status.strip().isdigit():
        raise PurgeFailed(f"{what}: curl on {transport.name} gave no HTTP status for {method} {url}")
    return HostAnswer(int(status), body)


def to_server_cache(target: "CacheSite", method: str, url: str, *, what: str,
                    headers: dict[str, str] | None = None) -> "httpx.Response | HostAnswer":
    """A purge request to a server cache at `url` as the site's host sees it: sent from here for a
    site on this machine, from the host itself (curl, through ssh) for a site reached over ssh."""
    if target.site.ssh:
        return from_host(target.transport, method, url, what=what, headers=headers or {})
    with client() as http:
        return send(http, method, url, what=what, headers=dict(headers or {}))
