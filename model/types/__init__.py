"""Declared column types, read in the language of their source's DBMS.

`int`, `timestamp` or `json` mean different things in PostgreSQL and MariaDB (a MariaDB
TIMESTAMP is an instant, a PostgreSQL timestamp a wall clock), so a type is only ever parsed
together with the dbms of the regulation that declares it. Both languages give a `ColumnType`
(model/types/column_type.py): its family, which the decoders, text parser and Debezium encoder
dispatch on, and its ClickHouse and Avro types, which are all Avro and the DDL need. What a value
of a type may be is in model/types/values.py.
"""
from __future__ import annotations

from model.types.column_type import ColumnType
from model.types.mariadb import is_text_type as _is_mariadb_text_type
from model.types.mariadb import parse_mariadb_type
from model.types.postgresql import is_text_type as _is_pg_text_type
from model.types.postgresql import parse_pg_type
from model.types.values import ValueRefused

__all__ = ["DBMS", "ColumnType", "ValueRefused", "is_date_type", "is_text_type", "parse_type"]

DBMS = ("postgresql", "mariadb")
_PARSERS = {"postgresql": parse_pg_type, "mariadb": parse_mariadb_type}


def parse_type(declared: str, dbms: str = "postgresql") -> ColumnType:
    """ValueError naming the supported types when `declared` is not a type of `dbms`."""
    parser = _PARSERS.get(dbms)
    if parser is None:
        raise ValueError(f"unknown dbms {dbms!r}; one of {', '.join(DBMS)}")
    return parser(declared)


def is_text_type(declared: str, dbms: str = "postgresql") -> bool:
    """What redact and the region generalizations take: text, varchar(n), char(n) (and MariaDB's
    text types)."""
    return _is_mariadb_text_type(declared) if dbms == "mariadb" else _is_pg_text_type(declared)


def is_date_type(declared: str, dbms: str = "postgresql") -> bool:
    """What the year and age-band generalizations take: a date or a timestamp of either kind."""
    return parse_type(declared, dbms).clickhouse.startswith(("Date32", "DateTime64"))
