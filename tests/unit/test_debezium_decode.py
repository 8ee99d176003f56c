"""Debezium's JSON decoded (streams/decode): PostgreSQL's and MariaDB's columns.

The PostgreSQL connector runs with decimal.handling.mode=string,
time.precision.mode=adaptive_time_microseconds, interval.handling.mode=string and
binary.handling.mode=base64, so: numeric and money arrive as strings, date as int days since
1970-01-01, timestamp(0-3) as epoch millis, timestamp(4-6) as epoch micros, timestamptz as an
ISO-8601 string with an offset, time as micros since midnight, timetz as an ISO time in UTC,
interval as ISO-8601 (P1Y2M3DT4H5M6.78S), bytea as base64 and arrays as JSON arrays of their
elements' forms. MariaDB's connector sends the same forms where the types match, and its own
for the rest (unsigned integers, BOOLEAN as 0/1, TIME as a signed duration, YEAR, SET).
"""
from __future__ import annotations

import base64
import math
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from model.types import parse_type
from model.types.mariadb import parse_mariadb_type
from model.types.postgresql import parse_pg_type
from streams.decode import decoder

UTC = timezone.utc


# --- integers and booleans ------------------------------------------------------------------


@pytest.mark.parametrize("declared", ["smallint", "integer", "bigint"])
def test_int_decodes_ints(declared: str) -> None:
    decode = decoder(parse_pg_type(declared))
    assert decode(0) == 0
    assert decode(-42) == -42
    assert decode(9_000_000_000) == 9_000_000_000


@pytest.mark.parametrize("value", [True, False, 1.0, "1", None])
def test_int_rejects_bool_float_and_string(value) -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type("bigint"))(value)


def test_bool_decodes_bools_and_rejects_ints() -> None:
    decode = decoder(parse_pg_type("boolean"))
    assert decode(True) is True and decode(False) is False
    for value in (1, 0, "true", None):
        with pytest.raises(ValueError):
            decode(value)


def test_text_rejects_non_strings() -> None:
    decode = decoder(parse_pg_type("text"))
    assert decode("Алматы") == "Алматы"
    for value in (1, 1.5, True, {"a": 1}):
        with pytest.raises(ValueError):
            decode(value)
    assert decoder(parse_pg_type("varchar(9)"))("751110000") == "751110000"
    with pytest.raises(ValueError):
        decoder(parse_pg_type("varchar(9)"))(751110000)


def test_float_decodes_numbers_and_special_strings() -> None:
    decode = decoder(parse_pg_type("double precision"))
    assert decode(1) == 1.0 and isinstance(decode(1), float)
    assert decode(2.5) == 2.5
    assert math.isnan(decode("NaN"))
    assert decode("Infinity") == math.inf
    assert decode("-Infinity") == -math.inf


# --- numeric --------------------------------------------------------------------------------


def test_numeric_keeps_scale() -> None:
    decode = decoder(parse_pg_type("numeric(14,2)"))
    value = decode("1234.5")
    assert value == Decimal("1234.50")
    assert str(value) == "1234.50"
    assert value.as_tuple().exponent == -2
    assert str(decode("0")) == "0.00"
    assert str(decode("-0.10")) == "-0.10"
    assert str(decode("999999999999.99")) == "999999999999.99"
    assert str(decoder(parse_pg_type("numeric(10,0)"))("42")) == "42"
    assert str(decoder(parse_pg_type("numeric(20,6)"))("0.000001")) == "0.000001"


def test_numeric_rejects_garbage() -> None:
    with pytest.raises((ValueError, ArithmeticError)):  # today decimal.InvalidOperation
        decoder(parse_pg_type("numeric(14,2)"))("12,50")


def test_numeric_wider_than_28_digits() -> None:
    value = "123456789012345678901234567890.12"  # 32 digits, fits numeric(38,2)
    assert decoder(parse_pg_type("numeric(38,2)"))(value) == Decimal(value)


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
    assert decoder(parse_pg_type("date"))(days) == expected


def test_date_garbage_rejected() -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type("date"))("2024-01-01")


# --- timestamp (without time zone) ----------------------------------------------------------


@pytest.mark.parametrize("declared", ["timestamp", "timestamp(6)", "timestamp(4)", "timestamp without time zone"])
def test_timestamp_micros(declared: str) -> None:
    decode = decoder(parse_pg_type(declared))
    assert decode(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert decode(-1) == datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert decode(-2_208_988_800_000_000) == datetime(1900, 1, 1, tzinfo=UTC)
    assert decode(2**31 * 1_000_000) == datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC)  # after 2038
    assert decode(4_102_444_800_000_001) == datetime(2100, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    assert decode(0).utcoffset() == timedelta(0)


@pytest.mark.parametrize("declared", ["timestamp(0)", "timestamp(1)", "timestamp(3)", "timestamp(3) without time zone"])
def test_timestamp_millis(declared: str) -> None:
    decode = decoder(parse_pg_type(declared))
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
    value = decoder(parse_pg_type("timestamptz"))(text)
    assert value == datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=UTC)
    assert value.utcoffset() == timedelta(0)
    assert value.tzinfo == UTC


def test_timestamptz_before_1970_and_after_2038() -> None:
    decode = decoder(parse_pg_type("timestamp with time zone"))
    assert decode("1969-12-31T23:00:00-05:00") == datetime(1970, 1, 1, 4, 0, tzinfo=UTC)
    assert decode("1900-01-01T00:00:00Z") == datetime(1900, 1, 1, tzinfo=UTC)
    assert decode("2100-06-30T12:00:00+06:00") == datetime(2100, 6, 30, 6, 0, tzinfo=UTC)


def test_timestamptz_garbage_rejected() -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type("timestamptz"))("yesterday")


# --- money ----------------------------------------------------------------------------------


def test_money_is_exact_cents_over_the_whole_int64_range() -> None:
    decode = decoder(parse_pg_type("money"))
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
    ("$1,234.56", "not a money amount"),      # Debezium strips the currency; text forms go through pg_text
    ("9.2233720368547758E16", "arrived as a double"),
])
def test_money_refusals(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        decoder(parse_pg_type("money"))(value)


@pytest.mark.parametrize("value", [1234, 12.5, None])
def test_money_wants_the_string_debezium_sends(value) -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type("money"))(value)


# --- time and timetz --------------------------------------------------------------------------


@pytest.mark.parametrize("declared", ["time", "time(0)", "time(3)", "time(6) without time zone"])
def test_time_is_micros_since_midnight_up_to_24_00(declared: str) -> None:
    decode = decoder(parse_pg_type(declared))
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
    assert decoder(parse_pg_type("timetz"))(text) == micros


@pytest.mark.parametrize("value", ["10:15:30", "25:00:00Z", "10:61:00Z", "noon", 36_930_000_000])
def test_timetz_refusals(value) -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type("time with time zone"))(value)


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
    assert decoder(parse_pg_type("interval"))(text) == dict(zip(("months", "days", "micros"), expected))


@pytest.mark.parametrize("value", ["1 day", "P1.5Y", "P0Y0M0DT0H0M0.0000001S", "P", "P300000000Y", 86_400, None])
def test_interval_refusals(value) -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type("interval"))(value)


# --- bytea, enums, network addresses ------------------------------------------------------------


def test_bytea_is_base64_bytes() -> None:
    decode = decoder(parse_pg_type("bytea"))
    assert decode("AP+A") == b"\x00\xff\x80"          # NUL and bytes that are not UTF-8
    assert decode("") == b""
    assert decode("0JDQu9C80LDRgtGL") == "Алматы".encode()
    for bad in ("AP+", "AP+A!", "\\x00ff", b"\x00", 0):
        with pytest.raises(ValueError):
            decode(bad)


def test_enum_refuses_labels_the_regulation_does_not_list() -> None:
    decode = decoder(parse_pg_type("enum(active, deceased, 'in progress', 'it''s', 'a,b')"))
    for label in ("active", "deceased", "in progress", "it's", "a,b"):
        assert decode(label) == label
    with pytest.raises(ValueError, match="not one of the enum labels") as info:
        decode("Active")  # labels are case-sensitive, as in PostgreSQL
    assert "Active" not in str(info.value)
    assert decoder(parse_pg_type("enum:status_t"))("any label at all") == "any label at all"
    with pytest.raises(ValueError):
        decode(1)


@pytest.mark.parametrize(("declared", "value"), [
    ("inet", "192.168.1.5"), ("inet", "192.168.1.5/24"), ("inet", "2001:db8::1"), ("inet", "2001:db8::1/64"),
    ("inet", "::ffff:1.2.3.4"), ("inet", "0.0.0.0/0"),
    ("cidr", "10.0.0.0/8"), ("cidr", "192.168.1.5/32"), ("cidr", "2001:db8::/32"), ("cidr", "::/0"),
    ("macaddr", "08:00:2b:01:02:03"), ("macaddr8", "08:00:2b:ff:fe:01:02:03"),
])
def test_network_types_keep_postgresql_output_as_sent(declared: str, value: str) -> None:
    assert decoder(parse_pg_type(declared))(value) == value


@pytest.mark.parametrize(("declared", "value"), [
    ("inet", "192.168.1.5/33"), ("inet", "10.0.0.1/255.0.0.0"), ("inet", "fe80::1%eth0"), ("inet", "host"),
    ("cidr", "10.0.0.1/8"), ("macaddr", "08:00:2B:01:02:03"), ("macaddr", "08:00:2b:01:02"),
    ("macaddr8", "08:00:2b:01:02:03"), ("inet", 3232235777),
])
def test_network_types_refuse_what_postgresql_would_not_print(declared: str, value) -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type(declared))(value)


# --- arrays -------------------------------------------------------------------------------------


def test_arrays_decode_each_element_and_keep_null_elements() -> None:
    assert decoder(parse_pg_type("int[]"))([1, None, -3]) == [1, None, -3]
    assert decoder(parse_pg_type("_int4"))([]) == []
    assert decoder(parse_pg_type("text[]"))(["a", None, "NULL", ""]) == ["a", None, "NULL", ""]
    assert decoder(parse_pg_type("numeric(12,2)[]"))(["1.5", None]) == [Decimal("1.50"), None]
    assert decoder(parse_pg_type("date[]"))([-25567, 120529]) == [date(1900, 1, 1), date(2299, 12, 31)]
    assert decoder(parse_pg_type("timestamptz[]"))(["1969-12-31T23:59:59.999999Z"]) == [
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]
    assert decoder(parse_pg_type("timestamp(3)[]"))([1_000]) == [datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)]
    assert decoder(parse_pg_type("bytea[]"))(["AP8=", None]) == [b"\x00\xff", None]
    assert decoder(parse_pg_type("uuid[]"))([None]) == [None]


@pytest.mark.parametrize(("declared", "value"), [
    ("int[]", [[1, 2], [3, 4]]),      # a multidimensional value in a one-dimensional column
    ("int[]", "{1,2}"),
    ("int[]", [1, "2"]),
])
def test_array_refusals(declared: str, value) -> None:
    with pytest.raises(ValueError):
        decoder(parse_pg_type(declared))(value)


# --- MariaDB ------------------------------------------------------------------------------------


@pytest.mark.parametrize("declared, sent, expected", [
    ("tinyint", -128, -128),
    ("int unsigned", 4_294_967_295, 4_294_967_295),
    ("bigint", -(1 << 63), -(1 << 63)),
    # precise mode with the JSON converter's BASE64 decimals: big-endian two's complement
    ("bigint unsigned", base64.b64encode(((1 << 64) - 1).to_bytes(9, "big")).decode(), Decimal((1 << 64) - 1)),
    ("bigint unsigned", base64.b64encode(b"\x05").decode(), Decimal(5)),
    ("bigint unsigned", 7, Decimal(7)),  # decimal.format=NUMERIC
    ("boolean", True, True),
    ("tinyint(1)", 0, False),   # read from SHOW CREATE TABLE during a snapshot
    ("tinyint(1)", 1, True),
    ("decimal(14,2)", "48500.50", Decimal("48500.50")),
    ("decimal(14,2) unsigned", "0.00", Decimal("0.00")),
    ("double", 1.5, 1.5),
    ("float", 0.25, 0.25),
    ("varchar(10)", "Алма", "Алма"),
    ("json", '{"a": 1}', '{"a": 1}'),
    ("enum('basic','gold')", "gold", "gold"),
    ("set('a','b','c')", "a,c", "a,c"),
    ("set('a','b','c')", "", ""),
    ("date", 19723, date(2024, 1, 1)),
    ("datetime", 1_704_067_200_000, datetime(2024, 1, 1, tzinfo=UTC)),            # millis for 0-3
    ("datetime(6)", 1_704_067_200_000_001, datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),  # micros for 4-6
    ("timestamp", "2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
    ("timestamp(6)", "2024-01-01T05:00:00.000001+05:00", datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC)),
    ("time", -3_600_000_000, -3_600_000_000),                  # TIME is a duration: negative allowed
    ("time(6)", 838 * 3_600_000_000, 838 * 3_600_000_000),
    ("year", 2024, 2024),
    ("year", 0, 0),
    ("blob", base64.b64encode(b"\x00\xff").decode(), b"\x00\xff"),
])
def test_mariadb_decode(declared, sent, expected) -> None:
    assert decoder(parse_mariadb_type(declared))(sent) == expected


@pytest.mark.parametrize("declared, sent", [
    ("tinyint", 128),
    ("tinyint unsigned", -1),
    ("int unsigned", 1 << 32),
    ("bigint unsigned", -1),           # a long-mode value wrapped past 2^63
    ("bigint unsigned", "not base64!"),
    ("tinyint(1)", 2),
    ("decimal(4,2)", "123.45"),
    ("decimal(14,2)", "1.005"),        # never rounded
    ("decimal(14,2) unsigned", "-1.00"),
    ("enum('basic','gold')", "platinum"),
    ("set('a','b')", "a,z"),
    ("timestamp", "2024-01-01T00:00:00"),  # no offset: would take the host's zone
    ("time", 839 * 3_600_000_000),
    ("year", 1900),
    ("int", "12"),
    ("int", True),
])
def test_mariadb_refused(declared, sent) -> None:
    with pytest.raises(ValueError) as info:
        decoder(parse_mariadb_type(declared))(sent)
    assert str(sent) not in str(info.value) or str(sent) in declared  # never quotes the value


# --- a type is decoded in the language of its dbms ------------------------------------------------


def test_a_timestamp_decodes_by_its_dbms() -> None:
    assert decoder(parse_type("timestamp", "mariadb"))("2024-01-01T00:00:00Z") == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):  # a PostgreSQL timestamp is a wall clock in epoch micros, not an ISO instant
        decoder(parse_type("timestamp", "postgresql"))("2024-01-01T00:00:00Z")
