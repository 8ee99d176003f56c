"""Read-only questions Qoima asks a regulation's source directly, whichever its dbms.

The assessor counts rows for coverage, the depersonalization check reads the values of name and
phone columns to look for them downstream, the marker poller (connectors/marker/) reads the
catalog, the clock and keyset pages of polled tables, and `qoima snapshot` writes its signal row;
all go through the regulation's capture account (`connect_source`). PostgreSQL is read with
psycopg, MariaDB with PyMySQL; identifiers are quoted by each dialect's rules, and every statement
is bounded by a timeout so a slow source delays a round instead of hanging it.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from model.regulation import Regulation, Table


def connect_source(regulation: Regulation, environ: dict[str, str], *, timeout_ms: int = 60_000,
                   application: str = "qoima", autocommit: bool = False) -> Any:
    """A DB-API connection (`%s` placeholders in both drivers) to the regulation's source as its
    capture account, every statement bounded by `timeout_ms`."""
    source = regulation.source
    password = source.password.read(environ)
    if source.dbms == "mariadb":
        import pymysql

        return pymysql.connect(
            host=source.host, port=source.port, user=source.user, password=password, database=source.database,
            connect_timeout=10, charset="utf8mb4", autocommit=autocommit,
            init_command=f"SET SESSION max_statement_time = {timeout_ms / 1000:g}")
    import psycopg
    from psycopg.conninfo import make_conninfo

    return psycopg.connect(make_conninfo(
        host=source.host, port=source.port, dbname=source.database, user=source.user, password=password,
        connect_timeout=10, options=f"-c statement_timeout={timeout_ms}", application_name=application),
        autocommit=autocommit)


def quote_identifier(dbms: str, name: str) -> str:
    """An identifier as each dialect quotes it (backticks in MariaDB, double quotes in PostgreSQL)."""
    if dbms == "mariadb":
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'


def relation(dbms: str, schema: str, table: str) -> str:
    """`schema.table` (MariaDB: `database.table`), each part quoted."""
    return f"{quote_identifier(dbms, schema)}.{quote_identifier(dbms, table)}"


def catalog_rows(conn: Any, query: str, params: Sequence[Any] | None = None) -> list[tuple]:
    """Every row of one read-only statement on a DB-API connection (`%s` placeholders)."""
    cursor = conn.cursor()
    try:
        cursor.execute(query, params or None)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def pg_columns(conn: Any, oid: int) -> list[tuple[str, str, bool, str]]:
    """(name, type, not null, comment) of a PostgreSQL table's columns in order. A domain's column
    has its base type: what Debezium sends and a regulation declares."""
    return [(name, declared, bool(not_null), comment) for name, declared, not_null, comment in catalog_rows(
        conn, "SELECT a.attname, CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) "
              "ELSE format_type(a.atttypid, a.atttypmod) END, a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), "
              "coalesce(col_description(a.attrelid, a.attnum), '') FROM pg_attribute a "
              "JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
              "ORDER BY a.attnum", (oid,))]


def primary_key(conn: Any, dbms: str, schema: str, table: str) -> list[str]:
    """The table's primary key columns in key order; empty when it has none (or is absent)."""
    if dbms == "mariadb":
        query = ("SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = %s "
                 "AND table_name = %s AND constraint_name = 'PRIMARY' ORDER BY ordinal_position")
        return [name for (name,) in catalog_rows(conn, query, (schema, table))]
    quoted = relation(dbms, schema, table)
    return [name for (name,) in catalog_rows(
        conn, "SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, n) ON true "
              "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
              "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY k.n", (quoted,))]


class Catalog(NamedTuple):
    """What the capture account sees of a table."""
    columns: list[str] | None   # in the table's order; None when it is absent or its schema is not visible
    readable: bool              # SELECT allowed
    marker_indexed: bool        # an index starts with the table's marker column


class SourceReader:
    """One connection to the regulation's source, opened on first use and again after `close()`
    (or after the driver found it broken), so a long-running reader recovers from a lost source."""

    def __init__(self, regulation: Regulation, environ: dict[str, str], *, timeout_ms: int = 60_000,
                 application: str = "qoima", autocommit: bool = False) -> None:
        self.dbms = regulation.source.dbms
        self._regulation, self._environ = regulation, environ
        self._options = {"timeout_ms": timeout_ms, "application": application, "autocommit": autocommit}
        self._conn: Any = None

    def __enter__(self) -> "SourceReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def connect(self) -> "SourceReader":
        """Connect now if not connected; raises what `connect_source` raises (RegulationError for
        an unreadable password, the driver's errors otherwise)."""
        if self._conn is None or getattr(self._conn, "closed", False):
            self._conn = connect_source(self._regulation, self._environ, **self._options)
        return self

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken: there is nothing left to release
                pass

    def _quote(self, name: str) -> str:
        return quote_identifier(self.dbms, name)

    def _relation(self, table: Table) -> str:
        return relation(self.dbms, table.schema_name, table.table_name)

    def _columns(self, table: Table) -> dict[str, str]:
        """Each column's warehouse name -> its source name, quoted for SQL."""
        return {column.name: self._quote(column.source_column) for column in table.columns}

    def _rows(self, query: str, params: Sequence[Any] | None = None) -> list[tuple]:
        return catalog_rows(self.connect()._conn, query, params)

    def _postgresql_only(self, what: str) -> None:
        if self.dbms != "postgresql":
            raise NotImplementedError(f"{what} is read from PostgreSQL sources only (marker mode is PostgreSQL-only)")

    def slot(self, slot_name: str) -> tuple[bool, int] | None:
        """(is it active, WAL bytes it keeps) of a replication slot; None when it does not exist.
        PostgreSQL only; readable by any role (pg_replication_slots is a public view)."""
        self._postgresql_only("replication slots")
        rows = self._rows("SELECT active, coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint "
                          "FROM pg_replication_slots WHERE slot_name = %s", (slot_name,))
        return (bool(rows[0][0]), int(rows[0][1])) if rows else None

    def binlog_files(self) -> list[tuple[str, int]]:
        """(name, bytes) of each binary log the server keeps, oldest first. MariaDB only; the
        capture account's BINLOG MONITOR allows it."""
        if self.dbms != "mariadb":
            raise NotImplementedError("binary logs are MariaDB's")
        return [(str(row[0]), int(row[1])) for row in self._rows("SHOW BINARY LOGS")]

    def count_rows(self, table: Table) -> int:
        """Rows of `table`; in marker mode without the soft-deleted ones (deletes in the warehouse)."""
        query = f"SELECT count(*) FROM {self._relation(table)}"
        if table.deleted_flag:
            query += f" WHERE {self._columns(table)[table.deleted_flag]} IS NOT TRUE"
        return int(self._rows(query)[0][0])

    def distinct_values(self, table: Table, column: str, limit: int) -> Iterator[Any]:
        query = f"SELECT DISTINCT {self._quote(column)} FROM {self._relation(table)} LIMIT {int(limit)}"
        for (value,) in self._rows(query):
            yield value

    # -- marker mode: a table polled in (marker, primary key) order -----------------------------
    def catalog(self, table: Table) -> Catalog:
        self._postgresql_only("the catalog")
        import psycopg

        quoted = self._relation(table)
        try:
            found = self._rows("SELECT to_regclass(%s) IS NOT NULL", (quoted,))[0][0]
        except psycopg.errors.InsufficientPrivilege:  # no USAGE on the schema
            found = False
        if not found:
            return Catalog(None, False, False)
        columns = [name for (name,) in self._rows(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum", (quoted,))]
        readable = self._rows("SELECT has_table_privilege(to_regclass(%s), 'SELECT')", (quoted,))[0][0]
        indexed = self._rows(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(%s) AND a.attname = %s)",
            (quoted, table.column(table.marker).source_column))[0][0]
        return Catalog(columns, bool(readable), bool(indexed))

    def clock(self) -> tuple[datetime, datetime]:
        """The source's now() (an instant) and localtimestamp (its wall clock)."""
        self._postgresql_only("the clock")
        now, local_now = self._rows("SELECT now(), localtimestamp")[0]
        return now, local_now

    def keyset_page(self, table: Table, *, after: Sequence[Any] | None, lower: Any | None, upper: Any | None,
                    limit: int, as_text: Collection[str] = ()) -> list[dict[str, Any]]:
        """One page of the declared columns in (marker, primary key) order, by name: the rows after
        `after` (marker, key...) or from the marker value `lower` (inclusive), up to the marker
        value `upper`. Ties on the marker are split by the key, never skipped. Columns in
        `as_text` are read in the source's text form."""
        names = [column.name for column in table.columns]   # the rows' keys; the source's own in SQL
        source = self._columns(table)
        order = ", ".join(source[c] for c in (table.marker, *table.primary_key))
        marker = source[table.marker]
        where, params = [], []
        if after is not None:
            where.append(f"({order}) > ({', '.join(['%s'] * len(after))})")
            params.extend(after)
        elif lower is not None:
            where.append(f"{marker} >= %s")
            params.append(lower)
        if upper is not None:
            where.append(f"{marker} <= %s")
            params.append(upper)
        select = ", ".join(self._as_text(source[name]) if name in as_text else source[name] for name in names)
        query = (f"SELECT {select} FROM {self._relation(table)} WHERE {' AND '.join(where) or 'TRUE'} "
                 f"ORDER BY {order} LIMIT %s")
        return [dict(zip(names, row)) for row in self._rows(query, [*params, limit])]

    def _as_text(self, quoted: str) -> str:
        if self.dbms == "mariadb":
            return f"CAST({quoted} AS CHAR) AS {quoted}"
        return f"{quoted}::text AS {quoted}"

    def marker_keys(self, table: Table) -> list[tuple[tuple, Any, bool]]:
        """(primary key, marker value, flagged deleted) of every row."""
        width = len(table.primary_key)
        source = self._columns(table)
        keys = ", ".join(source[k] for k in table.primary_key)
        flag = f"{source[table.deleted_flag]} IS TRUE" if table.deleted_flag else "FALSE"
        query = f"SELECT {keys}, {source[table.marker]}, {flag} FROM {self._relation(table)}"
        return [(tuple(row[:width]), row[width], row[width + 1]) for row in self._rows(query)]
