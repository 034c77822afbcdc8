"""The web server's OPcache: reset by a one-shot PHP file requested over HTTP, or by a reload command.

The CLI process that ran the update has an OPcache of its own; the web server's PHP keeps serving
the code it compiled (for ever, when it does not check timestamps) until its cache is reset. The
one-shot file has a random name and token, deletes itself as it runs, and is removed by wpgate
whatever the request gave.
"""

from __future__ import annotations

import json
import secrets

import httpx

from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.command import Command
from wpgate.errors import TransportError

_RESET_FILE = """<?php
// wpgate: a one-shot OPcache reset for the web server's PHP. It deletes itself first.
@unlink( __FILE__ );
header( 'Content-Type: application/json' );
header( 'Cache-Control: no-store, private' );
if ( ! isset( $_GET['token'] ) || ! hash_equals( '%(token)s', (string) $_GET['token'] ) ) {
	http_response_code( 403 );
	exit;
}
$status  = function_exists( 'opcache_get_status' ) ? @opcache_get_status( false ) : false;
$enabled = is_array( $status ) && ! empty( $status['opcache_enabled'] );
$reset   = $enabled && function_exists( 'opcache_reset' ) ? opcache_reset() : false;
echo json_encode( array( 'wpgate' => '%(token)s', 'enabled' => $enabled, 'reset' => $reset, 'sapi' => PHP_SAPI,
	'php' => PHP_VERSION, 'restrict_api' => (string) ini_get( 'opcache.restrict_api' ) ) );
"""


class Opcache:
    name = "opcache"

    def __init__(self, target: CacheSite) -> None:
        self.target = target
        self.config = target.site.opcache

    @property
    def base_url(self) -> str:
        return self.config.url or self.target.site.url

    def describe(self) -> str:
        if self.config.reload_command:
            return f"reload command on the site's host: {Command.of(self.config.reload_command).display()}"
        return (f"one-shot request {self.base_url}/wpgate-opcache-<random>.php: opcache_reset() in the web "
                "server's PHP; the file deletes itself and is removed")

    def purge(self) -> Outcome:
        if self.config.reload_command:
            return self._reload()
        return self._one_shot()

    def _reload(self) -> Outcome:
        command = Command.of(self.config.reload_command)
        result = self.target.transport.run(command, timeout=120)
        if not result.ok:
            detail = result.error_text() or f"exit status {result.returncode}"
            raise PurgeFailed(f"opcache: the reload command {command.display()} failed on "
                              f"{self.target.transport.name}: {detail}", {"layer": self.name})
        return Outcome(self.name, f"reload command: {command.display()}", "exit 0", {"how": "reload_command"})

    def _one_shot(self) -> Outcome:
        token = secrets.token_hex(16)
        name = f"wpgate-opcache-{secrets.token_hex(8)}.php"
        path = f"{self.target.site.path}/{name}"
        url = f"{self.base_url}/{name}"
        transport = self.target.transport
        ran = f"one-shot request {self.base_url}/wpgate-opcache-….php"
        try:
            transport.check(Command.of("sh", "-c", 'umask 022 && cat > "$1"', "sh", path),
                            input=(_RESET_FILE % {"token": token}).encode())
            try:
                with cache_http.client() as http:
                    response = cache_http.send(http, "GET", url + f"?token={token}", what="opcache", attempts=2,
                                               shown_url=url)
            except PurgeFailed as failure:
                raise PurgeFailed(f"{failure.message}: set opcache.reload_command, or opcache.url when the "
                                  "site's URL does not reach its web server", {"layer": self.name}) from None
        finally:
            left = self._remove(path)
        answer = _answer(response, token)
        if answer is None:
            raise PurgeFailed(f"opcache: {url} answered {response.status_code}, not wpgate's reset: is `path` the "
                              "web root of `url`? Set opcache.url (the web server behind a CDN) or "
                              "opcache.reload_command", {"layer": self.name, "status": response.status_code})
        if left:
            raise PurgeFailed(f"opcache: the one-shot file {path} could not be removed: {left}; remove it by hand",
                              {"layer": self.name})
        details = {"how": "one-shot request", "sapi": answer.get("sapi"), "php": answer.get("php")}
        if not answer.get("enabled"):
            return Outcome(self.name, ran, f"the web server's PHP ({answer.get('sapi')}) runs without OPcache: "
                                           "nothing to reset", details)
        if not answer.get("reset"):
            raise PurgeFailed("opcache: opcache_reset() was refused in the web server's PHP "
                              f"(opcache.restrict_api is {answer.get('restrict_api')!r}): set opcache.reload_command",
                              {"layer": self.name, **details})
        return Outcome(self.name, ran, f"opcache_reset() ran in the web server's PHP ({answer.get('sapi')}); "
                                       "the file is gone", details)

    def _remove(self, path: str) -> str | None:
        """Remove the one-shot file (it may have removed itself); what went wrong, if anything."""
        try:
            self.target.transport.check(Command.of("rm", "-f", "--", path))
            if self.target.transport.exists(path):
                return "it is still there"
        except TransportError as error:
            return str(error)
        return None


def _answer(response: httpx.Response, token: str) -> dict | None:
    if response.status_code != 200:
        return None
    try:
        answer = json.loads(response.text)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) and answer.get("wpgate") == token else None
