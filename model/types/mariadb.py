"""MariaDB column types: a declared type's family and what it becomes downstream.

The counterpart of model/types/postgresql.py for a regulation whose source is `dbms: mariadb`.
The connector runs with the same value settings (connectors/debezium/mariadb.py):
`decimal.handling.mode=string`, `time.precision.mode=adaptive_time_microseconds`,
`binary.handling.mode=base64`, plus `bigint.unsigned.handling.mode=precise` so that a BIGINT
UNSIGNED above 2^63 is not wrapped into a negative long. Where Debezium's JSON for a MariaDB
type is the one it sends for a PostgreSQL type (DATE as epoch days, DATETIME(p) as epoch
millis or micros like timestamp(p), TIMESTAMP as an ISO instant like timestamptz, DECIMAL as a
string) the ClickHouse and Avro types are PostgreSQL's, and streams/decode/mariadb.py reuses
PostgreSQL's decoders, so both sources refuse the same out-of-range values the same way. The
mapping table and its reasons are in docs/mariadb.md.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from model.types import postgresql
from model.types.column_type import DATETIME64, TIMESTAMP_AVRO, ColumnType, decimal_views, enum_labels

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


def classify(declared: str) -> tuple[str, tuple]:
    """The declared type as (family, arguments); ValueError naming the supported types if unknown.

    Families and their arguments: int and unsigned (bits), decimal (precision, scale, unsigned),
    varchar and char (length), datetime, timestamp and time (precision), enum and set (labels or
    None); the rest take none."""
    stripped = declared.strip()
    labelled = _LABELLED.fullmatch(stripped)
    if labelled:  # on the text as written: labels are case-sensitive
        return labelled.group("kind").lower(), (enum_labels(declared, labelled.group("labels")),)
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
_VIEWS: dict[str, tuple[str, Any]] = {
    # Debezium sends these as it does PostgreSQL's: the same views.
    **{family: postgresql.views(family) for family in ("float4", "float8", "text", "varchar", "char", "date")},
    "bool": ("Bool", "boolean"),
    "json": ("String", "string"),   # MariaDB's JSON is LONGTEXT with a json_valid check
    "timestamp": (DATETIME64, TIMESTAMP_AVRO),   # stored in UTC; Debezium sends it with a Z
    # Time64 goes to +-999:59:59, beyond TIME's +-838:59:59; a negative TIME is a duration.
    "time": ("Time64(6)", "long"),
    "year": ("UInt16", "int"),
    "bytes": ("String", "bytes"),
}


def _views(family: str, args: tuple) -> tuple[str, Any]:
    if family == "int":
        bits = args[0]
        return ("Int32" if bits == 24 else f"Int{bits}"), "long" if bits == 64 else "int"
    if family == "unsigned":
        bits = args[0]
        if bits == 64:  # beyond Avro's long: a scale-0 decimal, as Debezium's precise mode sends it
            return decimal_views(20, 0)
        return _UNSIGNED_VIEWS[bits]
    if family == "decimal":
        precision, scale, _ = args
        return decimal_views(precision, scale)
    if family == "datetime":
        # DATETIME is a wall clock read as UTC, exactly as PostgreSQL's timestamp(p).
        return DATETIME64, TIMESTAMP_AVRO
    if family == "enum":
        return "LowCardinality(String)", "string"  # not Enum8: a label added at the source must not break the load
    if family == "set":
        return "String", "string"
    return _VIEWS[family]


@lru_cache(maxsize=None)
def parse_mariadb_type(declared: str) -> ColumnType:
    family, args = classify(declared)
    return ColumnType(declared, "mariadb", family, args, *_views(family, args))


def is_text_type(declared: str) -> bool:
    """varchar(n), char(n) and the text types: what redact and the region generalizations take."""
    return classify(declared)[0] in _TEXT_FAMILIES
