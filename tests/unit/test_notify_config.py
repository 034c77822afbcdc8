"""The `notify:` keys of a site: every mistake named with its key path, secrets only by variable name."""

from __future__ import annotations

import pytest
import yaml

from wpgate import config
from wpgate.errors import ConfigError


def load(tmp_path, notify) -> config.Settings:
    path = tmp_path / "wpgate.yml"
    path.write_text(yaml.safe_dump({"sites": {"production": {"path": "/srv/www/example", "url": "https://example.com",
                                                             "notify": notify}}}))
    return config.load(path)


def problems(tmp_path, notify) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, notify)
    return raised.value.problems


def test_a_full_notify_section(tmp_path):
    notify = load(tmp_path, {
        "webhook": {"url_env": "SLACK_WEBHOOK_URL", "timeout": "5s"},
        "email": {"host": "smtp.example.com", "port": 587, "from": "wpgate@example.com", "to": ["ops@example.com"],
                  "user": "wpgate", "password_env": "SMTP_PASSWORD", "starttls": True},
        "on": ["rolled_back", "rollback_failed"]}).site("production").notify
    assert notify.webhook.url_env == "SLACK_WEBHOOK_URL" and notify.webhook.timeout == 5
    assert notify.email.sender == "wpgate@example.com" and notify.email.starttls
    assert notify.on == ["rolled_back", "rollback_failed"]


def test_every_outcome_is_announced_unless_told_otherwise(tmp_path):
    notify = load(tmp_path, {"webhook": {"url": "https://hooks.example.com/x"}}).site("production").notify
    assert notify.on == ["complete", "refused", "rolled_back", "rollback_failed"]


def test_secrets_are_named_by_variable_and_required(tmp_path, monkeypatch):
    settings = load(tmp_path, {"webhook": {"url_env": "WPGATE_UNIT_HOOK"},
                               "email": {"host": "h", "from": "a@b.c", "to": ["d@e.f"], "user": "u",
                                         "password_env": "WPGATE_UNIT_SMTP", "starttls": True}})
    monkeypatch.delenv("WPGATE_UNIT_HOOK", raising=False)
    monkeypatch.delenv("WPGATE_UNIT_SMTP", raising=False)
    with pytest.raises(ConfigError) as raised:
        settings.require_secrets("production")
    assert raised.value.problems == [
        "sites.production.notify.webhook.url_env: environment variable WPGATE_UNIT_HOOK is not set",
        "sites.production.notify.email.password_env: environment variable WPGATE_UNIT_SMTP is not set"]


def test_every_mistake_is_listed_with_its_key_path(tmp_path):
    assert problems(tmp_path, {
        "webhook": {"url": "hooks.example.com", "token": "x"},
        "email": {"host": "h", "to": ["not-an-address"], "password": "hunter2", "port": 70000},
        "on": ["done"], "sms": {}}) == [
        "sites.production.notify.webhook.url: 'hooks.example.com' is not an http(s) URL",
        "sites.production.notify.webhook.token: unknown key",
        "sites.production.notify.email.port: Input should be less than 65536",
        "sites.production.notify.email.from: required key is missing",
        "sites.production.notify.email.to: 'not-an-address' is not an email address",
        "sites.production.notify.email.password: unknown key",
        "sites.production.notify.on[0]: Input should be 'complete', 'refused', 'rolled_back' or 'rollback_failed'",
        "sites.production.notify.sms: unknown key",
    ]


def test_one_webhook_url_and_login_in_pairs(tmp_path):
    assert problems(tmp_path, {"webhook": {"url": "https://h/x", "url_env": "HOOK"}}) == [
        "sites.production.notify.webhook: give exactly one of url and url_env (url_env names the variable holding "
        "a secret URL)"]
    assert problems(tmp_path, {"email": {"host": "h", "from": "a@b.c", "to": ["d@e.f"], "user": "u"}}) == [
        "sites.production.notify.email: user and password_env go together (both, or neither for a server without "
        "login)"]
    assert problems(tmp_path, {"email": {"host": "smtp.example.com", "from": "a@b.c", "to": ["d@e.f"], "user": "u",
                                         "password_env": "SMTP_PASSWORD"}}) == [
        "sites.production.notify.email: a login to smtp.example.com needs starttls: true, or the password would "
        "cross the network in the clear"]


def test_one_registry_of_notifiers_each_with_its_options_and_sender():
    from wpgate.notify.registry import NOTIFIERS

    assert list(NOTIFIERS) == ["webhook", "email"]
    assert set(config.NotifyConfig.model_fields) == {*NOTIFIERS, "on"}
    for name, notifier in NOTIFIERS.items():
        assert notifier.Options.__module__ == notifier.__name__ and callable(notifier.send)
        assert config.NotifyConfig.model_fields[name].annotation == notifier.Options | None


def test_a_run_s_and_a_rollout_s_notifications_go_through_one_sender(tmp_path):
    # A real webhook POST to a loopback port nothing listens on: the refusal is the notifier's failure.
    import io

    from rich.console import Console

    from wpgate import notify
    from wpgate.notify.message import Message
    from wpgate.testbed.process import free_port

    site = load(tmp_path, {"webhook": {"url": f"http://127.0.0.1:{free_port()}/hook", "timeout": "5s"}})
    channels = notify.channels(site.site("production").notify)
    assert [name for name, options in channels] == ["webhook"]
    message = Message.of({"status": "complete", "release": "r1", "site": "production", "run": "x"}, "")
    for ending in ("run", "rollout"):
        said = io.StringIO()
        [result] = notify.send(site, channels, message, Console(file=said, width=400), ending=ending)
        assert result["notifier"] == "webhook" and result["sent"] is False and result["error"]
        assert said.getvalue().startswith("wpgate: warning: the webhook notification was not sent: ")
        assert said.getvalue().rstrip().endswith(f"(the {ending}'s outcome is unchanged)")
