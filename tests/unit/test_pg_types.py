"""PostgreSQL types (streams/pg_types.py): Debezium JSON decoding, ClickHouse and Avro mapping.

The connector runs with decimal.handling.mode=string and
time.precision.mode=adaptive_time_microseconds, so: numeric arrives as a string, date as int
days since 1970-01-01, timestamp(0-3) as epoch millis, timestamp(4-6) as epoch micros, and
timestamptz as an ISO-8601 string with an offset.
"""
from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from streams.pg_types import SUPPORTED, parse_pg_type

UTC = timezone.utc
TS_AVRO = {"type": "long", "logicalType": "timestamp-micros"}


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
])
def test_mapping(declared: str, clickhouse: str, avro) -> None:
    pg = parse_pg_type(declared)
    assert pg.clickhouse == clickhouse
    assert pg.avro == avro


def test_spelling_is_case_and_space_insensitive() -> None:
    assert parse_pg_type("BIGINT").clickhouse == "Int64"
    assert parse_pg_type("Double   Precision").clickhouse == "Float64"
    assert parse_pg_type("  Numeric(14,2) ").clickhouse == "Decimal(14, 2)"


@pytest.mark.parametrize("declared", ["varchar2(10)", "money", "numeric", "numeric(10)", "interval",
                                      "timestamptz(3)", "bytea", "int[]", ""])
def test_unsupported_type_message(declared: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_pg_type(declared)
    message = str(info.value)
    assert f"unsupported column type {declared!r}" in message
    assert "supported: " in message
    for name in ("bigint", "numeric(p,s)", "varchar(n)", "timestamp[(p)]", "timestamptz", "date"):
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
