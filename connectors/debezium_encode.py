"""Debezium's JSON form of a typed value: what its PostgreSQL connector would have sent.

`encoder(declared)` is the inverse of the processor's decoder (streams/decode): for a Python
value as the decoder gives it, or as psycopg (the marker poller) or pandas (a Parquet history
file) reads it, the JSON value Debezium sends for the same datum, with the connector's settings
(decimal.handling.mode=string, time.precision.mode=adaptive_time_microseconds,
interval.handling.mode=string, binary.handling.mode=base64). Rows the marker poller reads and
rows of historical files are written in this form, so they take the router's one path from
Debezium's JSON on, exactly as a CDC event of the same row would. A value PostgreSQL would not
store is refused with ValueRefused, whose message never quotes the value.
"""
from __future__ import annotations

import base64
import ipaddress
import math
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable

from connectors.pg_text import (inet_from_text, macaddr_from_text, money_from_text, nearest_real, round_interval,
                                round_time, round_timestamp, utc_time_of_day)
from model.types.postgresql import parse_pg_type
from model.types.values import (EPOCH, EPOCH_DATE, MICROSECOND, ValueRefused, boolean, days_in_range, enum_label,
                                instant_in_range, integer, integer_in_range, interval_value, money,
                                refused_unless_numeric, refusing, time_of_day, decimal_text)


def _typed_int(value: Any, bits: int) -> int:
    return integer_in_range(integer(value), bits)


def _numeric_to_debezium(value: Any, precision: int, scale: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise ValueRefused(f"a {type(value).__name__} is not a numeric")
    # A float is taken as its shortest spelling (what a person typed), then must fit exactly.
    text = repr(value) if isinstance(value, float) else str(value)
    return format(refused_unless_numeric(text, precision, scale), "f")


_DEBEZIUM_NON_FINITE = {"NaN": "NAN", "Infinity": "POSITIVE_INFINITY", "-Infinity": "NEGATIVE_INFINITY"}


def _numeric_text_to_debezium(value: Any) -> str:
    """An unconstrained numeric as Debezium's string mode sends it (streams/decode reads it back)."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise ValueRefused(f"a {type(value).__name__} is not a numeric")
    text = decimal_text(Decimal(repr(value)) if isinstance(value, float) else Decimal(value))
    return _DEBEZIUM_NON_FINITE.get(text, text)


def _float_to_debezium(value: Any, single: bool) -> float | str:
    if isinstance(value, bool) or not isinstance(value, (float, int, Decimal)):
        raise ValueRefused(f"a {type(value).__name__} is not a floating-point number")
    number = nearest_real(float(value)) if single else float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _string_to_debezium(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"a {type(value).__name__} is not a string")
    return value


def _date_to_debezium(value: Any) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is not None or value.time() != datetime.min.time():
            raise ValueRefused("a datetime with a time or a zone is not a date")
        value = value.date()
    if not isinstance(value, date):
        raise ValueRefused(f"a {type(value).__name__} is not a date")
    return days_in_range((value - EPOCH_DATE).days)


def _timestamptz_to_debezium(value: Any) -> str:
    if not isinstance(value, datetime):
        raise ValueRefused(f"a {type(value).__name__} is not a timestamp")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueRefused("timestamptz without a UTC offset")
    return instant_in_range(value.astimezone(timezone.utc)).isoformat()


def _timestamp_to_debezium(value: Any, precision: int) -> int:
    if not isinstance(value, datetime):
        raise ValueRefused(f"a {type(value).__name__} is not a timestamp")
    if value.tzinfo is not None and value.utcoffset() != timedelta(0):
        # decode gives the wall clock in UTC; another offset is not a wall clock of this column
        raise ValueRefused("a UTC offset other than 0 given for a timestamp without time zone")
    rounded = instant_in_range(round_timestamp(value.replace(tzinfo=timezone.utc), precision))
    unit = timedelta(milliseconds=1) if precision <= 3 else MICROSECOND
    return (rounded - EPOCH) // unit


def _uuid_to_debezium(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    return _string_to_debezium(value)


def _money_to_debezium(value: Any) -> str:
    if isinstance(value, str):  # psycopg reads money as its text
        return format(money_from_text(value), "f")
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise ValueRefused(f"a {type(value).__name__} is not money")
    # A float is spelled as its repr, so `money` sees the exponent a large one carries.
    return format(money(repr(value) if isinstance(value, float) else format(value, "f")), "f")


def _typed_time(value: Any) -> tuple[int, int | None]:
    """(microseconds since midnight, UTC offset in microseconds or None) of a typed time value."""
    if isinstance(value, bool):
        raise ValueRefused("a bool is not a time of day")
    if isinstance(value, int):
        return value, None
    if isinstance(value, time):
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
        offset = value.utcoffset()
        return micros, None if offset is None else offset // MICROSECOND
    if isinstance(value, timedelta):  # pandas reads time columns as durations since midnight
        return value // MICROSECOND, None
    raise ValueRefused(f"a {type(value).__name__} is not a time of day")


def _clock_text(micros: int) -> str:
    seconds, fraction = divmod(micros, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}" + (f".{fraction:06d}" if fraction else "")


def _time_to_debezium(value: Any, precision: int) -> int:
    micros, offset = _typed_time(value)
    if offset:
        raise ValueRefused("a UTC offset other than 0 given for a time without time zone")
    return time_of_day(round_time(micros, precision))


def _timetz_to_debezium(value: Any, precision: int) -> str:
    micros, offset = _typed_time(value)
    if offset is None:
        if isinstance(value, time):
            raise ValueRefused("timetz without a UTC offset")
        offset = 0  # an integer is what decode gives: the UTC time of day
    return _clock_text(time_of_day(utc_time_of_day(round_time(micros, precision), offset))) + "Z"


def _typed_interval(value: Any) -> dict[str, int]:
    if isinstance(value, timedelta):  # what psycopg writes for a timedelta: days and the rest
        return interval_value(0, value.days, (value - timedelta(days=value.days)) // MICROSECOND)
    if isinstance(value, dict) and set(value) == {"months", "days", "micros"}:
        parts = (value["months"], value["days"], value["micros"])
    elif isinstance(value, (tuple, list)) and len(value) == 3:
        parts = tuple(value)
    else:
        raise ValueRefused(f"a {type(value).__name__} is not an interval (months, days, micros)")
    if any(isinstance(part, bool) or not isinstance(part, int) for part in parts):
        raise ValueRefused("interval parts are integers: months, days, micros")
    return interval_value(*parts)


def _interval_to_debezium(value: Any, precision: int) -> str:
    """Debezium's spelling (io.debezium.time.Interval from pgjdbc's PGInterval): every part with
    its own sign, years and months split as PostgreSQL prints them, seconds without trailing zeros."""
    interval = round_interval(_typed_interval(value), precision)
    months, micros = interval["months"], interval["micros"]
    years = abs(months) // 12 * (-1 if months < 0 else 1)  # C division: truncated toward zero
    sign = -1 if micros < 0 else 1
    hours, rest = divmod(abs(micros), 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = format((Decimal(rest).scaleb(-6) * sign).normalize(), "f")
    return (f"P{years}Y{months - years * 12}M{interval['days']}D"
            f"T{sign * hours}H{sign * minutes}M{'0' if rest == 0 else seconds}S")


def _bytea_to_debezium(value: Any) -> str:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueRefused(f"a {type(value).__name__} is not bytea")
    return base64.b64encode(bytes(value)).decode("ascii")


def _inet_to_debezium(value: Any, cidr: bool) -> str:
    if isinstance(value, str):
        return inet_from_text(value, cidr)
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface, ipaddress.IPv4Network,
                          ipaddress.IPv6Network, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        # psycopg reads inet as an interface and cidr as a network; the text form checks the rest.
        return inet_from_text(value.with_prefixlen if hasattr(value, "with_prefixlen") else str(value), cidr)
    raise ValueRefused(f"a {type(value).__name__} is not an {'cidr' if cidr else 'inet'} address")


def _macaddr_to_debezium(value: Any, eight: bool) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"a {type(value).__name__} is not a {'macaddr8' if eight else 'macaddr'}")
    return macaddr_from_text(value, eight)


def _enum_to_debezium(value: Any, labels: frozenset[str] | None) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"a {type(value).__name__} is not an enum label")
    return enum_label(value, labels)


def _array_to_debezium(value: Any, element: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ValueRefused(f"a {type(value).__name__} is not an array")
    encode = _encoder(element)
    items = []
    for item in value:
        if isinstance(item, list):
            raise ValueRefused("a multidimensional array value in a one-dimensional array column")
        items.append(None if item is None else encode(item))
    return items


@lru_cache(maxsize=None)
def _encoder(declared: str) -> Callable[[Any], Any]:
    column_type = parse_pg_type(declared)
    family, args = column_type.family, column_type.args
    encoders: dict[str, Callable[[Any], Any]] = {
        "int": lambda v: _typed_int(v, *args),
        "numeric": lambda v: _numeric_to_debezium(v, *args),
        "numeric_text": _numeric_text_to_debezium,
        "float4": lambda v: _float_to_debezium(v, True),
        "float8": lambda v: _float_to_debezium(v, False),
        "bool": boolean,
        "text": _string_to_debezium,
        "varchar": _string_to_debezium,
        "char": _string_to_debezium,
        "date": _date_to_debezium,
        "timestamptz": _timestamptz_to_debezium,
        "timestamp": lambda v: _timestamp_to_debezium(v, *args),
        "uuid": _uuid_to_debezium,
        "json": _string_to_debezium,
        "jsonb": _string_to_debezium,
        "money": _money_to_debezium,
        "time": lambda v: _time_to_debezium(v, *args),
        "timetz": lambda v: _timetz_to_debezium(v, *args),
        "interval": lambda v: _interval_to_debezium(v, *args),
        "bytea": _bytea_to_debezium,
        "enum": lambda v: _enum_to_debezium(v, *args),
        "inet": lambda v: _inet_to_debezium(v, False),
        "cidr": lambda v: _inet_to_debezium(v, True),
        "macaddr": lambda v: _macaddr_to_debezium(v, False),
        "macaddr8": lambda v: _macaddr_to_debezium(v, True),
        "array": lambda v: _array_to_debezium(v, *args),
    }
    return refusing(declared, encoders[family])



def encoder(declared: str, dbms: str = "postgresql") -> Callable[[Any], Any]:
    """The writer of a column's Debezium form; ValueError if `declared` is not a PostgreSQL type."""
    if dbms != "postgresql":
        raise NotImplementedError(f"type {declared!r}: MariaDB sources are captured by Debezium only "
                                  "(no marker polling, no historical loads yet)")
    return _encoder(declared)
