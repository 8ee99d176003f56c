"""Read-only questions Qoima asks a regulation's source directly, whichever its dbms.

The assessor counts rows for coverage, the depersonalization check reads the values of name and
phone columns to look for them downstream, and `qoima snapshot` writes its signal row; all go
through the regulation's capture account (`connect_source`). PostgreSQL is read with psycopg, MariaDB with PyMySQL; identifiers are quoted by each
dialect's rules, and every statement is bounded by a timeout so a slow source delays a round
instead of hanging it.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


class SourceReader:
    def __init__(self, regulation: Regulation, environ: dict[str, str], *, timeout_ms: int = 60_000,
                 application: str = "qoima") -> None:
        self.dbms = regulation.source.dbms
        self._conn = connect_source(regulation, environ, timeout_ms=timeout_ms, application=application)

    def __enter__(self) -> "SourceReader":
        return self

    def __exit__(self, *exc) -> None:
        self._conn.close()

    def _quote(self, name: str) -> str:
        if self.dbms == "mariadb":
            return "`" + name.replace("`", "``") + "`"
        return '"' + name.replace('"', '""') + '"'

    def _relation(self, table: Table) -> str:
        return f"{self._quote(table.schema_name)}.{self._quote(table.table_name)}"

    def _rows(self, query: str) -> list[tuple]:
        cursor = self._conn.cursor()
        try:
            cursor.execute(query)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def count_rows(self, table: Table) -> int:
        """Rows of `table`; in marker mode without the soft-deleted ones (deletes in the warehouse)."""
        query = f"SELECT count(*) FROM {self._relation(table)}"
        if table.deleted_flag:
            query += f" WHERE {self._quote(table.deleted_flag)} IS NOT TRUE"
        return int(self._rows(query)[0][0])

    def distinct_values(self, table: Table, column: str, limit: int) -> Iterator[Any]:
        query = f"SELECT DISTINCT {self._quote(column)} FROM {self._relation(table)} LIMIT {int(limit)}"
        for (value,) in self._rows(query):
            yield value
