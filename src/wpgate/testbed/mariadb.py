"""A private MariaDB server for the test bed: its own data folder, socket and loopback port."""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

from wpgate.testbed.process import ManagedProcess, TestBedError, free_port, run, socket_path

_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")

# Small and fast: a test database holds a few hundred rows and may lose them on a crash.
_SERVER_OPTIONS = (
    "--skip-log-bin",
    "--skip-name-resolve",
    "--performance-schema=OFF",
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=8M",
    "--innodb-flush-log-at-trx-commit=0",
    "--innodb-doublewrite=0",
    "--max-connections=100",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_unicode_ci",
)


def _mariadbd() -> str:
    for name in ("mariadbd", "mysqld"):
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
        if found:
            return found
    raise TestBedError("mariadbd not found: install the Debian package mariadb-server")


class MariaDB:
    """`start()`, then `create_database()` per site; `sql()` runs statements as root."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.datadir = workdir / "data"
        self.socket_path = socket_path(workdir, "mariadb.sock")
        self.log_path = workdir / "mariadb.log"
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.root_user = "root"
        self.process: ManagedProcess | None = None

    @property
    def db_host(self) -> str:
        """DB_HOST as a wp-config.php on this machine writes it."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.datadir.exists():
            run(["mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}",
                 "--user=root", "--auth-root-authentication-method=normal", "--skip-test-db",
                 # Its temporary tables in a folder of its own: parallel test processes share $TMPDIR.
                 f"--tmpdir={self.workdir}", *_SERVER_OPTIONS], what="mariadb-install-db", timeout=120)
        self.process = ManagedProcess("mariadbd", [
            _mariadbd(), "--no-defaults", f"--datadir={self.datadir}", "--user=root",
            f"--socket={self.socket_path}", f"--port={self.port}", f"--bind-address={self.host}",
            f"--pid-file={self.workdir / 'mariadb.pid'}", f"--log-error={self.log_path}",
            f"--tmpdir={self.workdir}", *_SERVER_OPTIONS,
        ], log_path=self.workdir / "mariadbd.out")
        self.process.start()
        self.process.wait_until(self._answers, f"answering on {self.socket_path}", timeout=60,
                                extra_logs=[self.log_path])

    def _answers(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            self.sql("SELECT 1")
        except TestBedError:
            return False
        return True

    def client_argv(self, database: str | None = None) -> list[str]:
        """The `mariadb` client as root over the socket, in batch mode without column names."""
        argv = ["mariadb", "--no-defaults", f"--socket={self.socket_path}",
                f"--user={self.root_user}", "--batch", "--skip-column-names"]
        if database:
            argv.append(f"--database={database}")
        return argv

    def sql(self, statement: str, database: str | None = None) -> str:
        """Run SQL as root; its output, tab-separated rows without a header."""
        return run(self.client_argv(database), input=statement, what="mariadb", timeout=60)

    def create_database(self, name: str, *, scratch_databases: bool = True) -> tuple[str, str, str]:
        """A new database with its own user (rights on it and its wpgate scratch copies): (db, user, password).
        Without `scratch_databases` the user has rights on its own database only, as on most hosts."""
        if not _NAME.match(name):
            raise TestBedError(f"database name {name!r} must be letters, digits and _")
        user = name[:80]
        password = secrets.token_hex(12)
        statements = [f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"]
        # wpgate's restore check makes a scratch copy named `<db>_wpgate_...`: the user may create
        # those (a wildcard grant, `_` escaped so it matches only itself) and no other database.
        scratch = name.replace("_", "\\_") + "\\_wpgate\\_%"
        for host in ("127.0.0.1", "localhost"):
            statements.append(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}';")
            statements.append(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'{host}';")
            if scratch_databases:
                statements.append(f"GRANT ALL PRIVILEGES ON `{scratch}`.* TO '{user}'@'{host}';")
        self.sql("\n".join(statements))
        return name, user, password

    def drop_database(self, name: str) -> None:
        if not _NAME.match(name):
            raise TestBedError(f"database name {name!r} must be letters, digits and _")
        self.sql(f"DROP DATABASE IF EXISTS `{name}`; DROP DATABASE IF EXISTS `{name}_wpgate_verify`;"
                 f" DROP USER IF EXISTS '{name}'@'127.0.0.1';"
                 f" DROP USER IF EXISTS '{name}'@'localhost';")

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=30)

    @property
    def pids(self) -> set[int]:
        return set(self.process.pids_seen) if self.process else set()
