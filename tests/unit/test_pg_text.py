"""PostgreSQL's text form (connectors/pg_text.py): what a CSV history file or psql holds, read into
exactly what the decoder gives for the same datum arriving through Debezium, or refused."""
from __future__ import annotations

import pytest

from connectors.debezium_encode import encoder
from connectors.pg_text import text_parser
from model.types import ValueRefused
from model.types.postgresql import parse_pg_type
from streams.decode import decoder
from tests.unit.typed_values import HISTORY_TEXT_FORMS, TEXT_AND_DEBEZIUM, same


@pytest.mark.parametrize(("declared", "text", "debezium"), TEXT_AND_DEBEZIUM + HISTORY_TEXT_FORMS)
def test_from_text_gives_what_decode_gives(declared: str, text: str, debezium) -> None:
    assert same(text_parser(declared)(text), decoder(parse_pg_type(declared))(debezium))


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
        text_parser(declared)(text)
    assert problem in str(info.value)
    assert text.strip() not in str(info.value)


@pytest.mark.parametrize(("declared", "text"), [
    ("date", "2300-01-01"), ("date", "1899-12-31"), ("timestamp", "1899-12-31 23:59:59.999999"),
    ("timestamptz", "1900-01-01 05:59:59+06"), ("timestamp(0)", "2299-12-31 23:59:59.5"),
])
def test_text_forms_outside_clickhouse_range_are_refused(declared: str, text: str) -> None:
    with pytest.raises(ValueRefused, match="outside ClickHouse's Date32/DateTime64 range"):
        text_parser(declared)(text)


def test_historical_forms_are_refused_until_built() -> None:
    with pytest.raises(NotImplementedError, match="historical loads of MariaDB"):
        text_parser("int", "mariadb")
    with pytest.raises(NotImplementedError, match="captured by Debezium only"):
        encoder("int", "mariadb")
