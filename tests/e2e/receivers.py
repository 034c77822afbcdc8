"""Real servers on loopback that receive what wpgate sends: a webhook endpoint (HTTP) and a mail server (SMTP)."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

from wpgate.testbed.process import free_port


class Received(list):
    """What a receiver got, in order; `url` or `port` says where it listens."""

    url: str = ""
    port: int = 0


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
def smtp_receiver() -> Iterator[Received]:
    """aiosmtpd's SMTP server on a loopback port; each message is appended as an EmailMessage
    with `envelope_to` set."""
    from aiosmtpd.controller import Controller

    received = Received()

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:
            message: EmailMessage = message_from_bytes(envelope.content, policy=policy.default)
            message.envelope_to = list(envelope.rcpt_tos)
            received.append(message)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    received.port = port
    try:
        yield received
    finally:
        controller.stop()
