"""Rows a rollback would drop: found by comparing the database with the backup it goes back to.

When a run changed the database, rollback puts it back from the run's backup. Everything written since
that backup goes with it: the run's own migrations, but also what visitors wrote meanwhile (comments,
orders, users, options). Before the restore, the tables that differ from the backup are copied into a
side database on the same server; after it, each copied row that has no identical row in the restored
table is new or changed since the backup. Where the run's snapshots tell them apart (snapshot.py), the
rows visitors wrote in tables whose schema the release did not change are put back into the restored
table (`put_back`). What stays out is exported as `REPLACE` statements to a file in the run's folder, and
counted and named in the report, so a person can load it back. Tables the run created are exported whole.

All of it runs on the database server with the site's own credentials (through the private options
file), so no table crosses the network twice; the side database is removed however it ends. A database
user that may not create it (its own database only) gets the copies in the site's own database under a
scratch table prefix, recorded in the site's scratch journal like a restore proof's.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import re

from wpgate.backup import database, snapshot
from wpgate.backup import scratch as scratch_tables
from wpgate.backup.database import BackupError, Credentials, quote_identifier as ident
from wpgate.backup.scratch import ScratchJournal
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
    put_back: int | None = None  # rows visitors wrote, put back after the restore (None: not tried)
    not_put_back: str | None = None  # why the rows written since stay out, when they do
    conflicts: int = 0  # rows the release changed and someone edited since: not put back, exported

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
        if self.put_back is not None:
            entry["put_back"] = self.put_back
        if self.not_put_back:
            entry["not_put_back"] = self.not_put_back
        if self.conflicts:
            entry["conflicts"] = self.conflicts
        if self.examples:
            entry["examples"] = self.examples
        return entry

    def describe(self) -> str:
        if self.created_by_run:
            return f"table {self.table}: created during the run ({plural(self.rows, 'row')}), removed, exported whole"
        if self.keyed:
            text = (f"table {self.table}: {self.new} new and {plural(self.changed, 'changed row')} since the backup, "
                    f"{self.removed} removed")
            if self.put_back:
                text += f"; visitors' changes to {plural(self.put_back, 'row')} put back"
        else:
            differ = "differs" if self.new == 1 else "differ"
            text = (f"table {self.table} (no primary key): {plural(self.new, 'row')} {differ} from the backup, "
                    f"exported; {self.removed} of the backup's restored")
        if self.conflicts:
            text += (f"; {plural(self.conflicts, 'row')} the release changed and someone edited since: not put "
                     "back (a conflict, in the export)")
        if self.not_put_back:
            text += f"; not put back: {self.not_put_back}"
        return text + (f" (e.g. {'; '.join(self.examples[:3])})" if self.examples else "")


class SideCopy:
    """The changed tables, copied as they were before the restore, in a side database."""

    def __init__(self, transport: Transport, client: str, options: str, credentials: Credentials,
                 name: str, tables: list[str], configured: bool, prefix: str, scratch_prefix: str = "") -> None:
        self.transport, self.client, self.options = transport, client, options
        self.credentials, self.name, self.tables, self.configured = credentials, name, tables, configured
        self.prefix = prefix
        self.scratch_prefix = scratch_prefix  # set: the copies are in the site's own database, under it

    def side(self, table: str) -> str:
        return f"{ident(self.name)}.{ident(self.scratch_prefix + table)}"

    def live(self, table: str) -> str:
        return f"{ident(self.credentials.name)}.{ident(table)}"

    def sql(self, statements: str) -> list[list[str]]:
        output = database.sql(self.transport, self.client, self.options, statements)
        return [line.split("\t") for line in output.splitlines()]

    def compare(self, backup_tables: set[str]) -> list[TableRows]:
        """Each copied table against the site's restored one (equal to the backup)."""
        found, prefix = [], self.prefix
        for table in self.tables:
            side, live = self.side(table), self.live(table)
            if table not in backup_tables:
                count = int(self.sql(f"SELECT COUNT(*) FROM {side};")[0][0])
                found.append(TableRows(table, created_by_run=True, rows=count))
                continue
            columns, key = self._columns(table)
            restored = self._columns(table, live=True)[0]
            if columns != restored:  # the run changed the table's schema: rows compared on the columns both have
                columns = [column for column in columns if column in restored]
                key = [column for column in key if column in restored]
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

    def put_back(self, entries: list[TableRows], before: snapshot.Snapshot,
                 after: snapshot.Snapshot | None, *, new_only: bool = False) -> None:
        """Into each restored table whose schema the release did not change: the rows written since the
        backup that the run did not leave as they are (visitors' new and changed rows, and their
        removals), but caches. `before` and `after` are the run's snapshots from just before its first
        change and right after its last. With `new_only` (a restore: no run tells whose rows are whose),
        only the rows whose key the backup lacks come back; changed and removed rows stay as the backup
        has them. Each entry says how many rows it put back, or why none."""
        for entry in entries:
            reason = "the run created this table" if entry.created_by_run else \
                snapshot.unsafe_reason(entry.table, before, after)
            columns, key = self._columns(entry.table)
            if reason is None and columns != self._columns(entry.table, live=True)[0]:
                reason = "its columns differ from the backup's"
            if reason is None and columns != before.tables[entry.table].columns:
                reason = "its columns changed since the run began"
            if reason is None and key != before.tables[entry.table].key:
                reason = "its primary key differs from the backup's"
            if reason:
                entry.not_put_back = reason
                continue
            side, live = self.side(entry.table), self.live(entry.table)
            key_hash, row_hash = snapshot.hash_sql(key, "s"), snapshot.hash_sql(columns, "s")
            mark = snapshot.mark_sql(entry.table, self.prefix, columns, "s")
            same, same_key = _same_row(columns, key, "s", "b"), _same_row(key, key, "s", "b")
            written = self.sql(f"SELECT {key_hash}, {row_hash}, {mark} FROM {side} s "
                               f"WHERE NOT EXISTS (SELECT 1 FROM {live} b WHERE {same});\n")
            gone = self.sql(f"SELECT {snapshot.hash_sql(key, 'b')} FROM {live} b "
                            f"WHERE NOT EXISTS (SELECT 1 FROM {side} s WHERE {same_key});\n")
            rows = [(found[0], found[1] + (found[2] if len(found) > 2 else "")) for found in written]
            back, removals, entry.conflicts = choose(entry.table, rows, [found[0] for found in gone], before, after)
            if new_only:
                added = {found[0] for found in self.sql(
                    f"SELECT {key_hash} FROM {side} s WHERE NOT EXISTS (SELECT 1 FROM {live} b WHERE {same_key});\n")}
                back, removals = [key for key in back if key in added], []
            for start in range(0, max(len(back), len(removals)), 500):
                statements = ["SET FOREIGN_KEY_CHECKS=0;"]
                chunk = removals[start:start + 500]
                if chunk:
                    statements.append(f"DELETE b FROM {live} b WHERE {snapshot.hash_sql(key, 'b')} IN "
                                      f"({', '.join(map(database.string_literal, chunk))});")
                chunk = back[start:start + 500]
                if chunk:
                    statements.append(f"REPLACE INTO {live} SELECT s.* FROM {side} s WHERE {key_hash} IN "
                                      f"({', '.join(map(database.string_literal, chunk))});")
                self.sql("\n".join(statements) + "\n")
            entry.put_back = len(back) + len(removals)
            left = len(rows) - len(back) - entry.conflicts
            if left > 0:
                entry.not_put_back = (f"{plural(left, 'row')} changed since the backup, or caches WordPress rebuilds: "
                                      "as the backup has them (kept in the export)" if new_only else
                                      f"{plural(left, 'row')} the run wrote, or caches WordPress rebuilds "
                                      "(kept in the export)")

    def export(self, entries: list[TableRows], path: Path) -> None:
        """The new or changed rows that are not in the live table (rows put back are) as REPLACE
        statements, and whole tables the run created, into `path`."""
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
                    restored = self._columns(entry.table, live=True)[0]
                    columns = [column for column in columns if column in restored]
                    key = [column for column in key if column in restored]
                    same = _same_row(columns, key, ident(self.scratch_prefix + entry.table), "b")
                    argv += ["--no-create-info", "--replace",
                             f"--where=NOT EXISTS (SELECT 1 FROM {self.live(entry.table)} b WHERE {same})"]
                else:
                    continue
                output.write(f"\n-- {entry.table}\n".encode())
                output.flush()
                command = Command.of(*argv, "--", self.name, self.scratch_prefix + entry.table)
                if not self.scratch_prefix:
                    self.transport.check(command, stdout=output, timeout=3600)
                    continue
                # Copies under a scratch prefix: the statements name the site's own table.
                text = self.transport.check(command, timeout=3600).stdout
                lead = re.compile(rb"^((?:REPLACE INTO|INSERT INTO|CREATE TABLE|LOCK TABLES|DROP TABLE IF EXISTS|"
                                  rb"/\*!40000 ALTER TABLE) `)" + re.escape(self.scratch_prefix.encode()), re.M)
                output.write(lead.sub(rb"\1", text))

    def _columns(self, table: str, *, live: bool = False) -> tuple[list[str], list[str]]:
        """The columns and primary key of the copy of `table` (with `live`: of the site's table itself)."""
        literal = database.string_literal
        name, schema = (table, self.credentials.name) if live else (self.scratch_prefix + table, self.name)
        where = f"table_schema = {literal(schema)} AND table_name = {literal(name)}"
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
              configured: str | None, *, prefix: str, journal: ScratchJournal | None = None,
              reuse: dict[str, Any] | None = None) -> Iterator[SideCopy]:
    """Copy `tables` of the site's database into a side database for as long as the block runs:
    `<DB_NAME>_wpgate_rows`, or, when `backup.verify_database` is set, that database (only the copied
    tables are created and dropped there). When the database user may not create the side database and a
    `journal` is given, the copies go into the site's own database under a scratch prefix instead (a table
    whose name would be too long under it is left out). Tables outside WordPress's `prefix` that the backup
    lacks are left out: the restore leaves them alone. With `reuse` (an earlier attempt's copy, as its
    record names it: side, scratch_prefix, tables), that copy is used as it is, then dropped."""
    if reuse:
        copy = SideCopy(transport, client, options, credentials, str(reuse["side"]), list(reuse["tables"]),
                        bool(configured), prefix, str(reuse.get("scratch_prefix") or ""))
        try:
            yield copy
        finally:
            _drop(copy, transport, client, options, credentials, journal)
        return
    if configured:
        database.scratch_name(credentials, configured)  # never the site's own database
    name = configured or database.check_name(credentials.name[:64 - len(SIDE_SUFFIX)] + SIDE_SUFFIX, "side database")
    scratch_prefix = ""
    if not configured:
        try:
            database.sql(transport, client, options, f"DROP DATABASE IF EXISTS {ident(name)};\n"
                                                     f"CREATE DATABASE {ident(name)} CHARACTER SET {credentials.charset};\n")
        except BackupError as error:
            if journal is None or not re.search(r"\b(1044|1142|1227)\b|Access denied", str(error)):
                raise
            name, scratch_prefix = credentials.name, scratch_tables.new_prefix()
            tables = [t for t in tables if len(scratch_prefix + t) <= scratch_tables.NAME_LIMIT]
            journal.created(name, scratch_prefix)
    copy = SideCopy(transport, client, options, credentials, name, tables, bool(configured), prefix, scratch_prefix)
    statements = ["SET FOREIGN_KEY_CHECKS=0;"]
    if configured or scratch_prefix:
        statements += [f"DROP TABLE IF EXISTS {copy.side(t)};" for t in tables]
    for table in tables:
        statements += [f"CREATE TABLE {copy.side(table)} LIKE {copy.live(table)};",
                       f"INSERT INTO {copy.side(table)} SELECT * FROM {copy.live(table)};"]
    try:
        copy.sql("\n".join(statements) + "\n")
        yield copy
    finally:
        _drop(copy, transport, client, options, credentials, journal)


def _drop(copy: SideCopy, transport: Transport, client: str, options: str, credentials: Credentials,
          journal: ScratchJournal | None) -> None:
    if copy.scratch_prefix:
        database.drop_prefixed(transport, credentials, copy.scratch_prefix)
        if journal is not None:
            journal.dropped(copy.name, copy.scratch_prefix)
    else:
        drops = [f"DROP TABLE IF EXISTS {copy.side(t)};" for t in copy.tables] if copy.configured else \
            [f"DROP DATABASE IF EXISTS {ident(copy.name)};"]
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


def choose(table: str, written: list[tuple[str, str]], gone: list[str], before: snapshot.Snapshot,
           after: snapshot.Snapshot | None) -> tuple[list[str], list[str], int]:
    """Of the rows written since the backup (`written`: key hash, row hash and mark, as they were before the
    restore) and the keys removed since (`gone`): the keys to put back and to remove again, and how many are
    conflicts. A key the release itself changed is never put back over the restored state, even when
    someone edited it since: the release's change and theirs are mixed in it (a conflict, left in the export)."""
    touched = [key for key, row in written if not snapshot.is_the_runs(key, row, before, after, table)
               and snapshot.release_touched(key, before, after, table)]
    touched += [key for key in gone if not snapshot.is_the_runs(key, None, before, after, table)
                and snapshot.release_touched(key, before, after, table)]
    skip = set(touched)
    back = sorted(key for key, row in written if not row[snapshot.HASH:].startswith(snapshot.CACHE)
                  and key not in skip and not snapshot.is_the_runs(key, row, before, after, table))
    removals = sorted(key for key in gone if key not in skip
                      and not snapshot.is_the_runs(key, None, before, after, table) and not _cache_in(before, table, key))
    return back, removals, len(skip)


def _cache_in(before: snapshot.Snapshot, table: str, key: str) -> bool:
    """The row of `key` was a cache before the run (a transient the backup holds, say): not removed."""
    state = before.tables.get(table)
    return bool(state and state.rows.get(key, "")[snapshot.HASH:].startswith(snapshot.CACHE))


def _label_columns(table: str, prefix: str, columns: list[str]) -> list[str]:
    """For WordPress's own tables: the first column (the id) and the columns a person knows a row by."""
    base = table[len(prefix):] if prefix and table.startswith(prefix) else table
    known = [c for c in columns if c in _LABELS.get(base, ())]
    return [columns[0], *known] if known else []
