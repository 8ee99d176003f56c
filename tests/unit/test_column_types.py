"""Declared column types (model/types): PostgreSQL's and MariaDB's spellings, their families and
their ClickHouse and Avro types; the declarations a regulation is refused for."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest
from pydantic import ValidationError

from model.regulation import Column
from model.types import ColumnType, is_text_type, parse_type
from model.types.mariadb import parse_mariadb_type
from model.types.postgresql import SUPPORTED, parse_pg_type

TS_AVRO = {"type": "long", "logicalType": "timestamp-micros"}
INTERVAL_CH = "Tuple(months Int32, days Int32, micros Int64)"

INTERVAL_AVRO = {"type": "record", "name": "interval", "namespace": "qoima.pg",
                 "doc": "A PostgreSQL interval as it stores it: months, days and microseconds",
                 "fields": [{"name": "months", "type": "int"}, {"name": "days", "type": "int"},
                            {"name": "micros", "type": "long"}]}


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.parametrize(("declared", "clickhouse", "avro"), [
    ("smallint", "Int16", "int"), ("int2", "Int16", "int"),
    ("integer", "Int32", "int"), ("int", "Int32", "int"), ("int4", "Int32", "int"),
    ("bigint", "Int64", "long"), ("int8", "Int64", "long"),
    ("real", "Float32", "float"), ("float4", "Float32", "float"),
    ("double precision", "Float64", "double"), ("float8", "Float64", "double"),
    ("boolean", "Bool", "boolean"), ("bool", "Bool", "boolean"),
    ("text", "String", "string"), ("json", "String", "string"), ("jsonb", "String", "string"),
    ("uuid", "UUID", {"type": "string", "logicalType": "uuid"}),
    ("date", "Date32", {"type": "int", "logicalType": "date"}),
    ("timestamptz", "DateTime64(6, 'UTC')", TS_AVRO),
    ("timestamp with time zone", "DateTime64(6, 'UTC')", TS_AVRO),
    ("timestamp", "DateTime64(6, 'UTC')", TS_AVRO),
    ("timestamp(3)", "DateTime64(6, 'UTC')", TS_AVRO),
    ("timestamp(6) without time zone", "DateTime64(6, 'UTC')", TS_AVRO),
    ("varchar(9)", "String", "string"), ("character varying(20)", "String", "string"),
    ("char(12)", "String", "string"), ("character(1)", "String", "string"), ("bpchar(3)", "String", "string"),
    ("numeric(14,2)", "Decimal(14, 2)", {"type": "bytes", "logicalType": "decimal", "precision": 14, "scale": 2}),
    ("decimal(10, 0)", "Decimal(10, 0)", {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 0}),
    ("varchar", "String", "string"), ("character varying", "String", "string"),
    ("money", "Decimal(19, 2)", {"type": "bytes", "logicalType": "decimal", "precision": 19, "scale": 2}),
    ("time", "Time64(6)", "long"), ("time(0)", "Time64(6)", "long"), ("time(3) without time zone", "Time64(6)", "long"),
    ("timetz", "Time64(6)", "long"), ("timetz(3)", "Time64(6)", "long"),
    ("time with time zone", "Time64(6)", "long"), ("time(6) with time zone", "Time64(6)", "long"),
    ("interval", INTERVAL_CH, INTERVAL_AVRO), ("interval(3)", INTERVAL_CH, INTERVAL_AVRO),
    ("bytea", "String", "bytes"),
    ("inet", "String", "string"), ("cidr", "String", "string"),
    ("macaddr", "String", "string"), ("macaddr8", "String", "string"),
    ("enum", "LowCardinality(String)", "string"), ("enum(active, deceased)", "LowCardinality(String)", "string"),
    ("enum:status_t", "LowCardinality(String)", "string"), ("ENUM:catalog.s('a b', c)", "LowCardinality(String)", "string"),
    ("int[]", "Array(Nullable(Int32))", {"type": "array", "items": ["null", "int"]}),
    ("integer [ ]", "Array(Nullable(Int32))", {"type": "array", "items": ["null", "int"]}),
    ("_int8", "Array(Nullable(Int64))", {"type": "array", "items": ["null", "long"]}),
    ("text[]", "Array(Nullable(String))", {"type": "array", "items": ["null", "string"]}),
    ("_varchar", "Array(Nullable(String))", {"type": "array", "items": ["null", "string"]}),
    ("varchar(10)[]", "Array(Nullable(String))", {"type": "array", "items": ["null", "string"]}),
    ("numeric(12,2)[]", "Array(Nullable(Decimal(12, 2)))",
     {"type": "array", "items": ["null", {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}]}),
    ("uuid[]", "Array(Nullable(UUID))", {"type": "array", "items": ["null", {"type": "string", "logicalType": "uuid"}]}),
    ("_date", "Array(Nullable(Date32))", {"type": "array", "items": ["null", {"type": "int", "logicalType": "date"}]}),
    ("timestamptz[]", "Array(Nullable(DateTime64(6, 'UTC')))", {"type": "array", "items": ["null", TS_AVRO]}),
    ("_bool", "Array(Nullable(Bool))", {"type": "array", "items": ["null", "boolean"]}),
    ("bytea[]", "Array(Nullable(String))", {"type": "array", "items": ["null", "bytes"]}),
    ("time[]", "Array(Nullable(Time64(6)))", {"type": "array", "items": ["null", "long"]}),
    ("inet[]", "Array(Nullable(String))", {"type": "array", "items": ["null", "string"]}),
])
def test_mapping(declared: str, clickhouse: str, avro) -> None:
    pg = parse_pg_type(declared)
    assert pg.clickhouse == clickhouse
    assert pg.avro == avro


def test_spelling_is_case_and_space_insensitive() -> None:
    assert parse_pg_type("BIGINT").clickhouse == "Int64"
    assert parse_pg_type("Double   Precision").clickhouse == "Float64"
    assert parse_pg_type("  Numeric(14,2) ").clickhouse == "Decimal(14, 2)"


@pytest.mark.parametrize("declared", ["varchar2(10)", "foo[]", "enumeration", "", "hstore", "int4multirange"])
def test_unsupported_type_message(declared: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_pg_type(declared)
    message = str(info.value)
    assert f"unsupported column type {declared!r}" in message
    assert "supported: " in message
    for name in ("bigint", "numeric(p,s)", "varchar(n)", "timestamp[(p)]", "timestamptz", "date", "money",
                 "time[(p)]", "timetz[(p)]", "interval[(p)]", "bytea", "inet", "cidr", "macaddr", "enum",
                 "<type>[]", "enum(label, ...)"):
        assert name in message


@pytest.mark.parametrize(("declared", "advice"), [
    ("point", "generated text column"), ("_point", "generated text column"), ("geometry", "ST_AsText"),
    ("bit(8)", "reversed byte order"), ("bit varying(16)", "reversed byte order"), ("varbit", "boolean"),
    ("tstzrange", "two bounds as timestamp columns"), ("tsvector", "leave the column out"), ("isbn", "text copy"),
])
def test_a_refused_type_says_what_to_do_instead(declared: str, advice: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_pg_type(declared)
    assert f"column type {declared.lstrip('_')!r} is not captured" in str(info.value) or \
        f"unsupported column type {declared!r}" in str(info.value)
    assert advice in str(info.value)


@pytest.mark.parametrize(("declared", "family", "args", "clickhouse"), [
    ("numeric", "numeric_text", (), "String"), ("decimal", "numeric_text", (), "String"),
    ("numeric(10)", "numeric", (10, 0), "Decimal(10, 0)"), ("decimal(12,3)", "numeric", (12, 3), "Decimal(12, 3)"),
    ("timestamp(3) with time zone", "timestamptz", (), "DateTime64(6, 'UTC')"),
    ("timestamptz(3)", "timestamptz", (), "DateTime64(6, 'UTC')"),
    ("xml", "text", (), "String"), ("citext", "text", (), "String"), ("ltree", "text", (), "String"),
    ("int4range", "text", (), "String"), ("numrange", "text", (), "String"), ("daterange", "text", (), "String"),
    ("numeric[]", "array", ("numeric",), "Array(Nullable(String))"),
])
def test_types_real_schemas_use(declared: str, family: str, args: tuple, clickhouse: str) -> None:
    column_type = parse_pg_type(declared)
    assert (column_type.family, column_type.args, column_type.clickhouse) == (family, args, clickhouse)


def test_supported_list_covers_every_simple_spelling() -> None:
    for name in SUPPORTED:
        if "(" not in name and "[" not in name:
            parse_pg_type(name)  # every listed plain name parses


@pytest.mark.parametrize("declared", ["numeric(0,0)", "numeric(77,2)", "numeric(5,6)"])
def test_numeric_out_of_range(declared: str) -> None:
    with pytest.raises(ValueError, match="precision must be 1-76"):
        parse_pg_type(declared)


@pytest.mark.parametrize(("declared", "problem"), [
    ("int[][]", "multidimensional arrays are not supported"),
    ("_int4[]", "multidimensional arrays are not supported"),
    ("text[3][3]", "multidimensional arrays are not supported"),
    ("money[]", "Debezium does not capture arrays of money"),
    ("_interval", "Debezium does not capture arrays of interval"),
    ("interval(3)[]", "Debezium does not capture arrays of interval"),
    ("enum()", "list each enum label once"),
    ("enum(a, b, a)", "list each enum label once"),
    ("enum(a, 'b)", "enum labels are a comma-separated list"),
    ("numeric(0,0)[]", "precision must be 1-76"),
])
def test_refused_declarations_say_why(declared: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_pg_type(declared)


def test_a_regulation_with_a_multidimensional_array_is_refused_at_load() -> None:
    with pytest.raises(ValidationError, match="multidimensional arrays are not supported"):
        Column(name="matrix", type="int[][]")
    assert Column(name="tags", type="text[]").output_types == (
        {"type": "array", "items": ["null", "string"]}, "Array(Nullable(String))")


def test_enum_arrays_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="Debezium does not capture arrays of enum"):
        parse_pg_type("enum(a, b)[]")


# --- MariaDB --------------------------------------------------------------------------------


@pytest.mark.parametrize("declared, clickhouse, avro", [
    ("tinyint", "Int8", "int"),
    ("smallint(6)", "Int16", "int"),
    ("mediumint", "Int32", "int"),
    ("INT(11)", "Int32", "int"),
    ("integer", "Int32", "int"),
    ("bigint(20)", "Int64", "long"),
    ("tinyint unsigned", "UInt8", "int"),
    ("smallint unsigned", "UInt16", "int"),
    ("mediumint unsigned", "UInt32", "int"),
    ("int(10) unsigned", "UInt32", "long"),
    ("int unsigned zerofill", "UInt32", "long"),
    ("boolean", "Bool", "boolean"),
    ("bool", "Bool", "boolean"),
    ("tinyint(1)", "Bool", "boolean"),
    ("bit(1)", "Bool", "boolean"),
    ("float", "Float32", "float"),
    ("double", "Float64", "double"),
    ("varchar(80)", "String", "string"),
    ("char(12)", "String", "string"),
    ("text", "String", "string"),
    ("longtext", "String", "string"),
    ("json", "String", "string"),
    ("set('a','b')", "String", "string"),
    ("enum('basic','gold')", "LowCardinality(String)", "string"),
    ("year", "UInt16", "int"),
    ("blob", "String", "bytes"),
    ("varbinary(16)", "String", "bytes"),
    ("time(6)", "Time64(6)", "long"),
])
def test_mariadb_views(declared, clickhouse, avro) -> None:
    parsed = parse_mariadb_type(declared)
    # the router, Avro and DDL take it as they take a PostgreSQL type
    assert isinstance(parsed, ColumnType) and parsed.dbms == "mariadb"
    assert (parsed.clickhouse, parsed.avro) == (clickhouse, avro)


def test_decimal_and_temporal_views_are_postgresqls() -> None:
    assert parse_mariadb_type("decimal(14,2)").avro == parse_pg_type("numeric(14,2)").avro
    assert parse_mariadb_type("decimal(10)").clickhouse == "Decimal(10, 0)"
    assert parse_mariadb_type("bigint unsigned").clickhouse == "Decimal(20, 0)"
    for declared in ("date", "datetime", "datetime(6)", "timestamp", "timestamp(3)"):
        assert parse_mariadb_type(declared).avro == parse_pg_type("date" if declared == "date" else "timestamptz").avro


@pytest.mark.parametrize("declared, problem", [
    ("binary(16)", "use varbinary(n)"),
    ("bit(8)", "only bit(1)"),
    ("decimal(66,2)", "precision 1-65"),
    ("decimal(40,39)", "scale 0-38"),
    ("datetime(7)", "precision is 0-6"),
    ("geometry", "unsupported MariaDB column type"),
    ("jsonb", "unsupported MariaDB column type"),
    ("decimal", "unsupported MariaDB column type"),
])
def test_mariadb_unsupported_types_say_why(declared, problem) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_mariadb_type(declared)


def test_mariadb_text_types() -> None:
    assert all(is_text_type(t, "mariadb") for t in ("text", "tinytext", "longtext", "varchar(5)", "char(2)"))
    assert not any(is_text_type(t, "mariadb") for t in ("json", "enum('a')", "blob", "int"))


# --- both: a type is read in the language of its dbms -------------------------------------------


def test_parse_type_dispatches_by_dbms() -> None:
    assert parse_type("timestamp").clickhouse == parse_pg_type("timestamp").clickhouse
    assert (parse_type("timestamp", "mariadb").dbms, parse_type("timestamp").dbms) == ("mariadb", "postgresql")
    with pytest.raises(ValueError, match="unknown dbms"):
        parse_type("int", "oracle")  # decoding by dbms: tests/unit/test_debezium_decode.py


BIG = "123456789012345678901234567890123456789012345678901234567890.0123456789012345678901234567890"


@pytest.mark.parametrize(("sent", "kept"), [
    ("1.50", "1.50"), ("1E+3", "1000"), ("-1E-22", "-0.0000000000000000000001"), (BIG, BIG),
    ("NAN", "NaN"), ("POSITIVE_INFINITY", "Infinity"), ("NEGATIVE_INFINITY", "-Infinity"),
])
def test_an_unconstrained_numeric_keeps_every_digit(sent: str, kept: str) -> None:
    from connectors.debezium_encode import encoder
    from connectors.pg_text import text_parser
    from streams.decode import decoder

    decode = decoder(parse_pg_type("numeric"))
    assert decode(sent) == kept
    # PostgreSQL's own text (historical files) and a Python value (the marker poller) give the same.
    assert text_parser("numeric")(kept) == kept
    assert decode(encoder("numeric")(Decimal(kept))) == kept
