"""Decoded values downstream: through Avro, the warehouse DDL and the sink's ClickHouse client into
ClickHouse itself (chdb, in-process), each type as PostgreSQL holds it."""
from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from types import SimpleNamespace

import fastavro
import pytest

from model.regulation import Column, Table
from model.types.postgresql import parse_pg_type
from schemas.avro_codec import AvroCodec, clean_schema
from sinks.ddl import create_table_sql, warehouse_columns
from streams.decode import decoder
from tests.unit.typed_values import same

UTC = timezone.utc
INTERVAL_CH = "Tuple(months Int32, days Int32, micros Int64)"
INTERVAL_AVRO = {"type": "record", "name": "interval", "namespace": "qoima.pg",
                 "doc": "A PostgreSQL interval as it stores it: months, days and microseconds",
                 "fields": [{"name": "months", "type": "int"}, {"name": "days", "type": "int"},
                            {"name": "micros", "type": "long"}]}


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
    column_type = parse_pg_type(declared)
    typed = decoder(column_type)(debezium)
    assert same(_avro_round_trip(column_type.avro, typed), _avro_read(declared, typed))


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
              "_processed_ts_ms": datetime(2024, 1, 1, tzinfo=UTC), "_key_id": "k1", "_defects": [], "_held_by": [], "_unchanged": []}
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
    "v_numeric_any": "1E+40", "v_numeric5": "12345", "v_tstz3": "2024-02-29T23:59:59.999Z",
    "v_xml": "<a>b</a>", "v_citext": "Алматы", "v_ltree": "kz.almaty", "v_int4range": "[1,10)",
    "v_numrange": "(1.5,2.25]", "v_daterange": "[2024-01-01,2024-02-01)", "v_numeric_any_array": ["NAN", "0.10"],
    "v_domain": "42.50",
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
    "v_numeric_any": "10000000000000000000000000000000000000000", "v_numeric5": "12345",
    "v_tstz3": "2024-02-29 23:59:59.999000", "v_xml": "<a>b</a>", "v_citext": "Алматы", "v_ltree": "kz.almaty",
    "v_int4range": "[1,10)", "v_numrange": "(1.5,2.25]", "v_daterange": "[2024-01-01,2024-02-01)",
    "v_numeric_any_array": "['NaN','0.10']", "v_domain": "42.5",
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
