"""A declared column type read in the language of its source's DBMS.

`int`, `timestamp` or `json` mean different things in PostgreSQL and MariaDB (a MariaDB
TIMESTAMP is an instant, a PostgreSQL timestamp a wall clock), so a type is only ever parsed
together with the dbms of the regulation that declares it. Both parsers return a `PgType`
(declared, clickhouse, avro, decode), which is all the router, Avro and the DDL need.
"""
from __future__ import annotations

from model.types.mariadb import parse_mariadb_type
from model.types.postgresql import PgType, parse_pg_type

DBMS = ("postgresql", "mariadb")
_PARSERS = {"postgresql": parse_pg_type, "mariadb": parse_mariadb_type}


def parse_type(declared: str, dbms: str = "postgresql") -> PgType:
    """ValueError naming the supported types when `declared` is not a type of `dbms`."""
    parser = _PARSERS.get(dbms)
    if parser is None:
        raise ValueError(f"unknown dbms {dbms!r}; one of {', '.join(DBMS)}")
    return parser(declared)
