"""Keeps every known secret out of what wpgate prints and writes: one registry of secret values, one mask.

Values are registered where they become known: each `*_env` variable the config names and the
credentials of any URL in it (when the config is loaded), and every `Secret` a command carries (a
database password read from wp-config.php, a token). Whatever layer produced a text (a CDN's API
echoing the token, a command's output, an exception), the places where text leaves wpgate pass it
through here: the run's journal, report.json and evidence files, the reports, error messages, the
terminal (stderr), and --json on stdout.
"""

from __future__ import annotations

import base64
import threading
from typing import Any, Iterable, TextIO
from urllib.parse import unquote, urlsplit

MASK = "***"

_known: set[str] = set()
_longest_first: list[str] = []
_lock = threading.Lock()


def register(*values: str | None) -> None:
    """Remember secret values: from now on they are masked wherever text leaves wpgate."""
    fresh = {value for value in values if isinstance(value, str) and value.strip() and value != MASK}
    if fresh <= _known:
        return
    global _longest_first
    with _lock:
        _known.update(fresh)
        # The longest first: `Bearer TOKEN` goes as a whole before TOKEN alone would leave `Bearer `.
        _longest_first = sorted(_known, key=len, reverse=True)


def register_url(url: str) -> None:
    """The credentials of `http://user:password@host/…`, as written and as sent (decoded, and as the
    Basic authorization they become)."""
    for user, password in url_credentials(url):
        forms = [f"{user}:{password}", unquote(f"{user}:{password}")]
        if password:
            forms += [password, unquote(password)]
        forms.append(base64.b64encode(unquote(f"{user}:{password}").encode()).decode())
        register(*forms)


def url_credentials(url: str) -> list[tuple[str, str]]:
    """(user, password) as written in a URL that carries them, else nothing."""
    if "@" not in url or "://" not in url:
        return []
    try:
        netloc = urlsplit(url.strip()).netloc
    except ValueError:
        netloc = url.split("://", 1)[1].split("/", 1)[0]
    if "@" not in netloc:
        return []
    userinfo = netloc.rsplit("@", 1)[0]
    user, _, password = userinfo.partition(":")
    return [(user, password)] if password or user else []


def known() -> list[str]:
    return list(_longest_first)


def text(value: str) -> str:
    """`value` with every known secret replaced by the mask."""
    for secret in _longest_first:
        if secret in value:
            value = value.replace(secret, MASK)
    return value


def value(data: Any) -> Any:
    """A copy of a JSON-like document (dicts, lists, strings…) with every string masked, keys included."""
    if not _longest_first:
        return data
    if isinstance(data, str):
        return text(data)
    if isinstance(data, dict):
        return {text(key) if isinstance(key, str) else key: value(item) for key, item in data.items()}
    if isinstance(data, (list, tuple)):
        return [value(item) for item in data]
    if data is None or isinstance(data, (bool, int, float)):
        return data
    shown = str(data)  # a path, an exception…: written with str() by json's default
    masked = text(shown)
    return data if masked == shown else masked


class MaskedStream:
    """A text stream (the terminal's stderr) that masks every known secret in what is written to it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, data: str) -> int:
        self._stream.write(text(data))
        return len(data)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
