"""Debezium's JSON for a PostgreSQL column, decoded into the Python value Avro and ClickHouse take.

The connector runs with `decimal.handling.mode=string`,
`time.precision.mode=adaptive_time_microseconds`, `interval.handling.mode=string` and
`binary.handling.mode=base64`, so every value arrives as JSON that `decoder(column_type)` reads
without loss. A value the warehouse cannot hold (a date before 1900 or past 2299, ±infinity, a
numeric NaN, ±Infinity or wider than declared) is read as what it is, for the rules and the
generalizations; streams/depersonalize.py fits a kept one for ClickHouse with a defect
(model/types/values.py `fitter`). Debezium 3.0 spells ±infinity in ways of its own
(`_INFINITE_DAYS` and its neighbours below, observed on the local stack; the e2e test of
tests/e2e/test_type_fidelity.py inserts each so that a change of spelling fails it). streams/decode/mariadb.py reuses the decoders below where
Debezium sends a MariaDB type as it sends a PostgreSQL one (`epoch_day`, `epoch_millis`,
`epoch_micros`, `iso_instant`, `floating`, `base64_bytes`): a change to one changes both sources.
The mapping table is in docs/type-mapping.md.
"""
from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Context, Decimal, Inexact, InvalidOperation
from functools import lru_cache
from typing import Any, Callable

from connectors.pg_text import clock_and_offset, iso_interval, network, utc_time_of_day
from model.types import ColumnType
from model.types.postgresql import parse_pg_type
from model.types.values import (EPOCH, EPOCH_DATE, INFINITY, MICROSECOND, MINUS_INFINITY, Beyond, ValueRefused, boolean,
                                decimal_text, enum_label, integer, money, string, time_of_day)


# PostgreSQL's date ±infinity as Debezium 3.0 sends it: pgjdbc's infinity dates converted to days
# (scalar columns), and another conversion of them inside date arrays. Each lies millions of years
# before PostgreSQL's first date (4713 BC), so no real date collides with one.
_INFINITE_DAYS = {-2147472692: INFINITY, -2147472691: MINUS_INFINITY,
                  -622191234: INFINITY, -625821272: MINUS_INFINITY}
# timestamp ±infinity: pgjdbc's PGStatement.DATE_POSITIVE_INFINITY / NEGATIVE_INFINITY (ms) in
# the unit of the column (adaptive_time_microseconds: micros for timestamp(4-6), millis for (0-3)).
_INFINITE_MICROS = {9223372036825200000: INFINITY, -9223372036832400000: MINUS_INFINITY}
MILLISECOND = timedelta(milliseconds=1)
_INFINITE_MILLIS = {9223372036825200: INFINITY, -9223372036832400: MINUS_INFINITY}
# timestamptz ±infinity: spelled out, except -infinity inside an array, which arrives as the
# instant Java's date arithmetic wraps it to.
_INFINITE_ISO = {"infinity": INFINITY, "-infinity": MINUS_INFINITY,
                 "+292269055-12-02T23:00:00.000000Z": MINUS_INFINITY}
_MIN_DAYS, _MAX_DAYS = (date.min - EPOCH_DATE).days, (date.max - EPOCH_DATE).days


def epoch_day(value: Any) -> date | Beyond:
    """A date sent as days since 1970-01-01."""
    days = integer(value)
    if _MIN_DAYS <= days <= _MAX_DAYS:
        return EPOCH_DATE + timedelta(days=days)
    return _INFINITE_DAYS.get(days) or Beyond(1 if days > 0 else -1, False)


def _epoch(value: int, unit: timedelta, infinite: dict[int, Beyond]) -> datetime | Beyond:
    special = infinite.get(value)
    if special is not None:
        return special
    try:
        return EPOCH + value * unit
    except OverflowError:  # a year after 9999 or before 1
        return Beyond(1 if value > 0 else -1, False)


def epoch_micros(value: Any) -> datetime | Beyond:
    """A timestamp sent as microseconds since 1970-01-01 00:00, as an aware UTC datetime."""
    return _epoch(integer(value), MICROSECOND, _INFINITE_MICROS)


def epoch_millis(value: Any) -> datetime | Beyond:
    """A timestamp sent as milliseconds since 1970-01-01 00:00, as an aware UTC datetime."""
    return _epoch(integer(value), MILLISECOND, _INFINITE_MILLIS)


def iso_instant(value: Any) -> datetime | Beyond:
    """An instant sent as ISO 8601 with its UTC offset, as an aware UTC datetime."""
    text = string(value)
    special = _INFINITE_ISO.get(text)
    if special is not None:
        return special
    if text[:1] in "+-":  # Java's spelling of a year beyond 0000..9999 (a BC year is negative)
        return Beyond(1 if text[0] == "+" else -1, False)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # its message quotes the value
        raise ValueRefused("not an ISO-8601 timestamp with an offset") from None
    if parsed.tzinfo is None:  # would silently take the host's zone
        raise ValueError("timestamptz without a UTC offset")
    return parsed.astimezone(timezone.utc)


# PostgreSQL's numeric NaN and ±Infinity as Debezium sends them with decimal.handling.mode=string.
_NON_FINITE = {"NAN": Decimal("NaN"), "POSITIVE_INFINITY": Decimal("Infinity"),
               "NEGATIVE_INFINITY": Decimal("-Infinity")}


def numeric(value: Any) -> Decimal:
    """A numeric as the exact Decimal the source holds, NaN and ±Infinity included (the fit for
    ClickHouse's Decimal(p, s) is depersonalization's, for kept columns)."""
    text = string(value)
    special = _NON_FINITE.get(text)
    if special is not None:
        return special
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueRefused("not a decimal number") from None
    if not number.is_finite():  # 'NaN' or 'Infinity' spelled otherwise: not Debezium's
        raise ValueRefused("not a decimal number")
    return number


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
    "numeric_text": lambda v: decimal_text(numeric(v)),
}


@lru_cache(maxsize=None)
def decoder(column_type: ColumnType) -> Callable[[Any], Any]:
    """The decoder of a PostgreSQL column's Debezium JSON value (never None: nulls are not decoded)."""
    family, args = column_type.family, column_type.args
    if family == "int":
        return integer
    if family == "numeric":
        precision, scale = args
        quantum, context = Decimal(1).scaleb(-scale), Context(prec=precision, traps=[Inexact, InvalidOperation])

        def declared(v: Any) -> Decimal:
            number = numeric(v)
            try:  # with the declared scale, as ClickHouse will hold it
                return number.quantize(quantum, context=context) if number.is_finite() else number
            except (Inexact, InvalidOperation):
                return number  # wider than declared: read as it is, fitted by depersonalization
        return declared
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
