"""Debezium's JSON values decoded into the Python values Avro and ClickHouse take, per source DBMS.

`decoder(column_type)` gives the function that reads one column's values, for the dbms its type
was declared in (model/types); depersonalization and the quality rules (stateless and stateful)
decode through it.
"""
from __future__ import annotations

from typing import Any, Callable

from model.types import ColumnType
from streams.decode import mariadb, postgresql

_BY_DBMS = {"postgresql": postgresql.decoder, "mariadb": mariadb.decoder}


def decoder(column_type: ColumnType) -> Callable[[Any], Any]:
    """The decoder of one column's values; each is built once per declared type."""
    return _BY_DBMS[column_type.dbms](column_type)
