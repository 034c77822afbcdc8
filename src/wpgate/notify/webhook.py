"""A Slack-compatible incoming webhook: `text` for any chat that reads only that, Slack's attachment fields,
and the run's facts under `wpgate` for anything that reads JSON."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import field_validator, model_validator

from wpgate.config_types import Duration, EnvName, Strict, is_http_url
from wpgate.errors import WpgateError
from wpgate.notify.message import COLORS, Message

if TYPE_CHECKING:
    from wpgate.config import Settings


class WebhookNotify(Strict):
    """A Slack-compatible incoming webhook: the URL itself, or (when it holds a token) the variable holding it."""

    url: str | None = None
    url_env: EnvName | None = None
    timeout: Duration = "10s"  # type: ignore[assignment]

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not is_http_url(url):
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url

    @model_validator(mode="after")
    def _one_url(self) -> "WebhookNotify":
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env (url_env names the variable holding a secret URL)")
        return self


Options = WebhookNotify  # `notify.webhook` in the config


def payload(message: Message) -> dict:
    return {
        "text": message.text,
        "attachments": [{
            "color": COLORS.get(message.status, "#35618f"),
            "fields": [{"title": title, "value": value, "short": "\n" not in value and len(value) < 40}
                       for title, value in message.fields],
        }],
        "wpgate": message.summary,
    }


def send(options: "WebhookNotify", message: Message, settings: "Settings") -> str:
    """POST the message; where it went (the URL's host only: the rest of a webhook URL is often its secret)."""
    url = options.url or os.environ.get(options.url_env or "", "")
    shown = f"${options.url_env}" if options.url_env else _host(url)
    if not url:
        raise WpgateError(f"environment variable {options.url_env} is not set")
    import httpx  # here, not at the top: every command loads the config, which names this module

    from wpgate import web

    try:
        response = web.post(url, json=payload(message), timeout=options.timeout)
    except httpx.HTTPError as error:
        raise WpgateError(f"webhook {shown}: {type(error).__name__}: {_without(str(error), url)}") from None
    if response.status_code >= 300:
        raise WpgateError(f"webhook {shown} answered HTTP {response.status_code}: {response.text[:120].strip()}")
    return shown


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else "(no URL)"


def _without(text: str, url: str) -> str:
    return text.replace(url, _host(url)) if url else text
