"""PostgreSQL column types: how Debezium encodes them and what they become downstream.

The connector runs with `decimal.handling.mode=string` and
`time.precision.mode=adaptive_time_microseconds`, so every value arrives as JSON that this
module decodes without loss into the Python value the Avro writer and ClickHouse expect.
One `PgType` per declared column carries the three views (decode, Avro, ClickHouse) so they
cannot drift apart. The full mapping table is in docs/type-mapping.md.
"""
from __future__ import annotations

import json
import math
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from functools import lru_cache
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

    # Historical loads (R394 §21). Properties rather than fields, so that every existing
    # PgType(...) construction stays as it is; both are defined at the end of this module.
    @property
    def from_text(self) -> Callable[[str], Any]:
        """Read the value's text form (a CSV field) into exactly what `decode` gives for it."""
        return _text_parser(self.declared)

    @property
    def to_debezium(self) -> Callable[[Any], Any]:
        """The inverse of `decode`: the JSON value Debezium would send for a typed value."""
        return _debezium_encoder(self.declared)


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


# --- Text input and the Debezium form, for historical loads (R394 §21) -------------------------
#
# `from_text` reads a value's text form, as a CSV export writes it, into exactly the Python value
# `decode` gives for the same datum arriving through Debezium; `to_debezium` is `decode`'s
# inverse. A historical row is parsed with the first, turned into Debezium's form with the
# second and then takes the router's one decode-and-depersonalize path, so it becomes the very
# record a CDC event of the same row would. Both accept what PostgreSQL itself would store and
# refuse the rest (integers out of range, over-long varchar, a timestamptz without its offset)
# with ValueRefused, whose message says what is wrong and never quotes the value.


class ValueRefused(ValueError):
    """A value cannot be read as its declared type; the message names the problem, never the value."""


_INT_BITS = {"Int16": 16, "Int32": 32, "Int64": 64}
_INT_TEXT = re.compile(r"\s*([+-]?[0-9]+)\s*")
# A decimal comma is accepted where no point is present ("48500,50" from a Russian-locale export).
_NUMBER_TEXT = re.compile(r"\s*([+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?)\s*")
_FLOAT_SPECIAL = {"nan": math.nan, "inf": math.inf, "+inf": math.inf, "-inf": -math.inf,
                  "infinity": math.inf, "+infinity": math.inf, "-infinity": -math.inf}
_BOOL_TEXT = {"t": True, "true": True, "y": True, "yes": True, "on": True, "1": True,
              "f": False, "false": False, "n": False, "no": False, "off": False, "0": False}
_DATE_TEXT = re.compile(r"\s*(?:(?P<y>[0-9]{4})-(?P<m>[0-9]{2})-(?P<d>[0-9]{2})"
                        r"|(?P<d2>[0-9]{2})\.(?P<m2>[0-9]{2})\.(?P<y2>[0-9]{4}))")
_TIME_TEXT = re.compile(r"(?:[Tt]|\s+)(?P<H>[0-9]{2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?")
_ZONE_TEXT = re.compile(r"\s*(?:(?P<utc>Z|UTC)|(?P<sign>[+-])(?P<zh>[0-9]{2})(?::?(?P<zm>[0-9]{2})(?::?(?P<zs>[0-9]{2}))?)?)?\s*",
                        re.IGNORECASE)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def _refusing(what: str, function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Any failure becomes ValueRefused; messages of library errors may quote the value, so only
    ValueRefused's own (written here) pass through, the rest are replaced by their type name."""

    def guarded(value: Any) -> Any:
        try:
            return function(value)
        except ValueRefused:
            raise
        except (ValueError, TypeError, ArithmeticError, OverflowError, RecursionError) as exc:
            raise ValueRefused(f"a {type(value).__name__} that is not a valid {what} ({type(exc).__name__})") from None

    return guarded


def _checked_int(value: int, bits: int) -> int:
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueRefused(f"out of range for a {bits}-bit integer")
    return value


def _typed_int(value: Any, bits: int) -> int:
    return _checked_int(_int(value), bits)


def _int_from_text(text: str, bits: int) -> int:
    match = _INT_TEXT.fullmatch(text)
    if match is None:
        raise ValueRefused("not an integer")
    return _checked_int(int(match.group(1)), bits)


def _number_text(text: str) -> str:
    match = _NUMBER_TEXT.fullmatch(text)
    if match is None:
        raise ValueRefused("not a number")
    return match.group(1).replace(",", ".")


def _numeric_refusing(text: str, precision: int, scale: int) -> Decimal:
    try:
        return _numeric(text, precision, scale)
    except ValueError as exc:  # _numeric's own messages never quote the value
        raise ValueRefused(str(exc)) from None


def _numeric_from_text(text: str, precision: int, scale: int) -> Decimal:
    return _numeric_refusing(_number_text(text), precision, scale)


def _numeric_to_debezium(value: Any, precision: int, scale: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise ValueRefused(f"a {type(value).__name__} is not a numeric")
    # A float is taken as its shortest spelling (what a person typed), then must fit exactly.
    text = repr(value) if isinstance(value, float) else str(value)
    return format(_numeric_refusing(text, precision, scale), "f")


def _single(value: float) -> float:
    """The float Debezium sends for a real: the nearest float32, spelled shortest (as Java does)."""
    if not math.isfinite(value):
        return value
    try:
        single = struct.unpack("<f", struct.pack("<f", value))[0]
    except OverflowError:
        raise ValueRefused("out of range for real") from None
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", shortest))[0] == single:
            return shortest
    return single


def _float_from_text(text: str, single: bool) -> float:
    special = _FLOAT_SPECIAL.get(text.strip().lower())
    if special is not None:
        return special
    value = float(_number_text(text))
    if math.isinf(value):  # 1e400: PostgreSQL refuses it rather than store Infinity
        raise ValueRefused("out of range for a floating-point number")
    return _single(value) if single else value


def _float_to_debezium(value: Any, single: bool) -> float | str:
    if isinstance(value, bool) or not isinstance(value, (float, int, Decimal)):
        raise ValueRefused(f"a {type(value).__name__} is not a floating-point number")
    number = _single(float(value)) if single else float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return number


def _bool_from_text(text: str) -> bool:
    value = _BOOL_TEXT.get(text.strip().lower())
    if value is None:
        raise ValueRefused("not a boolean (t/f, true/false, 1/0, yes/no, on/off)")
    return value


def _string_from_text(text: str, length: int | None, padded: bool) -> str:
    if "\x00" in text:
        raise ValueRefused("contains a NUL character, which PostgreSQL text cannot hold")
    if length is not None and len(text) > length:
        if text[length:].strip(" "):  # PostgreSQL cuts excess spaces only
            raise ValueRefused(f"longer than {length} characters")
        text = text[:length]
    return text.ljust(length) if padded and length is not None else text


def _string_to_debezium(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"a {type(value).__name__} is not a string")
    return value


def _no_constant(name: str) -> Any:
    raise ValueRefused("JSON has no NaN or Infinity")


def _json_from_text(text: str) -> str:
    json.loads(text, parse_constant=_no_constant)
    return text  # json keeps its text exactly as given


def _jsonb_out(node: Any) -> str:
    """PostgreSQL's jsonb output: keys by length then bytes, ', ' and ': ', numbers as numeric."""
    if node is None:
        return "null"
    if node is True:
        return "true"
    if node is False:
        return "false"
    if isinstance(node, Decimal):
        return format(abs(node) if node.is_zero() else node, "f")
    if isinstance(node, str):
        if "\x00" in node:
            raise ValueRefused("jsonb cannot hold a NUL character")
        return json.dumps(node, ensure_ascii=False)
    if isinstance(node, list):
        return "[" + ", ".join(_jsonb_out(item) for item in node) + "]"
    keys = sorted(node, key=lambda k: (len(k.encode()), k.encode()))
    return "{" + ", ".join(f"{_jsonb_out(k)}: {_jsonb_out(node[k])}" for k in keys) + "}"


def _jsonb_from_text(text: str) -> str:
    # dict() keeps the last of duplicate keys, as jsonb does.
    return _jsonb_out(json.loads(text, parse_float=Decimal, parse_int=Decimal, parse_constant=_no_constant))


def _date_from_text(text: str) -> date:
    match = _DATE_TEXT.fullmatch(text)
    if match is None:
        raise ValueRefused("not a date (YYYY-MM-DD or DD.MM.YYYY)")
    try:
        if match.group("y"):
            return date(int(match.group("y")), int(match.group("m")), int(match.group("d")))
        return date(int(match.group("y2")), int(match.group("m2")), int(match.group("d2")))
    except ValueError:
        raise ValueRefused("not a calendar date") from None


def _date_to_debezium(value: Any) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is not None or value.time() != datetime.min.time():
            raise ValueRefused("a datetime with a time or a zone is not a date")
        value = value.date()
    if not isinstance(value, date):
        raise ValueRefused(f"a {type(value).__name__} is not a date")
    return (value - _EPOCH_DATE).days


def _timestamp_text(text: str) -> tuple[datetime, timedelta | None]:
    """ISO 8601 ('T' or a space) or DD.MM.YYYY, then HH:MM[:SS[.ffffff]] and an optional offset."""
    match = _DATE_TEXT.match(text)
    if match is None:
        raise ValueRefused("not a timestamp (ISO 8601, e.g. 2024-01-15 10:30:00+05)")
    day = _date_from_text(match.group())
    position, micros = match.end(), 0
    clock = _TIME_TEXT.match(text, position)
    hours = minutes = seconds = 0
    if clock:
        hours, minutes = int(clock.group("H")), int(clock.group("M"))
        seconds = int(clock.group("S") or 0)
        digits = clock.group("f") or ""
        if len(digits) <= 6:
            micros = int(digits.ljust(6, "0"))
        else:  # PostgreSQL rounds extra digits half to even
            micros = int(Decimal(f"{digits[:6]}.{digits[6:]}").to_integral_value(ROUND_HALF_EVEN))
        position = clock.end()
    zone = _ZONE_TEXT.fullmatch(text, position)
    if zone is None:
        raise ValueRefused("not a timestamp (ISO 8601, e.g. 2024-01-15 10:30:00+05)")
    try:
        value = datetime(day.year, day.month, day.day, hours, minutes, seconds) + timedelta(microseconds=micros)
    except ValueError:
        raise ValueRefused("not a valid time of day") from None
    if zone.group("utc"):
        return value, timedelta(0)
    if zone.group("sign"):
        offset = timedelta(hours=int(zone.group("zh")), minutes=int(zone.group("zm") or 0),
                           seconds=int(zone.group("zs") or 0))
        return value, -offset if zone.group("sign") == "-" else offset
    return value, None


def _pg_round(value: datetime, precision: int) -> datetime:
    """timestamp(p) as PostgreSQL stores it: rounded half away from zero on its 2000-01-01 epoch."""
    if precision >= 6:
        return value
    scale = 10 ** (6 - precision)
    micros = (value - _PG_EPOCH) // _MICRO
    if micros >= 0:
        micros = (micros + scale // 2) // scale * scale
    else:
        micros = -((-micros + scale // 2) // scale * scale)
    return _PG_EPOCH + timedelta(microseconds=micros)


def _timestamptz_from_text(text: str) -> datetime:
    value, offset = _timestamp_text(text)
    if offset is None:  # would silently take the host's zone
        raise ValueRefused("timestamptz without a UTC offset")
    return (value - offset).replace(tzinfo=timezone.utc)


def _timestamptz_to_debezium(value: Any) -> str:
    if not isinstance(value, datetime):
        raise ValueRefused(f"a {type(value).__name__} is not a timestamp")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueRefused("timestamptz without a UTC offset")
    return value.astimezone(timezone.utc).isoformat()


def _timestamp_from_text(text: str, precision: int) -> datetime:
    value, offset = _timestamp_text(text)
    if offset is not None:  # PostgreSQL would silently drop it; the file means something else
        raise ValueRefused("a UTC offset given for a timestamp without time zone")
    return _pg_round(value.replace(tzinfo=timezone.utc), precision)


def _timestamp_to_debezium(value: Any, precision: int) -> int:
    if not isinstance(value, datetime):
        raise ValueRefused(f"a {type(value).__name__} is not a timestamp")
    if value.tzinfo is not None and value.utcoffset() != timedelta(0):
        # decode gives the wall clock in UTC; another offset is not a wall clock of this column
        raise ValueRefused("a UTC offset other than 0 given for a timestamp without time zone")
    rounded = _pg_round(value.replace(tzinfo=timezone.utc), precision)
    unit = timedelta(milliseconds=1) if precision <= 3 else _MICRO
    return (rounded - _EPOCH) // unit


def _uuid_from_text(text: str) -> str:
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise ValueRefused("not a UUID") from None


def _uuid_to_debezium(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    return _string_to_debezium(value)


def _family(declared: str) -> tuple[str, tuple]:
    """The declared type as (family, arguments), by the same spellings parse_pg_type accepts."""
    text = " ".join(declared.lower().split())
    if text in _INTS:
        return "int", (_INT_BITS[_INTS[text][0]],)
    simple = {"real": "float4", "float4": "float4", "double precision": "float8", "float8": "float8",
              "boolean": "bool", "bool": "bool", "text": "text", "date": "date",
              "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
              "uuid": "uuid", "json": "json", "jsonb": "jsonb"}
    if text in simple:
        return simple[text], ()
    for pattern, family in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        if family == "numeric":
            return "numeric", (int(match.group(1)), int(match.group(2)))
        if family == "string":
            return ("varchar" if text.startswith(("varchar", "character varying")) else "char"), (int(match.group(1)),)
        return "timestamp", (int(match.group(1)) if match.group(1) else 6,)
    raise NotImplementedError(f"type {declared!r} has no text form for historical loads yet; "
                              "add it to streams/pg_types._family")


@lru_cache(maxsize=None)
def _text_parser(declared: str) -> Callable[[str], Any]:
    family, args = _family(declared)
    parsers: dict[str, Callable[[str], Any]] = {
        "int": lambda t: _int_from_text(t, *args),
        "numeric": lambda t: _numeric_from_text(t, *args),
        "float4": lambda t: _float_from_text(t, True),
        "float8": lambda t: _float_from_text(t, False),
        "bool": _bool_from_text,
        "text": lambda t: _string_from_text(t, None, False),
        "varchar": lambda t: _string_from_text(t, args[0], False),
        "char": lambda t: _string_from_text(t, args[0], True),
        "date": _date_from_text,
        "timestamptz": _timestamptz_from_text,
        "timestamp": lambda t: _timestamp_from_text(t, *args),
        "uuid": _uuid_from_text,
        "json": _json_from_text,
        "jsonb": _jsonb_from_text,
    }
    parse = parsers[family]
    return _refusing(declared, lambda t: parse(_str(t)))


@lru_cache(maxsize=None)
def _debezium_encoder(declared: str) -> Callable[[Any], Any]:
    family, args = _family(declared)
    encoders: dict[str, Callable[[Any], Any]] = {
        "int": lambda v: _typed_int(v, *args),
        "numeric": lambda v: _numeric_to_debezium(v, *args),
        "float4": lambda v: _float_to_debezium(v, True),
        "float8": lambda v: _float_to_debezium(v, False),
        "bool": _bool,
        "text": _string_to_debezium,
        "varchar": _string_to_debezium,
        "char": _string_to_debezium,
        "date": _date_to_debezium,
        "timestamptz": _timestamptz_to_debezium,
        "timestamp": lambda v: _timestamp_to_debezium(v, *args),
        "uuid": _uuid_to_debezium,
        "json": _string_to_debezium,
        "jsonb": _string_to_debezium,
    }
    return _refusing(declared, encoders[family])
