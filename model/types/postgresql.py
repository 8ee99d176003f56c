"""PostgreSQL column types: how Debezium encodes them and what they become downstream.

The connector runs with `decimal.handling.mode=string`,
`time.precision.mode=adaptive_time_microseconds`, `interval.handling.mode=string` and
`binary.handling.mode=base64`, so every value arrives as JSON that this module decodes without
loss into the Python value the Avro writer and ClickHouse expect. One `PgType` per declared
column carries the three views (decode, Avro, ClickHouse) so they cannot drift apart. A value
the warehouse cannot hold exactly (a date past 2299, a numeric wider than declared) is refused
with ValueError, and the router quarantines its row: nothing is clamped or rounded. The full
mapping table and the reasons for each choice are in docs/type-mapping.md.
"""
from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import math
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from functools import lru_cache
from typing import Any, Callable

_EPOCH_DATE = date(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


# model/types/mariadb.py reuses the decoders below where Debezium sends a MariaDB type as it
# sends a PostgreSQL one (_int, _date, _millis, _micros, _zoned, _numeric, _float, _str, _bytea,
# _enum, _enum_labels): a change to one of them changes both sources.


class ValueRefused(ValueError):
    """A value cannot be read as its declared type; the message names the problem, never the value."""


# ClickHouse documents Date32 and DateTime64 for 1900-01-01..2299-12-31. chdb 26.9 prints dates
# beyond it, but its date functions (toStartOfMonth, ...) then clamp, so a value outside is refused
# rather than stored where it would read back wrong.
_FIRST_DAY, _LAST_DAY = date(1900, 1, 1), date(2299, 12, 31)
_FIRST_DAYS, _LAST_DAYS = (_FIRST_DAY - _EPOCH_DATE).days, (_LAST_DAY - _EPOCH_DATE).days
_FIRST_MICROS = _FIRST_DAYS * 86_400_000_000
_LAST_MICROS = (_LAST_DAYS + 1) * 86_400_000_000 - 1
_OUT_OF_RANGE = "outside ClickHouse's Date32/DateTime64 range 1900-01-01..2299-12-31"


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    return value


def _days_in_range(days: int) -> int:
    if not _FIRST_DAYS <= days <= _LAST_DAYS:
        raise ValueRefused(f"date {_OUT_OF_RANGE}")
    return days


def _micros_in_range(micros: int) -> int:
    if not _FIRST_MICROS <= micros <= _LAST_MICROS:
        raise ValueRefused(f"timestamp {_OUT_OF_RANGE}")
    return micros


def _day_in_range(value: date) -> date:
    return _EPOCH_DATE + timedelta(days=_days_in_range((value - _EPOCH_DATE).days))


def _instant_in_range(value: datetime) -> datetime:
    """`value` is aware and in UTC."""
    _micros_in_range((value - _EPOCH) // _MICRO)
    return value


def _date(value: Any) -> date:
    return _EPOCH_DATE + timedelta(days=_days_in_range(_int(value)))


def _micros(value: Any) -> datetime:
    return _EPOCH + timedelta(microseconds=_micros_in_range(_int(value)))


def _millis(value: Any) -> datetime:
    millis = _int(value)
    _micros_in_range(millis * 1000)
    return _EPOCH + timedelta(milliseconds=millis)


def _zoned(value: Any) -> datetime:
    try:
        parsed = datetime.fromisoformat(_str(value))
    except ValueError:  # its message quotes the value; 'infinity' lands here too
        raise ValueRefused("not an ISO-8601 timestamp with an offset") from None
    if parsed.tzinfo is None:  # would silently take the host's zone
        raise ValueError("timestamptz without a UTC offset")
    return _instant_in_range(parsed.astimezone(timezone.utc))


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
    try:  # Debezium spells NaN and infinities as strings
        return float(value)
    except (TypeError, ValueError):  # their messages quote the value
        raise ValueRefused(f"a {type(value).__name__} that is not a number") from None


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


# --- money ------------------------------------------------------------------------------------
# PostgreSQL keeps money as 64-bit cents (lc_monetary with 2 fraction digits, as in the C and
# en_US locales); Decimal(19, 2) is the narrowest ClickHouse type that holds all of it.

_MONEY_MIN, _MONEY_MAX = Decimal(-(1 << 63)).scaleb(-2), Decimal((1 << 63) - 1).scaleb(-2)
# Debezium 3.0's snapshot reads money through pgjdbc's PGmoney, a double: past 2^53 cents the
# cents may already be wrong, and such a value arrives in exponent notation.
_MONEY_EXACT_AS_DOUBLE = Decimal(1 << 53).scaleb(-2)


def _money(value: Any) -> Decimal:
    text = _str(value)
    try:
        number = _numeric(text, 19, 2)
    except ValueError:
        raise ValueRefused("not a money amount (at most 2 fraction digits, within 64-bit cents)") from None
    if not _MONEY_MIN <= number <= _MONEY_MAX:
        raise ValueRefused("out of range for money (64-bit cents)")
    if "e" in text.lower() and abs(number) > _MONEY_EXACT_AS_DOUBLE:
        raise ValueRefused("money beyond 2^53 cents arrived as a double (Debezium snapshot) and may have lost cents")
    return number


# --- time of day -------------------------------------------------------------------------------
# time and timetz are microseconds since midnight: PostgreSQL allows 24:00:00, which neither
# Python's datetime.time nor Avro's time-micros (as fastavro reads it) can hold. timetz arrives
# from Debezium already shifted to UTC, so its value is the UTC time of day.

_DAY_MICROS = 86_400_000_000
_CLOCK = r"(?P<H>[0-9]{1,2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:[.,](?P<f>[0-9]+))?)?"
_OFFSET = r"(?:(?P<utc>Z|UTC|GMT)|(?P<sign>[+-])(?P<zh>[0-9]{1,2})(?::?(?P<zm>[0-9]{2})(?::?(?P<zs>[0-9]{2}))?)?)"
_TIME_OF_DAY = re.compile(r"\s*" + _CLOCK + r"\s*" + _OFFSET + r"?\s*", re.IGNORECASE)


def _fraction_micros(digits: str) -> int:
    if len(digits) <= 6:
        return int(digits.ljust(6, "0"))
    # PostgreSQL rounds extra digits half to even
    return int(Decimal(f"{digits[:6]}.{digits[6:]}").to_integral_value(ROUND_HALF_EVEN))


def _clock(text: str) -> tuple[int, int | None]:
    """(microseconds since midnight, UTC offset in microseconds or None) of a time's text."""
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None:
        raise ValueRefused("not a time of day (HH:MM[:SS[.ffffff]], with an offset for timetz)")
    hours, minutes, seconds = int(match.group("H")), int(match.group("M")), int(match.group("S") or 0)
    if minutes > 59 or seconds > 59:
        raise ValueRefused("not a valid time of day")
    micros = ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + _fraction_micros(match.group("f") or "")
    if micros > _DAY_MICROS:
        raise ValueRefused("time of day outside 00:00:00..24:00:00")
    if match.group("utc"):
        return micros, 0
    if match.group("sign"):
        offset = (int(match.group("zh")) * 3600 + int(match.group("zm") or 0) * 60 + int(match.group("zs") or 0))
        if offset >= 24 * 3600:
            raise ValueRefused("not a valid UTC offset")
        return micros, (-offset if match.group("sign") == "-" else offset) * 1_000_000
    return micros, None


def _utc_time_of_day(micros: int, offset: int) -> int:
    # As Java's OffsetTime.withOffsetSameInstant(UTC), which Debezium applies: wraps around midnight.
    return micros if offset == 0 else (micros - offset) % _DAY_MICROS


def _time(value: Any) -> int:
    micros = _int(value)
    if not 0 <= micros <= _DAY_MICROS:
        raise ValueRefused("time of day outside 00:00:00..24:00:00")
    return micros


def _timetz(value: Any) -> int:
    micros, offset = _clock(_str(value))
    if offset is None:
        raise ValueRefused("timetz without a UTC offset")
    return _utc_time_of_day(micros, offset)


# --- interval ----------------------------------------------------------------------------------
# PostgreSQL keeps an interval as months, days and microseconds, which do not convert into one
# another (a month is not 30 days, a day is not 24 hours across a DST change): all three are
# kept, as a record in Avro and a named Tuple in ClickHouse.

_ISO_INTERVAL = re.compile(
    r"\s*P(?=[-+0-9T])(?:(?P<Y>[+-]?[0-9]+)Y)?(?:(?P<Mo>[+-]?[0-9]+)M)?(?:(?P<W>[+-]?[0-9]+)W)?"
    r"(?:(?P<D>[+-]?[0-9]+)D)?(?:T(?=[-+0-9])(?:(?P<H>[+-]?[0-9]+)H)?(?:(?P<Mi>[+-]?[0-9]+)M)?"
    r"(?:(?P<S>[+-]?[0-9]+(?:\.[0-9]+)?)S)?)?\s*")
_INT32, _INT64 = 1 << 31, 1 << 63
INTERVAL_AVRO = {"type": "record", "name": "interval", "namespace": "qoima.pg",
                 "doc": "A PostgreSQL interval as it stores it: months, days and microseconds",
                 "fields": [{"name": "months", "type": "int"}, {"name": "days", "type": "int"},
                            {"name": "micros", "type": "long"}]}


def _interval_value(months: int, days: int, micros: int) -> dict[str, int]:
    if not (-_INT32 <= months < _INT32 and -_INT32 <= days < _INT32 and -_INT64 <= micros < _INT64):
        raise ValueRefused("interval out of PostgreSQL's range")
    return {"months": months, "days": days, "micros": micros}


def _iso_interval(text: str) -> dict[str, int]:
    match = _ISO_INTERVAL.fullmatch(text)
    if match is None:
        raise ValueRefused("not an ISO-8601 interval (P1Y2M3DT4H5M6.78S)")
    years, months, weeks, days, hours, minutes = (int(match.group(name) or 0)
                                                  for name in ("Y", "Mo", "W", "D", "H", "Mi"))
    seconds = Decimal(match.group("S") or 0).scaleb(6)
    if seconds != seconds.to_integral_value():
        raise ValueRefused("interval finer than a microsecond")
    micros = (hours * 3600 + minutes * 60) * 1_000_000 + int(seconds)
    return _interval_value(years * 12 + months, weeks * 7 + days, micros)


def _interval(value: Any) -> dict[str, int]:
    return _iso_interval(_str(value))


# --- bytea, enums, network addresses ----------------------------------------------------------


def _bytea(value: Any) -> bytes:
    try:
        return base64.b64decode(_str(value), validate=True)
    except binascii.Error:
        raise ValueRefused("not base64") from None


def _enum(value: Any, labels: frozenset[str] | None) -> str:
    label = _str(value)
    if labels is not None and label not in labels:
        raise ValueRefused("not one of the enum labels the regulation declares")
    return label


_NETMASK = re.compile(r"[0-9A-Fa-f.:]+(?:/[0-9]{1,3})?")  # no zone ids (fe80::1%eth0), no dotted masks


def _network(text: str, cidr: bool) -> Any:
    """The interface (inet) or network (cidr) a text names, as PostgreSQL would accept it."""
    if not _NETMASK.fullmatch(text):  # Python would take both, PostgreSQL does not
        raise ValueRefused(f"not an {'cidr' if cidr else 'inet'} address")
    try:
        return ipaddress.ip_network(text, strict=True) if cidr else ipaddress.ip_interface(text)
    except ValueError:
        problem = "a cidr with bits set right of its mask" if cidr and "/" in text else \
            f"not an {'cidr' if cidr else 'inet'} address"
        raise ValueRefused(problem) from None


def _inet(value: Any, cidr: bool) -> str:
    # Debezium sends PostgreSQL's own output, which is kept as it is: only checked.
    text = _str(value)
    _network(text, cidr)
    return text


_MAC = {False: re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"), True: re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){7}")}


def _macaddr(value: Any, eight: bool) -> str:
    text = _str(value)
    if not _MAC[eight].fullmatch(text):
        raise ValueRefused(f"not a {'macaddr8' if eight else 'macaddr'} as PostgreSQL prints it")
    return text


# --- arrays -------------------------------------------------------------------------------------


def _array(value: Any, element: Callable[[Any], Any]) -> list:
    if not isinstance(value, list):
        raise ValueError(f"expected a JSON array, got {type(value).__name__}")
    items = []
    for item in value:
        if isinstance(item, list):
            raise ValueRefused("a multidimensional array value in a one-dimensional array column")
        items.append(None if item is None else element(item))
    return items


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


# --- declared types -----------------------------------------------------------------------------
#
# A declared type is first classified into a family and its arguments (`_classify`); the family
# gives the three views here and the text form and Debezium form further down, so every spelling
# is recognized in one place.

_INTS = {
    "smallint": 16, "int2": 16,
    "integer": 32, "int": 32, "int4": 32,
    "bigint": 64, "int8": 64,
}
_SIMPLE = {
    "real": "float4", "float4": "float4", "double precision": "float8", "float8": "float8",
    "boolean": "bool", "bool": "bool", "text": "text", "varchar": "text", "character varying": "text",
    "date": "date", "timestamptz": "timestamptz", "timestamp with time zone": "timestamptz",
    "uuid": "uuid", "json": "json", "jsonb": "jsonb", "money": "money", "bytea": "bytea",
    "inet": "inet", "cidr": "cidr", "macaddr": "macaddr", "macaddr8": "macaddr8",
}
_PATTERNS = [
    (re.compile(r"^(?:numeric|decimal)\((\d+),\s*(\d+)\)$"), "numeric"),
    (re.compile(r"^(?:varchar|character varying|char|character|bpchar)\((\d+)\)$"), "string"),
    (re.compile(r"^timestamp(?:\((\d)\))?(?: without time zone)?$"), "timestamp"),
    (re.compile(r"^time(?:\((\d)\))?(?: without time zone)?$"), "time"),
    (re.compile(r"^(?:time(?:\((\d)\))? with time zone|timetz(?:\((\d)\))?)$"), "timetz"),
    (re.compile(r"^interval(?:\((\d)\))?$"), "interval"),
]
# On the declared text as written: enum labels are case-sensitive.
_ENUM = re.compile(r"enum\s*(?::\s*(?P<name>[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?)\s*)?"
                   r"(?:\((?P<labels>.*)\))?", re.IGNORECASE | re.DOTALL)
_LABEL = re.compile(r"\s*(?:'(?P<quoted>(?:[^']|'')*)'|(?P<bare>[^,'()\s](?:[^,'()]*[^,'()\s])?))\s*(?:,|$)")
_ARRAY = re.compile(r"(?P<base>.*?)\s*(?P<dims>(?:\[\s*[0-9]*\s*\]\s*)+)", re.DOTALL)
# Debezium 3.0 emits no value for arrays of money or interval; an array of enum labels holding a
# NULL element or a label with a space arrived as NULL in tests/e2e/test_type_fidelity.py.
_NOT_IN_ARRAYS = {"money", "interval", "enum"}

SUPPORTED = sorted([*_INTS, *_SIMPLE, "numeric(p,s)", "varchar(n)", "char(n)", "timestamp[(p)]",
                    "time[(p)]", "timetz[(p)]", "time with time zone", "interval[(p)]", "enum"])
_FORMS = ("arrays as <type>[] or _<type> of these (one dimension; not of money, interval or enums); "
          "enums as enum, enum(label, ...) or enum:<type name>(label, ...)")


def _unsupported(declared: str) -> str:
    return f"unsupported column type {declared!r}; supported: {', '.join(SUPPORTED)}; {_FORMS}"


def _enum_labels(declared: str, text: str | None) -> frozenset[str] | None:
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


def _array_family(declared: str, base: str, dimensions: int) -> tuple[str, tuple]:
    base = base.strip()
    if dimensions > 1 or base.startswith("_") or _ARRAY.fullmatch(base):
        raise ValueError(f"type {declared!r}: multidimensional arrays are not supported (Debezium does not "
                         "carry them reliably); declare a one-dimensional <type>[] or leave the column out")
    try:
        family, _ = _classify(base)
    except ValueError as exc:
        if str(exc).startswith("unsupported column type"):
            raise ValueError(_unsupported(declared)) from None
        raise
    if family in _NOT_IN_ARRAYS:
        raise ValueError(f"type {declared!r}: Debezium does not capture arrays of {family}; "
                         "leave the column out or change its type at the source")
    return "array", (base,)


def _classify(declared: str) -> tuple[str, tuple]:
    """The declared type as (family, arguments); ValueError naming the supported types if unknown."""
    stripped = declared.strip()
    array = _ARRAY.fullmatch(stripped)
    if array:
        return _array_family(declared, array.group("base"), array.group("dims").count("["))
    text = " ".join(stripped.lower().split())
    if text.startswith("_"):  # PostgreSQL's internal name of an array type, as in _int4
        return _array_family(declared, stripped[1:], 1)
    enum = _ENUM.fullmatch(stripped)
    if enum:
        return "enum", (_enum_labels(declared, enum.group("labels")),)
    if text in _INTS:
        return "int", (_INTS[text],)
    if text in _SIMPLE:
        return _SIMPLE[text], ()
    for pattern, family in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        if family == "numeric":
            precision, scale = int(match.group(1)), int(match.group(2))
            if not 1 <= precision <= 76 or scale > precision:
                raise ValueError(f"type {declared!r}: precision must be 1-76 and scale at most the precision")
            return "numeric", (precision, scale)
        if family == "string":
            return ("varchar" if text.startswith(("varchar", "character varying")) else "char"), (int(match.group(1)),)
        digits = next((group for group in match.groups() if group), None)
        return family, (min(int(digits), 6) if digits else 6,)  # PostgreSQL reduces more to 6
    raise ValueError(_unsupported(declared))


def _decimal_views(precision: int, scale: int) -> tuple[str, Any]:
    """ClickHouse and Avro of an exact decimal(p, s)."""
    return (f"Decimal({precision}, {scale})",
            {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale})


_DATETIME = "DateTime64(6, 'UTC')"
_TS_AVRO = {"type": "long", "logicalType": "timestamp-micros"}
_INTERVAL_CLICKHOUSE = "Tuple(months Int32, days Int32, micros Int64)"
_VIEWS: dict[str, tuple[str, Any, Callable[[Any], Any]]] = {
    "float4": ("Float32", "float", _float),
    "float8": ("Float64", "double", _float),
    "bool": ("Bool", "boolean", _bool),
    "text": ("String", "string", _str),
    "varchar": ("String", "string", _str),
    "char": ("String", "string", _str),
    "date": ("Date32", {"type": "int", "logicalType": "date"}, _date),
    "timestamptz": (_DATETIME, _TS_AVRO, _zoned),
    "uuid": ("UUID", {"type": "string", "logicalType": "uuid"}, _str),
    "json": ("String", "string", _str),
    "jsonb": ("String", "string", _str),
    "money": (*_decimal_views(19, 2), _money),
    # Time64 holds 24:00:00 (it goes to 999:59:59) and needs no setting in ClickHouse 26.9.
    "time": ("Time64(6)", "long", _time),
    "timetz": ("Time64(6)", "long", _timetz),
    "interval": (_INTERVAL_CLICKHOUSE, INTERVAL_AVRO, _interval),
    "bytea": ("String", "bytes", _bytea),
    # As PostgreSQL prints them: ClickHouse's IPv4/IPv6 hold an address without its netmask, and
    # one column may hold both families.
    "inet": ("String", "string", lambda v: _inet(v, False)),
    "cidr": ("String", "string", lambda v: _inet(v, True)),
    "macaddr": ("String", "string", lambda v: _macaddr(v, False)),
    "macaddr8": ("String", "string", lambda v: _macaddr(v, True)),
}


def _nullable(clickhouse: str) -> str:
    if clickhouse.startswith("LowCardinality("):
        return f"LowCardinality(Nullable({clickhouse[len('LowCardinality('):-1]}))"
    return f"Nullable({clickhouse})"


def _views(family: str, args: tuple) -> tuple[str, Any, Callable[[Any], Any]]:
    if family == "int":
        bits = args[0]
        return f"Int{bits}", "long" if bits == 64 else "int", _int
    if family == "numeric":
        precision, scale = args
        return (*_decimal_views(precision, scale), lambda v: _numeric(v, precision, scale))
    if family == "timestamp":
        # adaptive_time_microseconds: timestamp(0-3) arrives as epoch millis, (4-6) as micros.
        return _DATETIME, _TS_AVRO, _millis if args[0] <= 3 else _micros
    if family == "enum":
        # LowCardinality(String), not Enum8: a label added at the source must not break the load.
        labels = args[0]
        return "LowCardinality(String)", "string", lambda v: _enum(v, labels)
    if family == "array":
        # A PostgreSQL array element may always be NULL; the column itself is wrapped by sinks/ddl.
        element = parse_pg_type(args[0])
        return (f"Array({_nullable(element.clickhouse)})", {"type": "array", "items": ["null", element.avro]},
                lambda v: _array(v, element.decode))
    return _VIEWS[family]


@lru_cache(maxsize=None)
def parse_pg_type(declared: str) -> PgType:
    family, args = _classify(declared)
    return PgType(declared, *_views(family, args))


# --- Text input and the Debezium form, for historical loads (R394 §21) -------------------------
#
# `from_text` reads a value's text form, as a CSV export writes it, into exactly the Python value
# `decode` gives for the same datum arriving through Debezium; `to_debezium` is `decode`'s
# inverse (the marker poller also feeds it what psycopg reads). A historical row is parsed with the first, turned into Debezium's form with the
# second and then takes the router's one decode-and-depersonalize path, so it becomes the very
# record a CDC event of the same row would. Both accept what PostgreSQL itself would store and
# refuse the rest (integers out of range, over-long varchar, a timestamptz without its offset)
# with ValueRefused, whose message says what is wrong and never quotes the value.


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
    return _days_in_range((value - _EPOCH_DATE).days)


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
    return _instant_in_range((value - offset).replace(tzinfo=timezone.utc))


def _timestamptz_to_debezium(value: Any) -> str:
    if not isinstance(value, datetime):
        raise ValueRefused(f"a {type(value).__name__} is not a timestamp")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueRefused("timestamptz without a UTC offset")
    return _instant_in_range(value.astimezone(timezone.utc)).isoformat()


def _timestamp_from_text(text: str, precision: int) -> datetime:
    value, offset = _timestamp_text(text)
    if offset is not None:  # PostgreSQL would silently drop it; the file means something else
        raise ValueRefused("a UTC offset given for a timestamp without time zone")
    return _instant_in_range(_pg_round(value.replace(tzinfo=timezone.utc), precision))


def _timestamp_to_debezium(value: Any, precision: int) -> int:
    if not isinstance(value, datetime):
        raise ValueRefused(f"a {type(value).__name__} is not a timestamp")
    if value.tzinfo is not None and value.utcoffset() != timedelta(0):
        # decode gives the wall clock in UTC; another offset is not a wall clock of this column
        raise ValueRefused("a UTC offset other than 0 given for a timestamp without time zone")
    rounded = _instant_in_range(_pg_round(value.replace(tzinfo=timezone.utc), precision))
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




_MONEY_TEXT = re.compile(r"\s*(?P<open>\()?\s*(?P<sign>[+-])?\s*\$?\s*(?P<units>[0-9]{1,3}(?:,[0-9]{3})+|[0-9]*)"
                         r"(?:\.(?P<cents>[0-9]*))?\s*(?P<close>\))?\s*")


def _money_from_text(text: str) -> Decimal:
    """money as PostgreSQL prints it in the C or en_US locale ($1,234.56, -$1,234.56), or plain."""
    match = _MONEY_TEXT.fullmatch(text)
    if match is None or bool(match.group("open")) != bool(match.group("close")) \
            or not (match.group("units") or match.group("cents")):
        raise ValueRefused("not a money amount (e.g. $1,234.56 or -1234.56)")
    negative = bool(match.group("open")) != (match.group("sign") == "-")
    units = match.group("units").replace(",", "") or "0"
    return _money(f"{'-' if negative else ''}{units}.{match.group('cents') or '0'}")


def _money_to_debezium(value: Any) -> str:
    if isinstance(value, str):  # psycopg reads money as its text
        return format(_money_from_text(value), "f")
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise ValueRefused(f"a {type(value).__name__} is not money")
    # A float is spelled as its repr, so _money sees the exponent a large one carries.
    return format(_money(repr(value) if isinstance(value, float) else format(value, "f")), "f")


def _round_time(micros: int, precision: int) -> int:
    """time(p) as PostgreSQL stores it: rounded half up (AdjustTimeForTypmod)."""
    scale = 10 ** (6 - precision)
    return (micros + scale // 2) // scale * scale


def _time_from_text(text: str, precision: int) -> int:
    micros, offset = _clock(text)
    if offset is not None:  # PostgreSQL would silently drop it; the file means something else
        raise ValueRefused("a UTC offset given for a time without time zone")
    return _round_time(micros, precision)


def _timetz_from_text(text: str, precision: int) -> int:
    micros, offset = _clock(text)
    if offset is None:  # would silently take the host's zone
        raise ValueRefused("timetz without a UTC offset")
    return _utc_time_of_day(_round_time(micros, precision), offset)


def _typed_time(value: Any) -> tuple[int, int | None]:
    """(microseconds since midnight, UTC offset in microseconds or None) of a typed time value."""
    if isinstance(value, bool):
        raise ValueRefused("a bool is not a time of day")
    if isinstance(value, int):
        return value, None
    if isinstance(value, time):
        micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000 + value.microsecond
        offset = value.utcoffset()
        return micros, None if offset is None else offset // _MICRO
    if isinstance(value, timedelta):  # pandas reads time columns as durations since midnight
        return value // _MICRO, None
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
    return _time(_round_time(micros, precision))


def _timetz_to_debezium(value: Any, precision: int) -> str:
    micros, offset = _typed_time(value)
    if offset is None:
        if isinstance(value, time):
            raise ValueRefused("timetz without a UTC offset")
        offset = 0  # an integer is what decode gives: the UTC time of day
    return _clock_text(_time(_utc_time_of_day(_round_time(micros, precision), offset))) + "Z"


_PG_INTERVAL_UNIT = re.compile(r"\s*([+-]?[0-9]+)\s*(years?|mons?|months?|weeks?|days?)\b", re.IGNORECASE)
_PG_INTERVAL_CLOCK = re.compile(r"\s*([+-]?)([0-9]+):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?")


def _postgres_interval(text: str) -> dict[str, int]:
    """An interval as PostgreSQL prints it by default (IntervalStyle postgres):
    '1 year 2 mons -3 days +04:05:06.78'."""
    months = days = micros = 0
    position, seen = 0, False
    while unit := _PG_INTERVAL_UNIT.match(text, position):
        number, word = int(unit.group(1)), unit.group(2).lower()
        if word.startswith("y"):
            months += 12 * number
        elif word.startswith("mon"):
            months += number
        else:
            days += 7 * number if word.startswith("w") else number
        position, seen = unit.end(), True
    clock = _PG_INTERVAL_CLOCK.match(text, position)
    if clock:
        minutes, seconds = int(clock.group(3)), int(clock.group(4) or 0)
        if minutes > 59 or seconds > 59:
            raise ValueRefused("not a valid interval time part")
        micros = ((int(clock.group(2)) * 60 + minutes) * 60 + seconds) * 1_000_000 + _fraction_micros(clock.group(5) or "")
        micros = -micros if clock.group(1) == "-" else micros
        position, seen = clock.end(), True
    if not seen or text[position:].strip():
        raise ValueRefused("not an interval (e.g. 1 year 2 mons 3 days 04:05:06 or P1Y2M3DT4H5M6S)")
    return _interval_value(months, days, micros)


def _round_interval(value: dict[str, int], precision: int) -> dict[str, int]:
    """interval(p) as PostgreSQL stores it: seconds rounded half away from zero."""
    scale, micros = 10 ** (6 - precision), value["micros"]
    rounded = (abs(micros) + scale // 2) // scale * scale
    return _interval_value(value["months"], value["days"], rounded if micros >= 0 else -rounded)


def _interval_from_text(text: str, precision: int) -> dict[str, int]:
    value = _iso_interval(text) if text.strip()[:1] == "P" else _postgres_interval(text)
    return _round_interval(value, precision)


def _typed_interval(value: Any) -> dict[str, int]:
    if isinstance(value, timedelta):  # what psycopg writes for a timedelta: days and the rest
        return _interval_value(0, value.days, (value - timedelta(days=value.days)) // _MICRO)
    if isinstance(value, dict) and set(value) == {"months", "days", "micros"}:
        parts = (value["months"], value["days"], value["micros"])
    elif isinstance(value, (tuple, list)) and len(value) == 3:
        parts = tuple(value)
    else:
        raise ValueRefused(f"a {type(value).__name__} is not an interval (months, days, micros)")
    if any(isinstance(part, bool) or not isinstance(part, int) for part in parts):
        raise ValueRefused("interval parts are integers: months, days, micros")
    return _interval_value(*parts)


def _interval_to_debezium(value: Any, precision: int) -> str:
    """Debezium's spelling (io.debezium.time.Interval from pgjdbc's PGInterval): every part with
    its own sign, years and months split as PostgreSQL prints them, seconds without trailing zeros."""
    interval = _round_interval(_typed_interval(value), precision)
    months, micros = interval["months"], interval["micros"]
    years = abs(months) // 12 * (-1 if months < 0 else 1)  # C division: truncated toward zero
    sign = -1 if micros < 0 else 1
    hours, rest = divmod(abs(micros), 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = format((Decimal(rest).scaleb(-6) * sign).normalize(), "f")
    return (f"P{years}Y{months - years * 12}M{interval['days']}D"
            f"T{sign * hours}H{sign * minutes}M{'0' if rest == 0 else seconds}S")


def _bytea_from_text(text: str) -> bytes:
    """bytea's hex output (\\x0001ff, PostgreSQL's default) or its escape format (a\\000\\\\)."""
    if text.startswith("\\x"):
        try:
            return bytes.fromhex(text[2:])
        except ValueError:
            raise ValueRefused("not bytea hex (\\x followed by pairs of hex digits)") from None
    out, position = bytearray(), 0
    while position < len(text):
        char = text[position]
        if char != "\\":
            out += char.encode()
            position += 1
        elif text[position + 1:position + 2] == "\\":
            out.append(0x5C)
            position += 2
        elif re.fullmatch(r"[0-3][0-7]{2}", text[position + 1:position + 4]):
            out.append(int(text[position + 1:position + 4], 8))
            position += 4
        else:
            raise ValueRefused("not bytea (hex \\x... or escape format with \\ooo and \\\\)")
    return bytes(out)


def _bytea_to_debezium(value: Any) -> str:
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise ValueRefused(f"a {type(value).__name__} is not bytea")
    return base64.b64encode(bytes(value)).decode("ascii")


def _pg_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as PostgreSQL prints it: IPv6 compressed as RFC 5952 does, except that an embedded
    IPv4 address (::a.b.c.d, ::ffff:a.b.c.d) keeps its dotted quad (src/port/inet_net_ntop.c)."""
    if address.version == 6:
        words = [int.from_bytes(address.packed[i:i + 2], "big") for i in range(0, 16, 2)]
        leading = next((i for i, word in enumerate(words) if word), 8)
        if leading == 6 or (leading == 5 and words[5] == 0xFFFF):
            return ("::" if leading == 6 else "::ffff:") + str(ipaddress.IPv4Address(address.packed[12:]))
    return address.compressed


def _network_text(value: Any, cidr: bool) -> str:
    if cidr:
        return f"{_pg_address(value.network_address)}/{value.prefixlen}"
    text = _pg_address(value.ip)  # inet keeps the host bits; its netmask is printed unless full
    return text if value.network.prefixlen == value.max_prefixlen else f"{text}/{value.network.prefixlen}"


def _inet_from_text(text: str, cidr: bool) -> str:
    return _network_text(_network(text.strip(), cidr), cidr)


def _inet_to_debezium(value: Any, cidr: bool) -> str:
    if isinstance(value, str):
        return _inet_from_text(value, cidr)
    if isinstance(value, (ipaddress.IPv4Interface, ipaddress.IPv6Interface, ipaddress.IPv4Network,
                          ipaddress.IPv6Network, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        # psycopg reads inet as an interface and cidr as a network; the text form checks the rest.
        return _inet_from_text(value.with_prefixlen if hasattr(value, "with_prefixlen") else str(value), cidr)
    raise ValueRefused(f"a {type(value).__name__} is not an {'cidr' if cidr else 'inet'} address")


_HEX2 = "[0-9a-fA-F]{2}"
_MAC6_TEXT = re.compile(r"\s*(?:" + "|".join([
    ":".join([_HEX2] * 6), "-".join([_HEX2] * 6), _HEX2 * 3 + ":" + _HEX2 * 3, _HEX2 * 3 + "-" + _HEX2 * 3,
    r"\.".join([_HEX2 * 2] * 3), "-".join([_HEX2 * 2] * 3), _HEX2 * 6]) + r")\s*")
_MAC8_TEXT = re.compile(r"\s*" + _HEX2 + r"(?:[:.-]?" + _HEX2 + r"){5}(?:(?:[:.-]?" + _HEX2 + r"){2})?\s*")


def _macaddr_from_text(text: str, eight: bool) -> str:
    """Any spelling PostgreSQL's input accepts, as it prints it: lower-case pairs joined by colons."""
    if not (_MAC8_TEXT if eight else _MAC6_TEXT).fullmatch(text):
        raise ValueRefused(f"not a {'macaddr8' if eight else 'macaddr'}")
    digits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    if eight and len(digits) == 12:  # a 6-byte address becomes EUI-64 with FF:FE in the middle
        digits = digits[:6] + "fffe" + digits[6:]
    return ":".join(digits[i:i + 2] for i in range(0, len(digits), 2))


def _macaddr_to_debezium(value: Any, eight: bool) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"a {type(value).__name__} is not a {'macaddr8' if eight else 'macaddr'}")
    return _macaddr_from_text(value, eight)


def _enum_to_debezium(value: Any, labels: frozenset[str] | None) -> str:
    if not isinstance(value, str):
        raise ValueRefused(f"a {type(value).__name__} is not an enum label")
    return _enum(value, labels)


def _array_items(text: str) -> list[str | None]:
    """The elements of a one-dimensional array literal as PostgreSQL prints it ({1,"a b",NULL}),
    unquoted and unescaped; NULL unquoted is the null element."""
    body = text.strip()
    if not (body.startswith("{") and body.endswith("}")):
        raise ValueRefused("array with explicit bounds" if body.startswith("[") else "not an array literal ({...})")
    body = body[1:-1]
    if not body.strip():
        return []
    items, position = [], 0
    while True:
        position = _after_blanks(body, position)
        if body.startswith("{", position):
            raise ValueRefused("a multidimensional array value in a one-dimensional array column")
        if body.startswith('"', position):
            item, position = _quoted_item(body, position + 1)
        else:
            item, position = _bare_item(body, position)
        items.append(item)
        position = _after_blanks(body, position)
        if position == len(body):
            return items
        if body[position] != ",":
            raise ValueRefused("not a valid array literal")
        position += 1


def _after_blanks(body: str, position: int) -> int:
    while position < len(body) and body[position].isspace():
        position += 1
    return position


def _quoted_item(body: str, position: int) -> tuple[str, int]:
    chars = []
    while position < len(body):
        char = body[position]
        if char == '"':
            return "".join(chars), position + 1
        if char == "\\":
            position += 1
            if position == len(body):
                break
            char = body[position]
        chars.append(char)
        position += 1
    raise ValueRefused("not a valid array literal (unterminated quote)")


def _bare_item(body: str, position: int) -> tuple[str | None, int]:
    chars, escaped = [], False
    while position < len(body) and body[position] != ",":
        char = body[position]
        if char == "\\" and position + 1 < len(body):
            char, escaped = body[position + 1], True
            position += 1
        elif char in '{}"':
            raise ValueRefused("not a valid array literal")
        chars.append(char)
        position += 1
    item = "".join(chars).strip()
    if not item and not escaped:
        raise ValueRefused("not a valid array literal (empty element)")
    return (None if item.upper() == "NULL" and not escaped else item), position


def _array_from_text(text: str, element: str) -> list:
    parse = _text_parser(element)
    return [None if item is None else parse(item) for item in _array_items(text)]


def _array_to_debezium(value: Any, element: str) -> list:
    if not isinstance(value, (list, tuple)):
        raise ValueRefused(f"a {type(value).__name__} is not an array")
    encode = _debezium_encoder(element)
    items = []
    for item in value:
        if isinstance(item, list):
            raise ValueRefused("a multidimensional array value in a one-dimensional array column")
        items.append(None if item is None else encode(item))
    return items


@lru_cache(maxsize=None)
def _text_parser(declared: str) -> Callable[[str], Any]:
    family, args = _classify(declared)
    parsers: dict[str, Callable[[str], Any]] = {
        "int": lambda t: _int_from_text(t, *args),
        "numeric": lambda t: _numeric_from_text(t, *args),
        "float4": lambda t: _float_from_text(t, True),
        "float8": lambda t: _float_from_text(t, False),
        "bool": _bool_from_text,
        "text": lambda t: _string_from_text(t, None, False),
        "varchar": lambda t: _string_from_text(t, args[0], False),
        "char": lambda t: _string_from_text(t, args[0], True),
        "date": lambda t: _day_in_range(_date_from_text(t)),
        "timestamptz": _timestamptz_from_text,
        "timestamp": lambda t: _timestamp_from_text(t, *args),
        "uuid": _uuid_from_text,
        "json": _json_from_text,
        "jsonb": _jsonb_from_text,
        "money": _money_from_text,
        "time": lambda t: _time_from_text(t, *args),
        "timetz": lambda t: _timetz_from_text(t, *args),
        "interval": lambda t: _interval_from_text(t, *args),
        "bytea": _bytea_from_text,
        "enum": lambda t: _enum(t, *args),
        "inet": lambda t: _inet_from_text(t, False),
        "cidr": lambda t: _inet_from_text(t, True),
        "macaddr": lambda t: _macaddr_from_text(t, False),
        "macaddr8": lambda t: _macaddr_from_text(t, True),
        "array": lambda t: _array_from_text(t, *args),
    }
    parse = parsers[family]
    return _refusing(declared, lambda t: parse(_str(t)))


@lru_cache(maxsize=None)
def _debezium_encoder(declared: str) -> Callable[[Any], Any]:
    family, args = _classify(declared)
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
    return _refusing(declared, encoders[family])
