"""PostgreSQL types (model/types/postgresql.py): Debezium JSON decoding, ClickHouse and Avro mapping.

The connector runs with decimal.handling.mode=string, time.precision.mode=adaptive_time_microseconds,
interval.handling.mode=string and binary.handling.mode=base64, so: numeric and money arrive as
strings, date as int days since 1970-01-01, timestamp(0-3) as epoch millis, timestamp(4-6) as epoch
micros, timestamptz as an ISO-8601 string with an offset, time as micros since midnight, timetz as
an ISO time in UTC, interval as ISO-8601 (P1Y2M3DT4H5M6.78S), bytea as base64 and arrays as JSON
arrays of their elements' forms. The last part runs the values on through the router, Avro and
the sink's ClickHouse client into ClickHouse itself (chdb, in-process).
"""
from __future__ import annotations

import io
import ipaddress
import json
import math
import re
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from types import SimpleNamespace

import fastavro
import pytest
from pydantic import ValidationError

from model.regulation import Column, Table
from sinks.ddl import create_table_sql, warehouse_columns
from schemas.avro_codec import AvroCodec, clean_schema
from model.types.postgresql import SUPPORTED, ValueRefused, parse_pg_type

UTC = timezone.utc
TS_AVRO = {"type": "long", "logicalType": "timestamp-micros"}
INTERVAL_CH = "Tuple(months Int32, days Int32, micros Int64)"
INTERVAL_AVRO = {"type": "record", "name": "interval", "namespace": "qoima.pg",
                 "doc": "A PostgreSQL interval as it stores it: months, days and microseconds",
                 "fields": [{"name": "months", "type": "int"}, {"name": "days", "type": "int"},
                            {"name": "micros", "type": "long"}]}


# --- mapping --------------------------------------------------------------------------------


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


@pytest.mark.parametrize("declared", ["varchar2(10)", "numeric", "numeric(10)", "timestamptz(3)", "point",
                                      "int4range", "tsvector", "numeric[]", "foo[]", "_point", "enumeration", ""])
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


def test_supported_list_covers_every_simple_spelling() -> None:
    for name in SUPPORTED:
        if "(" not in name and "[" not in name:
            parse_pg_type(name)  # every listed plain name parses


@pytest.mark.parametrize("declared", ["numeric(0,0)", "numeric(77,2)", "numeric(5,6)"])
def test_numeric_out_of_range(declared: str) -> None:
    with pytest.raises(ValueError, match="precision must be 1-76"):
        parse_pg_type(declared)


# --- integers and booleans ------------------------------------------------------------------


@pytest.mark.parametrize("declared", ["smallint", "integer", "bigint"])
def test_int_decodes_ints(declared: str) -> None:
    decode = parse_pg_type(declared).decode
    assert decode(0) == 0
    assert decode(-42) == -42
    assert decode(9_000_000_000) == 9_000_000_000


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None])
def test_int_rejects_bool_float_and_string(value) -> None:
    with pytest.raises(ValueError):
        parse_pg_type("bigint").decode(value)


def test_bool_decodes_bools_and_rejects_ints() -> None:
    decode = parse_pg_type("boolean").decode
    assert decode(True) is True and decode(False) is False
    for value in (1, 0, "true", None):
        with pytest.raises(ValueError):
            decode(value)


def test_text_rejects_non_strings() -> None:
    decode = parse_pg_type("text").decode
    assert decode("Алматы") == "Алматы"
    for value in (1, 1.5, True, {"a": 1}):
        with pytest.raises(ValueError):
            decode(value)
    assert parse_pg_type("varchar(9)").decode("751110000") == "751110000"
    with pytest.raises(ValueError):
        parse_pg_type("varchar(9)").decode(751110000)


def test_float_decodes_numbers_and_special_strings() -> None:
    decode = parse_pg_type("double precision").decode
    assert decode(1) == 1.0 and isinstance(decode(1), float)
    assert decode(2.5) == 2.5
    assert math.isnan(decode("NaN"))
    assert decode("Infinity") == math.inf
    assert decode("-Infinity") == -math.inf


# --- numeric --------------------------------------------------------------------------------


def test_numeric_keeps_scale() -> None:
    decode = parse_pg_type("numeric(14,2)").decode
    value = decode("1234.5")
    assert value == Decimal("1234.50")
    assert str(value) == "1234.50"
    assert value.as_tuple().exponent == -2
    assert str(decode("0")) == "0.00"
    assert str(decode("-0.10")) == "-0.10"
    assert str(decode("999999999999.99")) == "999999999999.99"
    assert str(parse_pg_type("numeric(10,0)").decode("42")) == "42"
    assert str(parse_pg_type("numeric(20,6)").decode("0.000001")) == "0.000001"


def test_numeric_rejects_garbage() -> None:
    with pytest.raises((ValueError, ArithmeticError)):  # today decimal.InvalidOperation
        parse_pg_type("numeric(14,2)").decode("12,50")


def test_numeric_wider_than_28_digits() -> None:
    value = "123456789012345678901234567890.12"  # 32 digits, fits numeric(38,2)
    assert parse_pg_type("numeric(38,2)").decode(value) == Decimal(value)


def test_numeric_nan_is_a_bad_value() -> None:
    with pytest.raises((ValueError, ArithmeticError)):  # both become bad_value
        parse_pg_type("numeric(14,2)").decode("NaN")


def test_numeric_wider_than_declared_precision_is_a_bad_value() -> None:
    with pytest.raises((ValueError, ArithmeticError)):  # both become bad_value
        parse_pg_type("numeric(14,2)").decode("12345678901234567.00")


def test_numeric_extra_scale_digits_are_not_rounded_away() -> None:
    with pytest.raises((ValueError, ArithmeticError)):  # both become bad_value
        parse_pg_type("numeric(14,2)").decode("1.005")


# --- date -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("days", "expected"), [
    (0, date(1970, 1, 1)),
    (1, date(1970, 1, 2)),
    (-1, date(1969, 12, 31)),
    (-25567, date(1900, 1, 1)),
    (19723, date(2024, 1, 1)),
    (47482, date(2100, 1, 1)),
])
def test_date_from_days(days: int, expected: date) -> None:
    assert parse_pg_type("date").decode(days) == expected


def test_date_garbage_rejected() -> None:
    with pytest.raises(ValueError):
        parse_pg_type("date").decode("2024-01-01")


# --- timestamp (without time zone) ----------------------------------------------------------


@pytest.mark.parametrize("declared", ["timestamp", "timestamp(6)", "timestamp(4)", "timestamp without time zone"])
def test_timestamp_micros(declared: str) -> None:
    decode = parse_pg_type(declared).decode
    assert decode(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert decode(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert decode(-2_208_988_800_000_000) == datetime(1900, 1, 1, tzinfo=UTC)
    assert decode(2**31 * 1_000_000) == datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC)  # after 2038
    assert decode(4_102_444_800_000_001) == datetime(2100, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert decode(0).utcoffset() == timedelta(0)


@pytest.mark.parametrize("declared", ["timestamp(0)", "timestamp(1)", "timestamp(3)", "timestamp(3) without time zone"])
def test_timestamp_millis(declared: str) -> None:
    decode = parse_pg_type(declared).decode
    assert decode(1_000) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert decode(-1) == datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
    assert decode(-2_208_988_800_000) == datetime(1900, 1, 1, tzinfo=UTC)
    assert decode(4_102_444_800_123) == datetime(2100, 1, 1, 0, 0, 0, 123000, tzinfo=UTC)


# --- timestamptz ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "2024-01-15T10:30:00.123456Z",
    "2024-01-15T10:30:00.123456+00:00",
    "2024-01-15T16:30:00.123456+06:00",     # Almaty
    "2024-01-15T05:30:00.123456-05:00",
    "2024-01-15T16:00:00.123456+05:30",
])
def test_timestamptz_to_utc(text: str) -> None:
    value = parse_pg_type("timestamptz").decode(text)
    assert value == datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)
    assert value.tzinfo == UTC


def test_timestamptz_before_1970_and_after_2038() -> None:
    decode = parse_pg_type("timestamp with time zone").decode
    assert decode("1969-12-31T23:00:00-05:00") == datetime(1970, 1, 1, 4, 0, tzinfo=UTC)
    assert decode("1900-01-01T00:00:00Z") == datetime(1900, 1, 1, tzinfo=UTC)
    assert decode("2100-06-30T12:00:00+06:00") == datetime(2100, 6, 30, 6, 0, tzinfo=UTC)


def test_timestamptz_garbage_rejected() -> None:
    with pytest.raises(ValueError):
        parse_pg_type("timestamptz").decode("yesterday")


# --- declarations refused at regulation load -------------------------------------------------


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


# --- money ----------------------------------------------------------------------------------


def test_money_is_exact_cents_over_the_whole_int64_range() -> None:
    decode = parse_pg_type("money").decode
    assert str(decode("1234.56")) == "1234.56"
    assert str(decode("0.00")) == "0.00"
    assert str(decode("-0.01")) == "-0.01"
    assert str(decode("12")) == "12.00"
    assert str(decode("-92233720368547758.08")) == "-92233720368547758.08"   # -2^63 cents
    assert str(decode("92233720368547758.07")) == "92233720368547758.07"     # 2^63 - 1 cents
    assert decode("1.234567891E7") == Decimal("12345678.91")  # a snapshot value, exact as a double


@pytest.mark.parametrize(("value", "problem"), [
    ("92233720368547758.08", "out of range for money"),
    ("-92233720368547758.09", "out of range for money"),
    ("1.005", "at most 2 fraction digits"),
    ("NaN", "not a money amount"),
    ("$1,234.56", "not a money amount"),      # Debezium strips the currency; text forms go through from_text
    ("9.2233720368547758E16", "arrived as a double"),
])
def test_money_refusals(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_pg_type("money").decode(value)


@pytest.mark.parametrize("value", [1234, 12.5, None])
def test_money_wants_the_string_debezium_sends(value) -> None:
    with pytest.raises(ValueError):
        parse_pg_type("money").decode(value)


# --- time and timetz --------------------------------------------------------------------------


@pytest.mark.parametrize("declared", ["time", "time(0)", "time(3)", "time(6) without time zone"])
def test_time_is_micros_since_midnight_up_to_24_00(declared: str) -> None:
    decode = parse_pg_type(declared).decode
    assert decode(0) == 0
    assert decode(45_296_789_012) == 45_296_789_012     # 12:34:56.789012
    assert decode(86_400_000_000) == 86_400_000_000     # 24:00:00, which PostgreSQL allows
    for bad in (-1, 86_400_000_001, "12:00:00", 1.5, True):
        with pytest.raises(ValueError):
            decode(bad)


@pytest.mark.parametrize(("text", "micros"), [
    ("10:15:30.123456Z", 36_930_123_456),
    ("10:15:30Z", 36_930_000_000),
    ("10:15:30.5Z", 36_930_500_000),           # Java prints as few fraction digits as it needs
    ("00:00:00Z", 0),
    ("23:59:59.999999Z", 86_399_999_999),
    ("10:15:30+00:00", 36_930_000_000),
    ("16:15:30+06:00", 36_930_000_000),         # another offset is shifted to UTC
    ("01:00:00+06:00", 68_400_000_000),         # across midnight, as Java's OffsetTime does
])
def test_timetz_is_the_utc_time_of_day(text: str, micros: int) -> None:
    assert parse_pg_type("timetz").decode(text) == micros


@pytest.mark.parametrize("value", ["10:15:30", "25:00:00Z", "10:61:00Z", "noon", 36_930_000_000])
def test_timetz_refusals(value) -> None:
    with pytest.raises(ValueError):
        parse_pg_type("time with time zone").decode(value)


# --- interval ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("P1Y2M3DT4H5M6.78S", (14, 3, 14_706_780_000)),
    ("P-1Y-2M3DT-4H-5M-6.78S", (-14, 3, -14_706_780_000)),     # every part carries its own sign
    ("P0Y0M0DT0H0M0S", (0, 0, 0)),
    ("P0Y0M0DT0H0M-0.000001S", (0, 0, -1)),
    ("P0Y1M-30DT0H0M0S", (1, -30, 0)),                          # a month is not 30 days: both kept
    ("P0Y0M1DT-24H0M0S", (0, 1, -86_400_000_000)),              # nor a day 24 hours
    ("P0Y0M0DT0H0M3600.5S", (0, 0, 3_600_500_000)),             # a bare number of seconds
    ("P178000000Y0M0DT0H0M0S", (2_136_000_000, 0, 0)),
    ("P0Y0M0DT2562047788H0M54.775807S", (0, 0, 9_223_372_036_854_775_807)),
    ("PT0S", (0, 0, 0)),
])
def test_interval_keeps_months_days_and_micros_apart(text: str, expected: tuple) -> None:
    assert parse_pg_type("interval").decode(text) == dict(zip(("months", "days", "micros"), expected))


@pytest.mark.parametrize("value", ["1 day", "P1.5Y", "P0Y0M0DT0H0M0.0000001S", "P", "P300000000Y", 86_400, None])
def test_interval_refusals(value) -> None:
    with pytest.raises(ValueError):
        parse_pg_type("interval").decode(value)


# --- bytea, enums, network addresses ------------------------------------------------------------


def test_bytea_is_base64_bytes() -> None:
    decode = parse_pg_type("bytea").decode
    assert decode("AP+A") == b"\x00\xff\x80"          # NUL and bytes that are not UTF-8
    assert decode("") == b""
    assert decode("0JDQu9C80LDRgtGL") == "Алматы".encode()
    for bad in ("AP+", "AP+A!", "\\x00ff", b"\x00", 0):
        with pytest.raises(ValueError):
            decode(bad)


def test_enum_refuses_labels_the_regulation_does_not_list() -> None:
    pg = parse_pg_type("enum(active, deceased, 'in progress', 'it''s', 'a,b')")
    for label in ("active", "deceased", "in progress", "it's", "a,b"):
        assert pg.decode(label) == label
    with pytest.raises(ValueError, match="not one of the enum labels") as info:
        pg.decode("Active")  # labels are case-sensitive, as in PostgreSQL
    assert "Active" not in str(info.value)
    assert parse_pg_type("enum:status_t").decode("any label at all") == "any label at all"
    with pytest.raises(ValueError):
        pg.decode(1)


@pytest.mark.parametrize(("declared", "value"), [
    ("inet", "192.168.1.5"), ("inet", "192.168.1.5/24"), ("inet", "2001:db8::1"), ("inet", "2001:db8::1/64"),
    ("inet", "::ffff:1.2.3.4"), ("inet", "0.0.0.0/0"),
    ("cidr", "10.0.0.0/8"), ("cidr", "192.168.1.5/32"), ("cidr", "2001:db8::/32"), ("cidr", "::/0"),
    ("macaddr", "08:00:2b:01:02:03"), ("macaddr8", "08:00:2b:ff:fe:01:02:03"),
])
def test_network_types_keep_postgresql_output_as_sent(declared: str, value: str) -> None:
    assert parse_pg_type(declared).decode(value) == value


@pytest.mark.parametrize(("declared", "value"), [
    ("inet", "192.168.1.5/33"), ("inet", "10.0.0.1/255.0.0.0"), ("inet", "fe80::1%eth0"), ("inet", "host"),
    ("cidr", "10.0.0.1/8"), ("macaddr", "08:00:2B:01:02:03"), ("macaddr", "08:00:2b:01:02"),
    ("macaddr8", "08:00:2b:01:02:03"), ("inet", 3232235777),
])
def test_network_types_refuse_what_postgresql_would_not_print(declared: str, value) -> None:
    with pytest.raises(ValueError):
        parse_pg_type(declared).decode(value)


# --- arrays -------------------------------------------------------------------------------------


def test_arrays_decode_each_element_and_keep_null_elements() -> None:
    assert parse_pg_type("int[]").decode([1, None, -3]) == [1, None, -3]
    assert parse_pg_type("_int4").decode([]) == []
    assert parse_pg_type("text[]").decode(["a", None, "NULL", ""]) == ["a", None, "NULL", ""]
    assert parse_pg_type("numeric(12,2)[]").decode(["1.5", None]) == [Decimal("1.50"), None]
    assert parse_pg_type("date[]").decode([-25567, 120529]) == [date(1900, 1, 1), date(2299, 12, 31)]
    assert parse_pg_type("timestamptz[]").decode(["1969-12-31T23:59:59.999999Z"]) == [
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    assert parse_pg_type("timestamp(3)[]").decode([1_000]) == [datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)]
    assert parse_pg_type("bytea[]").decode(["AP8=", None]) == [b"\x00\xff", None]
    assert parse_pg_type("uuid[]").decode([None]) == [None]


@pytest.mark.parametrize(("declared", "value"), [
    ("int[]", [[1, 2], [3, 4]]),      # a multidimensional value in a one-dimensional column
    ("int[]", "{1,2}"),
    ("int[]", [1, "2"]),
    ("date[]", [120530]),             # one element out of ClickHouse's range refuses the value
])
def test_array_refusals(declared: str, value) -> None:
    with pytest.raises(ValueError):
        parse_pg_type(declared).decode(value)


# --- ClickHouse's Date32/DateTime64 range: refused, never clamped ---------------------------------


@pytest.mark.parametrize(("declared", "inside", "outside"), [
    ("date", (-25567, 120529), (-25568, 120530, 2_147_483_647)),
    ("timestamp", (-2_208_988_800_000_000, 10_413_791_999_999_999),
     (-2_208_988_800_000_001, 10_413_792_000_000_000, 9_223_372_036_825_200_000)),   # the last: 'infinity'
    ("timestamp(3)", (-2_208_988_800_000, 10_413_791_999_999), (-2_208_988_800_001, 10_413_792_000_000)),
    ("timestamptz", ("1900-01-01T00:00:00Z", "2299-12-31T23:59:59.999999Z", "2300-01-01T05:00:00+06:00"),
     ("1899-12-31T23:59:59.999999Z", "1900-01-01T05:00:00+06:00", "2300-01-01T00:00:00Z", "infinity")),
])
def test_values_outside_clickhouse_range_are_refused(declared: str, inside: tuple, outside: tuple) -> None:
    pg = parse_pg_type(declared)
    for value in inside:
        pg.decode(value)
    for value in outside:
        with pytest.raises(ValueError) as info:
            pg.decode(value)
        assert str(value) not in str(info.value)


@pytest.mark.parametrize(("declared", "text"), [
    ("date", "2300-01-01"), ("date", "1899-12-31"), ("timestamp", "1899-12-31 23:59:59.999999"),
    ("timestamptz", "1900-01-01 05:59:59+06"), ("timestamp(0)", "2299-12-31 23:59:59.5"),
])
def test_text_forms_outside_clickhouse_range_are_refused(declared: str, text: str) -> None:
    with pytest.raises(ValueRefused, match="outside ClickHouse's Date32/DateTime64 range"):
        parse_pg_type(declared).from_text(text)


@pytest.mark.parametrize(("declared", "value"), [
    ("date", date(2300, 1, 1)), ("date", date(1, 1, 1)), ("timestamp", datetime(1899, 12, 31, 23, 59)),
    ("timestamptz", datetime(9999, 1, 1, tzinfo=UTC)),
])
def test_typed_values_outside_clickhouse_range_are_refused(declared: str, value) -> None:
    with pytest.raises(ValueRefused, match="outside ClickHouse's Date32/DateTime64 range"):
        parse_pg_type(declared).to_debezium(value)


# --- text forms and the Debezium form (historical loads, the marker poller) ----------------------
#
# (declared, text as COPY ... CSV / psql prints it, what Debezium sends for the same datum)
TEXT_AND_DEBEZIUM = [
    ("money", "$1,234.56", "1234.56"), ("money", "-$1,234.56", "-1234.56"), ("money", "($0.01)", "-0.01"),
    ("money", "-$92,233,720,368,547,758.08", "-92233720368547758.08"), ("money", "1234.5", "1234.50"),
    ("money", "$92,233,720,368,547,758.07", "92233720368547758.07"),
    ("time", "24:00:00", 86_400_000_000), ("time", "00:00:00", 0), ("time", "12:34:56.789012", 45_296_789_012),
    ("time", "10:15", 36_900_000_000), ("time(3)", "12:34:56.7895", 45_296_790_000),
    ("time(0)", "23:59:59.5", 86_400_000_000),                 # PostgreSQL rounds into 24:00:00
    ("timetz", "10:15:30.123456+06", "04:15:30.123456Z"), ("timetz", "23:30:00-05", "04:30:00Z"),
    ("timetz", "10:15:30+05:30", "04:45:30Z"), ("time with time zone", "00:00:00+00", "00:00:00Z"),
    ("interval", "1 year 2 mons 3 days 04:05:06.78", "P1Y2M3DT4H5M6.78S"),
    ("interval", "-1 years -2 mons +3 days -04:05:06.78", "P-1Y-2M3DT-4H-5M-6.78S"),
    ("interval", "00:00:00", "P0Y0M0DT0H0M0S"), ("interval", "3 days", "P0Y0M3DT0H0M0S"),
    ("interval", "1 day -00:00:01", "P0Y0M1DT0H0M-1S"), ("interval", "-00:00:00.000001", "P0Y0M0DT0H0M-0.000001S"),
    ("interval", "1 mon -30 days", "P0Y1M-30DT0H0M0S"), ("interval", "P1Y2M3DT4H5M6.78S", "P1Y2M3DT4H5M6.78S"),
    ("interval", "2562047788:00:54.775807", "P0Y0M0DT2562047788H0M54.775807S"),
    ("interval(0)", "00:00:01.5", "P0Y0M0DT0H0M2S"), ("interval(0)", "-00:00:01.5", "P0Y0M0DT0H0M-2S"),
    ("bytea", "\\x00ff80", "AP+A"), ("bytea", "\\x", ""), ("bytea", "a\\000\\\\b", "YQBcYg=="),
    ("bytea", "Алматы", "0JDQu9C80LDRgtGL"),
    ("enum(active, 'in progress')", "in progress", "in progress"), ("enum", "Любой", "Любой"),
    ("inet", "192.168.1.5/24", "192.168.1.5/24"), ("inet", "192.168.1.5/32", "192.168.1.5"),
    ("inet", "2001:0DB8:0000:0000::1/128", "2001:db8::1"), ("inet", "2001:db8::1/64", "2001:db8::1/64"),
    ("inet", "::ffff:1.2.3.4", "::ffff:1.2.3.4"), ("inet", "::1.2.3.4/120", "::1.2.3.4/120"),
    ("inet", "2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"), ("inet", "::1", "::1"),
    ("cidr", "10.0.0.0/8", "10.0.0.0/8"), ("cidr", "192.168.1.5", "192.168.1.5/32"),
    ("cidr", "2001:db8::/32", "2001:db8::/32"),
    ("macaddr", "08-00-2B-01-02-03", "08:00:2b:01:02:03"), ("macaddr", "0800.2b01.0203", "08:00:2b:01:02:03"),
    ("macaddr", "08002b:010203", "08:00:2b:01:02:03"), ("macaddr", "08002b010203", "08:00:2b:01:02:03"),
    ("macaddr8", "08:00:2b:01:02:03:04:05", "08:00:2b:01:02:03:04:05"),
    ("macaddr8", "08:00:2b:01:02:03", "08:00:2b:ff:fe:01:02:03"),
    ("int[]", "{1,NULL,-3}", [1, None, -3]), ("int[]", "{}", []), ("_int8", "{ 1 , 2 }", [1, 2]),
    ("text[]", '{a,"b c",NULL,"NULL","x\\"y","",\\,}', ["a", "b c", None, "NULL", 'x"y', "", ","]),
    ("varchar(3)[]", '{abc,"Әлі"}', ["abc", "Әлі"]),
    ("numeric(12,2)[]", "{1.5,NULL,-0.01}", ["1.50", None, "-0.01"]),
    ("uuid[]", "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]),
    ("date[]", "{1900-01-01,2299-12-31}", [-25567, 120529]),
    ("timestamptz[]", '{"1970-01-01 06:00:00+06",NULL}', ["1970-01-01T00:00:00+00:00", None]),
    ("boolean[]", "{t,f,NULL}", [True, False, None]),
    ("bytea[]", '{"\\\\x00ff",NULL}', ["AP8=", None]),
    ("time[]", "{24:00:00,NULL}", [86_400_000_000, None]),
    ("date", "1900-01-01", -25567), ("date", "2299-12-31", 120529),
    ("timestamp", "1900-01-01 00:00:00", -2_208_988_800_000_000),
    ("timestamp", "2299-12-31 23:59:59.999999", 10_413_791_999_999_999),
    ("timestamptz", "2100-06-30 12:00:00+06", "2100-06-30T06:00:00Z"),
    ("timestamptz", "1969-07-20 20:17:40+00", "1969-07-20T20:17:40Z"),
]


MICROS = 1_705_314_600_123_456  # 2024-01-15T10:30:00.123456Z
# The text forms historical files hold (qoima load-history): decimal commas, DD.MM.YYYY dates,
# padded and signed numbers. (declared type, text in a file, what Debezium sends for the datum)
HISTORY_TEXT_FORMS = [
    ("smallint", "42", 42), ("smallint", " -7 ", -7), ("int2", "-32768", -32768),
    ("integer", "2147483647", 2147483647), ("int4", "+5", 5),
    ("bigint", "9000000000", 9_000_000_000), ("int8", "-1", -1),
    ("numeric(14,2)", "48500.5", "48500.5"), ("numeric(14,2)", "48500,50", "48500.50"),
    ("numeric(14,2)", "-0.10", "-0.10"), ("numeric(10,0)", "1e3", "1000"), ("decimal(20,6)", ".000001", "0.000001"),
    ("real", "1.1", 1.1), ("float4", "16777217", 16777216.0), ("real", "NaN", "NaN"), ("real", "-Infinity", "-Infinity"),
    ("double precision", "2.5", 2.5), ("float8", "1e-3", 0.001), ("float8", "inf", "Infinity"),
    ("boolean", "t", True), ("boolean", "false", False), ("bool", "1", True), ("bool", " 0 ", False),
    ("boolean", "TRUE", True),
    ("text", "Алматы", "Алматы"), ("text", " spaced ", " spaced "),
    ("varchar(9)", "751110000", "751110000"), ("character varying(3)", "ab  ", "ab "),
    ("char(12)", "850101300124", "850101300124"), ("char(3)", "ab", "ab "), ("character(1)", "F", "F"), ("bpchar(2)", "x", "x "),
    ("date", "2024-01-01", 19723), ("date", "01.01.2024", 19723), ("date", "1969-12-31", -1),
    ("date", "01.01.1900", -25567),
    ("timestamp", "2024-01-15 10:30:00.123456", MICROS), ("timestamp(6)", "2024-01-15T10:30:00.123456", MICROS),
    ("timestamp(4)", "2024-01-15 10:30:00.12345", MICROS + 44),  # four digits kept: .1235
    ("timestamp(3)", "2024-01-15 10:30:00.123", MICROS // 1000), ("timestamp(3)", "2024-01-15 10:30:00.1235", (MICROS + 544) // 1000),
    ("timestamp(0)", "15.01.2024 10:30:00", 1_705_314_600_000), ("timestamp", "1969-12-31 23:59:59.999999", -1),
    ("timestamptz", "2024-01-15 16:30:00.123456+06", "2024-01-15T10:30:00.123456Z"),
    ("timestamptz", "2024-01-15T10:30:00.123456Z", "2024-01-15T10:30:00.123456Z"),
    ("timestamp with time zone", "2024-01-15 05:30:00.123456-05:00", "2024-01-15T10:30:00.123456Z"),
    ("timestamptz", "15.01.2024 16:00:00.123456+05:30", "2024-01-15T10:30:00.123456Z"),
    ("timestamptz", "2024-01-15 10:30:00.1234564 UTC", "2024-01-15T10:30:00.123456Z"),
    ("uuid", "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("uuid", "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ("json", '{"b": 1,  "a": [2]}', '{"b": 1,  "a": [2]}'),
    ("jsonb", '{"bb":1,"a":[1.50,1e2,"ä\\n"],"bb":2}', '{"a": [1.50, 100, "ä\\n"], "bb": 2}'),
]


def _same(left, right) -> bool:
    if isinstance(left, list):
        return isinstance(right, list) and len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, float) and math.isnan(left):
        return isinstance(right, float) and math.isnan(right)
    return left == right and type(left) is type(right) and str(left) == str(right)


@pytest.mark.parametrize(("declared", "text", "debezium"), TEXT_AND_DEBEZIUM + HISTORY_TEXT_FORMS)
def test_from_text_gives_what_decode_gives(declared: str, text: str, debezium) -> None:
    pg = parse_pg_type(declared)
    assert _same(pg.from_text(text), pg.decode(debezium))


@pytest.mark.parametrize(("declared", "text", "debezium"), TEXT_AND_DEBEZIUM + HISTORY_TEXT_FORMS)
def test_to_debezium_inverts_decode(declared: str, text: str, debezium) -> None:
    pg = parse_pg_type(declared)
    typed = pg.decode(debezium)
    assert _same(pg.decode(pg.to_debezium(typed)), typed)


def test_to_debezium_spells_values_as_debezium_does() -> None:
    assert parse_pg_type("interval").to_debezium({"months": -14, "days": 3, "micros": -14_706_780_000}) == \
        "P-1Y-2M3DT-4H-5M-6.78S"
    assert parse_pg_type("interval").to_debezium({"months": 0, "days": 0, "micros": 0}) == "P0Y0M0DT0H0M0S"
    assert parse_pg_type("timetz").to_debezium(36_930_123_456) == "10:15:30.123456Z"
    assert parse_pg_type("timetz").to_debezium(86_400_000_000) == "24:00:00Z"
    assert parse_pg_type("money").to_debezium(Decimal("-92233720368547758.08")) == "-92233720368547758.08"
    assert parse_pg_type("bytea").to_debezium(b"\x00\xff\x80") == "AP+A"


def test_to_debezium_takes_what_psycopg_and_pandas_give() -> None:
    """The marker poller hands over psycopg's values, historical loads pandas' ones."""
    assert parse_pg_type("money").to_debezium("-$1,234.56") == "-1234.56"     # psycopg reads money as text
    assert parse_pg_type("money").to_debezium(12.5) == "12.50"
    assert parse_pg_type("time").to_debezium(time(12, 34, 56, 789012)) == 45_296_789_012
    assert parse_pg_type("time").to_debezium(timedelta(hours=24)) == 86_400_000_000
    assert parse_pg_type("time(0)").to_debezium(time(10, 0, 0, 500000)) == 36_001_000_000
    assert parse_pg_type("timetz").to_debezium(time(16, 15, 30, tzinfo=timezone(timedelta(hours=6)))) == "10:15:30Z"
    assert parse_pg_type("interval").to_debezium(timedelta(days=-1, seconds=1)) == "P0Y0M-1DT0H0M1S"
    assert parse_pg_type("interval").to_debezium((14, 3, 1)) == "P1Y2M3DT0H0M0.000001S"
    assert parse_pg_type("bytea").to_debezium(memoryview(b"\x00")) == "AA=="
    assert parse_pg_type("inet").to_debezium(ipaddress.ip_interface("192.168.1.5/24")) == "192.168.1.5/24"
    assert parse_pg_type("inet").to_debezium(ipaddress.ip_interface("::ffff:1.2.3.4/128")) == "::ffff:1.2.3.4"
    assert parse_pg_type("cidr").to_debezium(ipaddress.ip_network("10.0.0.0/8")) == "10.0.0.0/8"
    assert parse_pg_type("int[]").to_debezium((1, None)) == [1, None]
    assert parse_pg_type("date[]").to_debezium([date(2024, 1, 1)]) == [19723]


@pytest.mark.parametrize(("declared", "value", "problem"), [
    ("money", Decimal("92233720368547758.08"), "out of range for money"),
    ("money", True, "bool"), ("money", 5e16, "arrived as a double"), ("time", time(10, tzinfo=timezone(timedelta(hours=6))), "UTC offset"),
    ("time", 86_400_000_001, "outside 00:00:00..24:00:00"), ("timetz", time(10), "without a UTC offset"),
    ("interval", 3600, "not an interval"), ("interval", {"months": 1}, "not an interval"),
    ("interval", (1.5, 0, 0), "integers"), ("bytea", "AP8=", "str is not bytea"),
    ("enum(a, b)", "c", "not one of the enum labels"), ("inet", 1, "not an inet"),
    ("cidr", ipaddress.ip_interface("10.0.0.1/8"), "bits set right of its mask"),
    ("macaddr", 1, "not a macaddr"), ("int[]", "{1}", "not an array"), ("int[]", [[1]], "multidimensional"),
])
def test_to_debezium_refusals(declared: str, value, problem: str) -> None:
    with pytest.raises(ValueRefused, match=re.escape(problem)):
        parse_pg_type(declared).to_debezium(value)


@pytest.mark.parametrize(("declared", "text", "problem"), [
    ("money", "1,5", "not a money amount"), ("money", "$1.005", "at most 2 fraction digits"),
    ("money", "92233720368547758.08", "out of range"), ("money", "(12.00", "not a money amount"),
    ("time", "25:00:00", "outside 00:00:00..24:00:00"), ("time", "24:00:00.000001", "outside"),
    ("time", "10:00:00+05", "UTC offset given"), ("time", "allballs", "not a time of day"),
    ("timetz", "10:00:00", "without a UTC offset"), ("timetz", "10:60:00+00", "not a valid time"),
    ("interval", "1 fortnight", "not an interval"), ("interval", "1 day 10:99:00", "not a valid interval"),
    ("interval", "@ 1 day ago", "not an interval"), ("interval", "300000000 years", "out of PostgreSQL's range"),
    ("bytea", "\\x0g", "not bytea hex"), ("bytea", "a\\9", "not bytea"),
    ("enum(a, b)", "A", "not one of the enum labels"),
    ("inet", "192.168.1.300", "not an inet"), ("inet", "10.0.0.1/255.0.0.0", "not an inet"),
    ("cidr", "10.0.0.1/8", "bits set right of its mask"), ("macaddr", "08:00:2b:01:02", "not a macaddr"),
    ("macaddr", "08:00-2b:01:02:03", "not a macaddr"), ("macaddr8", "08:00:2b:01:02:03:04", "not a macaddr8"),
    ("int[]", "1,2", "not an array literal"), ("int[]", "{{1,2},{3,4}}", "multidimensional"),
    ("int[]", "[0:1]={1,2}", "explicit bounds"), ("int[]", "{1,,2}", "empty element"),
    ("int[]", '{"1}', "unterminated quote"), ("int[]", "{1,x}", "not an integer"),
    ("varchar(2)[]", "{abc}", "longer than 2"), ("date[]", "{2300-01-01}", "outside ClickHouse's"),
])
def test_from_text_refusals_name_the_problem_never_the_value(declared: str, text: str, problem: str) -> None:
    with pytest.raises(ValueRefused) as info:
        parse_pg_type(declared).from_text(text)
    assert problem in str(info.value)
    assert text.strip() not in str(info.value)


# --- Avro: what decode gives is what the clean topics carry ---------------------------------------

AVRO_SAMPLES = [
    ("money", "-92233720368547758.08"), ("money", "92233720368547758.07"),
    ("time", 86_400_000_000), ("timetz", "10:15:30.123456Z"),
    ("interval", "P-1Y-2M3DT-4H-5M-6.78S"), ("interval", "P0Y0M0DT2562047788H0M54.775807S"),
    ("bytea", "AP+A"), ("enum(a, 'b c')", "b c"), ("inet", "2001:db8::1/64"), ("cidr", "10.0.0.0/8"),
    ("macaddr", "08:00:2b:01:02:03"), ("macaddr8", "08:00:2b:ff:fe:01:02:03"),
    ("int[]", [1, None, -2_147_483_648]), ("int[]", []), ("_int8", [9_223_372_036_854_775_807]),
    ("text[]", ["Әлем 🌍", None, ""]), ("numeric(12,2)[]", ["1.50", None]),
    ("uuid[]", ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", None]), ("date[]", [-25567, 120529, None]),
    ("timestamptz[]", ["1969-12-31T23:59:59.999999Z", "2299-12-31T23:59:59.999999Z"]),
    ("timestamp[]", [-2_208_988_800_000_000]), ("boolean[]", [True, None]), ("bytea[]", ["AP8=", None]),
    ("time[]", [0, 86_400_000_000]), ("inet[]", ["10.0.0.1/8"]),
    ("date", -25567), ("date", 120529), ("timestamp", 10_413_791_999_999_999), ("timestamp(3)", -2_208_988_800_000),
    ("timestamptz", "1900-01-01T00:00:00Z"),
]


def _avro_round_trip(avro_type, value):
    """Through a nullable field, as clean records carry every non-key column."""
    schema = fastavro.parse_schema({"type": "record", "name": "r", "fields": [{"name": "v", "type": ["null", avro_type]}]})
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, schema, {"v": value})
    buffer.seek(0)
    return fastavro.schemaless_reader(buffer, schema, schema)["v"]


def _avro_read(declared: str, typed):
    """What fastavro reads back for a decoded value, in decode's own terms."""
    family = declared.split("(")[0].split("[")[0].lstrip("_")
    if isinstance(typed, list):
        return [None if item is None else _avro_read(declared.removesuffix("[]").lstrip("_"), item) for item in typed]
    if family == "uuid":
        return uuid.UUID(typed)  # fastavro reads the uuid logical type as a UUID
    return typed


@pytest.mark.parametrize(("declared", "debezium"), AVRO_SAMPLES)
def test_avro_round_trip(declared: str, debezium) -> None:
    pg = parse_pg_type(declared)
    typed = pg.decode(debezium)
    assert _same(_avro_round_trip(pg.avro, typed), _avro_read(declared, typed))


def test_two_interval_columns_share_one_avro_record_definition() -> None:
    table = Table(name="catalog.durations", primary_key=["id"], columns=[
        Column(name="id", type="bigint", nullable=False), Column(name="a", type="interval"),
        Column(name="b", type="interval(3)"), Column(name="c", type="interval", nullable=False)])
    schema = clean_schema(SimpleNamespace(provider="t"), table)
    types = {field["name"]: field["type"] for field in schema["fields"]}
    assert types["a"] == ["null", INTERVAL_AVRO]
    assert types["b"] == ["null", "qoima.pg.interval"]
    codec = AvroCodec({"t": schema})  # parses: a second definition would be refused
    record = {"id": 1, "a": {"months": 1, "days": 2, "micros": 3}, "b": None, "c": {"months": -1, "days": 0, "micros": 0},
              "_op": "c", "_version": 1, "_is_deleted": 0, "_source_ts_ms": datetime(2024, 1, 1, tzinfo=UTC),
              "_processed_ts_ms": datetime(2024, 1, 1, tzinfo=UTC), "_key_id": "k1", "_defects": [], "_held_by": []}
    assert codec.decode(codec.encode("t", record))[1] == record


# --- ClickHouse DDL: nullable arrays and the placeholders of delete rows ---------------------------


def test_nullable_arrays_become_a_variant_non_nullable_stay_arrays() -> None:
    table = Table(name="catalog.t", primary_key=["id"], columns=[
        Column(name="id", type="bigint", nullable=False), Column(name="tags", type="text[]"),
        Column(name="codes", type="int[]", nullable=False), Column(name="state", type="enum(a, b)"),
        Column(name="span", type="interval"), Column(name="at", type="time"), Column(name="blob", type="bytea"),
        Column(name="fixed_span", type="interval", nullable=False), Column(name="fixed_at", type="timetz", nullable=False),
        Column(name="fixed_blob", type="bytea", nullable=False), Column(name="fixed_cash", type="money", nullable=False)])
    columns = {c.name: c for c in warehouse_columns(table)}
    assert columns["tags"].ddl_type == "Variant(Array(Nullable(String)))"   # NULL and [] stay apart
    assert columns["codes"].ddl_type == "Array(Nullable(Int32))"
    assert columns["state"].ddl_type == "LowCardinality(Nullable(String))"
    assert columns["span"].ddl_type == f"Nullable({INTERVAL_CH})"
    assert columns["at"].ddl_type == "Nullable(Time64(6))"
    assert columns["blob"].ddl_type == "Nullable(String)"
    assert columns["codes"].zero == []
    assert columns["fixed_span"].zero == {"months": 0, "days": 0, "micros": 0}  # as Avro records arrive
    assert columns["fixed_at"].zero == 0
    assert columns["fixed_blob"].zero == b""  # the column is fed bytes, never str
    assert columns["fixed_cash"].zero == Decimal(0)
    assert all(columns[name].zero is None for name in ("tags", "state", "span", "at", "blob"))


# --- On into ClickHouse: router, Avro, the sink's client, ClickHouse itself (chdb) ------------------

SAMPLE_ROW = {
    "id": 1, "v_smallint": -32768, "v_integer": 2147483647, "v_bigint": -9223372036854775808,
    "v_numeric": "-1234567890123456789012345678.0123456789", "v_real": 1.1, "v_double": -1.5e-300,
    "v_boolean": True, "v_text": 'Әлем 🌍 \\ "q"', "v_varchar": "x", "v_char": "ab   ",
    "v_date": -25567, "v_timestamp": -2_208_988_800_000_000, "v_timestamp3": 10_413_791_999_999,
    "v_timestamptz": "2299-12-31T23:59:59.999999Z", "v_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "v_json": '{"a": [1, 2]}', "v_jsonb": '{"a": [1, 2]}', "v_money": "-92233720368547758.08",
    "v_time": 86_400_000_000, "v_time3": 45_296_789_000, "v_timetz": "10:15:30.123456Z",
    "v_interval": "P-1Y-2M3DT-4H-5M-6.78S", "v_bytea": "AP+A", "v_status": "in progress",
    "v_inet": "2001:db8::1/64", "v_cidr": "10.0.0.0/8", "v_macaddr": "08:00:2b:01:02:03",
    "v_macaddr8": "08:00:2b:ff:fe:01:02:03",
    "v_int_array": [1, None, 3], "v_bigint_array": [], "v_text_array": ["a", None, "NULL"],
    "v_varchar_array": None, "v_numeric_array": ["1.50", None], "v_uuid_array": [None],
    "v_date_array": [-25567, 120529], "v_timestamptz_array": ["1969-12-31T23:59:59.999999Z"],
    "v_bool_array": [True, False, None],
    "updated_at": "2024-01-15T16:30:00.123456+06:00",
}
# How ClickHouse prints each column of SAMPLE_ROW (TabSeparated, bytea as hex).
SAMPLE_IN_CLICKHOUSE = {
    "id": "1", "v_smallint": "-32768", "v_integer": "2147483647", "v_bigint": "-9223372036854775808",
    "v_numeric": "-1234567890123456789012345678.0123456789", "v_real": "1.1", "v_double": "-1.5e-300",
    "v_boolean": "true", "v_text": 'Әлем 🌍 \\\\ "q"', "v_varchar": "x", "v_char": "ab   ",
    "v_date": "1900-01-01", "v_timestamp": "1900-01-01 00:00:00.000000",
    "v_timestamp3": "2299-12-31 23:59:59.999000", "v_timestamptz": "2299-12-31 23:59:59.999999",
    "v_uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "v_json": '{"a": [1, 2]}', "v_jsonb": '{"a": [1, 2]}',
    "v_money": "-92233720368547758.08", "v_time": "24:00:00.000000", "v_time3": "12:34:56.789000",
    "v_timetz": "10:15:30.123456", "v_interval": "(-14,3,-14706780000)", "v_bytea": "00FF80",
    "v_status": "in progress", "v_inet": "2001:db8::1/64", "v_cidr": "10.0.0.0/8",
    "v_macaddr": "08:00:2b:01:02:03", "v_macaddr8": "08:00:2b:ff:fe:01:02:03",
    "v_int_array": "[1,NULL,3]", "v_bigint_array": "[]", "v_text_array": "['a',NULL,'NULL']",
    "v_varchar_array": "\\N", "v_numeric_array": "[1.5,NULL]", "v_uuid_array": "[NULL]",
    "v_date_array": "['1900-01-01','2299-12-31']", "v_timestamptz_array": "['1969-12-31 23:59:59.999999']",
    "v_bool_array": "[true,false,NULL]",
    "updated_at": "2024-01-15 10:30:00.123456",
}


def _envelope(op: str, after: dict | None, before: dict | None, lsn: int) -> bytes:
    return json.dumps({
        "before": before, "after": after, "op": op, "ts_ms": 1_705_314_600_100, "transaction": None,
        "source": {"version": "3.0.8.Final", "connector": "postgresql", "name": "qoima.raw.demo",
                   "ts_ms": 1_705_314_600_000, "snapshot": "false", "db": "gosdata", "schema": "catalog",
                   "table": "type_samples", "txId": 1, "lsn": lsn, "xmin": None},
    }, ensure_ascii=False).encode()


class _ClickHouse:
    """ClickHouse in-process, fed exactly the bytes the sink's clickhouse_connect would send."""

    def __init__(self, workdir) -> None:
        chdb_session = pytest.importorskip("chdb.session")
        self.workdir = workdir
        self.session = chdb_session.Session(str(workdir / "chdb"))

    def query(self, sql: str) -> str:
        return self.session.query(sql, "TabSeparated").data()

    def insert(self, table: str, column_names: list[str], rows: list[list]) -> None:
        from clickhouse_connect.datatypes.registry import get_from_name
        from clickhouse_connect.driver.insert import InsertContext
        from clickhouse_connect.driver.transform import NativeTransform

        described = [json.loads(line) for line in
                     self.session.query(f"DESCRIBE TABLE {table}", "JSONEachRow").data().splitlines()]
        types = {column["name"]: get_from_name(column["type"]) for column in described}
        types = [types[name] for name in column_names]
        context = InsertContext(table, column_names, types, data=rows, compression=None)
        payload = b"".join(NativeTransform.build_insert(context))
        path = self.workdir / "block.native"
        path.write_bytes(payload[payload.index(b"\n") + 1:])  # after the INSERT ... FORMAT Native line
        self.query(f"INSERT INTO {table} ({', '.join(column_names)}) SELECT * FROM file('{path}', Native)")


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory):
    server = _ClickHouse(tmp_path_factory.mktemp("clickhouse"))
    yield server
    server.session.close()


def test_every_type_lands_in_clickhouse_as_postgresql_holds_it(demo, router, codec, clickhouse) -> None:
    from sinks.clickhouse_sink import ClickHouseSink, _clean_target

    table = next(t for t in demo.tables if t.name == "catalog.type_samples")
    assert [c.name for c in table.columns] == list(SAMPLE_ROW)  # every column of the demo table is sampled
    warehouse = f"udw.`{demo.warehouse_table(table)}`"
    clickhouse.query("CREATE DATABASE IF NOT EXISTS udw")
    clickhouse.query(create_table_sql(demo, table))
    topic, target = demo.raw_topic(table), _clean_target(demo, table)
    nulls = {name: None for name in SAMPLE_ROW} | {"id": 2, "updated_at": "2024-01-15T10:30:00Z"}
    events = [_envelope("c", SAMPLE_ROW, None, 100), _envelope("c", nulls, None, 101),
              _envelope("c", {**nulls, "id": 3}, None, 102), _envelope("d", None, {"id": 3}, 103)]
    rows = []
    for offset, event in enumerate(events):
        out = router.route(topic, 0, offset, event)
        assert out.outcome == "clean", out.reason
        rows.append(ClickHouseSink._row(None, target, codec.decode(out.value)[1]))
    clickhouse.insert(warehouse, target.column_names, rows)
    columns = ", ".join(f"hex(`{name}`)" if name == "v_bytea" else f"`{name}`" for name in SAMPLE_ROW)
    lines = clickhouse.query(f"SELECT {columns} FROM {warehouse} FINAL ORDER BY id").splitlines()
    assert len(lines) == 2  # the deleted row is gone through FINAL
    assert dict(zip(SAMPLE_ROW, lines[0].split("\t"))) == SAMPLE_IN_CLICKHOUSE
    # A NULL array stays NULL, apart from an empty one; every other NULL stays NULL too.
    nulls_back = dict(zip(SAMPLE_ROW, lines[1].split("\t")))
    assert nulls_back == {name: "\\N" for name in SAMPLE_ROW} | {"id": "2", "updated_at": "2024-01-15 10:30:00.000000"}


def test_delete_placeholders_of_non_nullable_columns_load_next_to_real_values(clickhouse) -> None:
    table = Table(name="catalog.fixed", primary_key=["id"], columns=[
        Column(name="id", type="bigint", nullable=False), Column(name="span", type="interval", nullable=False),
        Column(name="at", type="time", nullable=False), Column(name="blob", type="bytea", nullable=False),
        Column(name="codes", type="int[]", nullable=False), Column(name="cash", type="money", nullable=False),
        Column(name="state", type="enum(a, b)", nullable=False)])
    columns = warehouse_columns(table)
    clickhouse.query("CREATE DATABASE IF NOT EXISTS scratch")
    clickhouse.query("CREATE TABLE scratch.fixed (" + ", ".join(f"`{c.name}` {c.ddl_type}" for c in columns)
                     + ") ENGINE = MergeTree ORDER BY id")
    real = [1, {"months": 1, "days": 2, "micros": 3}, 5, b"\xff", [1, None], Decimal("1.50"), "a"]
    zeros = [2] + [c.zero for c in columns[1:]]
    # Either may come first in a batch; the client picks its encoding from the first value.
    clickhouse.insert("scratch.fixed", [c.name for c in columns], [zeros, real])
    clickhouse.insert("scratch.fixed", [c.name for c in columns], [[3, *real[1:]], [4, *zeros[1:]]])
    assert clickhouse.query("SELECT id, span, at, hex(blob), codes, cash, state FROM scratch.fixed ORDER BY id") == (
        "1\t(1,2,3)\t00:00:00.000005\tFF\t[1,NULL]\t1.5\ta\n"
        "2\t(0,0,0)\t00:00:00.000000\t\t[]\t0\t\n"
        "3\t(1,2,3)\t00:00:00.000005\tFF\t[1,NULL]\t1.5\ta\n"
        "4\t(0,0,0)\t00:00:00.000000\t\t[]\t0\t\n")


def test_enum_arrays_are_refused_with_a_reason():
    with pytest.raises(ValueError, match="Debezium does not capture arrays of enum"):
        parse_pg_type("enum(a, b)[]")
