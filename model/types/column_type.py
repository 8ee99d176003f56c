"""A declared column type, classified: what every stage of the pipeline dispatches on.

PostgreSQL (model/types/postgresql.py) and MariaDB (model/types/mariadb.py) each read their own
spelling of a type into a `ColumnType`: a family and its arguments, plus the ClickHouse and Avro
types its values become. The family is what the processor's decoders (streams/decode), the
text-form parser (connectors/pg_text.py) and the Debezium encoder (connectors/debezium_encode.py)
dispatch on, so every spelling is recognized in one place. The pieces both languages share (the
decimal and timestamp views, enum label lists) are here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ColumnType:
    """`declared` as written in the regulation, read in the language of `dbms`. `args` depend on
    the family: (bits,) for integers, (precision, scale) for numerics, (labels,) for enums, ...
    Equal and hashed by what was declared and what it was read as; the views follow from those."""

    declared: str
    dbms: str
    family: str
    args: tuple
    clickhouse: str = field(compare=False)
    avro: Any = field(compare=False)


def decimal_views(precision: int, scale: int) -> tuple[str, Any]:
    """ClickHouse and Avro of an exact decimal(p, s)."""
    return (f"Decimal({precision}, {scale})",
            {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale})


DATETIME64 = "DateTime64(6, 'UTC')"
TIMESTAMP_AVRO = {"type": "long", "logicalType": "timestamp-micros"}

_LABEL = re.compile(r"\s*(?:'(?P<quoted>(?:[^']|'')*)'|(?P<bare>[^,'()\s](?:[^,'()]*[^,'()\s])?))\s*(?:,|$)")


def enum_labels(declared: str, text: str | None) -> frozenset[str] | None:
    """The labels of enum(a, 'b c', ...): None when the regulation lists none (any label passes)."""
    if text is None:
        return None
    labels, position = [], 0
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"type {declared!r}: enum labels are a comma-separated list, quoted 'like this' "
                             "when they hold spaces at the ends, commas, quotes or parentheses")
        labels.append(match.group("bare") if match.group("quoted") is None else match.group("quoted").replace("''", "'"))
        position = match.end()
    if not labels or len(set(labels)) != len(labels):
        raise ValueError(f"type {declared!r}: list each enum label once, at least one")
    return frozenset(labels)
