"""MariaDB column types (model/types/mariadb.py): Debezium's JSON decoded losslessly, or refused."""
from __future__ import annotations

import base64
import re
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from model.types.mariadb import is_text_type, parse_mariadb_type
from model.types.postgresql import PgType, parse_pg_type
from model.types.source import parse_type

UTC = timezone.utc


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
def test_views(declared, clickhouse, avro) -> None:
    parsed = parse_mariadb_type(declared)
    assert isinstance(parsed, PgType)  # the router, Avro and DDL take it as they take a PostgreSQL type
    assert (parsed.clickhouse, parsed.avro) == (clickhouse, avro)


def test_decimal_and_temporal_views_are_postgresqls() -> None:
    assert parse_mariadb_type("decimal(14,2)").avro == parse_pg_type("numeric(14,2)").avro
    assert parse_mariadb_type("decimal(10)").clickhouse == "Decimal(10, 0)"
    assert parse_mariadb_type("bigint unsigned").clickhouse == "Decimal(20, 0)"
    for declared in ("date", "datetime", "datetime(6)", "timestamp", "timestamp(3)"):
        assert parse_mariadb_type(declared).avro == parse_pg_type("date" if declared == "date" else "timestamptz").avro


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
def test_decode(declared, sent, expected) -> None:
    assert parse_mariadb_type(declared).decode(sent) == expected


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
    ("date", -30_000),                 # 1887: before ClickHouse's Date32
    ("datetime", -5_000_000_000_000),  # 1811
    ("timestamp", "2024-01-01T00:00:00"),  # no offset: would take the host's zone
    ("time", 839 * 3_600_000_000),
    ("year", 1900),
    ("int", "12"),
    ("int", True),
])
def test_refused(declared, sent) -> None:
    with pytest.raises(ValueError) as info:
        parse_mariadb_type(declared).decode(sent)
    assert str(sent) not in str(info.value) or str(sent) in declared  # never quotes the value


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
def test_unsupported_types_say_why(declared, problem) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_mariadb_type(declared)


def test_text_types() -> None:
    assert all(is_text_type(t) for t in ("text", "tinytext", "longtext", "varchar(5)", "char(2)"))
    assert not any(is_text_type(t) for t in ("json", "enum('a')", "blob", "int"))


def test_historical_forms_are_refused_until_built() -> None:
    with pytest.raises(NotImplementedError, match="historical loads of MariaDB"):
        parse_mariadb_type("int").from_text
    with pytest.raises(NotImplementedError):
        parse_mariadb_type("int").to_debezium


def test_parse_type_dispatches_by_dbms() -> None:
    assert parse_type("timestamp").clickhouse == parse_pg_type("timestamp").clickhouse
    assert parse_type("timestamp", "mariadb").decode("2024-01-01T00:00:00Z") == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):  # a PostgreSQL timestamp is a wall clock in epoch micros, not an ISO instant
        parse_type("timestamp", "postgresql").decode("2024-01-01T00:00:00Z")
    with pytest.raises(ValueError, match="unknown dbms"):
        parse_type("int", "oracle")
