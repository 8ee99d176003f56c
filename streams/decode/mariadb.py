"""Debezium's JSON for a MariaDB column, decoded into the Python value Avro and ClickHouse take.

The connector runs with the value settings of PostgreSQL's (connectors/debezium/mariadb.py) plus
`bigint.unsigned.handling.mode=precise`, so that a BIGINT UNSIGNED above 2^63 is not wrapped into
a negative long. Where Debezium's JSON for a MariaDB type is the one it sends for a PostgreSQL
type (DATE as epoch days, DATETIME(p) as epoch millis or micros like timestamp(p), TIMESTAMP as
an ISO instant like timestamptz, DECIMAL as a string) PostgreSQL's decoders are reused, so both
sources refuse the same out-of-range values the same way. The mapping table and its reasons are
in docs/mariadb.md.
"""
from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable

from model.types import ColumnType
from model.types.values import ValueRefused, enum_label, exact_numeric, integer, string
from streams.decode.postgresql import base64_bytes, epoch_day, epoch_micros, epoch_millis, floating, iso_instant


def _checked(value: int, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise ValueRefused(f"out of range for {what}")
    return value


def _integer(low: int, high: int, what: str) -> Callable[[Any], int]:
    return lambda value: _checked(integer(value), low, high, what)


def _unsigned_bigint(value: Any) -> Decimal:
    """Debezium's precise mode sends a Kafka Connect Decimal of scale 0: with the JSON converter's
    default `decimal.format=BASE64` that is the big-endian two's-complement unscaled value; with
    `NUMERIC` a plain JSON integer. A negative long means the connector ran in `long` mode and
    wrapped a value above 2^63: refused, not reinterpreted."""
    if isinstance(value, str):
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise ValueRefused("not base64") from None
        if not raw:
            raise ValueRefused("an empty unsigned bigint")
        number = int.from_bytes(raw, "big", signed=True)
    else:
        number = integer(value)
    return Decimal(_checked(number, 0, (1 << 64) - 1, "bigint unsigned"))


def _boolean(value: Any) -> bool:
    # BOOLEAN is TINYINT(1): Debezium sends true/false when it learnt the column from a DDL that
    # said BOOLEAN, and 0/1 when it read SHOW CREATE TABLE (tinyint(1)) during a snapshot.
    if isinstance(value, bool):
        return value
    if integer(value) in (0, 1):
        return bool(value)
    raise ValueRefused("a tinyint(1) holding a value other than 0 or 1; declare the column 'tinyint' "
                       "to keep it as a number")


_TIME_LIMIT = ((838 * 60 + 59) * 60 + 59) * 1_000_000 + 999_999  # TIME is an elapsed time, not a time of day


def _elapsed_time(value: Any) -> int:
    return _checked(integer(value), -_TIME_LIMIT, _TIME_LIMIT, "time (-838:59:59.999999..838:59:59.999999)")


def _year(value: Any) -> int:
    year = integer(value)
    if year != 0 and not 1901 <= year <= 2155:  # 0000 is YEAR's own zero value, kept as it is
        raise ValueRefused("out of range for year (1901..2155 or 0)")
    return year


def _unsigned_decimal(precision: int, scale: int) -> Callable[[Any], Decimal]:
    def decode(value: Any) -> Decimal:
        number = exact_numeric(value, precision, scale)
        if number < 0:
            raise ValueRefused("a negative value in an unsigned decimal")
        return number
    return decode


def _set(labels: frozenset[str] | None) -> Callable[[Any], str]:
    def decode(value: Any) -> str:
        text = string(value)
        if labels is not None and text and not set(text.split(",")) <= labels:
            raise ValueRefused("a member that is not one of the set labels the regulation declares")
        return text
    return decode


_DECODERS: dict[str, Callable[[Any], Any]] = {
    # Debezium sends these as it does PostgreSQL's.
    "float4": floating,
    "float8": floating,
    "text": string,
    "varchar": string,
    "char": string,
    "date": epoch_day,
    "bool": _boolean,
    "json": string,
    "timestamp": iso_instant,   # stored in UTC; Debezium sends it with a Z
    "time": _elapsed_time,
    "year": _year,
    "bytes": base64_bytes,
}


@lru_cache(maxsize=None)
def decoder(column_type: ColumnType) -> Callable[[Any], Any]:
    """The decoder of a MariaDB column's Debezium JSON value (never None: nulls are not decoded)."""
    family, args = column_type.family, column_type.args
    if family == "int":
        bits = args[0]
        return _integer(-(1 << (bits - 1)), (1 << (bits - 1)) - 1, f"a {bits}-bit integer")
    if family == "unsigned":
        bits = args[0]
        if bits == 64:
            return _unsigned_bigint
        return _integer(0, (1 << bits) - 1, f"an unsigned {bits}-bit integer")
    if family == "decimal":
        precision, scale, unsigned = args
        return _unsigned_decimal(precision, scale) if unsigned else (lambda v: exact_numeric(v, precision, scale))
    if family == "datetime":
        # adaptive_time_microseconds: DATETIME(0-3) arrives as epoch millis, (4-6) as micros, both
        # the wall clock read as UTC, exactly as PostgreSQL's timestamp(p).
        return epoch_millis if args[0] <= 3 else epoch_micros
    if family == "enum":
        labels = args[0]
        return lambda v: enum_label(v, labels)
    if family == "set":
        return _set(args[0])
    return _DECODERS[family]
