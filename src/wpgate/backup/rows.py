"""Rows a rollback would drop: found by comparing the database with the backup it goes back to.

When a run changed the database, rollback puts it back from the run's backup. Everything written since
that backup goes with it: the run's own migrations, but also what visitors wrote meanwhile (comments,
orders, users, options). Before the restore, the tables that differ from the backup are copied into a
side database on the same server; after it, each copied row that has no identical row in the restored
table is new or changed since the backup. Those rows are exported as `REPLACE` statements to a file in
the run's folder, and counted and named in the report, so a person can put back what visitors wrote.
Tables the run created are exported whole.

All of it runs on the database server with the site's own credentials (through the private options
file), so no table crosses the network twice; the side database is removed however it ends.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from wpgate.backup import database
from wpgate.backup.database import Credentials, quote_identifier as ident
from wpgate.command import Command
from wpgate.run import open_private
from wpgate.transports import Transport
from wpgate.words import plural

SIDE_SUFFIX = "_wpgate_rows"
SAMPLE = 20
# How a row of WordPress's own tables is best named to a person, by table name without its prefix.
_LABELS = {"posts": ("post_type", "post_title"), "comments": ("comment_author", "comment_date"),
           "users": ("user_login",), "usermeta": ("user_id", "meta_key"), "options": ("option_name",),
           "postmeta": ("post_id", "meta_key"), "commentmeta": ("comment_id", "meta_key"),
           "terms": ("name",), "term_taxonomy": ("taxonomy",), "links": ("link_url",)}


@dataclass
class TableRows:
    """What differs in one table between the database before the restore and the backup. With a
    primary key, a row is new (its key is not in the backup), changed, or removed (its key is only in
    the backup); without one, rows are only told apart as differing on either side."""

    table: str
    new: int = 0
    changed: int = 0
    removed: int = 0
    keyed: bool = True
    created_by_run: bool = False
    rows: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def exported(self) -> int:
        return self.rows if self.created_by_run else self.new + self.changed

    def record(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"table": self.table}
        if self.created_by_run:
            entry.update(created_by_run=True, rows=self.rows)
        elif self.keyed:
            entry.update(new=self.new, changed=self.changed, removed=self.removed)
        else:
            entry.update(only_before_restore=self.new, only_in_backup=self.removed)
        if self.examples:
            entry["examples"] = self.examples
        return entry

    def describe(self) -> str:
        if self.created_by_run:
            return f"table {self.table}: created during the run ({plural(self.rows, 'row')}), removed, exported whole"
        if self.keyed:
            text = (f"table {self.table}: {self.new} new and {plural(self.changed, 'changed row')} since the backup, "
                    f"exported; {self.removed} removed since, restored")
        else:
            differ = "differs" if self.new == 1 else "differ"
            text = (f"table {self.table} (no primary key): {plural(self.new, 'row')} {differ} from the backup, "
                    f"exported; {self.removed} of the backup's restored")
        return text + (f" (e.g. {'; '.join(self.examples[:3])})" if self.examples else "")


class SideCopy:
    """The changed tables, copied as they were before the restore, in a side database."""

    def __init__(self, transport: Transport, client: str, options: str, credentials: Credentials,
                 name: str, tables: list[str], configured: bool, prefix: str) -> None:
        self.transport, self.client, self.options = transport, client, options
        self.credentials, self.name, self.tables, self.configured = credentials, name, tables, configured
        self.prefix = prefix

    def sql(self, statements: str) -> list[list[str]]:
        output = database.sql(self.transport, self.client, self.options, statements)
        return [line.split("\t") for line in output.splitlines()]

    def compare(self, backup_tables: set[str]) -> list[TableRows]:
        """Each copied table against the site's restored one (equal to the backup)."""
        found, prefix = [], self.prefix
        for table in self.tables:
            side, live = f"{ident(self.name)}.{ident(table)}", f"{ident(self.credentials.name)}.{ident(table)}"
            if table not in backup_tables:
                count = int(self.sql(f"SELECT COUNT(*) FROM {side};")[0][0])
                found.append(TableRows(table, created_by_run=True, rows=count))
                continue
            columns, key = self._columns(table)
            labels = _label_columns(table, prefix, columns) or key or columns[:2]
            same, same_key = _same_row(columns, key, "s", "b"), _same_row(key, key, "s", "b")
            not_in_live = f"NOT EXISTS (SELECT 1 FROM {live} b WHERE {same})"
            counts = [f"SELECT COUNT(*) FROM {side} s WHERE {not_in_live};"]
            if key:
                counts += [f"SELECT COUNT(*) FROM {side} s WHERE NOT EXISTS (SELECT 1 FROM {live} b WHERE {same_key});",
                           f"SELECT COUNT(*) FROM {live} b WHERE NOT EXISTS (SELECT 1 FROM {side} s WHERE {same_key});"]
            else:
                counts += [f"SELECT COUNT(*) FROM {live} b WHERE NOT EXISTS (SELECT 1 FROM {side} s WHERE {same});"]
            numbers = [int(row[0]) for row in self.sql("\n".join(counts) + "\n")]
            if key:
                entry = TableRows(table, new=numbers[1], changed=numbers[0] - numbers[1], removed=numbers[2])
            else:
                entry = TableRows(table, new=numbers[0], removed=numbers[1], keyed=False)
            if entry.exported:
                shown = ", ".join(f"s.{ident(c)}" for c in labels)
                rows = self.sql(f"SELECT CONCAT_WS(' · ', {shown}) FROM {side} s WHERE {not_in_live} LIMIT {SAMPLE};")
                entry.examples = [row[0][:120] for row in rows]
            if entry.exported or entry.removed:
                found.append(entry)
        return found

    def export(self, entries: list[TableRows], path: Path) -> None:
        """The new or changed rows as REPLACE statements (whole tables the run created), into `path`."""
        dump = database.find_client(self.transport, ("mariadb-dump", "mysqldump"))
        with open_private(path) as output:
            output.write(_HEADER.format(database=self.credentials.name).encode())
            output.flush()
            for entry in entries:
                argv = [dump, f"--defaults-extra-file={self.options}", "--single-transaction", "--hex-blob",
                        "--skip-triggers", "--skip-comments", "--skip-add-locks", "--skip-disable-keys",
                        "--skip-tz-utc"]
                if entry.created_by_run:
                    argv += ["--skip-add-drop-table"]
                elif entry.exported:
                    columns, key = self._columns(entry.table)
                    live = f"{ident(self.credentials.name)}.{ident(entry.table)}"
                    same = _same_row(columns, key, ident(entry.table), "b")
                    argv += ["--no-create-info", "--replace", f"--where=NOT EXISTS (SELECT 1 FROM {live} b WHERE {same})"]
                else:
                    continue
                output.write(f"\n-- {entry.table}\n".encode())
                output.flush()
                self.transport.check(Command.of(*argv, "--", self.name, entry.table), stdout=output, timeout=3600)

    def _columns(self, table: str) -> tuple[list[str], list[str]]:
        literal = database.string_literal
        where = f"table_schema = {literal(self.name)} AND table_name = {literal(table)}"
        columns = [r[0] for r in self.sql(f"SELECT column_name FROM information_schema.columns WHERE {where} "
                                          "ORDER BY ordinal_position;")]
        key = [r[0] for r in self.sql(f"SELECT column_name FROM information_schema.statistics WHERE {where} "
                                      "AND index_name = 'PRIMARY' ORDER BY seq_in_index;")]
        return columns, key


_HEADER = """-- Rows that wpgate's rollback took out of database {database}: each row that was new or changed
-- since the run's backup (what visitors wrote, or the run's own migrations), as REPLACE statements,
-- and whole tables the run had created. Read it before loading any of it back:
--   mariadb {database} < this-file.sql
"""


@contextmanager
def side_copy(transport: Transport, client: str, options: str, credentials: Credentials, tables: list[str],
              configured: str | None, *, prefix: str) -> Iterator[SideCopy]:
    """Copy `tables` of the site's database into a side database for as long as the block runs:
    `<DB_NAME>_wpgate_rows`, or, when `backup.verify_database` is set, that database (only the copied
    tables are created and dropped there). Tables outside WordPress's `prefix` that the backup lacks are
    left out: the restore leaves them alone."""
    if configured:
        database.scratch_name(credentials, configured)  # never the site's own database
    name = configured or database.check_name(credentials.name[:64 - len(SIDE_SUFFIX)] + SIDE_SUFFIX, "side database")
    copy = SideCopy(transport, client, options, credentials, name, tables, bool(configured), prefix)
    statements = ["SET FOREIGN_KEY_CHECKS=0;"]
    if configured:
        statements += [f"DROP TABLE IF EXISTS {ident(name)}.{ident(t)};" for t in tables]
    else:
        statements += [f"DROP DATABASE IF EXISTS {ident(name)};",
                       f"CREATE DATABASE {ident(name)} CHARACTER SET {credentials.charset};"]
    for table in tables:
        side, live = f"{ident(name)}.{ident(table)}", f"{ident(credentials.name)}.{ident(table)}"
        statements += [f"CREATE TABLE {side} LIKE {live};", f"INSERT INTO {side} SELECT * FROM {live};"]
    try:
        copy.sql("\n".join(statements) + "\n")
        yield copy
    finally:
        if configured:
            drops = [f"DROP TABLE IF EXISTS {ident(name)}.{ident(t)};" for t in tables]
        else:
            drops = [f"DROP DATABASE IF EXISTS {ident(name)};"]
        database.sql(transport, client, options, "SET FOREIGN_KEY_CHECKS=0;\n" + "\n".join(drops) + "\n")


def changed_tables(expected: dict[str, dict[str, Any]], found: dict[str, dict[str, Any]], prefix: str = "") -> list[str]:
    """Tables of `found` whose rows or checksum differ from `expected`, or that `expected` lacks and that
    carry WordPress's `prefix` (the restore drops those; it leaves other new tables alone)."""
    return sorted(name for name, now in found.items()
                  if (name in expected and (expected[name]["rows"], expected[name].get("checksum"))
                      != (now["rows"], now.get("checksum")))
                  or (name not in expected and name.startswith(prefix)))


def _same_row(columns: list[str], key: list[str], left: str, right: str) -> str:
    """SQL true when row `left` equals row `right` column by column (NULL equal to NULL); the key
    first, compared with `=` so that the server looks the row up by its index."""
    parts = [f"{right}.{ident(c)} = {left}.{ident(c)}" for c in key]
    parts += [f"{right}.{ident(c)} <=> {left}.{ident(c)}" for c in columns if c not in key]
    return " AND ".join(parts) or "TRUE"


def _label_columns(table: str, prefix: str, columns: list[str]) -> list[str]:
    """For WordPress's own tables: the first column (the id) and the columns a person knows a row by."""
    base = table[len(prefix):] if prefix and table.startswith(prefix) else table
    known = [c for c in columns if c in _LABELS.get(base, ())]
    return [columns[0], *known] if known else []
