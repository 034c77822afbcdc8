"""Runs wpgate's PHP bridge inside a site's WordPress, through the site's transport, and reads its answer."""

from __future__ import annotations

import base64
import json
import re
import secrets
from importlib import resources
from typing import Any

from wpgate.command import Command
from wpgate.config import SiteConfig
from wpgate.errors import BridgeError
from wpgate.transports import Transport

# The bridge's files (bridge/php/NAME.php), in the order PHP runs them: boot loads WordPress, the middle
# ones define the actions, actions.php holds the index of actions and dispatches the request.
PARTS = ("boot", "inventory", "upgrade", "upgrade_components", "upgrade_core", "backup", "monitor", "caches",
         "actions")
_OPENING = b"<?php\n"
_PHP_SOURCE: bytes | None = None


def php_source() -> bytes:
    """The bridge as the one program PHP reads: its files joined, each one's own `<?php` line dropped after
    the first (they are there for editors and `php -l`; one program has one)."""
    global _PHP_SOURCE
    if _PHP_SOURCE is None:
        folder = resources.files("wpgate.bridge").joinpath("php")
        texts = [folder.joinpath(f"{name}.php").read_bytes() for name in PARTS]
        for name, text in zip(PARTS, texts):
            if not text.startswith(_OPENING):
                raise RuntimeError(f"bridge/php/{name}.php does not start with {_OPENING!r}")
        _PHP_SOURCE = texts[0] + b"".join(text[len(_OPENING):] for text in texts[1:])
    return _PHP_SOURCE


class Bridge:
    """One site's WordPress, asked one question per PHP process.

    The script travels on the PHP CLI's standard input, so nothing is left on the server, and
    the request is embedded in it, so nothing from it reaches a command line.
    """

    def __init__(self, site_name: str, site: SiteConfig, transport: Transport) -> None:
        self.site_name = site_name
        self.site = site
        self.transport = transport
        self._database: dict[str, Any] | None = None

    def database_facts(self) -> dict[str, Any]:
        """Where the site's database is and how to connect (wp-config.php's DB_* constants, the table
        prefix, the server's version), without the tables' statistics. Asked of the site once per
        Bridge: nothing wpgate does changes wp-config.php, and each question loads WordPress again."""
        if self._database is None:
            self.call("backup_facts", {"without_tables": True}, load_extensions=False)
        assert self._database is not None
        return dict(self._database)

    def call(self, action: str, params: dict[str, Any] | None = None, *, admin: bool = False,
             load_extensions: bool = True, timeout: float = 600) -> Any:
        """Run one bridge action. `load_extensions=False` loads WordPress without its plugins and
        theme, so that a read still works on a site that one of them breaks."""
        nonce = secrets.token_hex(16)
        request = {"action": action, "params": params or {}, "nonce": nonce,
                   "path": self.site.path, "url": self.site.url, "admin": admin,
                   "skip_plugins": not load_extensions, "skip_themes": not load_extensions}
        encoded = base64.b64encode(json.dumps(request).encode()).decode()
        script = (f"<?php $wpgate_request = json_decode(base64_decode('{encoded}'), true); ?>\n".encode()
                  + php_source())
        command = Command.of(self.site.php, "-d", "display_errors=stderr", "-d", "html_errors=0",
                             "-d", "max_execution_time=0")
        result = self.transport.run(command, input=script, timeout=timeout)
        where = f"site {self.site_name} ({self.transport.name})"
        answer = _framed(result.stdout, nonce)
        if answer is None:
            detail = result.error_text() or result.text().strip()[-300:] or f"exit status {result.returncode}"
            if result.returncode == 127 or "not found" in detail and self.site.php in detail:
                raise BridgeError(f"{where}: PHP CLI {self.site.php!r} is not installed on the host",
                                  hint="set `php:` for this site in the config")
            raise BridgeError(f"{where}: the PHP bridge gave no answer: {detail}")
        if answer.get("ok"):
            result = answer.get("result")
            if action == "backup_facts" and isinstance(result, dict):
                self._database = {key: value for key, value in result.items() if key != "tables"}
            return result
        error = answer.get("error") or {}
        raise _bridge_error(where, error, answer.get("output", ""))

    def require_wordpress(self) -> None:
        """The site's folder holds WordPress, looked at without running PHP, in the bridge's words: a
        command that reads the site through its web server only (`check`, `purge`) still says that
        `path:` is wrong (bad input, exit 2), as `inventory` does, rather than report the pages failing."""
        root = self.site.path.rstrip("/") or "/"
        result = self.transport.run(Command.of(
            "sh", "-c", 'test -d "$1" || exit 3; test -f "$1/wp-load.php" && test -f "$1/wp-includes/version.php" '
            '|| exit 4', "sh", root), timeout=60)
        if result.returncode in (3, 4):
            message = (f"no folder at {root}" if result.returncode == 3 else
                       f"no WordPress at {root} (wp-load.php or wp-includes/version.php is missing)")
            raise _bridge_error(f"site {self.site_name} ({self.transport.name})",
                                {"kind": "not_wordpress", "message": message}, "")


def _framed(stdout: bytes, nonce: str) -> dict[str, Any] | None:
    match = re.search(rb"<<<wpgate:" + nonce.encode() + rb">>>(.*?)<<<end:" + nonce.encode() + rb">>>",
                      stdout, re.S)
    if not match:
        return None
    try:
        return json.loads(match.group(1))
    except json.JSONDecodeError:
        return None


def _bridge_error(where: str, error: dict[str, Any], output: str) -> BridgeError:
    kind = error.get("kind", "error")
    message = error.get("message", "unknown error")
    file, line = error.get("file"), error.get("line")
    at = f" in {file} on line {line}" if file else ""
    if kind == "fatal":
        text = f"{where}: PHP fatal error while WordPress ran: {message}{at}"
    elif kind == "exception":
        text = f"{where}: uncaught {message}{at}"
    elif kind == "wp_die":
        text = f"{where}: WordPress stopped: {message}"
    elif kind in ("not_wordpress", "no_config"):
        text = f"{where}: {message}"
    else:
        text = f"{where}: {message}{at}"
    hint = None
    if kind == "wp_die" and "database connection" in message.lower():
        hint = "check DB_HOST, DB_USER and DB_PASSWORD in wp-config.php and that the database server runs"
    elif kind == "not_wordpress":
        hint = "check `path:` for this site in the config"
    return BridgeError(text, kind=kind, file=file, line=line, output=output, hint=hint)
