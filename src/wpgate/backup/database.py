"""The site's database in a backup: credentials in a private options file, the dump client, scratch copies.

The password read from wp-config.php reaches the MariaDB/MySQL client only through an options file
(`--defaults-extra-file`) written in a private temporary folder on the host, its content sent on
standard input: it never appears on a command line, in a log line, a journal or a report.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from wpgate.command import Command, Secret
from wpgate.errors import SiteError
from wpgate.transports import Transport

SQL_CLIENTS = ("mariadb", "mysql")
DUMP_OPTIONS = ("--single-transaction", "--quick", "--routines", "--triggers", "--hex-blob")
# The last line a dump client writes once every table is out (unless comments are turned off).
COMPLETION_LINE = "-- Dump completed"
SCRATCH_SUFFIX = "_wpgate_verify"
_NAME = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$-]{0,63}")  # matched whole


class BackupError(SiteError):
    """A backup could not be taken, copied, checked or restored: exit 2 outside a deploy."""


class BackupNotFound(BackupError):
    """No backup has the id asked for (exit 2: a wrong argument)."""


class ScratchUnavailable(BackupError):
    """The host gives the restore check no scratch database: no client, or no right to create one."""


class ScratchDatabaseDenied(ScratchUnavailable):
    """The database user may not create the scratch database (the usual grants: its own database only)."""


@dataclass(frozen=True)
class Credentials:
    """Where and as whom WordPress connects, as the bridge read it from wp-config.php."""

    name: str
    user: str
    password: Secret = field(repr=False)
    host: str | None
    port: int | None
    socket: str | None
    charset: str = "utf8mb4"

    @classmethod
    def from_facts(cls, facts: dict[str, Any]) -> "Credentials":
        database = facts["database"]
        credentials = cls(name=str(database["name"]), user=str(database["user"]),
                          password=Secret(str(database.get("password") or "")),
                          host=database.get("host") or None, port=database.get("port") or None,
                          socket=database.get("socket") or None,
                          charset=_charset(str(database.get("charset") or "")))
        check_name(credentials.name, "DB_NAME in wp-config.php")
        return credentials

    def where(self) -> str:
        """The server as a message names it (never the password)."""
        if self.socket:
            return f"{self.host or 'localhost'} (socket {self.socket})"
        return f"{self.host or 'localhost'}" + (f":{self.port}" if self.port else "")

    def options_file(self) -> Secret:
        """The `[client]` options file: every value quoted and escaped as the option-file parser reads it."""
        lines = ["[client]", f"user={_quoted(self.user)}", f"password={_quoted(self.password.value)}"]
        if self.host:
            lines.append(f"host={_quoted(self.host)}")
        if self.port:
            lines.append(f"port={int(self.port)}")
        if self.socket:
            lines.append(f"socket={_quoted(self.socket)}")
        lines.append(f"default-character-set={_quoted(self.charset)}")
        return Secret("\n".join(lines) + "\n")


def _charset(value: str) -> str:
    # DB_CHARSET ends up in SQL and in the options file: a plain name, else WordPress's default.
    return value if re.fullmatch(r"[A-Za-z0-9_]{1,32}", value) else "utf8mb4"


def _quoted(value: str) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{escaped}"'


def check_name(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise BackupError(f"{what}: {name!r} is not a database name wpgate can back up "
                          "(letters, digits, _, $ and -, up to 64, not starting with -)")
    return name


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def scratch_name(credentials: Credentials, configured: str | None) -> str:
    """The database a restore check may fill: `backup.verify_database`, else `<DB_NAME>_wpgate_verify`."""
    if configured:
        if configured == credentials.name:
            raise BackupError(f"backup.verify_database is {configured}, the site's own database: "
                              "name another one (wpgate empties it)")
        return configured
    name = credentials.name + SCRATCH_SUFFIX
    if len(name) > 64:
        raise BackupError(f"database name {name} would be longer than 64 characters: "
                          "set backup.verify_database to a database the site's user may use")
    return name


def find_client(transport: Transport, names: tuple[str, ...]) -> str:
    """The first of `names` installed on the host, as a path."""
    script = 'for name in "$@"; do if command -v "$name"; then exit 0; fi; done; exit 1'
    result = transport.run(Command.of("sh", "-c", script, "sh", *names))
    found = result.text().strip().splitlines()
    if not result.ok or not found:
        raise BackupError(f"{transport.name}: neither {' nor '.join(names)} is installed: install the "
                          "MariaDB client (Debian: mariadb-client) or the MySQL client on the site's host")
    return found[0]


@contextmanager
def options_file(transport: Transport, credentials: Credentials) -> Iterator[str]:
    """A private folder on the host holding the client options file; its path, removed afterwards."""
    # A wpgate process killed (SIGKILL) while a client ran leaves its folder behind, the password in it
    # readable by this user alone: such folders a day old are swept first (a client reads the file as it starts).
    script = ('umask 077; find "${TMPDIR:-/tmp}" -maxdepth 1 -type d -name "wpgate-db-*" -user "$(id -u)" '
              '-mmin +1440 -exec rm -rf -- {} + 2>/dev/null; '
              'folder=$(mktemp -d "${TMPDIR:-/tmp}/wpgate-db-XXXXXX") || exit 1; '
              'cat > "$folder/client.cnf" || { rm -rf "$folder"; exit 1; }; printf "%s" "$folder"')
    content = credentials.options_file()
    result = transport.run(Command.of("sh", "-c", script, "sh"), input=content.value.encode())
    folder = result.text().strip()
    if not result.ok or not folder.startswith("/"):
        raise BackupError(f"{transport.name}: cannot write the database client's private options file in "
                          f"a temporary folder: {result.error_text() or 'mktemp failed'}")
    try:
        yield f"{folder}/client.cnf"
    finally:
        transport.run(Command.of("rm", "-rf", "--", folder))


def explain(stderr: str, credentials: Credentials, site_label: str) -> str | None:
    """One line for the database errors a user can act on, or None."""
    text = stderr.strip()
    if re.search(r"\b(2002|2003|2005|2013)\b|Can't connect|Connection refused|Unknown (MySQL|MariaDB) server host",
                 text):
        return (f"{site_label}: the database server at {credentials.where()} refuses connections: "
                f"{_first_error(text)} (is it running, and is DB_HOST in wp-config.php right?)")
    if re.search(r"\b1045\b|Access denied for user", text) and "to database" not in text:
        return (f"{site_label}: the database server at {credentials.where()} refused the user "
                f"{credentials.user}: {_first_error(text)} (check DB_USER and DB_PASSWORD in wp-config.php)")
    return None


def _first_error(text: str) -> str:
    for line in text.splitlines():
        if "error" in line.lower() or "denied" in line.lower():
            return line.strip()
    return text.splitlines()[0].strip() if text else "no message"


def sql(transport: Transport, client: str, options: str, statements: str, *,
        database: str | None = None) -> str:
    """Run SQL with the site's credentials (sent on stdin); its tab-separated output."""
    argv = [client, f"--defaults-extra-file={options}", "--batch", "--skip-column-names"]
    if database:
        argv.append(f"--database={database}")
    result = transport.run(Command.of(argv), input=statements.encode())
    if not result.ok:
        raise BackupError(f"{transport.name}: {client} failed: {result.error_text() or result.returncode}")
    return result.text()


# The dump client, ready for a host script that reports on fd 3 (`client PATH`, or `failed options-file` /
# `failed dump-client`, then exit 1): the client options file arrives on stdin and lives in a private
# folder removed however the script ends; `dump_database NAME` then writes the whole database's SQL on
# stdout with DUMP_OPTIONS. Both engines dump so (backup/take.py, backup/restic.py).
DUMP_CLIENT = r"""
private=$(mktemp -d "${TMPDIR:-/tmp}/wpgate-db-XXXXXX") || { echo "failed options-file" >&3; exit 1; }
trap 'rm -rf -- "$private"' EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
options=$private/client.cnf
cat > "$options" || { echo "failed options-file" >&3; exit 1; }
dump=
for name in mariadb-dump mysqldump; do
  if command -v "$name" >/dev/null 2>&1; then dump=$(command -v "$name"); break; fi
done
[ -n "$dump" ] || { echo "failed dump-client" >&3; exit 1; }
echo "client $dump" >&3
dump_database() { "$dump" --defaults-extra-file="$options" """ + " ".join(DUMP_OPTIONS) + r""" "$1"; }
"""

# A dump's SQL on stdout: a gzip-compressed file on the host, or (`restic:SNAPSHOT`) the dump a restic
# snapshot holds, streamed out of the repository restic finds in its environment (backup/restic.py).
READ_DUMP = r"""
read_dump() {
  case $1 in
    restic:*) restic dump --quiet "${1#restic:}" /database.sql ;;
    *) gzip -dc -- "$1" ;;
  esac
}
"""

# Restores a dump into a scratch database and reads back every table's row count and checksum, in one
# host command: the options file arrives on stdin; the scratch database is dropped (or, when it is the
# configured `backup.verify_database`, emptied) and the options file removed however the script ends.
# The SQL comes ready-made in the arguments (quoted by wpgate), never glued together by the shell.
_SCRATCH_RESTORE = READ_DUMP + r"""
export LC_ALL=C
umask 077
dump=$1 database=$2 prepare=$3 finish=$4 list_drops=$5 list_counts=$6 list_sums=$7 prefix=$8 under_prefix=$9
exec 3>&1 >/dev/null
private=$(mktemp -d "${TMPDIR:-/tmp}/wpgate-db-XXXXXX") || { echo "failed options-file" >&3; exit 1; }
options=$private/client.cnf
client=
sql() { "$client" --defaults-extra-file="$options" --batch --skip-column-names "$@"; }
empty() { { echo "SET FOREIGN_KEY_CHECKS=0;"; sql -e "$list_drops"; } | sql; }
cleanup() {
  if [ -n "$client" ]; then
    if [ -n "$finish" ]; then printf '%s\n' "$finish" | sql; else empty; fi
    echo "status drop $?" >&3
  fi
  rm -rf -- "$private"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM
cat > "$options" || { echo "failed options-file" >&3; exit 1; }
for name in mariadb mysql; do
  if command -v "$name" >/dev/null 2>&1; then client=$(command -v "$name"); break; fi
done
[ -n "$client" ] || { echo "failed sql-client" >&3; exit 1; }
if [ -n "$prepare" ]; then printf '%s\n' "$prepare" | sql; else empty; fi
status=$?
echo "status prepare $status" >&3
[ "$status" -eq 0 ] || exit 1
if [ -n "$prefix" ]; then
  { read_dump "$dump"; echo "status gunzip $?" >&3; } | { awk -v p="$prefix" "$under_prefix"; echo "status rename $?" >&3; } |
    { sql --binary-mode --database="$database"; echo "status load $?" >&3; }
else
  { read_dump "$dump"; echo "status gunzip $?" >&3; } |
    { sql --binary-mode --database="$database"; echo "status load $?" >&3; }
fi
{ sql -e "$list_counts"; echo "status list $?" >&3; } | { sql; echo "status count $?" >&3; } | sed 's/^/rows /' >&3
{ sql -e "$list_sums"; echo "status list_sums $?" >&3; } | { sql; echo "status sum $?" >&3; } | sed 's/^/sum /' >&3
"""


# Passes on, from a dump the dump client wrote, only the statements that make and fill its tables, each
# table (and foreign key) renamed under the prefix `p`: nothing that names a live table, a trigger, a
# routine or a view reaches the server. The client writes each of those statements from a line's start;
# an INSERT's rows follow it one a line (`(...),`) until the line that ends `);`, a CREATE TABLE's
# columns one a line until the line `) ...;`.
UNDER_PREFIX = r"""
function renamed(lead) {
  if (index($0, lead) != 1) return 0
  print lead p substr($0, length(lead) + 1)
  return 1
}
inserting {
  print
  if ($0 ~ /\);$/) inserting = 0
  next
}
creating {
  if (index($0, "  CONSTRAINT `") == 1) $0 = "  CONSTRAINT `" p substr($0, 15)
  gsub(/ REFERENCES `/, " REFERENCES `" p)
  print
  if ($0 ~ /^\).*;$/) creating = 0
  next
}
/^DELIMITER / { skipping = ($2 != ";"); next }
skipping { next }
renamed("CREATE TABLE `") { creating = ($0 !~ /;$/); next }
renamed("INSERT INTO `") { inserting = ($0 !~ /\);$/); next }
renamed("DROP TABLE IF EXISTS `") || renamed("LOCK TABLES `") { next }
renamed("/*!40000 ALTER TABLE `") { next }
/^UNLOCK TABLES;$/ || /^\/\*M?![0-9]* SET [^;]*\*\/;$/ { print }
"""


def restore_into_scratch(transport: Transport, credentials: Credentials, dump_path: str, name: str, *,
                         configured: bool, prefix: str = "") -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Load a dump into scratch database `name` and read its tables back: ({table: {"rows", "checksum"}},
    problems). Raises BackupError when the scratch database cannot be made or the dump does not load.

    With `prefix`, `name` is the site's own database: the dump's tables are made there under the prefix
    (none of the site's tables is named in what reaches the server), read back, and dropped."""
    ident = quote_identifier(name)
    literal, ident_text = string_literal(name), string_literal(ident)
    where = f"FROM information_schema.tables WHERE table_schema = {literal}"
    if prefix:
        configured = True  # the database is the site's: never dropped, only the prefix's tables are
        where += f" AND table_name LIKE {string_literal(like_prefix(prefix))}"
    table = f"{ident_text}, '.`', REPLACE(table_name, '`', '``'), '`"
    queries = [
        f"SELECT CONCAT('DROP ', IF(table_type = 'VIEW', 'VIEW', 'TABLE'), ' IF EXISTS ', {table};') {where}",
        f"SELECT CONCAT('SELECT ', QUOTE(table_name), ', COUNT(*) FROM ', {table};') {where} "
        "AND table_type = 'BASE TABLE'",
        f"SELECT CONCAT('CHECKSUM TABLE ', {table} EXTENDED;') {where} AND table_type = 'BASE TABLE'",
    ]
    prepare = "" if configured else (f"DROP DATABASE IF EXISTS {ident}; "
                                     f"CREATE DATABASE {ident} CHARACTER SET {credentials.charset};")
    finish = "" if configured else f"DROP DATABASE IF EXISTS {ident};"
    result = transport.run(Command.of("sh", "-c", _SCRATCH_RESTORE, "sh", dump_path, name, prepare, finish, *queries,
                                      prefix, UNDER_PREFIX),
                           input=credentials.options_file().value.encode())
    output, stderr = result.text(), result.error_text()
    statuses = parse_statuses(output)
    failed = next((line.split(" ", 1)[1] for line in output.splitlines() if line.startswith("failed ")), None)
    if failed == "options-file":
        raise ScratchUnavailable(f"{transport.name}: cannot write the database client's private options file in a "
                          f"temporary folder: {stderr or 'mktemp failed'}")
    if failed == "sql-client":
        raise ScratchUnavailable(f"{transport.name}: neither mariadb nor mysql (the database client) is installed: "
                          "install the MariaDB client (Debian: mariadb-client) on the site's host")
    if statuses.get("prepare") != 0:
        if re.search(r"\b(1044|1142|1227)\b|Access denied", stderr):
            pattern = credentials.name.replace("_", "\\_") + "\\_wpgate\\_%"
            raise ScratchDatabaseDenied(
                f"{transport.name}: the database user {credentials.user} may not create the scratch database "
                f"{name} that restore checks need: GRANT ALL ON `{pattern}`.* TO '{credentials.user}'@'…', "
                "or set backup.verify_database to a database it may fill and empty")
        raise ScratchUnavailable(f"{transport.name}: cannot prepare the scratch database {name}: "
                                 f"{stderr or 'no message'}")
    problems = []
    if statuses.get("gunzip") != 0 or statuses.get("load") != 0 or (prefix and statuses.get("rename") != 0):
        raise BackupError(f"the dump does not load into {name}: {stderr or 'no message'}")
    if any(statuses.get(step) != 0 for step in ("list", "count", "list_sums", "sum")):
        problems.append(f"cannot read back the tables of {name}: {stderr or 'no message'}")
    if statuses.get("drop") != 0:
        what = f"the scratch tables {prefix}* in {name}" if prefix else f"the scratch database {name}"
        problems.append(f"{what} could not be removed: {stderr or 'no message'}")
    tables: dict[str, dict[str, Any]] = {}
    for line in output.splitlines():
        if line.startswith("rows ") and "\t" in line:
            table_name, _, rows = line[5:].rpartition("\t")
            table_name = table_name.removeprefix(prefix)
            tables.setdefault(table_name, {"rows": None, "checksum": None})["rows"] = int(rows)
        elif line.startswith("sum ") and "\t" in line:
            qualified, _, checksum = line[4:].rpartition("\t")
            table_name = qualified.removeprefix(f"{name}.").removeprefix(prefix)
            entry = tables.setdefault(table_name, {"rows": None, "checksum": None})
            entry["checksum"] = None if checksum == "NULL" else int(checksum)
    return dict(sorted(tables.items())), problems


def like_prefix(prefix: str) -> str:
    """A LIKE pattern that matches the tables whose names start with `prefix` (`_` and `%` escaped)."""
    return prefix.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%") + "%"


def drop_prefixed(transport: Transport, credentials: Credentials, prefix: str) -> list[str]:
    """Drop every table of the site's database whose name starts with `prefix`; the names dropped."""
    with options_file(transport, credentials) as options:
        client = find_client(transport, SQL_CLIENTS)
        listed = sql(transport, client, options,
                     "SELECT table_name FROM information_schema.tables WHERE table_schema = "
                     f"{string_literal(credentials.name)} AND table_name LIKE {string_literal(like_prefix(prefix))};")
        tables = [line for line in listed.splitlines() if line.startswith(prefix)]
        drop_tables(transport, client, options, credentials.name, tables)
    return tables


def drop_tables(transport: Transport, client: str, options: str, database: str, tables: list[str]) -> None:
    if tables:
        statements = ["SET FOREIGN_KEY_CHECKS=0;"] + [
            f"DROP TABLE IF EXISTS {quote_identifier(database)}.{quote_identifier(t)};" for t in tables]
        sql(transport, client, options, "\n".join(statements) + "\n")


def string_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


# Loads a gzip-compressed dump into one database; the status of each side of the pipe is checked.
LOAD_SCRIPT = READ_DUMP + r"""
export LC_ALL=C
dump=$1 client=$2 options=$3 database=$4
exec 3>&1
{ read_dump "$dump"; echo "status gunzip $?" >&3; } |
  { "$client" --defaults-extra-file="$options" --batch --binary-mode --database="$database" >/dev/null;
    echo "status load $?" >&3; }
"""


def load_dump(transport: Transport, client: str, options: str, dump_path: str, database: str) -> None:
    """Load a backup's dump into `database`; raises BackupError with the client's message."""
    result = transport.run(Command.of("sh", "-c", LOAD_SCRIPT, "sh", dump_path, client, options, database))
    statuses = parse_statuses(result.text())
    failed = [step for step in ("gunzip", "load") if statuses.get(step) != 0]
    if failed or not result.ok:
        detail = result.error_text() or f"{', '.join(failed) or 'sh'} failed"
        raise BackupError(f"{transport.name}: loading {dump_path} into database {database} failed: {detail}")


def parse_statuses(output: str) -> dict[str, int]:
    """The `status STEP CODE` lines the host scripts write."""
    statuses = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "status" and parts[2].lstrip("-").isdigit():
            statuses[parts[1]] = int(parts[2])
    return statuses
