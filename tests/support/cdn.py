"""Local stand-ins for the CDN APIs wpgate purges (they cannot be reached from a test): small HTTP
servers on loopback that speak each provider's documented purge call, check its authentication,
record every request, and can be told to misbehave (429 with Retry-After, repeated 5xx, a reply
that is not JSON, a 403 that echoes the credential it was sent, as some APIs do)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class MockApi:
    """One provider's API on 127.0.0.1:PORT. `script` holds replies given before the normal ones
    (`misbehave()` fills it); `requests` holds what came in."""

    name = "api"

    def __init__(self, token: str, resource: str = "zone123") -> None:
        self.token = token
        self.resource = resource
        self.requests: list[Recorded] = []
        self.script: list[Reply] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # What each provider defines: its purge call, and its read-only call that proves the credential
    # (`deploy --dry-run` makes it), when it has one.
    path = ""
    verify_path = ""

    def verified(self) -> Reply:
        raise NotImplementedError

    def authorised(self, headers: dict[str, str]) -> bool:
        raise NotImplementedError

    def success(self) -> Reply:
        raise NotImplementedError

    def error(self, status: int, message: str) -> Reply:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def misbehave(self, kind: str, times: int = 1) -> None:
        """Answer the next `times` purge requests (POST; the read-only calls that check a credential are answered
        as usual) with `kind`: "429" (Retry-After: 1), "503", "malformed", or
        "echo-403" (a 403 whose message quotes the credential headers received)."""
        with self._lock:
            for _ in range(times):
                if kind == "429":
                    reply = self.error(429, "Rate limited. Please wait and retry.")
                    reply.headers["Retry-After"] = "1"
                elif kind == "503":
                    reply = self.error(503, "Service temporarily unavailable")
                elif kind == "echo-403":
                    reply = Reply(403, headers={"X-Echo": "credentials"})  # its body is made per request
                elif kind == "malformed":
                    reply = Reply(200, b"<html><body>Bad gateway, maybe</body></html>",
                                  {"Content-Type": "text/html"})
                else:
                    raise ValueError(f"unknown misbehaviour {kind!r}")
                self.script.append(reply)

    def answer(self, method: str, path: str, headers: dict[str, str], body: str) -> Reply:
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body))
            if self.script and method == "POST":
                return self._echoed(self.script.pop(0), headers)
        if self.verify_path and method == "GET" and path == self.verify_path.format(id=self.resource):
            return self.verified() if self.authorised(headers) else self.error(401, "Authentication error")
        if method != "POST" or path != self.path.format(id=self.resource):
            return self.error(404, f"no route for {method} {path}")
        if not self.authorised(headers):
            return self.error(401, "Authentication error")
        return self.success()

    def _echoed(self, reply: Reply, headers: dict[str, str]) -> Reply:
        if reply.headers.get("X-Echo") != "credentials":
            return reply
        sent = [f"{name}: {headers[name]}" for name in ("authorization", "fastly-key", "accesskey") if name in headers]
        return self.error(403, "Forbidden: invalid credentials " + ", ".join(sent))

    def start(self) -> "MockApi":
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                reply = api.answer(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = do_GET = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mock {self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "MockApi":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _json(status: int, document: Any) -> Reply:
    return Reply(status, json.dumps(document).encode(), {"Content-Type": "application/json"})


class CloudflareApi(MockApi):
    """Cloudflare API v4: `POST /client/v4/zones/{zone}/purge_cache`, `Authorization: Bearer TOKEN`,
    answers `{"success", "errors": [{"code", "message"}], "messages", "result"}`; `GET
    /client/v4/user/tokens/verify` answers the token's status."""

    name = "cloudflare"
    path = "/client/v4/zones/{id}/purge_cache"
    verify_path = "/client/v4/user/tokens/verify"

    def verified(self) -> Reply:
        return _json(200, {"success": True, "errors": [], "result": {"id": "token-1", "status": "active"},
                           "messages": [{"code": 10000, "message": "This API Token is valid and active"}]})

    @property
    def api(self) -> str:
        return self.url + "/client/v4"

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("authorization") == f"Bearer {self.token}"

    def success(self) -> Reply:
        return _json(200, {"success": True, "errors": [], "messages": [], "result": {"id": self.resource}})

    def error(self, status: int, message: str) -> Reply:
        code = {401: 10000, 429: 971, 404: 7003}.get(status, 10001)
        return _json(status, {"success": False, "errors": [{"code": code, "message": message}],
                              "messages": [], "result": None})


class FastlyApi(MockApi):
    """Fastly: `POST /service/{id}/purge_all` with the `Fastly-Key` header; answers `{"status": "ok"}`;
    `GET /tokens/self` answers the token's scope and services."""

    name = "fastly"
    path = "/service/{id}/purge_all"
    verify_path = "/tokens/self"

    def verified(self) -> Reply:
        return _json(200, {"id": "token-1", "name": "purge", "scope": "purge_all", "services": [self.resource],
                           "expires_at": None})

    @property
    def api(self) -> str:
        return self.url

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("fastly-key") == self.token

    def success(self) -> Reply:
        return _json(200, {"status": "ok"})

    def error(self, status: int, message: str) -> Reply:
        return _json(status, {"msg": message, "detail": "Provided credentials are missing or invalid"
                              if status == 401 else ""})


class BunnyApi(MockApi):
    """Bunny: `POST /pullzone/{id}/purgeCache` with the `AccessKey` header; 204 No Content on success;
    `GET /pullzone/{id}` answers the pull zone."""

    name = "bunny"
    path = "/pullzone/{id}/purgeCache"
    verify_path = "/pullzone/{id}"

    def verified(self) -> Reply:
        return _json(200, {"Id": int(self.resource) if self.resource.isdigit() else self.resource,
                           "Name": "wpgate-test", "Enabled": True})

    @property
    def api(self) -> str:
        return self.url

    def authorised(self, headers: dict[str, str]) -> bool:
        return headers.get("accesskey") == self.token

    def success(self) -> Reply:
        return Reply(204)

    def error(self, status: int, message: str) -> Reply:
        return _json(status, {"ErrorKey": "pullzone.purge", "Field": "AccessKey" if status == 401 else "",
                              "Message": message})


class WebhookReceiver(MockApi):
    """A purge webhook: any path, `Authorization: Bearer TOKEN` when it has a token; 200 `{"ok": true}`."""

    name = "webhook"

    def answer(self, method: str, path: str, headers: dict[str, str], body: str) -> Reply:
        with self._lock:
            self.requests.append(Recorded(method, path, headers, body))
            if self.script:
                return self.script.pop(0)
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return self.error(401, "unauthorised")
        return self.success()

    def success(self) -> Reply:
        return _json(200, {"ok": True})

    def error(self, status: int, message: str) -> Reply:
        return _json(status, {"ok": False, "error": message})


def secrets_in(text: str, *tokens: str) -> list[str]:
    """The tokens that appear in `text` (for asserting none leaked)."""
    return [token for token in tokens if token and re.search(re.escape(token), text)]
