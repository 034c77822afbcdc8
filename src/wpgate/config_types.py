"""The config's vocabulary: the strict model every section is, and the value types its keys share (durations,
environment variable names, http(s) URLs, API ids, absolute paths). The config and each plugin's options
model (cache layers, notifiers) are built from it; it imports nothing of wpgate, so a plugin's module can
hold its options and still be imported by the config's registry."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

# Patterns are matched whole (`fullmatch`): `$` alone would let a trailing newline through.
_DURATION = re.compile(r" *(\d+(?:\.\d+)?) *([smh]) *")
_UNITS = {"s": 1, "m": 60, "h": 3600}
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# An http(s) URL: a host, then a path; no white space or control character anywhere.
_HTTP_URL = re.compile(r"https?://[^/\s\x00-\x1f\x7f]+(?:/[^\s\x00-\x1f\x7f]*)?")


def absolute_path(path: str, as_given: str, where: str) -> str:
    """`path` without a trailing slash; refused (naming it `as_given`) unless absolute."""
    if not path.startswith("/"):
        raise ValueError(f"{as_given!r} must be an absolute path {where}")
    return path.rstrip("/") or "/"


def parse_duration(value: Any) -> float:
    """`90s`, `5m`, `2h` into seconds; a number without its unit is refused as ambiguous."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a duration: use a number with s, m or h, like 60s, 5m, 2h")
    seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be more than zero")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (name the variable, not the secret)")
    return value


EnvName = Annotated[str, BeforeValidator(lambda v: _check_env_name(str(v)) if v is not None else v)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def is_http_url(text: str) -> bool:
    """Whether TEXT is a whole http(s) URL: a host, then a path; no white space or control character."""
    return bool(_HTTP_URL.fullmatch(text))


def _http_url(url: str) -> str:
    if not is_http_url(url):
        raise ValueError(f"{url!r} is not an http(s) URL")
    return url.rstrip("/")


HttpUrl = Annotated[str, BeforeValidator(lambda v: _http_url(v) if isinstance(v, str) else v)]


def _api_id(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # Bunny's pull zone ids are numbers
    if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value):
        raise ValueError(f"{value!r} is not an id (letters, digits, _ and -)")
    return value


ApiId = Annotated[str, BeforeValidator(_api_id)]  # goes into an API path: nothing else may
