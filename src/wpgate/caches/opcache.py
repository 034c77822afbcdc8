"""The web server's PHP, reached by one-shot PHP files requested over HTTP: its OPcache reset (or a
reload command), and the drain, a wait for the requests it was running when maintenance went up.

The CLI process that ran the update has an OPcache of its own; the web server's PHP keeps serving
the code it compiled (for ever, when it does not check timestamps) until its cache is reset. A
one-shot file has a random name and token, deletes itself as it runs, and is removed by wpgate
whatever the request gave.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import httpx

from wpgate.caches import CacheSite, Outcome, PurgeFailed
from wpgate.caches import http as cache_http
from wpgate.command import Command
from wpgate.errors import TransportError

log = logging.getLogger(__name__)

# How every one-shot file begins, after its opening comment: it deletes itself, answers JSON that no cache
# keeps, and answers nothing (403) to a request without its token.
_ONE_SHOT_PREAMBLE = """@unlink( __FILE__ );
header( 'Content-Type: application/json' );
header( 'Cache-Control: no-store, private' );
if ( ! isset( $_GET['token'] ) || ! hash_equals( '%(token)s', (string) $_GET['token'] ) ) {
	http_response_code( 403 );
	exit;
}
"""

_RESET_FILE = """<?php
// wpgate: a one-shot OPcache reset for the web server's PHP. It deletes itself first.
""" + _ONE_SHOT_PREAMBLE + """$status  = function_exists( 'opcache_get_status' ) ? @opcache_get_status( false ) : false;
$enabled = is_array( $status ) && ! empty( $status['opcache_enabled'] );
// A reset asked for while other requests still ran waits for them; meanwhile OPcache serves nothing it compiled.
$pending = is_array( $status ) && ! empty( $status['restart_pending'] );
$reset   = $enabled && function_exists( 'opcache_reset' ) ? opcache_reset() : false;
echo json_encode( array( 'wpgate' => '%(token)s', 'enabled' => $enabled, 'pending' => $pending, 'reset' => $reset,
	'sapi' => PHP_SAPI,
	'php' => PHP_VERSION, 'restrict_api' => (string) ini_get( 'opcache.restrict_api' ) ) );
"""

# The longest wait for requests still running when maintenance went up; one still running then (an export,
# a stuck request) is left to finish on its own, and the answer says so.
DRAIN_LIMIT = 5.0

_DRAIN_FILE = """<?php
// wpgate: the drain. WordPress's maintenance file is up, so a request that begins now gets its 503 page;
// this waits (at most %(limit)s s) until the requests the web server's PHP was running have ended, and
// answers what it saw. It deletes itself (the built-in server's with several workers is removed by wpgate).
header( 'Content-Type: application/json' );
header( 'Cache-Control: no-store, private' );
if ( ! isset( $_GET['token'] ) || ! hash_equals( '%(token)s', (string) $_GET['token'] ) ) {
	@unlink( __FILE__ );
	http_response_code( 403 );
	exit;
}
// The built-in server with several workers: PHP_CLI_SERVER_WORKERS processes and their parent each run one
// request at a time, and none tells what. A process begins one of the drain's held requests only once it
// has finished the request it ran, so when every one of them is in a held request at the same time, each
// request that began before has ended. Each held request writes its process's id in the tally and waits
// until all are there.
$workers = 'cli-server' === PHP_SAPI ? max( 1, (int) getenv( 'PHP_CLI_SERVER_WORKERS' ) ) : 0;
$servers = $workers > 1 ? $workers + 1 : $workers;
$tally   = sys_get_temp_dir() . '/wpgate-drain-%(token)s.tally';
function wpgate_counted( $tally ) {
	$ids = preg_split( '/\\s+/', (string) @file_get_contents( $tally ), -1, PREG_SPLIT_NO_EMPTY );
	return count( array_unique( $ids ) );
}
if ( isset( $_GET['held'] ) ) {
	$until = (float) $_GET['held'];
	$open  = $servers > 1 && microtime( true ) < $until ? @fopen( $tally, 'r+' ) : false;  // gone: it is over
	if ( $open ) {
		flock( $open, LOCK_EX );
		fseek( $open, 0, SEEK_END );
		fwrite( $open, getmypid() . "\\n" );
		fflush( $open );
		flock( $open, LOCK_UN );
		fclose( $open );
		while ( wpgate_counted( $tally ) < $servers && microtime( true ) < $until && is_file( $tally ) ) {
			usleep( 5000 );
		}
	}
	exit;
}
if ( $workers <= 1 ) {
	@unlink( __FILE__ );
}
// php-fpm's scoreboard (no status page needed): pid => [requests it began, the current one's duration].
// A process on the same request keeps the first and a growing second.
function wpgate_busy() {
	$status = function_exists( 'fpm_get_status' ) ? @fpm_get_status() : false;
	if ( ! is_array( $status ) || ! isset( $status['procs'] ) || ! is_array( $status['procs'] ) ) {
		return null;
	}
	$busy = array();
	foreach ( $status['procs'] as $proc ) {
		if ( getmypid() !== (int) $proc['pid'] && ! in_array( $proc['state'], array( 'Idle', 'Starting' ), true ) ) {
			$busy[ (int) $proc['pid'] ] = array( $proc['requests'], $proc['request-duration'] );
		}
	}
	return $busy;
}
$began  = microtime( true );
$answer = array( 'wpgate' => '%(token)s', 'sapi' => PHP_SAPI );
if ( 1 === $workers ) {
	// One worker serves one request at a time: every request that began before this one has ended.
	$answer['running'] = 0;
	$answer['drained'] = true;
} elseif ( $workers > 1 ) {
	$until = $began + %(limit)s;
	file_put_contents( $tally, getmypid() . "\\n" );
	$host = (string) $_SERVER['SERVER_NAME'];
	$host = false !== strpos( $host, ':' ) ? "[$host]" : $host;
	$path = strtok( (string) $_SERVER['REQUEST_URI'], '?' );
	$held = array();
	$hold = function () use ( &$held, $host, $path, $until ) {
		$socket = @stream_socket_client( "tcp://$host:" . (int) $_SERVER['SERVER_PORT'], $errno, $error, 2 );
		if ( $socket ) {
			fwrite( $socket, "GET $path?token=%(token)s&held=$until HTTP/1.0\\r\\nHost: $host\\r\\n\\r\\n" );
			$held[] = $socket;
		}
	};
	for ( $i = 1; $i < $servers; $i++ ) {
		$hold();
	}
	// One more every 50 ms: a process that has taken two waits with the second, and one that finishes a
	// long request later finds the earlier ones taken.
	for ( $tick = 1; wpgate_counted( $tally ) < $servers && microtime( true ) < $until; $tick++ ) {
		usleep( 5000 );
		if ( 0 === $tick %% 10 ) {
			$hold();
		}
	}
	$arrived = wpgate_counted( $tally );
	@unlink( $tally );
	foreach ( $held as $socket ) {
		fclose( $socket );
	}
	// The file stays for the held requests not yet begun (wpgate removes it): they find the tally gone.
	$answer['servers']       = $servers;
	$answer['running']       = null;
	$answer['drained']       = $arrived >= $servers;
	$answer['still_running'] = max( 0, $servers - $arrived );
} else {
	$left              = wpgate_busy();
	$answer['running'] = null === $left ? null : count( $left );
	while ( $left && microtime( true ) - $began < %(limit)s ) {
		usleep( 20000 );
		$now = wpgate_busy();
		if ( null === $now ) {
			$left = null;
			break;
		}
		foreach ( $left as $pid => $was ) {
			if ( ! isset( $now[ $pid ] ) || $now[ $pid ][0] !== $was[0] || $now[ $pid ][1] < $was[1] ) {
				unset( $left[ $pid ] );
			}
		}
	}
	$answer['drained']       = array() === $left;
	$answer['still_running'] = null === $left ? null : count( $left );
}
$answer['waited'] = round( microtime( true ) - $began, 3 );
echo json_encode( $answer );
"""


@dataclass(frozen=True)
class Placed:
    """A one-shot file in the web root: its URL with the token (for the request), the URL as messages
    show it, the token its answer must carry, and its path on the site's host."""

    url: str
    shown_url: str
    token: str
    path: str


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
        ran = f"one-shot request {self.base_url}/wpgate-opcache-….php"
        with self._placed("opcache", _RESET_FILE) as placed:
            try:
                with cache_http.client() as http:
                    response = cache_http.send(http, "GET", placed.url, what="opcache", attempts=2,
                                               shown_url=placed.shown_url)
            except PurgeFailed as failure:
                raise PurgeFailed(f"{failure.message}: set opcache.reload_command, or opcache.url when the "
                                  "site's URL does not reach its web server", {"layer": self.name}) from None
            answer = _answer(response, placed.token)
            if answer is None:
                raise PurgeFailed(f"opcache: {placed.shown_url} answered {response.status_code}, not wpgate's reset: "
                                  "is `path` the web root of `url`? Set opcache.url (the web server behind a CDN) "
                                  "or opcache.reload_command", {"layer": self.name, "status": response.status_code})
        details = {"how": "one-shot request", "sapi": answer.get("sapi"), "php": answer.get("php")}
        if answer.get("pending"):
            return Outcome(self.name, ran, f"a reset of the web server's PHP ({answer.get('sapi')}) was under way "
                                           "already: until it is done, OPcache serves nothing compiled before; "
                                           "the file is gone", details)
        if not answer.get("enabled"):
            return Outcome(self.name, ran, f"the web server's PHP ({answer.get('sapi')}) runs without OPcache: "
                                           "nothing to reset", details)
        if not answer.get("reset"):
            raise PurgeFailed("opcache: opcache_reset() was refused in the web server's PHP "
                              f"(opcache.restrict_api is {answer.get('restrict_api')!r}): set opcache.reload_command",
                              {"layer": self.name, **details})
        return Outcome(self.name, ran, f"opcache_reset() ran in the web server's PHP ({answer.get('sapi')}); "
                                       "the file is gone", details)

    @contextmanager
    def drain_point(self) -> Iterator[Placed | None]:
        """The drain file in the web root while the block runs, for a request made on the site's host (the
        core update's, from WordPress's upgrader). None where the web server is reached by a reload command
        only, or the file cannot be written: the drain is then a fixed wait. A file left behind (it removes
        itself when requested) answers nothing without its token."""
        placed = None
        if not self.config.reload_command:
            try:
                placed = self._place("drain", _DRAIN_FILE, limit=DRAIN_LIMIT)
            except PurgeFailed as failure:
                log.warning("%s", failure.message)
        try:
            yield placed
        finally:
            left = placed and self._remove(placed.path)
            if left:
                log.warning("drain: the one-shot file %s could not be removed: %s", placed.path, left)

    def drain(self, fallback: float) -> dict[str, Any]:
        """Wait until the requests the web server's PHP was running have ended (maintenance is up, so no
        new one reaches WordPress): asked of php-fpm's scoreboard, or of the built-in server by holding a
        request in each of its processes at once. Where the web server cannot tell (mod_php, a reload
        command instead of HTTP, no
        answer), `fallback` seconds. Returns what was seen."""
        started = time.monotonic()
        seen: dict[str, Any] = {}
        with self.drain_point() as placed:
            if placed is not None:
                try:
                    with cache_http.client() as http:
                        response = http.get(placed.url, timeout=DRAIN_LIMIT + 10)
                    seen = _answer(response, placed.token) or {"status": response.status_code}
                except httpx.HTTPError as error:
                    seen = {"error": type(error).__name__}
        return finish_drain(seen, fallback, time.monotonic() - started)

    @contextmanager
    def _placed(self, kind: str, program: str, **fields: Any) -> Iterator[Placed]:
        """`program` in the web root for the time of the block, then removed; a file that will not go is an
        error after the block."""
        placed = self._place(kind, program, **fields)
        try:
            yield placed
        finally:
            left = self._remove(placed.path)
        if left:
            raise PurgeFailed(f"{kind}: the one-shot file {placed.path} could not be removed: {left}; remove it by "
                              "hand", {"layer": self.name})

    def _place(self, kind: str, program: str, **fields: Any) -> Placed:
        """`program` written to a random name in the web root (it deletes itself when requested)."""
        token = secrets.token_hex(16)
        name = f"wpgate-{kind}-{secrets.token_hex(8)}.php"
        path = f"{self.target.site.path}/{name}"
        shown_url = f"{self.base_url}/{name}"
        try:
            self.target.transport.check(Command.of("sh", "-c", 'umask 022 && cat > "$1"', "sh", path),
                                        input=(program % {"token": token, **fields}).encode())
        except TransportError as error:
            raise PurgeFailed(f"{kind}: the one-shot file {path} could not be written: {error}",
                              {"layer": self.name}) from None
        return Placed(f"{shown_url}?token={token}", shown_url, token, path)

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


def finish_drain(seen: dict[str, Any], fallback: float, spent: float) -> dict[str, Any]:
    """The drain's evidence from the web server's answer; where it could not tell, the rest of `fallback`
    seconds is waited here."""
    if seen.get("drained") or seen.get("still_running"):  # still running after DRAIN_LIMIT: left to finish
        return {"how": seen.get("sapi"), "running": seen.get("running"), "waited": round(spent, 3),
                **({"still_running": seen["still_running"]} if seen.get("still_running") else {})}
    rest = max(0.0, fallback - spent)
    time.sleep(rest)
    return {"how": "fixed", "seconds": fallback, "web_server": {k: v for k, v in seen.items() if k != "wpgate"}}
