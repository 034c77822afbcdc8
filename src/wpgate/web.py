"""HTTP clients for wpgate's requests to sites, CDN APIs and webhooks.

Every client shares one TLS context per process: loading the CA bundle costs about 70 ms of CPU, and
a deploy opens a client for each check, probe and purge.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    """httpx's own default context (certifi's CA bundle), made once."""
    return httpx.create_ssl_context()


def client(**options: Any) -> httpx.Client:
    return httpx.Client(verify=tls(), **options)


def post(url: str, **options: Any) -> httpx.Response:
    with client(timeout=options.pop("timeout", None)) as http:
        return http.post(url, **options)
