"""Notifications at the end of a deploy, received by a real webhook endpoint and a real SMTP server on loopback.

A deploy to a site whose folder does not exist is refused at gate 6.1 in a second: enough to end a real run
and exercise the notifiers without building WordPress (the complete run's notification is in test_report).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.helpers import wpgate
from tests.e2e.receivers import smtp_receiver, webhook_receiver
from wpgate.testbed.process import free_port

pytestmark = pytest.mark.e2e


def refused_setup(folder: Path, notify: dict) -> tuple[Path, Path]:
    config = folder / "wpgate.yml"
    config.write_text(yaml.safe_dump({"state_dir": "state", "sites": {"production": {
        "path": str(folder / "no-such-site"), "url": "http://127.0.0.1:9",
        "backup": {"dir": str(folder / "backups"), "offsite": str(folder / "offsite")},
        "notify": notify}}}, sort_keys=False))
    release = folder / "release.yml"
    release.write_text(yaml.safe_dump({
        "wpgate": 1, "id": "2026-11-26-7", "staging": {"site": "staging", "url": "http://127.0.0.1:8"},
        "updates": [{"type": "plugin", "slug": "wpgate-hello", "from": "1.0.0", "to": "1.2.0",
                     "artifact": {"path": "artifacts/hello.zip", "sha256": "0" * 64}}]}, sort_keys=False))
    return config, release


def run_report(folder: Path) -> dict:
    runs = list((folder / "state" / "runs").iterdir())
    assert len(runs) == 1
    return json.loads((runs[0] / "report.json").read_text())


def test_a_refused_deploy_is_announced_by_webhook_and_email(tmp_path):
    with webhook_receiver() as hook, smtp_receiver() as mail:
        config, release = refused_setup(tmp_path, {
            "webhook": {"url_env": "WPGATE_TEST_WEBHOOK"},
            "email": {"host": "127.0.0.1", "port": mail.port, "from": "wpgate@example.com",
                      "to": ["ops@example.com", "client@example.com"]}})
        result = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config,
                        env={"WPGATE_TEST_WEBHOOK": hook.url})
    assert result.returncode == 3, result.stderr
    assert "warning" not in result.stderr
    assert "secret-token" not in result.stderr + result.stdout  # the webhook URL is a secret

    [posted] = hook
    assert posted["path"] == "/services/T000/B000/secret-token"
    assert posted["content_type"] == "application/json"
    body = posted["json"]
    assert body["text"].startswith("⛔ wpgate: release 2026-11-26-7 to production: refused")
    assert "no folder at" in body["text"]
    fields = {field["title"]: field["value"] for field in body["attachments"][0]["fields"]}
    assert fields["Outcome"] == "refused" and fields["Site"] == "production"
    assert fields["Updates"] == "plugin wpgate-hello 1.0.0 → 1.2.0: pending"
    assert body["wpgate"]["status"] == "refused" and body["wpgate"]["release"] == "2026-11-26-7"
    assert body["wpgate"]["gates"] == [{"step": "6.1", "name": "approval", "status": "failed"}]

    [message] = mail
    assert message.envelope_to == ["ops@example.com", "client@example.com"]
    assert message["Subject"].strip() == "wpgate: release 2026-11-26-7 to production: refused, production unchanged"
    assert message["From"].strip() == "wpgate@example.com"
    text = message.get_content()
    assert "Outcome: refused" in text
    assert "# wpgate: release 2026-11-26-7 to production" in text  # the Markdown report follows
    assert "| 6.1 | approval | ❌ failed |" in text

    report = json.loads(result.stdout)
    assert report["notifications"] == [
        {"notifier": "webhook", "sent": True, "to": "$WPGATE_TEST_WEBHOOK"},
        {"notifier": "email", "sent": True, "to": f"ops@example.com, client@example.com via 127.0.0.1:{mail.port}"}]
    assert run_report(tmp_path)["notifications"] == report["notifications"]


def test_email_over_starttls_with_a_login_and_the_password_kept_secret(tmp_path):
    password = "s3cret-smtp-password"
    with smtp_receiver(tls_folder=tmp_path, login=("wpgate", password)) as mail:
        config, release = refused_setup(tmp_path, {"email": {
            "host": "127.0.0.1", "port": mail.port, "from": "wpgate@example.com", "to": ["ops@example.com"],
            "user": "wpgate", "password_env": "WPGATE_TEST_SMTP_PASSWORD", "starttls": True, "timeout": "3s"}})
        # The client verifies the server's certificate: trust the one the test made.
        result = wpgate("deploy", str(release), "--to", "production", "--yes", config=config,
                        env={"WPGATE_TEST_SMTP_PASSWORD": password, "SSL_CERT_FILE": str(mail.certificate)})
        wrong = wpgate("deploy", str(release), "--to", "production", "--yes", config=config,
                       env={"WPGATE_TEST_SMTP_PASSWORD": "wrong-" + password, "SSL_CERT_FILE": str(mail.certificate)})
        untrusted = wpgate("deploy", str(release), "--to", "production", "--yes", config=config,
                           env={"WPGATE_TEST_SMTP_PASSWORD": password})
    assert result.returncode == 3 and "warning" not in result.stderr, result.stderr
    assert len(mail) == 1 and mail.logins[0] == ("wpgate", True) and ("wpgate", False) in mail.logins
    assert mail[0]["Subject"].strip().endswith("refused, production unchanged")
    # A refused login or a certificate that does not verify: one warning, the same exit code, no password.
    assert wrong.returncode == 3 and untrusted.returncode == 3
    assert "wpgate: warning: the email notification was not sent: mail server" in wrong.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr or "certificate verify failed" in untrusted.stderr
    for output in (result, wrong, untrusted):
        assert password not in output.stderr + output.stdout
    for run in (tmp_path / "state" / "runs").iterdir():
        assert password not in (run / "report.json").read_text() + (run / "journal.jsonl").read_text()


def test_failing_notifiers_change_neither_the_outcome_nor_the_exit_code(tmp_path):
    closed = free_port()  # nothing listens there
    with webhook_receiver(status=500) as hook:
        config, release = refused_setup(tmp_path, {
            "webhook": {"url": hook.url},
            "email": {"host": "127.0.0.1", "port": closed, "from": "wpgate@example.com", "to": ["ops@example.com"]}})
        result = wpgate("deploy", str(release), "--to", "production", "--yes", "--json", config=config)
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("wpgate: warning:")]
    assert len(warnings) == 2, result.stderr
    assert "webhook" in warnings[0] and "HTTP 500" in warnings[0] and "secret-token" not in warnings[0]
    assert "email" in warnings[1] and f"127.0.0.1:{closed}" in warnings[1] and "refused" in warnings[1]
    # The run's own error is still the last word, and stdout holds only the report.
    assert result.stderr.strip().splitlines()[-1].startswith("wpgate: error: ")
    report = json.loads(result.stdout)
    assert report["status"] == "refused"
    assert [(n["notifier"], n["sent"]) for n in report["notifications"]] == [("webhook", False), ("email", False)]
    assert run_report(tmp_path)["notifications"] == report["notifications"]


def test_notifications_only_for_the_outcomes_asked(tmp_path):
    with webhook_receiver() as hook:
        config, release = refused_setup(tmp_path, {"webhook": {"url": hook.url}, "on": ["rolled_back", "rollback_failed"]})
        result = wpgate("deploy", str(release), "--to", "production", "--yes", config=config)
    assert result.returncode == 3, result.stderr
    assert list(hook) == []
    assert "notifications" not in run_report(tmp_path)


def test_a_missing_webhook_secret_stops_before_the_run(tmp_path):
    config, release = refused_setup(tmp_path, {"webhook": {"url_env": "WPGATE_TEST_UNSET_WEBHOOK"}})
    result = wpgate("deploy", str(release), "--to", "production", "--yes", config=config,
                    env={"WPGATE_TEST_UNSET_WEBHOOK": ""})
    assert result.returncode == 2, result.stderr
    assert "sites.production.notify.webhook.url_env: environment variable WPGATE_TEST_UNSET_WEBHOOK is not set" \
        in result.stderr
    assert not (tmp_path / "state" / "runs").exists()
