"""`engine: celery`: site deployments run in `wpgate worker` processes fed by a Redis broker
(`fleet.broker_env` names the environment variable holding its URL)."""

from __future__ import annotations

import os
from typing import Any

from wpgate import redact
from wpgate.config import Settings
from wpgate.errors import BadInput, GateRefused


def broker_url(settings: Settings) -> str:
    env = settings.model.fleet.broker_env
    if not env:
        raise BadInput(f"{settings.path}: engine celery needs a broker: set fleet.broker_env to the environment "
                       "variable holding its URL (redis://host:6379/0)")
    url = os.environ.get(env, "")
    if not url:
        raise BadInput(f"engine celery: environment variable {env} (fleet.broker_env) is not set: give it the "
                       "broker's URL (redis://host:6379/0)")
    if not url.startswith(("redis://", "rediss://")):
        raise BadInput(f"engine celery: {env} is not a redis:// URL")
    redact.register_url(url)
    return url


def check_broker(settings: Settings) -> None:
    """The broker answers (a Redis PING): refused (exit 3) before any site is touched when it does not."""
    import redis

    url = broker_url(settings)
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as error:
        raise GateRefused(redact.text(f"engine celery: the broker named by {settings.model.fleet.broker_env} does "
                                      f"not answer ({type(error).__name__}: {error}): start it or fix the URL; "
                                      "nothing was changed")) from None


def run_worker(settings: Settings, config_path: Any, concurrency: int, console: Any) -> None:
    raise BadInput("wpgate worker: not available yet in this build")
