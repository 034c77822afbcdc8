"""Real servers on loopback that receive what wpgate sends: a webhook endpoint (HTTP) and a mail server (SMTP)."""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

from wpgate.testbed.process import free_port


class Received(list):
    """What a receiver got, in order; `url` or `port` says where it listens."""

    url: str = ""
    port: int = 0
    certificate: Path | None = None

    def __init__(self) -> None:
        super().__init__()
        self.logins: list[tuple[str, bool]] = []


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[Received]:
    """An HTTP server taking POSTs on any path; each JSON body is appended as {"path", "json"}."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append({"path": self.path, "content_type": self.headers.get("Content-Type"),
                             "json": json.loads(body)})
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"invalid_payload")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    received.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/secret-token"
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smtp_receiver(*, tls_folder: Path | None = None, login: tuple[str, str] | None = None) -> Iterator[Received]:
    """aiosmtpd's SMTP server on a loopback port; each message is appended as an EmailMessage
    with `envelope_to` set. With `tls_folder`, it offers STARTTLS with a certificate for 127.0.0.1 made there
    (`received.certificate`, for the client to trust) and, with `login`, requires that user and password."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    received = Received()
    options: dict[str, Any] = {}
    if tls_folder is not None:
        key, certificate = tls_folder / "smtp.key", tls_folder / "smtp.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                        "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                        "-out", str(certificate)], check=True, capture_output=True)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate, key)
        options.update(tls_context=context, require_starttls=True)
        received.certificate = certificate
    if login is not None:
        def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = (auth_data.login.decode(), auth_data.password.decode()) == login
            received.logins.append((auth_data.login.decode(), ok))
            return AuthResult(success=ok)
        options.update(authenticator=authenticate, auth_require_tls=True, auth_required=True)

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:
            message: EmailMessage = message_from_bytes(envelope.content, policy=policy.default)
            message.envelope_to = list(envelope.rcpt_tos)
            received.append(message)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **options)
    controller.start()
    received.port = port
    try:
        yield received
    finally:
        controller.stop()
