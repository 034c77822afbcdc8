"""What a run changed in the site's database, told apart from what visitors wrote: row fingerprints.

Just before apply's first change, and again right after apply (before visitors' later writes mix in),
every table of the site's database is read as fingerprints: its schema (columns and indexes), and per
row a hash of its primary key and a hash of all its values (16 hex digits each), with a mark for rows
that never count as the release's (caches WordPress rebuilds, the cron schedule, visitors' sessions).
Only hashes leave the database server; the snapshot is kept, compressed, in the run's folder.

The two snapshots tell what the release itself did to the database: tables created, dropped or whose
schema changed, and rows it wrote. A third, taken when a rollback is asked for, tells the rows written
since: those of the run, and those visitors wrote, which a rollback keeps (the database stays) or puts
back after restoring the backup, in the tables whose schema the release did not change.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from wpgate.backup import database
from wpgate.backup.database import Credentials, quote_identifier as ident, string_literal
from wpgate.backup.scratch import PREFIX_START
from wpgate.bridge import Bridge
from wpgate.run import open_private, utc_now
from wpgate.transports import Transport
from wpgate.words import plural

BEFORE = "database-before.json.gz"  # just before apply's first change
# Right after apply, or when the run stops after a change: before visitors' later writes mix in.
AFTER = "database-after-changes.json.gz"

# Marks of rows that never count as a change of the release's. Caches (transients, the cron schedule,
# rewrite rules) are rewritten whenever WordPress runs and are rebuilt from the code that runs: after a
# restore the backup's stay. Sessions (logins, carts, queued jobs) are visitors' state: they do not
# count as the release's either, but are put back with visitors' rows.
CACHE, SESSION = "c", "s"
# By table name without WordPress's prefix (and a multisite blog's number): the column that names a row,
# and the patterns (SQL LIKE) of each mark.
_ROW_RULES: dict[str, tuple[str, tuple[tuple[str, tuple[str, ...]], ...]]] = {
    "options": ("option_name", ((CACHE, ("\\_transient\\_%", "\\_site\\_transient\\_%", "cron", "rewrite\\_rules")),
                                (SESSION, ("\\_wp\\_session\\_%", "\\_wc\\_session\\_%")))),
    "sitemeta": ("meta_key", ((CACHE, ("\\_site\\_transient\\_%",)),)),
    "usermeta": ("meta_key", ((SESSION, ("session\\_tokens",)),)),
}
# Whole tables of visitors' sessions and queued jobs (WooCommerce, Action Scheduler).
SESSION_TABLES = ("woocommerce_sessions", "wc_sessions", "actionscheduler_actions", "actionscheduler_claims",
                  "actionscheduler_groups", "actionscheduler_logs")
# Queues whose new rows count as the release's change (a migration queued to run later), though their rows
# are marked as sessions for the put-back.
QUEUE_TABLES = ("actionscheduler_actions",)
_BLOG_NUMBER = re.compile(r"\d+_")
HASH = 16


@dataclass
class TableState:
    """One table: its schema's hash, its columns and primary key, and its rows {key hash: row hash + mark}.
    A table without a primary key has its rows keyed by their own hash and a count (`hash#2`)."""

    schema: str
    columns: list[str]
    key: list[str]
    rows: dict[str, str] = field(default_factory=dict)


@dataclass
class Snapshot:
    taken_at: str
    prefix: str
    tables: dict[str, TableState]

    def record(self) -> dict[str, Any]:
        return {"at": self.taken_at, "tables": len(self.tables),
                "rows": sum(len(table.rows) for table in self.tables.values())}


@dataclass
class Connection:
    """The site's database as the dump and SQL clients reach it on its host, with WordPress's own
    credentials (in a private options file there for as long as the connection lasts)."""

    transport: Transport
    client: str
    options: str
    credentials: Credentials
    prefix: str

    def sql(self, statements: str) -> str:
        return database.sql(self.transport, self.client, self.options, statements)

    def snapshot(self, tables: Iterable[str] | None = None) -> Snapshot:
        return take(self.transport, self.client, self.options, self.credentials, self.prefix, tables=tables)


@contextmanager
def connect(transport: Transport, bridge: Bridge) -> Iterator[Connection]:
    facts = bridge.database_facts()
    credentials = Credentials.from_facts(facts)
    client = database.find_client(transport, database.SQL_CLIENTS)
    with database.options_file(transport, credentials) as options:
        yield Connection(transport, client, options, credentials, str(facts.get("table_prefix") or ""))


def base_name(table: str, prefix: str) -> str:
    """`wp_options` → `options`, `wp_2_options` → `options` (a multisite blog's), other tables unchanged."""
    if not prefix or not table.startswith(prefix):
        return table
    rest = table[len(prefix):]
    match = _BLOG_NUMBER.match(rest)
    return rest[match.end():] if match else rest


def mark_sql(table: str, prefix: str, columns: list[str], alias: str) -> str:
    """SQL giving a row's mark: CACHE, SESSION, or '' for a row that counts."""
    base = base_name(table, prefix)
    if base in SESSION_TABLES:
        return f"'{SESSION}'"
    rule = _ROW_RULES.get(base)
    if rule is None or rule[0] not in columns:
        return "''"
    column = f"{alias}.{ident(rule[0])}"
    cases = " ".join(f"WHEN {' OR '.join(f'{column} LIKE {string_literal(p)}' for p in patterns)} THEN '{mark}'"
                     for mark, patterns in rule[1])
    return f"CASE {cases} ELSE '' END"


def hash_sql(columns: list[str], alias: str) -> str:
    """SQL giving the hash of these columns of a row: NULL told apart from 'NULL', any type, any charset."""
    parts = ", ".join(f"CAST(QUOTE({alias}.{ident(c)}) AS BINARY)" for c in columns)
    return f"LEFT(MD5(CONCAT_WS(',', {parts})), {HASH})"


def take(transport: Transport, client: str, options: str, credentials: Credentials, prefix: str,
         database_name: str | None = None, tables: Iterable[str] | None = None) -> Snapshot:
    """Fingerprint every base table of the site's database (wpgate's own scratch tables left out)."""
    name = database_name or credentials.name
    layout = read_layout(transport, client, options, name)
    wanted = set(tables) if tables is not None else None
    names = [table for table in layout if not table.startswith(PREFIX_START) and (wanted is None or table in wanted)]
    snapshot = Snapshot(utc_now(), prefix, {table: layout[table] for table in names})
    statements = []
    for number, table in enumerate(names):
        state = layout[table]
        row = hash_sql(state.columns, "t")
        key = hash_sql(state.key, "t") if state.key else row
        statements.append(f"SELECT {number}, {key}, {row}, {mark_sql(table, prefix, state.columns, 't')} "
                          f"FROM {ident(name)}.{ident(table)} t;")
    output = database.sql(transport, client, options, "\n".join(statements) + "\n") if statements else ""
    for line in output.splitlines():
        number, key, row, mark = (line.split("\t") + ["", "", ""])[:4]
        state = snapshot.tables[names[int(number)]]
        if not state.key:  # rows told apart only by their content: the same row twice is counted
            count = 1
            while f"{key}#{count}" in state.rows:
                count += 1
            key = f"{key}#{count}"
        state.rows[key] = row + mark
    return snapshot


def read_layout(transport: Transport, client: str, options: str, name: str) -> dict[str, TableState]:
    """Every base table's columns, primary key and schema hash (columns with types, defaults; indexes)."""
    schema = string_literal(name)
    output = database.sql(transport, client, options, (
        "SELECT 'c', c.table_name, c.column_name, CONCAT_WS(' ', c.column_type, c.is_nullable, "
        "IFNULL(c.column_default, 'NULL'), c.extra) FROM information_schema.columns c "
        "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
        f"WHERE c.table_schema = {schema} AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position;\n"
        "SELECT 'i', table_name, index_name, CONCAT_WS(' ', non_unique, seq_in_index, column_name) "
        f"FROM information_schema.statistics WHERE table_schema = {schema} "
        "ORDER BY table_name, index_name, seq_in_index;\n"))
    described: dict[str, list[str]] = {}
    tables: dict[str, TableState] = {}
    for line in output.splitlines():
        fields = [_unescape(value) for value in line.split("\t")]
        if len(fields) != 4:
            continue
        kind, table, name_, detail = fields
        if kind == "c":
            tables.setdefault(table, TableState("", [], [])).columns.append(name_)
            described.setdefault(table, []).append(f"column {name_} {detail}")
        elif kind == "i" and table in tables:
            described[table].append(f"index {name_} {detail}")
            if name_ == "PRIMARY":
                tables[table].key.append(detail.rsplit(" ", 1)[-1])
    for table, state in tables.items():
        state.schema = _digest("\n".join(described[table]))
    return dict(sorted(tables.items()))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:HASH]


def _unescape(value: str) -> str:
    """A value as the client's batch mode printed it (tab, newline and backslash escaped)."""
    return re.sub(r"\\(.)", lambda m: {"t": "\t", "n": "\n", "0": "\0", "\\": "\\"}.get(m[1], m[1]), value)


def save(snapshot: Snapshot, path: Path) -> None:
    document = {"taken_at": snapshot.taken_at, "prefix": snapshot.prefix,
                "tables": {name: {"schema": t.schema, "columns": t.columns, "key": t.key, "rows": t.rows}
                           for name, t in snapshot.tables.items()}}
    with open_private(path) as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6) as output:
        output.write(json.dumps(document, separators=(",", ":")).encode())


def load(path: Path) -> Snapshot | None:
    """The snapshot saved at `path`; None when there is none (a run recorded before wpgate took them,
    or one that stopped before), or it cannot be read."""
    try:
        with gzip.open(path, "rb") as source:
            document = json.loads(source.read())
        tables = {name: TableState(str(t["schema"]), list(t["columns"]), list(t["key"]), dict(t["rows"]))
                  for name, t in document["tables"].items()}
        return Snapshot(str(document["taken_at"]), str(document["prefix"]), tables)
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError):
        return None


# --- what changed ------------------------------------------------------------------------------------------

@dataclass
class TableChange:
    """How one table differs between two snapshots. Rows marked as caches or sessions are left out of
    the counts; `keys` holds every row key whose state differs, marked or not."""

    table: str
    created: bool = False
    dropped: bool = False
    schema: bool = False
    new: int = 0
    changed: int = 0
    removed: int = 0
    marked: int = 0
    queued: int = 0  # jobs added to Action Scheduler's queue (plugins queue their migrations there)
    keys: set[str] = field(default_factory=set)

    @property
    def matters(self) -> bool:
        return self.created or self.dropped or self.schema or bool(self.new or self.changed or self.removed
                                                                    or self.queued)

    def describe(self) -> str:
        if self.created:
            return f"table {self.table} created"
        if self.dropped:
            return f"table {self.table} dropped"
        parts = ["its schema changed"] if self.schema else []
        parts += [f"{plural(count, f'row {word}', f'rows {word}')}"
                  for count, word in ((self.new, "added"), (self.changed, "changed"), (self.removed, "removed"))
                  if count]
        parts += [f"{plural(self.queued, 'job')} queued"] if self.queued else []
        return f"table {self.table}: {', '.join(parts)}" if parts else f"table {self.table}: only caches or sessions"


def compare(before: Snapshot, after: Snapshot) -> dict[str, TableChange]:
    """Every table that differs between two snapshots, by name."""
    found: dict[str, TableChange] = {}
    for table in sorted(set(before.tables) | set(after.tables)):
        was, now = before.tables.get(table), after.tables.get(table)
        change = TableChange(table, created=was is None, dropped=now is None,
                             schema=bool(was and now and was.schema != now.schema))
        old_rows, new_rows = (was.rows if was else {}), (now.rows if now else {})
        queue = base_name(table, before.prefix) in QUEUE_TABLES
        for key in set(old_rows) | set(new_rows):
            old, new = old_rows.get(key), new_rows.get(key)
            if old == new:
                continue
            change.keys.add(key)
            if (old or "")[HASH:] or (new or "")[HASH:]:
                change.marked += 1
                if queue and old is None:  # marked only so that a rollback puts visitors' jobs back
                    change.queued += 1
            elif old is None:
                change.new += 1
            elif new is None:
                change.removed += 1
            else:
                change.changed += 1
        if change.created or change.dropped or change.schema or change.keys:
            found[table] = change
    return found


def release_changes(before: Snapshot, after_apply: Snapshot) -> list[TableChange]:
    """What the release itself did to the database that matters (caches and sessions left out)."""
    return [change for change in compare(before, after_apply).values() if change.matters]


def unsafe_reason(table: str, before: Snapshot, after_apply: Snapshot | None) -> str | None:
    """Why visitors' rows of `table` cannot be put back after a restore; None when they can: the table
    existed before the run, the release kept its schema, and its rows have a primary key."""
    was = before.tables.get(table)
    now = after_apply.tables.get(table) if after_apply else None
    if was is None:
        return "the run created this table"
    if after_apply is None:
        return "the run stopped before its snapshot after apply"
    if now is None:
        return "the run dropped this table"
    if was.schema != now.schema:
        return "the release changed its schema"
    if not was.key:
        return "it has no primary key"
    return None


def is_the_runs(key: str, row: str | None, before: Snapshot, after_apply: Snapshot | None, table: str) -> bool:
    """A row (`row`: its hash and mark now, None when gone) is as the run left it: the run changed that key
    during apply, and nobody changed it since."""
    if after_apply is None:
        return True  # no snapshot after apply: every change since the run began may be the run's
    was = before.tables.get(table)
    then = after_apply.tables.get(table)
    at_start = was.rows.get(key) if was else None
    after = then.rows.get(key) if then else None
    return at_start != after and after == row


def release_touched(key: str, before: Snapshot, after_apply: Snapshot | None, table: str) -> bool:
    """The release changed the row of `key` during apply (added, changed or removed it)."""
    if after_apply is None:
        return False
    was, then = before.tables.get(table), after_apply.tables.get(table)
    return (was.rows.get(key) if was else None) != (then.rows.get(key) if then else None)


@dataclass
class VisitorRows:
    """Rows written since the run began, in one table, that are not the run's own."""

    table: str
    new: int = 0
    changed: int = 0
    removed: int = 0
    unsafe: str | None = None  # why they cannot be put back after a restore

    @property
    def count(self) -> int:
        return self.new + self.changed + self.removed

    def words(self) -> str:
        parts = [f"{count} {word}" for count, word in ((self.new, "new"), (self.changed, "changed"),
                                                         (self.removed, "removed")) if count]
        return plural(self.count, "row") + (f" ({', '.join(parts)})" if parts else "")


def visitors_rows(before: Snapshot, after_apply: Snapshot | None, now: Snapshot) -> list[VisitorRows]:
    """Per table, the rows that differ now from just before the run and that the run did not leave as
    they are (visitors' and other writers'); caches and sessions are not counted."""
    found = []
    for table, change in compare(before, now).items():
        rows = VisitorRows(table, unsafe=unsafe_reason(table, before, after_apply))
        was = before.tables.get(table)
        current = now.tables.get(table)
        for key in change.keys:
            old = was.rows.get(key) if was else None
            new = current.rows.get(key) if current else None
            if (old or "")[HASH:] or (new or "")[HASH:] or is_the_runs(key, new, before, after_apply, table):
                continue
            if old is None:
                rows.new += 1
            elif new is None:
                rows.removed += 1
            else:
                rows.changed += 1
        if rows.count:
            found.append(rows)
    return found
