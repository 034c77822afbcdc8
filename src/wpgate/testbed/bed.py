"""Real WordPress sites on this machine, for tests and `wpgate demo`: built, served, torn down.

A TestBed owns one private MariaDB, the sites it creates (each a real core copy with its own
database, web server and optional Varnish) and the servers tests add (`service`); `close()` stops all of them.

Sites of a kind (core, plugins, themes, active plugins, theme) asked for more than once are
installed for real the first two times; the second is kept as a snapshot (its files and a dump of
its database), and later sites of that kind are copies of it with their own database, credentials,
salts, URL and name. (Snapshotting every kind would keep a copy of most sites for nothing.)
"""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from wpgate.testbed.cores import core_dir
from wpgate.testbed.mariadb import MariaDB
from wpgate.testbed.process import (
    TestBedError, forget_cli_code, forget_temporary_root, free_port, install_cleanup_hooks,
    register_temporary_root, run,
)
from wpgate.testbed.servers import NginxFpm, PhpBuiltinServer, Server, Varnish, template

_SITE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,30}$")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SALT_NAMES = ("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
               "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT")


def php_string(value: str) -> str:
    """`value` as a single-quoted PHP string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def http_get(url: str, *, host: str | None = None, timeout: float = 30.0,
             method: str = "GET") -> tuple[int, dict[str, str], str]:
    """(status, headers, body) of one request, redirects not followed, errors as statuses."""
    request = urllib.request.Request(url, method=method)
    if host:
        request.add_header("Host", host)

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            return (response.status, dict(response.headers.items()),
                    response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers.items()), error.read().decode("utf-8", "replace")


@dataclass(eq=False)
class Site:
    """One WordPress site of the bed: its files, database, admin account and servers."""

    name: str
    path: Path
    url: str
    origin_url: str
    db_name: str
    db_user: str
    db_password: str = field(repr=False)
    db_host: str
    admin_user: str
    admin_password: str = field(repr=False)
    admin_email: str
    core: str
    mariadb: MariaDB
    server: Server | None = None
    varnish: Varnish | None = None
    runner_path: Path | None = None

    @property
    def debug_log(self) -> Path:
        return self.path / "wp-content" / "debug.log"

    @property
    def plugins_dir(self) -> Path:
        return self.path / "wp-content" / "plugins"

    @property
    def themes_dir(self) -> Path:
        return self.path / "wp-content" / "themes"

    @property
    def host(self) -> str:
        """The Host header visitors send (the public URL's host:port)."""
        return self.url.split("://", 1)[1].rstrip("/")

    @property
    def servers(self) -> list[Server]:
        return [server for server in (self.server, self.varnish) if server is not None]

    @property
    def pids(self) -> set[int]:
        found: set[int] = set()
        for server in self.servers:
            found |= server.pids
        return found

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def php(self, code: str, timeout: float = 120.0) -> str:
        """Run PHP `code` (no `<?php`) inside this WordPress from the command line, with
        outgoing HTTP blocked; its stdout. Raises TestBedError with stderr on failure."""
        return self._run_php(code, timeout=timeout)

    def _run_php(self, code: str, *, install: bool = False, timeout: float = 120.0) -> str:
        if self.runner_path is None:
            raise TestBedError(f"site {self.name}: no PHP runner")
        argv = ["php", "-d", "display_errors=stderr", "-d", "sendmail_path=/bin/true",
                str(self.runner_path), str(self.path), self.url]
        if install:
            argv.append("install")
        try:
            result = subprocess.run(argv, input=code, capture_output=True, text=True,
                                    timeout=timeout, cwd=self.path)
        except subprocess.TimeoutExpired as error:
            raise TestBedError(f"site {self.name}: PHP timed out after {timeout:.0f}s") from error
        if result.returncode != 0:
            details = "\n".join(part for part in (result.stderr.strip(), result.stdout.strip())
                                if part)
            raise TestBedError(f"site {self.name}: PHP exited with status {result.returncode}"
                               f"\n{details}")
        return result.stdout

    def dump(self) -> str:
        """The site's whole database as the dump client writes it (no dump date: equal data, equal text)."""
        return run(_dump_argv(self), what="mariadb-dump", timeout=120)

    def sql(self, statement: str) -> str:
        """Run SQL on this site's database (as MariaDB's root); tab-separated rows."""
        return self.mariadb.sql(statement, database=self.db_name)

    def install_plugin(self, slug: str, version: str) -> Path:
        """Write fixture plugin `slug` at `version` into wp-content/plugins (not activated)."""
        from wpgate.testbed import fixtures

        return fixtures.write_plugin(self.plugins_dir, _checked_slug(slug), version)

    def install_theme(self, slug: str, version: str) -> Path:
        """Write fixture theme `slug` at `version` into wp-content/themes."""
        from wpgate.testbed import fixtures

        return fixtures.write_theme(self.themes_dir, _checked_slug(slug), version)

    def activate_plugin(self, slug: str) -> None:
        self.activate_plugins([slug])

    def activate_plugins(self, slugs: Iterable[str]) -> None:
        wanted = [_checked_slug(slug) for slug in slugs]
        if not wanted:
            return
        self.php(_PLUGIN_FILE_LOOKUP + f"""
foreach (array({", ".join(php_string(slug) for slug in wanted)}) as $slug) {{
    $file = wpgate_plugin_file($slug);
    $result = activate_plugin($file, '', false, true);
    if (is_wp_error($result)) {{
        fwrite(STDERR, "cannot activate $slug: " . $result->get_error_message() . "\\n");
        exit(1);
    }}
}}
""")

    def deactivate_plugin(self, slug: str) -> None:
        self.php(_PLUGIN_FILE_LOOKUP + f"""
deactivate_plugins(wpgate_plugin_file({php_string(_checked_slug(slug))}), true);
""")

    def switch_theme(self, slug: str) -> None:
        self.php(f"""
$theme = wp_get_theme({php_string(_checked_slug(slug))});
if (!$theme->exists() || $theme->errors()) {{
    fwrite(STDERR, 'theme ' . $theme->get_stylesheet() . ' is missing or broken');
    exit(1);
}}
switch_theme($theme->get_stylesheet());
""")

    def stop(self) -> None:
        """Stop this site's servers (Varnish first). Safe to call twice."""
        for server in reversed(self.servers):
            server.stop()


@dataclass(frozen=True)
class _Snapshot:
    """A freshly built site's files and database, to copy new sites of the same kind from."""

    files: Path
    dump: Path
    url: str
    admin_password: str = field(repr=False)


_PLUGIN_FILE_LOOKUP = r"""
require_once ABSPATH . 'wp-admin/includes/plugin.php';
function wpgate_plugin_file($slug) {
    foreach (array_keys(get_plugins()) as $file) {
        if (dirname($file) === $slug || $file === $slug . '.php') {
            return $file;
        }
    }
    fwrite(STDERR, "no plugin $slug in " . WP_PLUGIN_DIR . "\n");
    exit(1);
}
"""


def _checked_slug(slug: str) -> str:
    if not _SLUG.match(slug):
        raise TestBedError(f"{slug!r} is not a plugin or theme slug")
    return slug


_INSTALL_CODE = """
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
$result = wp_install(%(title)s, %(user)s, %(email)s, true, '', wp_slash(%(password)s));
if (is_wp_error($result) || empty($result['user_id'])) {
    fwrite(STDERR, 'wp_install failed');
    exit(1);
}
update_option('siteurl', %(url)s);
update_option('home', %(url)s);
update_option('blog_public', '1');
global $wp_rewrite;
$wp_rewrite->set_permalink_structure('/%%postname%%/');
flush_rewrite_rules(true);
echo get_option('home');
"""


class TestBed:
    """Real WordPress sites on 127.0.0.1, every process stopped by `close()`.

    `root` None: a temporary folder removed on close; a given root is kept.
    """

    __test__ = False  # a class named Test* that pytest must not collect

    def __init__(self, root: Path | None = None) -> None:
        install_cleanup_hooks()
        self._owns_root = root is None
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="wpgate-bed-"))
            register_temporary_root(root)
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.mariadb: MariaDB | None = None
        self.sites: dict[str, Site] = {}
        self._services: dict[str, Any] = {}
        self._stack: list[object] = []  # what to stop, in start order
        self._snapshots: dict[str, _Snapshot] = {}
        self._kinds_built: dict[str, int] = {}
        self._closed = False
        self.runner_path = self.root / "wp-runner.php"
        self.runner_path.write_text(template("wp-runner.php"))

    def __enter__(self) -> "TestBed":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise TestBedError("this test bed is closed")

    def database(self) -> MariaDB:
        """The bed's MariaDB, started on first use."""
        self._check_open()
        if self.mariadb is None:
            mariadb = MariaDB(self.root / "mariadb")
            self._stack.append(mariadb)
            mariadb.start()
            self.mariadb = mariadb
        return self.mariadb

    def service(self, name: str, make: Callable[[], Any]) -> Any:
        """A server the tests add to the bed (tests/support/sshd.py's sshd): made and started on first use,
        the same one after, stopped when the bed closes."""
        self._check_open()
        if name not in self._services:
            server = make()
            self._stack.append(server)
            server.start()
            self._services[name] = server
        return self._services[name]

    def create_site(self, name: str, core: str = "6.5.5", *,
                    plugins: dict[str, str] | None = None,
                    themes: dict[str, str] | None = None,
                    active_plugins: list[str] | None = None,
                    theme: str | None = None, server: str = "php", varnish: bool = False,
                    opcache_validate_timestamps: bool = True, own_database_only: bool = False) -> Site:
        """A running WordPress `core` site at ROOT/sites/NAME with fixture plugins and themes.

        `server` is "php" (php -S, no OPcache) or "nginx" (nginx + php-fpm with OPcache).
        `active_plugins` defaults to every plugin given. With `varnish`, `site.url` is
        Varnish's and `site.origin_url` the web server's. With `own_database_only`, the site's database
        user has rights on its own database and nothing else (no wpgate scratch database).
        """
        self._check_open()
        if not _SITE_NAME.match(name):
            raise TestBedError(f"site name {name!r}: use a-z, 0-9, _ and -, up to 31 characters")
        if name in self.sites:
            raise TestBedError(f"site {name!r} exists already in this test bed")
        if server not in ("php", "nginx"):
            raise TestBedError(f"server {server!r}: use 'php' or 'nginx'")
        if server == "php" and not opcache_validate_timestamps:
            raise TestBedError("opcache_validate_timestamps=False needs server='nginx' "
                               "(php -S runs without OPcache)")
        plugins = dict(plugins or {})
        themes = dict(themes or {})
        active = list(plugins) if active_plugins is None else list(active_plugins)
        for slug in [*plugins, *themes, *active, *([theme] if theme else [])]:
            _checked_slug(slug)
        unknown = [slug for slug in active if slug not in plugins]
        if unknown:
            raise TestBedError(f"active_plugins {unknown} are not among the site's plugins")

        core_dir(core)  # built (once per machine) before anything of the site exists
        mariadb = self.database()
        path = self.root / "sites" / name
        services = self.root / "services" / name
        origin_port = free_port()
        public_port = free_port() if varnish else origin_port
        db_name = "wp_" + name.replace("-", "_")
        if path.exists():
            raise TestBedError(f"{path} exists already")
        site: Site | None = None
        database_made = False
        try:
            db_name, db_user, db_password = mariadb.create_database(db_name, scratch_databases=not own_database_only)
            database_made = True
            site = Site(
                name=name, path=path, url=f"http://127.0.0.1:{public_port}",
                origin_url=f"http://127.0.0.1:{origin_port}", db_name=db_name, db_user=db_user,
                db_password=db_password, db_host=mariadb.db_host, admin_user="admin",
                admin_password=secrets.token_urlsafe(18), admin_email=f"admin@{name}.test",
                core=core, mariadb=mariadb, runner_path=self.runner_path,
            )
            self.sites[name] = site
            kind = _kind_of(core, plugins, themes, active, theme)
            snapshot = self._snapshots.get(kind)
            if snapshot is not None and len(snapshot.url) == len(site.url):
                self._copy_snapshot(snapshot, site)
            else:
                self._build(site, plugins, themes, active, theme)
                self._kinds_built[kind] = self._kinds_built.get(kind, 0) + 1
                if kind not in self._snapshots and self._kinds_built[kind] == 2:
                    self._snapshots[kind] = self._snapshot(site, kind)
            if server == "php":
                site.server = PhpBuiltinServer(path, origin_port, workdir=services / "php")
            else:
                site.server = NginxFpm(path, origin_port, workdir=services / "nginx",
                                       opcache_validate_timestamps=opcache_validate_timestamps)
            self._stack.append(site.server)
            site.server.start()
            if varnish:
                site.varnish = Varnish(origin_port, public_port, workdir=services / "varnish")
                self._stack.append(site.varnish)
                site.varnish.start()
            self._check_answers(site)
        except BaseException:
            # Leave nothing of a half-made site: a retry with the same name starts clean.
            if site is not None:
                site.stop()
            self.sites.pop(name, None)
            if database_made:
                try:
                    mariadb.drop_database(db_name)
                except TestBedError:
                    pass
            shutil.rmtree(path, ignore_errors=True)
            raise
        return site

    def remove_site(self, site: Site) -> None:
        """Stop a site and delete its files and database: for tests that make many sites in turn."""
        self._check_open()
        site.stop()
        site.mariadb.drop_database(site.db_name)
        shutil.rmtree(site.path, ignore_errors=True)
        forget_cli_code(site.path)
        shutil.rmtree(self.root / "services" / site.name, ignore_errors=True)
        self.sites.pop(site.name, None)

    def _build(self, site: Site, plugins: dict[str, str], themes: dict[str, str], active: list[str],
               theme: str | None) -> None:
        """Install a site for real: core files, wp-config.php, wp_install(), plugins and themes."""
        # A real copy: WordPress's upgrader rewrites files in place, so a hard link
        # would change the cached core (and every other site made from it).
        _copy_tree(core_dir(site.core), site.path, links="followed")
        self._write_wp_config(site)
        self._install(site)
        for slug, version in plugins.items():
            site.install_plugin(slug, version)
        for slug, version in themes.items():
            site.install_theme(slug, version)
        site.activate_plugins(active)
        if theme:
            site.switch_theme(theme)

    def _snapshot(self, site: Site, kind: str) -> _Snapshot:
        folder = self.root / "snapshots" / kind
        _copy_tree(site.path, folder / "files")
        (folder / "files" / "wp-config.php").unlink()
        dump = folder / "database.sql"
        dump.write_text(site.dump())
        return _Snapshot(files=folder / "files", dump=dump, url=site.url,
                         admin_password=site.admin_password)

    def _copy_snapshot(self, snapshot: _Snapshot, site: Site) -> None:
        """A new site from a snapshot: its files copied, its database loaded with the new URL (of the
        same length, so serialized values stay valid), then its own name, email and wp-config."""
        _copy_tree(snapshot.files, site.path)
        site.admin_password = snapshot.admin_password
        self._write_wp_config(site)
        dump = snapshot.dump.read_text().replace(snapshot.url, site.url)
        site.mariadb.sql(dump, database=site.db_name)
        site.sql(
            f"UPDATE wp_options SET option_value = {_sql_string(f'wpgate {site.name}')} WHERE option_name = 'blogname';"
            f"UPDATE wp_options SET option_value = {_sql_string(site.admin_email)} WHERE option_name = 'admin_email';"
            f"UPDATE wp_users SET user_email = {_sql_string(site.admin_email)} WHERE user_login = 'admin';")

    def _write_wp_config(self, site: Site) -> None:
        salts = "\n".join(f"define( '{key}', '{secrets.token_urlsafe(48)}' );"
                          for key in _SALT_NAMES)
        (site.path / "wp-config.php").write_text(template(
            "wp-config.php", DB_NAME=site.db_name, DB_USER=site.db_user,
            DB_PASSWORD=site.db_password, DB_HOST=site.db_host, SALTS=salts))

    def _install(self, site: Site) -> None:
        code = _INSTALL_CODE % {
            "title": php_string(f"wpgate {site.name}"), "user": php_string(site.admin_user),
            "email": php_string(site.admin_email), "password": php_string(site.admin_password),
            "url": php_string(site.url),
        }
        home = site._run_php(code, install=True).strip()
        if home != site.url:
            raise TestBedError(f"site {site.name}: installed, but home is {home!r}, "
                               f"not {site.url!r}")

    def _check_answers(self, site: Site) -> None:
        # Ask the web server itself, with the public Host header, so the check leaves
        # nothing in Varnish's cache; then make sure Varnish answers too.
        deadline = time.monotonic() + 30
        status, body = 0, ""
        while time.monotonic() < deadline:
            try:
                status, _, body = http_get(site.origin_url + "/", host=site.host)
            except OSError as error:
                status, body = 0, str(error)
            if status not in (0, 502, 503, 504):  # only a server still starting is retried
                break
            time.sleep(0.2)
        if status != 200:
            raise TestBedError(f"site {site.name}: GET {site.origin_url}/ answered {status}\n"
                               f"{body[-2000:]}\n{_logs_of(site)}")
        if site.varnish:
            status, _, body = http_get(site.url + "/wp-login.php")
            if status != 200:
                raise TestBedError(f"site {site.name}: Varnish at {site.url} answered {status}"
                                   f"\n{site.varnish.processes[0].log_tail()}")

    @property
    def pids(self) -> set[int]:
        """Every process id the bed's services ran (for checking that they are gone)."""
        found: set[int] = set()
        for item in self._stack:
            found |= getattr(item, "pids", set())
        return found

    @property
    def ports(self) -> list[int]:
        found: list[int] = []
        for item in self._stack:
            port = getattr(item, "port", None)
            if port:
                found.append(port)
        return found

    def close(self) -> None:
        """Stop everything the bed started, last started first; remove a temporary root.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        errors: list[str] = []
        for item in reversed(self._stack):
            try:
                item.stop()  # type: ignore[attr-defined]
            except Exception as error:  # noqa: BLE001 - stop the rest, report at the end
                errors.append(f"{type(item).__name__}: {error}")
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)
            forget_temporary_root(self.root)
        if errors:
            raise TestBedError("test bed: could not stop everything: " + "; ".join(errors))


def _kind_of(core: str, plugins: dict[str, str], themes: dict[str, str], active: list[str],
             theme: str | None) -> str:
    """A name for what a site is built from: sites of the same kind are copies of one snapshot."""
    described = repr((core, sorted(plugins.items()), sorted(themes.items()), active, theme))
    return hashlib.sha256(described.encode()).hexdigest()[:16]


def _dump_argv(site: Site) -> list[str]:
    return ["mariadb-dump", "--no-defaults", f"--socket={site.mariadb.socket_path}",
            f"--user={site.mariadb.root_user}", "--skip-dump-date", "--single-transaction",
            "--skip-comments", site.db_name]


def _copy_tree(source: Path, destination: Path, *, links: str = "kept") -> None:
    """A new folder `destination` with `source`'s files, modes and modification times, the links kept as links
    or `followed`. GNU cp: copying a site's few thousand files costs half the CPU of shutil.copytree."""
    if destination.exists():
        raise TestBedError(f"{destination} exists already")
    destination.parent.mkdir(parents=True, exist_ok=True)
    follow = ["-R", "-L", "--preserve=mode,timestamps"] if links == "followed" else ["-a"]
    run(["cp", *follow, "--", str(source), str(destination)], what=f"copying {source}", timeout=300)


def _sql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _logs_of(site: Site) -> str:
    parts: list[str] = []
    for server in site.servers:
        for process in server.processes:
            parts.append(f"--- {process.name} ({process.log_path.name}) ---\n"
                         f"{process.log_tail()}")
    if site.debug_log.exists():
        tail = "\n".join(site.debug_log.read_text(errors="replace").splitlines()[-20:])
        parts.append(f"--- debug.log ---\n{tail}")
    return "\n".join(parts)
