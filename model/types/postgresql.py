"""PostgreSQL column types: a declared type's family and what it becomes downstream.

A declared type is classified into a family and its arguments (`classify`), which give its
ClickHouse and Avro types; the processor decodes Debezium's JSON for it (streams/decode),
historical loads read its text form (connectors/pg_text.py) and the marker poller writes its
Debezium form (connectors/debezium_encode.py), all dispatching on the same family, so every
spelling is recognized here only. The full mapping table and the reasons for each choice are
in docs/type-mapping.md.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from model.types.column_type import DATETIME64, TIMESTAMP_AVRO, ColumnType, decimal_views, enum_labels

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
    # A numeric without precision holds any number of digits: kept as its exact decimal text.
    "numeric": "numeric_text", "decimal": "numeric_text",
    # Debezium sends these as PostgreSQL prints them, and they are kept so (docs/type-mapping.md).
    "xml": "text", "citext": "text", "ltree": "text",
    "int4range": "text", "int8range": "text", "numrange": "text", "daterange": "text",
}
# Types a state body's schema plausibly holds that are not captured, with what to do instead.
_BIT = ("Debezium sends a bit string as bytes in reversed byte order; declare it at the source as boolean "
        "(bit(1)) or text, or leave the column out")
_GEOMETRY = ("Debezium sends geometry as a structure of its own; declare a generated text column at the source "
             "(e.g. ST_AsText(...) or point::text) instead, or leave the column out")
_TIME_RANGE = ("its bounds are printed in the capture session's DateStyle and time zone, which Qoima does not "
               "control; declare the two bounds as timestamp columns at the source, or leave the column out")
_EXTENSION = "an extension type Debezium does not capture; declare a text copy at the source, or leave it out"
_SEARCH = "a search index, not data: leave the column out"
_REFUSED = {"bit": _BIT, "bit varying": _BIT, "varbit": _BIT,
            **dict.fromkeys(("point", "line", "lseg", "box", "path", "polygon", "circle", "geometry", "geography"),
                            _GEOMETRY),
            "tsrange": _TIME_RANGE, "tstzrange": _TIME_RANGE,
            **dict.fromkeys(("isbn", "isbn13", "ean13", "issn", "ismn", "upc"), _EXTENSION),
            "tsvector": _SEARCH, "tsquery": _SEARCH}
_PATTERNS = [
    (re.compile(r"^(?:numeric|decimal)\((\d+)(?:,\s*(\d+))?\)$"), "numeric"),
    (re.compile(r"^(?:timestamp\((\d)\) with time zone|timestamptz\((\d)\))$"), "timestamptz"),
    (re.compile(r"^(?:varchar|character varying|char|character|bpchar)\((\d+)\)$"), "string"),
    (re.compile(r"^timestamp(?:\((\d)\))?(?: without time zone)?$"), "timestamp"),
    (re.compile(r"^time(?:\((\d)\))?(?: without time zone)?$"), "time"),
    (re.compile(r"^(?:time(?:\((\d)\))? with time zone|timetz(?:\((\d)\))?)$"), "timetz"),
    (re.compile(r"^interval(?:\((\d)\))?$"), "interval"),
]
# On the declared text as written: enum labels are case-sensitive.
_ENUM = re.compile(r"enum\s*(?::\s*(?P<name>[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)?)\s*)?"
                   r"(?:\((?P<labels>.*)\))?", re.IGNORECASE | re.DOTALL)
_ARRAY = re.compile(r"(?P<base>.*?)\s*(?P<dims>(?:\[\s*[0-9]*\s*\]\s*)+)", re.DOTALL)
# Debezium 3.0 emits no value for arrays of money or interval; an array of enum labels holding a
# NULL element or a label with a space arrived as NULL in tests/e2e/test_type_fidelity.py.
_NOT_IN_ARRAYS = {"money", "interval", "enum"}

SUPPORTED = sorted([*_INTS, *_SIMPLE, "numeric(p,s)", "numeric(p)", "timestamp(p) with time zone", "varchar(n)", "char(n)", "timestamp[(p)]",
                    "time[(p)]", "timetz[(p)]", "time with time zone", "interval[(p)]", "enum"])
_FORMS = ("arrays as <type>[] or _<type> of these (one dimension; not of money, interval or enums); "
          "enums as enum, enum(label, ...) or enum:<type name>(label, ...)")


def _unsupported(declared: str) -> str:
    return f"unsupported column type {declared!r}; supported: {', '.join(SUPPORTED)}; {_FORMS}"


def _array_family(declared: str, base: str, dimensions: int) -> tuple[str, tuple]:
    base = base.strip()
    if dimensions > 1 or base.startswith("_") or _ARRAY.fullmatch(base):
        raise ValueError(f"type {declared!r}: multidimensional arrays are not supported (Debezium does not "
                         "carry them reliably); declare a one-dimensional <type>[] or leave the column out")
    try:
        family, _ = classify(base)
    except ValueError as exc:
        if str(exc).startswith("unsupported column type"):
            raise ValueError(_unsupported(declared)) from None
        raise
    if family in _NOT_IN_ARRAYS:
        raise ValueError(f"type {declared!r}: Debezium does not capture arrays of {family}; "
                         "leave the column out or change its type at the source")
    return "array", (base,)


def classify(declared: str) -> tuple[str, tuple]:
    """The declared type as (family, arguments); ValueError naming the supported types if unknown.

    Families and their arguments: int (bits), numeric (precision, scale), varchar and char
    (length), timestamp, time, timetz and interval (precision), enum (labels or None), array
    (the element's declared type); the rest take none."""
    stripped = declared.strip()
    array = _ARRAY.fullmatch(stripped)
    if array:
        return _array_family(declared, array.group("base"), array.group("dims").count("["))
    text = " ".join(stripped.lower().split())
    if text.startswith("_"):  # PostgreSQL's internal name of an array type, as in _int4
        return _array_family(declared, stripped[1:], 1)
    enum = _ENUM.fullmatch(stripped)
    if enum:
        return "enum", (enum_labels(declared, enum.group("labels")),)
    if text in _INTS:
        return "int", (_INTS[text],)
    if text in _SIMPLE:
        return _SIMPLE[text], ()
    for pattern, family in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        if family == "numeric":
            precision, scale = int(match.group(1)), int(match.group(2) or 0)  # numeric(p) is numeric(p,0)
            if not 1 <= precision <= 76 or scale > precision:
                raise ValueError(f"type {declared!r}: precision must be 1-76 and scale at most the precision")
            return "numeric", (precision, scale)
        if family == "string":
            return ("varchar" if text.startswith(("varchar", "character varying")) else "char"), (int(match.group(1)),)
        if family == "timestamptz":
            return "timestamptz", ()  # an instant at any precision up to micros
        digits = next((group for group in match.groups() if group), None)
        return family, (min(int(digits), 6) if digits else 6,)  # PostgreSQL reduces more to 6
    base = re.sub(r"\(.*\)$", "", text).strip()
    if base in _REFUSED:
        raise ValueError(f"column type {declared!r} is not captured: {_REFUSED[base]}")
    raise ValueError(_unsupported(declared))


INTERVAL_AVRO = {"type": "record", "name": "interval", "namespace": "qoima.pg",
                 "doc": "A PostgreSQL interval as it stores it: months, days and microseconds",
                 "fields": [{"name": "months", "type": "int"}, {"name": "days", "type": "int"},
                            {"name": "micros", "type": "long"}]}
_INTERVAL_CLICKHOUSE = "Tuple(months Int32, days Int32, micros Int64)"
_VIEWS: dict[str, tuple[str, Any]] = {
    "float4": ("Float32", "float"),
    "float8": ("Float64", "double"),
    "bool": ("Bool", "boolean"),
    "text": ("String", "string"),
    "varchar": ("String", "string"),
    "char": ("String", "string"),
    "date": ("Date32", {"type": "int", "logicalType": "date"}),
    "timestamptz": (DATETIME64, TIMESTAMP_AVRO),
    "uuid": ("UUID", {"type": "string", "logicalType": "uuid"}),
    "json": ("String", "string"),
    "jsonb": ("String", "string"),
    "money": decimal_views(19, 2),
    # Time64 holds 24:00:00 (it goes to 999:59:59) and needs no setting in ClickHouse 26.9.
    "time": ("Time64(6)", "long"),
    "timetz": ("Time64(6)", "long"),
    "interval": (_INTERVAL_CLICKHOUSE, INTERVAL_AVRO),
    "bytea": ("String", "bytes"),
    # As PostgreSQL prints them: ClickHouse's IPv4/IPv6 hold an address without its netmask, and
    # one column may hold both families.
    "inet": ("String", "string"),
    "cidr": ("String", "string"),
    "macaddr": ("String", "string"),
    "macaddr8": ("String", "string"),
    "numeric_text": ("String", "string"),
}


def _nullable(clickhouse: str) -> str:
    if clickhouse.startswith("LowCardinality("):
        return f"LowCardinality(Nullable({clickhouse[len('LowCardinality('):-1]}))"
    return f"Nullable({clickhouse})"


def views(family: str, args: tuple = ()) -> tuple[str, Any]:
    """(ClickHouse type, Avro type) of a family with its arguments."""
    if family == "int":
        bits = args[0]
        return f"Int{bits}", "long" if bits == 64 else "int"
    if family == "numeric":
        return decimal_views(*args)
    if family == "timestamp":
        return DATETIME64, TIMESTAMP_AVRO
    if family == "enum":
        # LowCardinality(String), not Enum8: a label added at the source must not break the load.
        return "LowCardinality(String)", "string"
    if family == "array":
        # A PostgreSQL array element may always be NULL; the column itself is wrapped by sinks/ddl.
        element = parse_pg_type(args[0])
        return f"Array({_nullable(element.clickhouse)})", {"type": "array", "items": ["null", element.avro]}
    return _VIEWS[family]


@lru_cache(maxsize=None)
def parse_pg_type(declared: str) -> ColumnType:
    family, args = classify(declared)
    return ColumnType(declared, "postgresql", family, args, *views(family, args))


# What redact and the region generalizations take, matched on the spelling as written.
_TEXT_TYPE = re.compile(r"^(?:text|(?:varchar|character varying|char|character|bpchar)\(\d+\))$")


def is_text_type(declared: str) -> bool:
    """text, varchar(n) and char(n)."""
    return _TEXT_TYPE.match(" ".join(declared.lower().split())) is not None
