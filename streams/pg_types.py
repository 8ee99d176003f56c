"""PostgreSQL column types: how Debezium encodes them and what they become downstream.

The connector runs with `decimal.handling.mode=string` and
`time.precision.mode=adaptive_time_microseconds`, so every value arrives as JSON that this
module decodes without loss into the Python value the Avro writer and ClickHouse expect.
One `PgType` per declared column carries the three views (decode, Avro, ClickHouse) so they
cannot drift apart. The full mapping table is in docs/type-mapping.md.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any, Callable

_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    return value


def _date(value: Any) -> date:
    return _EPOCH_DATE + timedelta(days=_int(value))


def _micros(value: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=_int(value))


def _millis(value: Any) -> datetime:
    return _EPOCH + timedelta(milliseconds=_int(value))


def _zoned(value: Any) -> datetime:
    parsed = datetime.fromisoformat(_str(value))
    if parsed.tzinfo is None:  # would silently take the host's zone
        raise ValueError("timestamptz without a UTC offset")
    return parsed.astimezone(timezone.utc)


def _numeric(value: Any, precision: int, scale: int) -> Decimal:
    """Exactly the declared numeric(p,s), or ValueError: never rounded, never NaN."""
    try:
        number = Decimal(_str(value))
        if not number.is_finite():
            raise ValueError("numeric is not finite")
        context = Context(prec=precision, traps=[Inexact, InvalidOperation])
        return number.quantize(Decimal(1).scaleb(-scale), context=context)
    except (Inexact, InvalidOperation):
        raise ValueError(f"value does not fit numeric({precision},{scale}) exactly") from None


def _float(value: Any) -> float:
    if isinstance(value, str):  # Debezium spells NaN and infinities as strings
        return float(value)
    return float(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class PgType:
    declared: str
    clickhouse: str
    avro: Any
    decode: Callable[[Any], Any]


_INTS = {
    "smallint": ("Int16", "int"), "int2": ("Int16", "int"),
    "integer": ("Int32", "int"), "int": ("Int32", "int"), "int4": ("Int32", "int"),
    "bigint": ("Int64", "long"), "int8": ("Int64", "long"),
}
_SIMPLE = {
    "real": PgType("real", "Float32", "float", _float),
    "float4": PgType("float4", "Float32", "float", _float),
    "double precision": PgType("double precision", "Float64", "double", _float),
    "float8": PgType("float8", "Float64", "double", _float),
    "boolean": PgType("boolean", "Bool", "boolean", _bool),
    "bool": PgType("bool", "Bool", "boolean", _bool),
    "text": PgType("text", "String", "string", _str),
    "date": PgType("date", "Date32", {"type": "int", "logicalType": "date"}, _date),
    "timestamptz": PgType("timestamptz", "DateTime64(6, 'UTC')", {"type": "long", "logicalType": "timestamp-micros"}, _zoned),
    "timestamp with time zone": PgType("timestamp with time zone", "DateTime64(6, 'UTC')", {"type": "long", "logicalType": "timestamp-micros"}, _zoned),
    "uuid": PgType("uuid", "UUID", {"type": "string", "logicalType": "uuid"}, _str),
    "json": PgType("json", "String", "string", _str),
    "jsonb": PgType("jsonb", "String", "string", _str),
}
_PATTERNS = [
    (re.compile(r"^(?:numeric|decimal)\((\d+),\s*(\d+)\)$"), "numeric"),
    (re.compile(r"^(?:varchar|character varying|char|character|bpchar)\((\d+)\)$"), "string"),
    (re.compile(r"^timestamp(?:\((\d)\))?(?: without time zone)?$"), "timestamp"),
]
SUPPORTED = sorted([*_INTS, *_SIMPLE, "numeric(p,s)", "varchar(n)", "char(n)", "timestamp[(p)]"])


def parse_pg_type(declared: str) -> PgType:
    text = " ".join(declared.lower().split())
    if text in _INTS:
        ch, avro = _INTS[text]
        return PgType(declared, ch, avro, _int)
    if text in _SIMPLE:
        return _SIMPLE[text]
    for pattern, family in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        if family == "numeric":
            precision, scale = int(match.group(1)), int(match.group(2))
            if not 1 <= precision <= 76 or scale > precision:
                raise ValueError(f"type {declared!r}: precision must be 1-76 and scale at most the precision")
            return PgType(declared, f"Decimal({precision}, {scale})",
                          {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale},
                          lambda v, p=precision, s=scale: _numeric(v, p, s))
        if family == "string":
            return PgType(declared, "String", "string", _str)
        precision = int(match.group(1)) if match.group(1) else 6
        # adaptive_time_microseconds: timestamp(0-3) arrives as epoch millis, (4-6) as micros.
        decode = _millis if precision <= 3 else _micros
        return PgType(declared, "DateTime64(6, 'UTC')", {"type": "long", "logicalType": "timestamp-micros"}, decode)
    raise ValueError(f"unsupported column type {declared!r}; supported: {', '.join(SUPPORTED)}")
