"""Debezium's JSON for a PostgreSQL column, decoded into the Python value Avro and ClickHouse take.

The connector runs with `decimal.handling.mode=string`,
`time.precision.mode=adaptive_time_microseconds`, `interval.handling.mode=string` and
`binary.handling.mode=base64`, so every value arrives as JSON that `decoder(column_type)` reads
without loss. A value the warehouse cannot hold exactly (a date past 2299, a numeric wider than
declared) is refused with ValueError (model/types/values.py), and the router quarantines its
row: nothing is clamped or rounded. streams/decode/mariadb.py reuses the decoders below where
Debezium sends a MariaDB type as it sends a PostgreSQL one (`epoch_day`, `epoch_millis`,
`epoch_micros`, `iso_instant`, `floating`, `base64_bytes`): a change to one changes both sources.
The mapping table is in docs/type-mapping.md.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Callable

from connectors.pg_text import clock_and_offset, iso_interval, network, utc_time_of_day
from model.types import ColumnType
from model.types.postgresql import parse_pg_type
from model.types.values import (EPOCH, EPOCH_DATE, ValueRefused, boolean, days_in_range, enum_label, exact_numeric,
                                instant_in_range, integer, micros_in_range, money, string, time_of_day)


def epoch_day(value: Any) -> date:
    """A date sent as days since 1970-01-01."""
    return EPOCH_DATE + timedelta(days=days_in_range(integer(value)))


def epoch_micros(value: Any) -> datetime:
    """A timestamp sent as microseconds since 1970-01-01 00:00, as an aware UTC datetime."""
    return EPOCH + timedelta(microseconds=micros_in_range(integer(value)))


def epoch_millis(value: Any) -> datetime:
    """A timestamp sent as milliseconds since 1970-01-01 00:00, as an aware UTC datetime."""
    millis = integer(value)
    micros_in_range(millis * 1000)
    return EPOCH + timedelta(milliseconds=millis)


def iso_instant(value: Any) -> datetime:
    """An instant sent as ISO 8601 with its UTC offset, as an aware UTC datetime."""
    try:
        parsed = datetime.fromisoformat(string(value))
    except ValueError:  # its message quotes the value; 'infinity' lands here too
        raise ValueRefused("not an ISO-8601 timestamp with an offset") from None
    if parsed.tzinfo is None:  # would silently take the host's zone
        raise ValueError("timestamptz without a UTC offset")
    return instant_in_range(parsed.astimezone(timezone.utc))


def floating(value: Any) -> float:
    """A real or double precision number."""
    try:  # Debezium spells NaN and infinities as strings
        return float(value)
    except (TypeError, ValueError):  # their messages quote the value
        raise ValueRefused(f"a {type(value).__name__} that is not a number") from None


def _timetz(value: Any) -> int:
    micros, offset = clock_and_offset(string(value))
    if offset is None:
        raise ValueRefused("timetz without a UTC offset")
    return utc_time_of_day(micros, offset)


def _interval(value: Any) -> dict[str, int]:
    return iso_interval(string(value))


def base64_bytes(value: Any) -> bytes:
    """Bytes sent as base64 (binary.handling.mode=base64)."""
    try:
        return base64.b64decode(string(value), validate=True)
    except binascii.Error:
        raise ValueRefused("not base64") from None


def _inet(value: Any, cidr: bool) -> str:
    # Debezium sends PostgreSQL's own output, which is kept as it is: only checked.
    text = string(value)
    network(text, cidr)
    return text


_MAC = {False: re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"), True: re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){7}")}


def _macaddr(value: Any, eight: bool) -> str:
    text = string(value)
    if not _MAC[eight].fullmatch(text):
        raise ValueRefused(f"not a {'macaddr8' if eight else 'macaddr'} as PostgreSQL prints it")
    return text


def _array(value: Any, element: Callable[[Any], Any]) -> list:
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON array, got {type(value).__name__}")
    items = []
    for item in value:
        if isinstance(item, list):
            raise ValueRefused("a multidimensional array value in a one-dimensional array column")
        items.append(None if item is None else element(item))
    return items


# time and timetz are microseconds since midnight (model/types/values.py); timetz arrives from
# Debezium already shifted to UTC, so its value is the UTC time of day.
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "float4": floating,
    "float8": floating,
    "bool": boolean,
    "text": string,
    "varchar": string,
    "char": string,
    "date": epoch_day,
    "timestamptz": iso_instant,
    "uuid": string,
    "json": string,
    "jsonb": string,
    "money": money,
    "time": time_of_day,
    "timetz": _timetz,
    "interval": _interval,
    "bytea": base64_bytes,
    "inet": lambda v: _inet(v, False),
    "cidr": lambda v: _inet(v, True),
    "macaddr": lambda v: _macaddr(v, False),
    "macaddr8": lambda v: _macaddr(v, True),
}


@lru_cache(maxsize=None)
def decoder(column_type: ColumnType) -> Callable[[Any], Any]:
    """The decoder of a PostgreSQL column's Debezium JSON value (never None: nulls are not decoded)."""
    family, args = column_type.family, column_type.args
    if family == "int":
        return integer
    if family == "numeric":
        precision, scale = args
        return lambda v: exact_numeric(v, precision, scale)
    if family == "timestamp":
        # adaptive_time_microseconds: timestamp(0-3) arrives as epoch millis, (4-6) as micros.
        return epoch_millis if args[0] <= 3 else epoch_micros
    if family == "enum":
        labels = args[0]
        return lambda v: enum_label(v, labels)
    if family == "array":
        element = decoder(parse_pg_type(args[0]))
        return lambda v: _array(v, element)
    return _DECODERS[family]
