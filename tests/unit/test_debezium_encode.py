"""Debezium's JSON form of typed values (connectors/debezium_encode.py), as the marker poller and
historical loads write it: the decoder's inverse, spelled as Debezium spells it, or refused."""
from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.debezium_encode import encoder
from model.types import ValueRefused
from model.types.postgresql import parse_pg_type
from streams.decode import decoder
from tests.unit.typed_values import HISTORY_TEXT_FORMS, TEXT_AND_DEBEZIUM, same

UTC = timezone.utc


@pytest.mark.parametrize(("declared", "text", "debezium"), TEXT_AND_DEBEZIUM + HISTORY_TEXT_FORMS)
def test_to_debezium_inverts_decode(declared: str, text: str, debezium) -> None:
    decode = decoder(parse_pg_type(declared))
    typed = decode(debezium)
    assert same(decode(encoder(declared)(typed)), typed)


def test_to_debezium_spells_values_as_debezium_does() -> None:
    assert encoder("interval")({"months": -14, "days": 3, "micros": -14_706_780_000}) == \
        "P-1Y-2M3DT-4H-5M-6.78S"
    assert encoder("interval")({"months": 0, "days": 0, "micros": 0}) == "P0Y0M0DT0H0M0S"
    assert encoder("timetz")(36_930_123_456) == "10:15:30.123456Z"
    assert encoder("timetz")(86_400_000_000) == "24:00:00Z"
    assert encoder("money")(Decimal("-92233720368547758.08")) == "-92233720368547758.08"
    assert encoder("bytea")(b"\x00\xff\x80") == "AP+A"


def test_to_debezium_takes_what_psycopg_and_pandas_give() -> None:
    """The marker poller hands over psycopg's values, historical loads pandas' ones."""
    assert encoder("money")("-$1,234.56") == "-1234.56"     # psycopg reads money as text
    assert encoder("money")(12.5) == "12.50"
    assert encoder("time")(time(12, 34, 56, 789012)) == 45_296_789_012
    assert encoder("time")(timedelta(hours=24)) == 86_400_000_000
    assert encoder("time(0)")(time(10, 0, 0, 500000)) == 36_001_000_000
    assert encoder("timetz")(time(16, 15, 30, tzinfo=timezone(timedelta(hours=6)))) == "10:15:30Z"
    assert encoder("interval")(timedelta(days=-1, seconds=1)) == "P0Y0M-1DT0H0M1S"
    assert encoder("interval")((14, 3, 1)) == "P1Y2M3DT0H0M0.000001S"
    assert encoder("bytea")(memoryview(b"\x00")) == "AA=="
    assert encoder("inet")(ipaddress.ip_interface("192.168.1.5/24")) == "192.168.1.5/24"
    assert encoder("inet")(ipaddress.ip_interface("::ffff:1.2.3.4/128")) == "::ffff:1.2.3.4"
    assert encoder("cidr")(ipaddress.ip_network("10.0.0.0/8")) == "10.0.0.0/8"
    assert encoder("int[]")((1, None)) == [1, None]
    assert encoder("date[]")([date(2024, 1, 1)]) == [19723]


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
        encoder(declared)(value)


@pytest.mark.parametrize(("declared", "value"), [
    ("date", date(2300, 1, 1)), ("date", date(1, 1, 1)), ("timestamp", datetime(1899, 12, 31, 23, 59)),
    ("timestamptz", datetime(9999, 1, 1, tzinfo=UTC)),
])
def test_typed_values_outside_clickhouse_range_are_refused(declared: str, value) -> None:
    with pytest.raises(ValueRefused, match="outside ClickHouse's Date32/DateTime64 range"):
        encoder(declared)(value)
