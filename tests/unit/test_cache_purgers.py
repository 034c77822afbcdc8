"""The CDN purgers against small local servers that speak Cloudflare's, Fastly's and Bunny's documented
purge APIs (the real ones cannot be reached from a test), and the webhook: auth sent, 401, 429 then
success, repeated 5xx, malformed replies; tokens never in a message."""

from __future__ import annotations

import json

import pytest

from tests.support.cdn import BunnyApi, CloudflareApi, FastlyApi, WebhookReceiver
from wpgate.caches import CacheSite, PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.caches.bunny import Bunny, BunnyCache
from wpgate.caches.cloudflare import Cloudflare, CloudflareCache
from wpgate.caches.fastly import Fastly, FastlyCache
from wpgate.caches.webhook import Webhook, WebhookCache
from wpgate.command import Secret
from wpgate.config import SiteConfig
from wpgate.session import SiteSession

TOKEN = "s3cr3t-token-value-42"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    """Retry-After and back-off waits are recorded, not slept (the policy is what is tested)."""
    waits: list[float] = []
    original = cache_http.send

    def send(*args, **kwargs):
        kwargs.setdefault("sleep", waits.append)
        return original(*args, **kwargs)

    monkeypatch.setattr(cache_http, "send", send)
    return waits


def target(environment: dict[str, str] | None = None) -> CacheSite:
    site = SiteConfig(path="/srv/www/example", url="https://example.com")
    values = {"CDN_TOKEN": TOKEN, **(environment or {})}
    return CacheSite(SiteSession("production", site, transport=None, bridge=None),  # type: ignore[arg-type]
                     secret=lambda name: Secret(values.get(name, "")))


def purger(kind: str, api):
    if kind == "cloudflare":
        return Cloudflare(target(), CloudflareCache(zone=api.resource, token_env="CDN_TOKEN", api=api.api))
    if kind == "fastly":
        return Fastly(target(), FastlyCache(service=api.resource, token_env="CDN_TOKEN", api=api.api))
    return Bunny(target(), BunnyCache(pull_zone=api.resource, token_env="CDN_TOKEN", api=api.api))


APIS = {"cloudflare": CloudflareApi, "fastly": FastlyApi, "bunny": BunnyApi}
AUTH = {"cloudflare": ("authorization", f"Bearer {TOKEN}"), "fastly": ("fastly-key", TOKEN),
        "bunny": ("accesskey", TOKEN)}


@pytest.mark.parametrize("kind", APIS)
def test_purge_sends_the_token_the_provider_expects_to_a_local_api(kind):
    with APIS[kind](TOKEN) as api:
        outcome = purger(kind, api).purge()
    assert len(api.requests) == 1
    request = api.requests[0]
    assert request.method == "POST" and request.path == api.path.format(id=api.resource)
    header, value = AUTH[kind]
    assert request.headers[header] == value
    assert TOKEN not in json.dumps(outcome.as_dict())
    if kind == "cloudflare":
        assert json.loads(request.body) == {"purge_everything": True}


@pytest.mark.parametrize("kind", APIS)
def test_a_wrong_token_fails_with_the_providers_message_and_no_token(kind):
    with APIS[kind]("the-right-token") as api:
        with pytest.raises(PurgeFailed) as caught:
            purger(kind, api).purge()
    message = str(caught.value)
    assert "answered 401" in message and "check the token" in message
    assert "Authentication error" in message
    assert TOKEN not in message and "the-right-token" not in message
    assert caught.value.exit_code == 3


@pytest.mark.parametrize("kind", APIS)
def test_429_is_waited_out_as_retry_after_says_then_succeeds(kind, quick_retries):
    with APIS[kind](TOKEN) as api:
        api.misbehave("429", times=2)
        purger(kind, api).purge()
    assert len(api.requests) == 3
    assert quick_retries == [1.0, 1.0]


@pytest.mark.parametrize("kind", APIS)
def test_repeated_5xx_is_retried_a_bounded_number_of_times_then_fails(kind, quick_retries):
    with APIS[kind](TOKEN) as api:
        api.misbehave("503", times=10)
        with pytest.raises(PurgeFailed, match="answered 503.*Service temporarily unavailable.*retried"):
            purger(kind, api).purge()
    assert len(api.requests) == cache_http.ATTEMPTS
    assert len(quick_retries) == cache_http.ATTEMPTS - 1


@pytest.mark.parametrize("kind", APIS)
def test_a_reply_that_is_not_json_is_a_clear_error(kind):
    with APIS[kind](TOKEN) as api:
        api.misbehave("malformed")
        with pytest.raises(PurgeFailed, match=f"{kind}: the API answered 200 with something that is not JSON"):
            purger(kind, api).purge()


def test_a_missing_token_is_refused_before_any_request():
    with CloudflareApi(TOKEN) as api:
        cloudflare = Cloudflare(target({"CDN_TOKEN": ""}), CloudflareCache(zone="zone123", token_env="CDN_TOKEN",
                                                                           api=api.api))
        with pytest.raises(PurgeFailed, match="token is not set"):
            cloudflare.purge()
    assert api.requests == []


def test_cloudflare_listed_urls_are_purged_thirty_at_a_time_against_a_local_api():
    with CloudflareApi(TOKEN) as api:
        urls = ["/"] + [f"/page-{n}/" for n in range(40)] + ["https://cdn.example.com/x.css"]
        Cloudflare(target(), CloudflareCache(zone="zone123", token_env="CDN_TOKEN", api=api.api, urls=urls)).purge()
    bodies = [json.loads(request.body) for request in api.requests]
    assert [len(body["files"]) for body in bodies] == [30, 12]
    assert bodies[0]["files"][0] == "https://example.com/"
    assert bodies[1]["files"][-1] == "https://cdn.example.com/x.css"


def test_webhook_posts_the_site_with_a_bearer_token_to_a_local_receiver():
    with WebhookReceiver(TOKEN) as receiver:
        Webhook(target(), WebhookCache(url=receiver.url + "/hooks/purge", token_env="CDN_TOKEN")).purge()
        assert receiver.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
        assert json.loads(receiver.requests[0].body) == {"event": "wpgate.purge", "site": "production",
                                                         "url": "https://example.com"}
        with pytest.raises(PurgeFailed, match="answered 401") as caught:
            Webhook(target({"OTHER": "wrong"}), WebhookCache(url=receiver.url, token_env="OTHER")).purge()
        assert "wrong" not in str(caught.value)


def test_no_answer_at_all_fails_after_the_bounded_retries(quick_retries):
    with CloudflareApi(TOKEN) as api:
        address = api.api
    with pytest.raises(PurgeFailed, match="no answer from .* after 4 tries"):
        Cloudflare(target(), CloudflareCache(zone="zone123", token_env="CDN_TOKEN", api=address)).purge()


@pytest.mark.parametrize("value, seconds", [("3", 3.0), (None, 0.5), ("9999", cache_http.MAX_RETRY_AFTER),
                                            ("soon", 0.5), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)])
def test_retry_after_is_read_and_capped(value, seconds):
    assert cache_http.retry_after(value, default=0.5) == seconds
