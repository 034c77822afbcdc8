"""The web servers a test site runs behind: PHP's built-in server, nginx with php-fpm, Varnish."""

from __future__ import annotations

import glob
import shutil
from importlib import resources
from pathlib import Path

from wpgate.testbed.process import ManagedProcess, TestBedError, free_port, run, socket_path


def template(name: str, **values: object) -> str:
    """A file of templates/ with each {{KEY}} replaced by its value."""
    text = resources.files("wpgate.testbed").joinpath("templates", name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    if "{{" in text:
        raise TestBedError(f"template {name}: a placeholder was left unfilled")
    return text


def _binary(name: str, package: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise TestBedError(f"{name} not found: install the Debian package {package}")
    return found


def php_fpm_binary() -> str:
    """Debian names php-fpm after its PHP version (php-fpm8.2): take the one installed."""
    candidates = sorted(glob.glob("/usr/sbin/php-fpm*"))
    if not candidates:
        raise TestBedError("php-fpm not found in /usr/sbin: install the Debian package php-fpm")
    return candidates[-1]


class Server:
    """What every server here has: a port, a work folder, its processes, stop()."""

    name = "server"

    def __init__(self, workdir: Path, port: int | None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.processes: list[ManagedProcess] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        """Stop every process of this server (last started first). Safe to call twice."""
        for process in reversed(self.processes):
            process.stop()

    @property
    def pids(self) -> set[int]:
        found: set[int] = set()
        for process in self.processes:
            found |= process.pids_seen
        return found

    def _launch(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        try:
            process.start()
        except BaseException:
            self.stop()
            raise
        return process

    def _guard(self) -> "_StopOnError":
        return _StopOnError(self)


class _StopOnError:
    def __init__(self, server: Server) -> None:
        self.server = server

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        if error is not None:
            self.server.stop()


class PhpBuiltinServer(Server):
    """`php -S 127.0.0.1:PORT` with 4 workers and a router for pretty permalinks. OPcache is on in
    PHP's built-in server as in php-fpm (only the `cli` SAPI leaves it off), with timestamps checked every
    2 seconds: code changed on disk may run old for that long unless OPcache is reset."""

    name = "php -S"

    def __init__(self, root: Path, port: int | None = None, *, workdir: Path | None = None,
                 php: str = "php") -> None:
        super().__init__(workdir or root.parent / f".{root.name}-php", port)
        self.root = root
        self.php = php
        self.router_path = self.workdir / "router.php"
        self.log_path = self.workdir / "php-server.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.router_path.write_text(template("router.php"))
        with self._guard():
            process = self._launch(ManagedProcess(self.name, [
                _binary(self.php, "php-cli"), "-d", "sendmail_path=/bin/true",
                "-d", "memory_limit=256M", "-d", "variables_order=EGPCS",
                "-S", f"127.0.0.1:{self.port}", "-t", str(self.root), str(self.router_path),
            ], log_path=self.log_path, cwd=self.root, env={"PHP_CLI_SERVER_WORKERS": "4"}))
            process.wait_for_port(self.port)


class NginxFpm(Server):
    """nginx in front of a private php-fpm (a unix socket), OPcache on as on real hosts.

    With `opcache_validate_timestamps=False` php-fpm keeps serving the code it compiled
    until OPcache is reset, whatever changes on disk, as production hosts tuned for speed do.
    """

    name = "nginx+php-fpm"

    def __init__(self, root: Path, port: int | None = None, *, workdir: Path | None = None,
                 opcache_validate_timestamps: bool = True) -> None:
        super().__init__(workdir or root.parent / f".{root.name}-nginx", port)
        self.root = root
        self.opcache_validate_timestamps = opcache_validate_timestamps
        self.fpm_socket = socket_path(self.workdir, "php-fpm.sock")
        self.fpm_config = self.workdir / "php-fpm.conf"
        self.fpm_log = self.workdir / "php-fpm.log"
        self.nginx_config = self.workdir / "nginx.conf"
        self.nginx_error_log = self.workdir / "nginx-error.log"
        self.access_log = self.workdir / "nginx-access.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for folder in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.workdir / "temp" / folder).mkdir(parents=True, exist_ok=True)
        self.fpm_config.write_text(template("php-fpm.conf", WORKDIR=self.workdir,
                                            SOCKET=self.fpm_socket))
        self.nginx_config.write_text(template("nginx.conf", WORKDIR=self.workdir,
                                              SOCKET=self.fpm_socket, PORT=self.port,
                                              ROOT=self.root))
        validate = "1" if self.opcache_validate_timestamps else "0"
        with self._guard():
            fpm = self._launch(ManagedProcess("php-fpm", [
                php_fpm_binary(), "-F", "-R", "-y", str(self.fpm_config),
                "-d", "opcache.enable=1",
                "-d", f"opcache.validate_timestamps={validate}",
                # When timestamps are checked, check on every request: a test that changes a
                # file sees the change at once, not up to two seconds later.
                "-d", "opcache.revalidate_freq=0",
                # OPcache skips files changed in the last 2 seconds by default; a test site's
                # files are all that new, a production site's are not: cache them as a host
                # would cache its long-deployed code.
                "-d", "opcache.file_update_protection=0",
            ], log_path=self.workdir / "php-fpm.out"))
            fpm.wait_until(self.fpm_socket.exists, f"listening on {self.fpm_socket}",
                           extra_logs=[self.fpm_log])
            nginx = self._launch(ManagedProcess("nginx", [
                _binary("nginx", "nginx"), "-p", str(self.workdir), "-c", str(self.nginx_config),
                "-e", str(self.nginx_error_log), "-g", "daemon off;",
            ], log_path=self.workdir / "nginx.out"))
            nginx.wait_for_port(self.port, extra_logs=[self.nginx_error_log])


class Varnish(Server):
    """varnishd in front of a backend port: caches anonymous pages, takes PURGE and BAN from
    127.0.0.1. `workdir` is its -n folder, for `varnishadm -n`."""

    name = "varnishd"

    def __init__(self, backend_port: int, port: int | None = None, *, workdir: Path) -> None:
        super().__init__(workdir, port)
        self.backend_port = backend_port
        self.vcl_path = workdir.parent / f"{workdir.name}.vcl"
        self.log_path = workdir.parent / f"{workdir.name}.log"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.vcl_path.write_text(template("varnish.vcl", BACKEND_PORT=self.backend_port))
        with self._guard():
            process = self._launch(ManagedProcess(self.name, [
                _binary("varnishd", "varnish"), "-F", "-j", "none", "-n", str(self.workdir),
                "-a", f"127.0.0.1:{self.port}", "-T", "127.0.0.1:0", "-f", str(self.vcl_path),
                "-s", "malloc,32m", "-p", "default_grace=0",
            ], log_path=self.log_path))
            process.wait_for_port(self.port)

    def admin(self, *command: str) -> str:
        """Run a varnishadm command against this varnishd."""
        return run(["varnishadm", "-n", str(self.workdir), *command], what="varnishadm")
