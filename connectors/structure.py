"""A regulated table's structure as its source's catalog describes it, for the data passport.

Columns in order with their declared type, NOT NULL, default and maximum length, the table's
and columns' comments, the primary key, foreign keys and whether another table's foreign key
points at it. Read-only, through the capture account (connectors/source_reader.py), in each
dialect's catalog; never a row of data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectors.source_reader import catalog_rows, primary_key, relation


@dataclass(frozen=True)
class SourceColumn:
    position: int
    name: str
    type: str
    not_null: bool
    default: str | None
    max_length: int | None
    comment: str


@dataclass
class SourceTable:
    schema: str
    name: str
    comment: str
    columns: list[SourceColumn]
    primary_key: list[str]
    foreign_keys: dict[str, str] = field(default_factory=dict)   # column -> schema.table.column
    referenced: bool = False                                      # another table's foreign key points here


def read_structure(conn: Any, dbms: str, schema: str, table: str) -> SourceTable | None:
    """The table's structure, or None when the capture account cannot see it."""
    return (_mariadb if dbms == "mariadb" else _postgresql)(conn, schema, table)


def _postgresql(conn: Any, schema: str, table: str) -> SourceTable | None:
    quoted = relation("postgresql", schema, table)
    oid, comment = catalog_rows(conn, "SELECT to_regclass(%s)::oid, obj_description(to_regclass(%s), 'pg_class')",
                                (quoted, quoted))[0]
    if oid is None:
        return None
    columns = [SourceColumn(position, name, declared, bool(not_null), default, length, column_comment or "")
               for position, name, declared, not_null, default, length, column_comment in catalog_rows(
        conn, "SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
              "pg_get_expr(d.adbin, d.adrelid), CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 "
              "THEN a.atttypmod - 4 END, col_description(a.attrelid, a.attnum) FROM pg_attribute a "
              "JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid "
              "AND d.adnum = a.attnum WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (oid,))]
    foreign = {column: f"{ref_schema}.{ref_table}.{ref_column}" for column, ref_schema, ref_table, ref_column in
               catalog_rows(conn, "SELECT a.attname, rn.nspname, rc.relname, ra.attname FROM pg_constraint c "
                                  "CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(col, ref) "
                                  "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col "
                                  "JOIN pg_class rc ON rc.oid = c.confrelid "
                                  "JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
                                  "JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.ref "
                                  "WHERE c.conrelid = %s AND c.contype = 'f' ORDER BY c.conname, a.attnum", (oid,))}
    referenced = catalog_rows(conn, "SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE confrelid = %s "
                                    "AND contype = 'f')", (oid,))[0][0]
    return SourceTable(schema, table, comment or "", columns, primary_key(conn, "postgresql", schema, table), foreign,
                       bool(referenced))


def _mariadb(conn: Any, schema: str, table: str) -> SourceTable | None:
    found = catalog_rows(conn, "SELECT table_comment FROM information_schema.tables WHERE table_schema = %s "
                               "AND table_name = %s", (schema, table))
    if not found:
        return None
    # MariaDB writes a column without a default as the text NULL.
    columns = [SourceColumn(int(position), name, declared, nullable == "NO", None if default == "NULL" else default,
                            int(length) if length is not None else None, column_comment or "")
               for position, name, declared, nullable, default, length, column_comment in catalog_rows(
        conn, "SELECT ordinal_position, column_name, column_type, is_nullable, column_default, "
              "character_maximum_length, column_comment FROM information_schema.columns WHERE table_schema = %s "
              "AND table_name = %s ORDER BY ordinal_position", (schema, table))]
    foreign = {column: f"{ref_schema}.{ref_table}.{ref_column}" for column, ref_schema, ref_table, ref_column in
               catalog_rows(conn, "SELECT column_name, referenced_table_schema, referenced_table_name, "
                                  "referenced_column_name FROM information_schema.key_column_usage "
                                  "WHERE table_schema = %s AND table_name = %s AND referenced_table_name IS NOT NULL "
                                  "ORDER BY constraint_name, ordinal_position", (schema, table))}
    referenced = bool(catalog_rows(conn, "SELECT 1 FROM information_schema.key_column_usage WHERE "
                                         "referenced_table_schema = %s AND referenced_table_name = %s LIMIT 1",
                                   (schema, table)))
    return SourceTable(schema, table, found[0][0] or "", columns, primary_key(conn, "mariadb", schema, table),
                       foreign, referenced)
