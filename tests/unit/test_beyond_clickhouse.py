"""Values the source holds and ClickHouse cannot (issue 13 item 2): read as they are, so rules and
generalizations compute from them; a kept one takes its documented representation with a defect
(docs/type-mapping.md, "Values ClickHouse cannot hold"); the row is loaded, never quarantined.

The Debezium spellings of ±infinity are the ones observed on the local stack (Debezium 3.0.8,
PostgreSQL 15); tests/e2e/test_type_fidelity.py sends them for real.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from model.types.mariadb import parse_mariadb_type
from model.types.postgresql import parse_pg_type
from model.types.values import INFINITY, MINUS_INFINITY, Beyond, fitter
from streams.decode import decoder
from streams.depersonalize import TablePlan
from streams.keys import KeyRing

UTC = timezone.utc


def _fit(declared: str, value, dbms: str = "postgresql"):
    column_type = parse_pg_type(declared) if dbms == "postgresql" else parse_mariadb_type(declared)
    return fitter(column_type.clickhouse)(decoder(column_type)(value))


@pytest.mark.parametrize(("declared", "sent", "read"), [
    ("date", -43770, date(1850, 3, 1)),
    ("date", 3663382, Beyond(1, False)),                       # 12000-01-01
    ("date", -2147472692, INFINITY),
    ("date", -2147472691, MINUS_INFINITY),
    ("date[]", [-622191234, -625821272, -43829], [INFINITY, MINUS_INFINITY, date(1850, 1, 1)]),
    ("timestamp", 9223372036825200000, INFINITY),
    ("timestamp", -9223372036832400000, MINUS_INFINITY),
    ("timestamp", -3786789600000000, datetime(1850, 1, 1, 10, tzinfo=UTC)),
    ("timestamp(3)", 9223372036825200, INFINITY),
    ("timestamp(3)", -9223372036832400, MINUS_INFINITY),
    ("timestamptz", "infinity", INFINITY),
    ("timestamptz", "-infinity", MINUS_INFINITY),
    ("timestamptz[]", ["infinity", "+292269055-12-02T23:00:00.000000Z"], [INFINITY, MINUS_INFINITY]),
    ("timestamptz", "+12000-01-01T00:00:00.000000Z", Beyond(1, False)),
    ("timestamptz", "-0099-01-01T00:00:00.000000Z", Beyond(-1, False)),
    ("timestamptz", "1850-01-01T10:00:00.000000Z", datetime(1850, 1, 1, 10, tzinfo=UTC)),
])
def test_what_the_source_holds_is_read_as_it_is(declared: str, sent, read) -> None:
    assert decoder(parse_pg_type(declared))(sent) == read


@pytest.mark.parametrize(("sent", "is_nan", "sign"), [("NAN", True, 0), ("POSITIVE_INFINITY", False, 1),
                                                      ("NEGATIVE_INFINITY", False, -1)])
def test_numeric_nan_and_infinities_are_read(sent: str, is_nan: bool, sign: int) -> None:
    value = decoder(parse_pg_type("numeric(14,2)"))(sent)
    assert value.is_nan() == is_nan
    assert is_nan or value == Decimal(sign) * Decimal("Infinity")


def test_beyond_orders_like_postgresql() -> None:
    assert MINUS_INFINITY < date(1, 1, 1) < date(9999, 12, 31) < INFINITY
    assert datetime(2024, 1, 1, tzinfo=UTC) < INFINITY
    assert not INFINITY <= date(2024, 1, 1)
    assert sorted([INFINITY, date(2000, 1, 1), MINUS_INFINITY]) == [MINUS_INFINITY, date(2000, 1, 1), INFINITY]


@pytest.mark.parametrize(("declared", "sent", "stored", "problem"), [
    ("date", -43770, date(1900, 1, 1), "date before 1900-01-01 stored as 1900-01-01"),
    ("date", 120530, date(2299, 12, 31), "date after 2299-12-31 stored as 2299-12-31"),   # 2300-01-01
    ("date", -2147472692, date(2299, 12, 31), "infinity stored as 2299-12-31"),
    ("date", -2147472691, date(1900, 1, 1), "-infinity stored as 1900-01-01"),
    ("date", 3663382, date(2299, 12, 31), "after 9999-12-31 stored as 2299-12-31"),
    ("timestamp", 9223372036825200000, datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
     "infinity stored as 2299-12-31T23:59:59.999999+00:00"),
    ("timestamp(3)", -9223372036832400, datetime(1900, 1, 1, tzinfo=UTC), "-infinity stored as 1900-01-01T00:00:00+00:00"),
    ("timestamptz", "1899-12-31T23:59:59.999999Z", datetime(1900, 1, 1, tzinfo=UTC),
     "timestamp before 1900-01-01T00:00:00+00:00 stored as"),
    ("numeric(14,2)", "NAN", None, "numeric NaN loaded empty"),
    ("numeric(14,2)", "POSITIVE_INFINITY", None, "numeric infinity loaded empty"),
    ("numeric(14,2)", "12345678901234567.00", None, "numeric wider than the declared numeric(14,2) loaded empty"),
    ("numeric(14,2)", "1.005", None, "never rounded"),
])
def test_a_kept_value_clickhouse_cannot_hold_gets_its_representation(declared, sent, stored, problem) -> None:
    value, found = _fit(declared, sent)
    assert value == stored
    assert found is not None and problem in found
    assert str(sent) not in found or str(sent) in ("infinity", "-infinity")  # the problem never quotes a value


@pytest.mark.parametrize(("declared", "sent", "stored"), [
    ("date", -25567, date(1900, 1, 1)),
    ("date", 120529, date(2299, 12, 31)),
    ("timestamptz", "2300-01-01T05:00:00+06:00", datetime(2299, 12, 31, 23, tzinfo=UTC)),
    ("numeric(14,2)", "1234.5", Decimal("1234.50")),
])
def test_a_value_inside_the_range_fits_as_it_is(declared: str, sent, stored) -> None:
    assert _fit(declared, sent) == (stored, None)


def test_an_array_is_fitted_element_by_element() -> None:
    value, problem = _fit("date[]", [-622191234, None, 0])
    assert value == [date(2299, 12, 31), None, date(1970, 1, 1)]
    assert problem == "1 element(s): infinity stored as 2299-12-31 (date outside ClickHouse's Date32/DateTime64 " \
                      "range 1900-01-01..2299-12-31)"


@pytest.mark.parametrize(("declared", "sent", "stored"), [
    ("date", -30_000, date(1900, 1, 1)),                       # 1887
    ("datetime", -5_000_000_000_000, datetime(1900, 1, 1, tzinfo=UTC)),  # 1811
])
def test_mariadb_values_before_1900_are_kept_saturated(declared: str, sent, stored) -> None:
    value, problem = _fit(declared, sent, "mariadb")
    assert value == stored and "before 1900-01-01" in problem


def test_a_row_born_before_1900_is_loaded_with_its_year_and_a_defect(demo) -> None:
    plan = TablePlan(demo.table("population.persons"), KeyRing("k1", bytes(range(32))))
    row = {"person_id": 1, "iin": "900101300126", "last_name": "A", "first_name": "B", "middle_name": None,
           "birth_date": -43770, "sex": "F", "phone": None, "address": None, "kato_code": "751110000",
           "status": "active", "updated_at": "2024-01-15T10:30:00Z"}
    record, defects = plan.apply(row, today=date(2024, 1, 15))
    assert record["birth_date_year"] == 1850
    assert defects == []
    record, defects = plan.apply(dict(row, birth_date=-2147472691), today=date(2024, 1, 15))
    assert record["birth_date_year"] is None
    assert [(d.column, d.problem) for d in defects] == [("birth_date", "-infinity has no year")]
