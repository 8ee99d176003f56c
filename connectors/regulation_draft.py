"""`qoima regulation draft`: a starting regulation written from a live source's catalog.

Every table of the chosen schemas with its columns, declared types, nullability, primary key,
foreign keys and comments, so nobody types column lists by hand. What only a person may decide
is left undecided on purpose: each column's action is `decide`, which no regulation accepts, so
the draft cannot be loaded (and no identifier captured in clear) until someone has chosen keep,
hash, redact, generalize or drop for every column. Likely identifiers are flagged in comments,
by the column's name and by sampling its values with the identifier validators
(model/normalize.py); the sampled values are read as the capture account, counted and dropped,
never printed.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from connectors.source_reader import catalog_rows, pg_columns, primary_key, quote_identifier
from model import names, normalize
from model.types import parse_type

SAMPLE_ROWS = 200
UNDECIDED = "decide"
# A column's name that suggests what it holds: (pattern, kind or role, suggested action).
_BY_NAME = [
    (re.compile(r"(^|_)(iin|иин)($|_)"), "iin", "hash, kind: iin"),
    (re.compile(r"(^|_)(bin|бин)($|_)"), "bin", "hash, kind: bin"),
    (re.compile(r"phone|mobile|(^|_)tel($|_)"), "phone", "hash, kind: phone"),
    (re.compile(r"e_?mail"), "email", "hash, kind: email"),
    (re.compile(r"passport"), "passport", "hash, kind: passport"),
    (re.compile(r"(first|last|middle|full|sur|given)_?name|(^|_)fio($|_)|patronymic"), "name",
     "drop, kind: name (or hash, kind: name to join on it)"),
    (re.compile(r"address|(^|_)addr($|_)"), "address", "generalize, to: address_region (or drop)"),
    (re.compile(r"birth|(^|_)dob($|_)"), "birth date", "generalize, to: year (quasi_identifier: true)"),
]
_SAMPLED_KINDS = ("iin", "bin", "phone", "email", "passport")


@dataclass
class DraftColumn:
    name: str
    type: str
    nullable: bool
    comment: str = ""
    flags: list[str] = field(default_factory=list)


@dataclass
class DraftTable:
    schema: str
    name: str
    comment: str = ""
    key: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)
    columns: list[DraftColumn] = field(default_factory=list)


def flag_by_name(column: str) -> list[str]:
    return [f"likely {what} by its name: action: {action}" for pattern, what, action in _BY_NAME
            if pattern.search(column.lower())]


def flag_by_values(values: list[Any]) -> list[str]:
    """The identifier kinds most sampled values are valid as (at least 80% of the non-empty ones)."""
    texts = [str(v) for v in values if v is not None and str(v).strip()]
    if not texts:
        return []
    flags = []
    for kind in _SAMPLED_KINDS:
        valid = sum(1 for text in texts if normalize.BY_KIND[kind](text) is not None)
        if valid >= 0.8 * len(texts):
            flags.append(f"{valid} of {len(texts)} sampled values are valid {kind}s: action: hash, kind: {kind}")
    return flags


def _type_note(declared: str, dbms: str) -> str:
    try:
        parse_type(declared, dbms)
        return ""
    except ValueError as exc:
        return str(exc).split(";")[0]


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar


def render(provider: str, dbms: str, connection: dict[str, Any], tables: list[DraftTable]) -> str:
    """The draft regulation's YAML text (comments included, so written by hand, not by a dumper)."""
    lines = [
        f"# Draft regulation of provider {provider}, written by `qoima regulation draft` from {dbms} "
        f"{connection['host']}:{connection['port']}/{connection['database']} on {date.today().isoformat()}.",
        f"# Every column's action is '{UNDECIDED}': this file does not load until each is decided (keep, hash,",
        "# redact, generalize, drop; docs/regulation.md). Likely identifiers are flagged in comments.",
        f"provider: {provider}",
        'organization: "TODO: the data owner, as in the questionnaire (R394 Appendix 1)"',
        'information_system: "TODO: its information system"',
        "source:",
        f"  dbms: {dbms}",
        f"  host: {_quote(connection['host'])}",
        f"  port: {connection['port']}",
        f"  database: {connection['database']}",
        f"  user: {connection['user']}",
        "  password:",
        f"    file: {_quote(connection['password_file'])}",
        *(["  server_id: 5400  # TODO: a replica id no other replica of this server uses"] if dbms == "mariadb" else []),
        "  capture: cdc",
        "  snapshot: initial",
        "tables:",
    ]
    schemas = names.warehouse_names(sorted({table.schema for table in tables}))
    table_names = {schema: names.warehouse_names([t.name for t in tables if t.schema == schema]) for schema in schemas}
    for table in tables:
        lines.append(f"  - name: {schemas[table.schema]}.{table_names[table.schema][table.name]}")
        # A name that needs quoting at the source keeps its exact spelling here (docs/regulation.md, "Names").
        if schemas[table.schema] != table.schema:
            lines.append(f"    source_schema: {_quote(table.schema)}")
        if table_names[table.schema][table.name] != table.name:
            lines.append(f"    source_table: {_quote(table.name)}")
        if table.comment:
            lines.append(f"    description: {_quote(table.comment)}")
        columns = names.warehouse_names([c.name for c in table.columns])
        if table.key:
            lines.append(f"    primary_key: [{', '.join(columns.get(k, k) for k in table.key)}]")
        else:
            lines.append("    primary_key: []  # TODO: no primary key at the source: add one there, or "
                         "REPLICA IDENTITY FULL and name the columns that identify a row")
        for foreign_key in table.foreign_keys:
            lines.append(f"    # foreign key: {foreign_key} (an integrity rule may check it: docs/regulation.md)")
        lines.append("    columns:")
        for column in table.columns:
            for flag in column.flags:
                lines.append(f"      # {column.name}: {flag}")
            note = _type_note(column.type, dbms)
            if note:
                lines.append(f"      # {column.name}: {note}")
            entry = [f"name: {columns[column.name]}"]
            if columns[column.name] != column.name:
                entry.append(f"source_name: {_quote(column.name)}")
            entry.append(f"type: {_quote(column.type)}")
            if not column.nullable:
                entry.append("nullable: false")
            entry.append(f"action: {UNDECIDED}")
            if column.comment:
                entry.append(f"description: {_quote(column.comment)}")
            lines.append("      - {" + ", ".join(entry) + "}")
    return "\n".join(lines) + "\n"


# Column types whose values may be identifiers written as text or digits: sampled.
_SAMPLED_TYPES = {"postgresql": ("text", "character", "varchar", "bigint", "numeric"),
                  "mariadb": ("char", "varchar", "text", "bigint", "decimal")}


def _column(conn: Any, dbms: str, schema: str, table: str, column: str, declared: str, nullable: bool,
            comment: str, sample: int) -> DraftColumn:
    """One column of the draft, flagged by its name and, for a type that may hold identifiers, by
    `sample` of its values (counted, never kept)."""
    draft = DraftColumn(column, declared, nullable, comment, flag_by_name(names.warehouse_name(column)))
    if declared.startswith(_SAMPLED_TYPES[dbms]):
        quoted = quote_identifier(dbms, column)
        relation = f"{quote_identifier(dbms, schema)}.{quote_identifier(dbms, table)}"
        text = f"{quoted}::text" if dbms == "postgresql" else quoted
        draft.flags += flag_by_values([v for (v,) in catalog_rows(
            conn, f"SELECT {text} FROM {relation} WHERE {quoted} IS NOT NULL LIMIT {int(sample)}")])
    return draft


def read_postgresql(conn: Any, schemas: list[str], sample: int = SAMPLE_ROWS) -> list[DraftTable]:
    tables = []
    for oid, schema, name, comment in catalog_rows(
            conn, "SELECT c.oid, n.nspname, c.relname, coalesce(obj_description(c.oid, 'pg_class'), '') "
                  "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                  "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s) ORDER BY 2, 3", (schemas,)):
        if name == names.SIGNAL_TABLE_NAME:
            continue  # Qoima's own, not the provider's data
        table = DraftTable(schema, name, comment)
        table.key = primary_key(conn, "postgresql", schema, name)
        table.foreign_keys = [f"{constraint}: {definition}" for constraint, definition in catalog_rows(
            conn, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s AND contype = 'f' "
                  "ORDER BY conname", (oid,))]
        for column, declared, not_null, column_comment in pg_columns(conn, oid):
            table.columns.append(_column(conn, "postgresql", schema, name, column, declared, not not_null,
                                         column_comment, sample))
        tables.append(table)
    return tables


def read_mariadb(conn: Any, schemas: list[str], sample: int = SAMPLE_ROWS) -> list[DraftTable]:
    tables = []
    marks = ", ".join(["%s"] * len(schemas))
    for schema, name, comment in catalog_rows(
            conn, f"SELECT table_schema, table_name, table_comment FROM information_schema.tables "
                  f"WHERE table_schema IN ({marks}) AND table_type = 'BASE TABLE' ORDER BY 1, 2", tuple(schemas)):
        if name == names.SIGNAL_TABLE_NAME:
            continue
        table = DraftTable(schema, name, comment or "")
        table.key = primary_key(conn, "mariadb", schema, name)
        table.foreign_keys = [f"{constraint}: ({column}) REFERENCES {ref_table}({ref_column})"
                              for constraint, column, ref_table, ref_column in catalog_rows(
            conn, "SELECT constraint_name, column_name, referenced_table_name, referenced_column_name "
                  "FROM information_schema.key_column_usage WHERE table_schema = %s AND table_name = %s "
                  "AND referenced_table_name IS NOT NULL ORDER BY constraint_name", (schema, name))]
        for column, declared, nullable, column_comment in catalog_rows(
                conn, "SELECT column_name, column_type, is_nullable, column_comment FROM information_schema.columns "
                      "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", (schema, name)):
            table.columns.append(_column(conn, "mariadb", schema, name, column, declared, nullable == "YES",
                                         column_comment or "", sample))
        tables.append(table)
    return tables
