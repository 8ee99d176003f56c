"""MariaDB column types: how Debezium's MariaDB connector encodes them and what they become downstream.

The counterpart of model/types/postgresql.py for a regulation whose source is `dbms: mariadb`. The
connector runs with the same value settings (connectors/mariadb_config.py):
`decimal.handling.mode=string`, `time.precision.mode=adaptive_time_microseconds`,
`binary.handling.mode=base64`, plus `bigint.unsigned.handling.mode=precise` so that a BIGINT
UNSIGNED above 2^63 is not wrapped into a negative long. Where Debezium's JSON for a MariaDB
type is the one it sends for a PostgreSQL type (DATE as epoch days, DATETIME(p) as epoch
millis or micros like timestamp(p), TIMESTAMP as an ISO instant like timestamptz, DECIMAL as a
string) the decoders of pg_types are reused, so both sources refuse the same out-of-range
values the same way. Every type is a `MariaDbType`, a `PgType` whose three views (ClickHouse,
Avro, decode) the rest of the pipeline already understands. The mapping table and its reasons
are in docs/mariadb.md.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Callable

from model.types.postgresql import _VIEWS as _PG_VIEWS
from model.types.postgresql import (_DATETIME, _TS_AVRO, PgType, ValueRefused, _bytea, _decimal_views, _enum,
                              _enum_labels, _int, _micros, _millis, _numeric, _str, _zoned)


@dataclass(frozen=True)
class MariaDbType(PgType):
    """A declared MariaDB column type. Historical loads and the marker poller read PostgreSQL
    only for now: their text and Debezium forms are refused instead of guessed."""

    @property
    def from_text(self) -> Callable[[str], Any]:
        raise NotImplementedError(f"type {self.declared!r}: historical loads of MariaDB sources are not "
                                  "supported yet; load the file into a PostgreSQL-declared table or wait for it")

    @property
    def to_debezium(self) -> Callable[[Any], Any]:
        raise NotImplementedError(f"type {self.declared!r}: MariaDB sources are captured by Debezium only "
                                  "(no marker polling, no historical loads yet)")


# --- decoders of MariaDB-only representations -------------------------------------------------


def _checked(value: int, low: int, high: int, what: str) -> int:
    if not low <= value <= high:
        raise ValueRefused(f"out of range for {what}")
    return value


def _integer(low: int, high: int, what: str) -> Callable[[Any], int]:
    return lambda value: _checked(_int(value), low, high, what)


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
        number = _int(value)
    return Decimal(_checked(number, 0, (1 << 64) - 1, "bigint unsigned"))


def _boolean(value: Any) -> bool:
    # BOOLEAN is TINYINT(1): Debezium sends true/false when it learnt the column from a DDL that
    # said BOOLEAN, and 0/1 when it read SHOW CREATE TABLE (tinyint(1)) during a snapshot.
    if isinstance(value, bool):
        return value
    if _int(value) in (0, 1):
        return bool(value)
    raise ValueRefused("a tinyint(1) holding a value other than 0 or 1; declare the column 'tinyint' "
                       "to keep it as a number")


_TIME_LIMIT = ((838 * 60 + 59) * 60 + 59) * 1_000_000 + 999_999  # TIME is an elapsed time, not a time of day


def _elapsed_time(value: Any) -> int:
    return _checked(_int(value), -_TIME_LIMIT, _TIME_LIMIT, "time (-838:59:59.999999..838:59:59.999999)")


def _year(value: Any) -> int:
    year = _int(value)
    if year != 0 and not 1901 <= year <= 2155:  # 0000 is YEAR's own zero value, kept as it is
        raise ValueRefused("out of range for year (1901..2155 or 0)")
    return year


def _unsigned_decimal(precision: int, scale: int) -> Callable[[Any], Decimal]:
    def decode(value: Any) -> Decimal:
        number = _numeric(value, precision, scale)
        if number < 0:
            raise ValueRefused("a negative value in an unsigned decimal")
        return number
    return decode


def _set(labels: frozenset[str] | None) -> Callable[[Any], str]:
    def decode(value: Any) -> str:
        text = _str(value)
        if labels is not None and text and not set(text.split(",")) <= labels:
            raise ValueRefused("a member that is not one of the set labels the regulation declares")
        return text
    return decode


# --- declared types ---------------------------------------------------------------------------

_SIGNED = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}
_INTEGER = re.compile(r"^(?P<base>tinyint|smallint|mediumint|integer|int|bigint)(?:\s*\((?P<width>\d+)\))?"
                      r"(?P<unsigned> unsigned)?(?P<zerofill> zerofill)?$")
_DECIMAL = re.compile(r"^(?:decimal|numeric|dec|fixed)\s*\((?P<p>\d+)(?:\s*,\s*(?P<s>\d+))?\)(?P<unsigned> unsigned)?$")
_STRING = re.compile(r"^(?:varchar|char|character varying|character)\s*\((\d+)\)$")
_PRECISION = re.compile(r"^(?P<base>datetime|timestamp|time)(?:\s*\((?P<p>\d)\))?$")
_LABELLED = re.compile(r"(?P<kind>enum|set)\s*(?:\((?P<labels>.*)\))?", re.IGNORECASE | re.DOTALL)
_BINARY = re.compile(r"^binary\s*\(\d+\)$")
_SIMPLE = {
    "boolean": "bool", "bool": "bool", "tinyint(1)": "bool", "bit(1)": "bool",
    "float": "float4", "double": "float8", "double precision": "float8",
    "text": "text", "tinytext": "text", "mediumtext": "text", "longtext": "text",
    "json": "json", "date": "date", "year": "year", "year(4)": "year",
    "tinyblob": "bytes", "blob": "bytes", "mediumblob": "bytes", "longblob": "bytes",
}
SUPPORTED = sorted(["tinyint", "smallint", "mediumint", "int", "bigint", "<integer> unsigned", "boolean",
                    "tinyint(1)", "bit(1)", "decimal(p[,s]) [unsigned]", "float", "double", "varchar(n)", "char(n)",
                    "text", "tinytext", "mediumtext", "longtext", "json", "date", "datetime[(p)]", "timestamp[(p)]",
                    "time[(p)]", "year", "enum(...)", "set(...)", "tinyblob", "blob", "mediumblob", "longblob",
                    "varbinary(n)"])
_TEXT_FAMILIES = {"text", "varchar", "char"}


def _unsupported(declared: str) -> str:
    return f"unsupported MariaDB column type {declared!r}; supported: {', '.join(SUPPORTED)}"


def _classify(declared: str) -> tuple[str, tuple]:
    """The declared type as (family, arguments); ValueError naming the supported types if unknown."""
    stripped = declared.strip()
    labelled = _LABELLED.fullmatch(stripped)
    if labelled:  # on the text as written: labels are case-sensitive
        return labelled.group("kind").lower(), (_enum_labels(declared, labelled.group("labels")),)
    text = " ".join(stripped.lower().split())
    if text in _SIMPLE:
        return _SIMPLE[text], ()
    integer = _INTEGER.match(text)
    if integer:
        unsigned = bool(integer.group("unsigned") or integer.group("zerofill"))  # ZEROFILL implies UNSIGNED
        return ("unsigned" if unsigned else "int"), (_SIGNED[integer.group("base")],)
    decimal = _DECIMAL.match(text)
    if decimal:
        precision, scale = int(decimal.group("p")), int(decimal.group("s") or 0)
        if not 1 <= precision <= 65 or scale > min(precision, 38):
            raise ValueError(f"type {declared!r}: MariaDB allows precision 1-65 and scale 0-38, at most the precision")
        return "decimal", (precision, scale, bool(decimal.group("unsigned")))
    string = _STRING.match(text)
    if string:
        return ("varchar" if text.startswith(("varchar", "character varying")) else "char"), (int(string.group(1)),)
    if re.match(r"^varbinary\s*\(\d+\)$", text):
        return "bytes", ()
    if _BINARY.match(text):
        raise ValueError(f"type {declared!r}: binary(n) is not supported: the binlog row image packs it without "
                         "its trailing zero padding while a snapshot reads it padded, so one value could load two "
                         "ways; use varbinary(n)")
    if text.startswith("bit"):
        raise ValueError(f"type {declared!r}: only bit(1) is supported (as a boolean); Debezium sends wider bit "
                         "fields as little-endian bytes, not loaded yet")
    precise = _PRECISION.match(text)
    if precise:
        digits = precise.group("p")
        precision = int(digits) if digits else 0  # MariaDB's default is whole seconds
        if precision > 6:
            raise ValueError(f"type {declared!r}: fractional seconds precision is 0-6")
        return precise.group("base"), (precision,)
    raise ValueError(_unsupported(declared))


_UNSIGNED_VIEWS = {8: ("UInt8", "int"), 16: ("UInt16", "int"), 24: ("UInt32", "int"), 32: ("UInt32", "long")}
_VIEWS: dict[str, tuple[str, Any, Callable[[Any], Any]]] = {
    # Debezium sends these as it does PostgreSQL's: the same three views.
    **{family: _PG_VIEWS[family] for family in ("float4", "float8", "text", "varchar", "char", "date")},
    "bool": ("Bool", "boolean", _boolean),
    "json": ("String", "string", _str),   # MariaDB's JSON is LONGTEXT with a json_valid check
    "timestamp": (_DATETIME, _TS_AVRO, _zoned),   # stored in UTC; Debezium sends it with a Z
    # Time64 goes to +-999:59:59, beyond TIME's +-838:59:59; a negative TIME is a duration.
    "time": ("Time64(6)", "long", _elapsed_time),
    "year": ("UInt16", "int", _year),
    "bytes": ("String", "bytes", _bytea),
}


def _views(family: str, args: tuple) -> tuple[str, Any, Callable[[Any], Any]]:
    if family == "int":
        bits = args[0]
        low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        clickhouse = "Int32" if bits == 24 else f"Int{bits}"
        return clickhouse, "long" if bits == 64 else "int", _integer(low, high, f"a {bits}-bit integer")
    if family == "unsigned":
        bits = args[0]
        if bits == 64:  # beyond Avro's long: a scale-0 decimal, as Debezium's precise mode sends it
            return (*_decimal_views(20, 0), _unsigned_bigint)
        clickhouse, avro = _UNSIGNED_VIEWS[bits]
        return clickhouse, avro, _integer(0, (1 << bits) - 1, f"an unsigned {bits}-bit integer")
    if family == "decimal":
        precision, scale, unsigned = args
        decode = _unsigned_decimal(precision, scale) if unsigned else (lambda v: _numeric(v, precision, scale))
        return (*_decimal_views(precision, scale), decode)
    if family == "datetime":
        # adaptive_time_microseconds: DATETIME(0-3) arrives as epoch millis, (4-6) as micros, both
        # the wall clock read as UTC, exactly as PostgreSQL's timestamp(p).
        return _DATETIME, _TS_AVRO, _millis if args[0] <= 3 else _micros
    if family == "enum":
        labels = args[0]  # LowCardinality(String), not Enum8: a label added at the source must not break the load
        return "LowCardinality(String)", "string", lambda v: _enum(v, labels)
    if family == "set":
        return "String", "string", _set(args[0])
    return _VIEWS[family]


@lru_cache(maxsize=None)
def parse_mariadb_type(declared: str) -> MariaDbType:
    family, args = _classify(declared)
    return MariaDbType(declared, *_views(family, args))


def is_text_type(declared: str) -> bool:
    """varchar(n), char(n) and the text types: what redact and the region generalizations take."""
    return _classify(declared)[0] in _TEXT_FAMILIES
