"""Every supported PostgreSQL type, source to warehouse, value by value (docs/type-mapping.md).

Rows of catalog.type_samples (infra/demo/schema.sql) carrying edge values of each type (NULLs,
empty arrays, arrays with NULL elements, 24:00:00, negative intervals, dates at both ends of
ClickHouse's range, timestamps before 1970 and after 2038, money at both ends of int64 cents,
bytes with NUL and no UTF-8, IPv6 with a mask, Unicode text, numeric with its full scale) are
inserted, updated and deleted at the source. The warehouse must then hold, through FINAL, what
PostgreSQL holds: each source value as PostgreSQL prints it, read with its column's text parser
(which gives what the decoder gives for the value Debezium sends; tests/unit/test_pg_text.py),
equals the warehouse value as the analyst's client returns it, put in the same Python form.
Values ClickHouse cannot hold (dates before 1900 and after 2299, ±infinity of each date and time
type, numeric NaN) are loaded in their documented representation (docs/type-mapping.md, "Values
ClickHouse cannot hold") with a defect naming the column, and nothing is quarantined.
"""
from __future__ import annotations

import math
import struct
import time
import uuid
from datetime import timedelta, timezone

import psycopg
import pytest
from confluent_kafka import Consumer, TopicPartition

from model.regulation import load_all
from infra.stack import SOURCE_DB
from schemas.avro_codec import codec_for
from model.names import QUARANTINE_TOPIC
from connectors.pg_text import text_parser
from model.types.postgresql import parse_pg_type
from tests.e2e.warehouse import poll_until

TABLE = "catalog.type_samples"
WAREHOUSE = "udw.demo__catalog__type_samples"
UTC = timezone.utc
OUT_OF_RANGE_ID = 4

# Rows by id, each value as PostgreSQL's text input (cast to the column's type on insert); columns
# left out are NULL. Row 2 is all NULL.
ROWS = {
    1: {
        "v_smallint": "32767", "v_integer": "-2147483648", "v_bigint": "9223372036854775807",
        "v_numeric": "1234567890123456789012345678.0123456789", "v_real": "1.1", "v_double": "-1.5e-300",
        "v_boolean": "true", "v_text": 'Әлем 🌍 "q" \\ tab\tnew\nline', "v_varchar": "Қазақстан",
        "v_char": "ab", "v_date": "1900-01-01", "v_timestamp": "1900-01-01 00:00:00",
        "v_timestamp3": "2299-12-31 23:59:59.999", "v_timestamptz": "2100-06-30 12:00:00+06",
        "v_uuid": str(uuid.UUID(int=0xA0EEBC999C0B4EF8BB6D6BB9BD380A11)), "v_json": '{"b": 1,  "a": [2]}',
        "v_jsonb": '{"b": 1, "a": [1.50, "ä"]}', "v_money": "-92233720368547758.08", "v_time": "24:00:00",
        "v_time3": "12:34:56.789", "v_timetz": "10:15:30.123456+06",
        "v_interval": "-1 years -2 mons +3 days -04:05:06.78", "v_bytea": "\\x00ff80fe",
        "v_status": "in progress", "v_inet": "2001:db8::1/64", "v_cidr": "10.0.0.0/8",
        "v_macaddr": "08:00:2b:01:02:03", "v_macaddr8": "08:00:2b:01:02:03:04:05",
        "v_int_array": "{1,NULL,3}", "v_bigint_array": "{}", "v_text_array": '{"a b",NULL,"NULL","Әлем"}',
        "v_varchar_array": "{x,y}", "v_numeric_array": "{1.5,NULL,-0.01}", "v_uuid_array": "{NULL}",
        "v_date_array": "{1900-01-01,2299-12-31}",
        "v_timestamptz_array": '{"1969-12-31 23:59:59.999999+00",NULL}', "v_bool_array": "{t,f,NULL}",
        "v_numeric_any": "123456789012345678901234567890123456789012345678901234567890.0123456789012345678901234567890",
        "v_numeric5": "-99999", "v_tstz3": "2024-02-29 23:59:59.999+06",
        "v_xml": '<appeal id="1"><text>Әлем &amp; "q"</text></appeal>', "v_citext": "Алматы",
        "v_ltree": "kz.almaty.medeu", "v_int4range": "[1,10)", "v_numrange": "(1.5,2.25]",
        "v_daterange": "[2024-01-01,2024-02-01)", "v_numeric_any_array": "{1.5,NULL,-0.000000000000000000001}",
        "v_domain": "9999999999.99",
    },
    2: {},
    3: {
        "v_smallint": "-32768", "v_integer": "2147483647", "v_bigint": "-9223372036854775808",
        "v_numeric": "-0.0000000001", "v_real": "NaN", "v_double": "Infinity", "v_boolean": "false",
        "v_text": "", "v_varchar": "", "v_char": "abcde", "v_date": "2299-12-31",
        "v_timestamp": "2262-04-12 00:00:00.000001", "v_timestamp3": "1969-12-31 23:59:59.999",
        "v_timestamptz": "1900-01-01 00:00:00+00", "v_uuid": str(uuid.UUID(int=0)), "v_json": "[]",
        "v_jsonb": "{}", "v_money": "92233720368547758.07", "v_time": "00:00:00", "v_time3": "23:59:59.999",
        "v_timetz": "23:30:00-05", "v_interval": "1 mon -30 days", "v_bytea": "\\x",
        "v_status": "deceased", "v_inet": "192.168.1.5", "v_cidr": "2001:db8::/32",
        "v_macaddr": "08:00:2b:ff:fe:01", "v_macaddr8": "08:00:2b:ff:fe:01:02:03", "v_int_array": "{}",
        "v_bigint_array": "{-9223372036854775808,9223372036854775807}", "v_text_array": '{""}',
        "v_varchar_array": "{NULL,NULL}", "v_numeric_array": "{}", "v_uuid_array": "{00000000-0000-0000-0000-000000000001}",
        "v_date_array": "{}", "v_timestamptz_array": '{"2038-01-19 03:14:08+00"}', "v_bool_array": "{}",
        "v_numeric_any": "NaN", "v_numeric5": "0", "v_tstz3": "1900-01-01 00:00:00+00", "v_xml": "plain text",
        "v_citext": "", "v_ltree": "", "v_int4range": "empty", "v_numrange": "(,)", "v_daterange": "[2024-01-01,)",
        "v_numeric_any_array": "{}", "v_domain": "0.01",
    },
    5: {"v_text": "deleted before the check", "v_int_array": "{5}"},
}
# Rows with a value ClickHouse cannot hold, by id: (column, source text, the warehouse value as
# toString gives it). Each is loaded saturated (or empty, for NaN) with a defect naming the column.
BEYOND = {
    OUT_OF_RANGE_ID: ("v_date", "2300-01-01", "2299-12-31"),
    101: ("v_date", "1850-03-01", "1900-01-01"),
    102: ("v_date", "infinity", "2299-12-31"),
    103: ("v_date", "-infinity", "1900-01-01"),
    104: ("v_timestamp", "infinity", "2299-12-31 23:59:59.999999"),
    105: ("v_timestamp3", "-infinity", "1900-01-01 00:00:00.000000"),
    106: ("v_timestamptz", "infinity", "2299-12-31 23:59:59.999999"),
    107: ("v_timestamptz", "-infinity", "1900-01-01 00:00:00.000000"),
    108: ("v_numeric", "NaN", None),
    109: ("v_date", "12000-01-01", "2299-12-31"),
    110: ("v_timestamptz", "1850-01-01 10:00:00+00", "1900-01-01 00:00:00.000000"),
    111: ("v_date_array", "{infinity,1850-01-01,2000-01-01}", "['2299-12-31','1900-01-01','2000-01-01']"),
    112: ("v_timestamptz_array", "{-infinity,NULL}", "['1900-01-01 00:00:00.000000',NULL]"),
    113: ("v_timestamp3", "infinity", "2299-12-31 23:59:59.999999"),
}
UPDATES = {
    1: {"v_interval": "00:00:00.000001", "v_int_array": None, "v_money": "0.01", "v_status": "active",
        "v_bytea": "\\x00"},
    3: {"v_text_array": "{}", "v_timestamptz": "1969-07-20 20:17:40+00", "v_time": "24:00:00"},
}


@pytest.fixture(scope="module")
def table(stack):
    regulations = load_all(stack.s.regulations_dir, stack.s.regulation_env())
    regulation = next(r for r in regulations if any(t.name == TABLE for t in r.tables))
    return regulation, next(t for t in regulation.tables if t.name == TABLE), codec_for(regulations)


@pytest.fixture(scope="module")
def source(stack):
    """An own connection with fixed output settings: the text forms the comparison reads depend on them."""
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB), autocommit=True) as conn:
        for setting in ("TimeZone = 'UTC'", "DateStyle = 'ISO, YMD'", "IntervalStyle = 'postgres'",
                        "bytea_output = 'hex'", "extra_float_digits = 1"):
            conn.execute(f"SET {setting}")
        yield conn


def _columns(table) -> dict[str, str]:
    return {c.name: c.type for c in table.columns}


def _insert(conn, table, row_id: int, values: dict[str, str | None]) -> None:
    declared = _columns(table)
    names = list(values)
    casts = ", ".join(f"%s::{_pg_cast(declared[name], name)}" for name in names)
    conn.execute(f"INSERT INTO {TABLE} (id{''.join(', ' + n for n in names)}) VALUES (%s{', ' if names else ''}{casts})",
                 [row_id, *values.values()])


def _update(conn, table, row_id: int, values: dict[str, str | None]) -> None:
    declared = _columns(table)
    sets = ", ".join(f"{name} = %s::{_pg_cast(declared[name], name)}" for name in values)
    conn.execute(f"UPDATE {TABLE} SET {sets}, updated_at = now() WHERE id = %s", [*values.values(), row_id])


def _pg_cast(declared: str, name: str) -> str:
    """The column's own type, for a cast from its text: the regulation spells enums its own way."""
    if name == "v_status":
        return "catalog.sample_status"
    return declared


def _source_select(table) -> str:
    # money through numeric: its own text carries the currency of lc_monetary.
    return "SELECT " + ", ".join(
        "id" if c.name == "id" else f"{c.name}::numeric::text" if c.type == "money" else f"{c.name}::text"
        for c in table.columns) + f" FROM {TABLE} WHERE id <> ALL(ARRAY{sorted(BEYOND)}) ORDER BY id"


def _warehouse_select(table) -> str:
    # bytea as hex: the client would decode the String column as UTF-8.
    return "SELECT " + ", ".join(f"hex({c.name})" if c.type == "bytea" else f"`{c.name}`" for c in table.columns) + \
        f" FROM {WAREHOUSE} FINAL WHERE _is_deleted = 0 AND id NOT IN ({', '.join(map(str, BEYOND))}) ORDER BY id"


def _float32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _normal(clickhouse_type: str, value):
    """A value in decode's Python form, from either side: the warehouse client returns timedelta for
    Time64, UUID objects, float32s widened to doubles and tuples it may give as tuples."""
    if value is None:
        return None
    for wrapper in ("Nullable(", "LowCardinality("):
        if clickhouse_type.startswith(wrapper):
            return _normal(clickhouse_type[len(wrapper):-1], value)
    if clickhouse_type.startswith("Array("):
        return [_normal(clickhouse_type[len("Array("):-1], item) for item in value]
    if clickhouse_type.startswith("Time64"):
        return value // timedelta(microseconds=1) if isinstance(value, timedelta) else value
    if clickhouse_type.startswith("DateTime64"):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if clickhouse_type.startswith("Tuple("):
        return value if isinstance(value, dict) else dict(zip(("months", "days", "micros"), value))
    if clickhouse_type == "UUID":
        return str(value)
    if clickhouse_type == "Float32":
        return _float32(value)
    return value


def _same(left, right) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    return left == right


def _source_rows(conn, table) -> dict[int, dict]:
    rows = {}
    for row in conn.execute(_source_select(table)).fetchall():
        values = {}
        for column, text in zip(table.columns, row):
            value = text if column.name == "id" or text is None else text_parser(column.type)(text)
            values[column.name] = _normal(parse_pg_type(column.type).clickhouse, value)
        rows[row[0]] = values
    return rows


def _warehouse_rows(ch, table) -> dict[int, dict]:
    rows = {}
    for row in ch.query(_warehouse_select(table)).result_rows:
        values = {}
        for column, value in zip(table.columns, row):
            if column.type == "bytea" and value is not None:
                value = bytes.fromhex(value)
            values[column.name] = _normal(parse_pg_type(column.type).clickhouse, value)
        rows[row[0]] = values
    return rows


def _differences(source_rows: dict, warehouse_rows: dict) -> list[str]:
    found = [f"id {i}: {'missing in the warehouse' if i in source_rows else 'not at the source'}"
             for i in sorted(source_rows.keys() ^ warehouse_rows.keys())]
    for row_id in sorted(source_rows.keys() & warehouse_rows.keys()):
        for name, value in source_rows[row_id].items():
            if not _same(value, warehouse_rows[row_id][name]):
                found.append(f"id {row_id} {name}: source {value!r}, warehouse {warehouse_rows[row_id][name]!r}")
    return found


def _quarantined(stack, codec, timeout: float) -> list[dict]:
    """Quarantine records of the type samples (the test's values are not personal: reasons may show)."""
    consumer = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(QUARANTINE_TOPIC, 0, 0)])
    found, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1):
                if message.error():
                    continue
                _, record = codec.decode(message.value())
                if record["table"] == TABLE:
                    found.append(record)
    finally:
        consumer.close()
    return found


@pytest.fixture(scope="module")
def loaded(source, table):
    """The samples written at the source: inserts, then updates and a delete in later transactions."""
    regulation, samples, _ = table
    assert regulation.warehouse_table(samples) == WAREHOUSE.split(".", 1)[1]
    with source.transaction():
        source.execute(f"DELETE FROM {TABLE}")
        for row_id, values in ROWS.items():
            _insert(source, samples, row_id, values)
        for row_id, (column, text, _) in BEYOND.items():
            _insert(source, samples, row_id, {column: text, "v_text": "beyond ClickHouse"})
    for row_id, values in UPDATES.items():
        _update(source, samples, row_id, values)
    source.execute(f"DELETE FROM {TABLE} WHERE id = 5")
    return samples


def test_values_clickhouse_cannot_hold_are_loaded_with_a_defect(stack, ch, table, loaded):
    _, _, codec = table
    state = {}
    ids = ", ".join(str(i) for i in BEYOND)

    def loaded_all() -> bool:
        rows = ch.query(f"SELECT id, _defects, " + ", ".join(f"toString({c})" for c in sorted({c for c, _, _ in BEYOND.values()}))
                        + f" FROM {WAREHOUSE} FINAL WHERE id IN ({ids}) ORDER BY id").result_rows
        columns = sorted({c for c, _, _ in BEYOND.values()})
        state["rows"] = {row[0]: (row[1], dict(zip(columns, row[2:]))) for row in rows}
        return set(state["rows"]) == set(BEYOND)

    poll_until(loaded_all, 90, "every row with a value beyond ClickHouse to be loaded")
    for row_id, (column, text, stored) in BEYOND.items():
        defects, values = state["rows"][row_id]
        assert values[column] == stored, f"id {row_id} {column} ({text}): stored {values[column]!r}, expected {stored!r}"
        assert [d for d in defects if d.startswith(f"{column}: ")], f"id {row_id}: no defect names {column}: {defects}"
        assert all(text not in d for d in defects if text not in ("infinity", "-infinity", "NaN")), defects
    assert not _quarantined(stack, codec, timeout=3), "a value beyond ClickHouse's range was quarantined"


def test_every_type_reaches_the_warehouse_unchanged(stack, source, ch, table, loaded):
    _, samples, codec = table
    state = {}

    def converged() -> bool:
        state["differences"] = _differences(_source_rows(source, samples), _warehouse_rows(ch, samples))
        return not state["differences"]

    try:
        poll_until(converged, 90, "the type samples to converge")
    except AssertionError:
        others = [r["reason"] for r in _quarantined(stack, codec, timeout=5)]
        raise AssertionError(f"warehouse differs from the source: {state['differences'][:20]}; "
                             f"other quarantine reasons of {TABLE}: {others}") from None
    assert sorted(_source_rows(source, samples)) == [1, 2, 3]


EDGE_SQL = ("SELECT id, toString(v_time), toString(v_interval), toString(v_money), hex(v_bytea), isNull(v_int_array), "
            "toString(v_bigint_array), toString(v_date), toString(v_timestamp), toString(v_timestamptz), "
            "toString(v_timetz), v_inet, toString(v_int_array), toString(v_text_array) "
            f"FROM {WAREHOUSE} FINAL WHERE _is_deleted = 0 AND id IN (1, 2, 3) ORDER BY id")
EDGES = {
    1: ("24:00:00.000000", "(0,0,1)", "0.01", "00", 1, "[]", "1900-01-01", "1900-01-01 00:00:00.000000",
        "2100-06-30 06:00:00.000000", "04:15:30.123456", "2001:db8::1/64", "", "['a b',NULL,'NULL','Әлем']"),
    # A NULL array is NULL (toString gives '' for it), an empty one is [].
    2: (None, None, None, None, 1, "", None, None, None, None, None, "", ""),
    3: ("24:00:00.000000", "(1,-30,0)", "92233720368547758.07", "", 0, "[-9223372036854775808,9223372036854775807]",
        "2299-12-31", "2262-04-12 00:00:00.000001", "1969-07-20 20:17:40.000000",
        "04:30:00.000000", "192.168.1.5", "[]", "[]"),   # 23:30:00-05 in UTC
}


def test_edge_values_as_analysts_see_them(stack, ch, loaded):
    """What the comparison above puts in Python's terms, spelled out in ClickHouse's own."""
    state = {}

    def arrived() -> bool:
        state["rows"] = {row[0]: row[1:] for row in ch.query(EDGE_SQL).result_rows}
        return state["rows"] == EDGES

    try:
        poll_until(arrived, 90, "the type samples' edge values")
    except AssertionError:
        assert state["rows"] == EDGES  # shows which differ
