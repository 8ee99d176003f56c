"""Avro single-object encoding (schemas/avro_codec.py) and ClickHouse DDL (sinks/ddl.py)."""
from __future__ import annotations

import io
import re
from datetime import date, datetime, timezone
from decimal import Decimal

import fastavro
import pytest
from fastavro.schema import to_parsing_canonical_form

from schemas.avro_codec import AvroCodec, clean_schema, codec_for, load_avsc
from sinks.ddl import HELD_COLUMN, META_COLUMNS, META_FIELDS, create_table_sql, warehouse_columns

# Clean records carry the warehouse's meta fields plus the hold list, which only held tables store.
AVRO_META = META_FIELDS + [HELD_COLUMN[0], "_unchanged"]  # _unchanged: for the sink, not a column

UTC = timezone.utc
DROPPED = ("last_name", "first_name", "middle_name", "address")


# --- an independent CRC-64-AVRO (Avro specification, "Schema Fingerprints") ----------------

_EMPTY = 0xC15D213AA4D7A795


def _table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_FP_TABLE = _table()


def crc64_avro(data: bytes) -> int:
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _FP_TABLE[(fp ^ byte) & 0xFF]
    return fp


def canonical(schema: dict) -> bytes:
    return to_parsing_canonical_form(fastavro.parse_schema(schema)).encode("utf-8")


def payment_record(**overrides) -> dict:
    record = {
        "payment_id": 9001, "person_iin_hash": "a" * 52, "org_bin_hash": "b" * 52,
        "payment_type": "pension", "amount": Decimal("48500.50"), "period": date(2024, 1, 1),
        "status": "paid", "paid_at": None, "kato_code_region": "75",
        "updated_at": datetime(2024, 1, 20, 4, 0, 0, 123456, tzinfo=UTC), "_op": "c", "_version": 24_023_128, "_is_deleted": 0,
        "_source_ts_ms": datetime(2024, 1, 20, 4, 0, 0, 123000, tzinfo=UTC),
        "_processed_ts_ms": datetime(2024, 1, 20, 4, 0, 1, 456000, tzinfo=UTC),
        "_key_id": "k1", "_defects": ["kato_code: not a 9-digit KATO code"], "_held_by": [], "_unchanged": [],
    }
    record.update(overrides)
    return record


# --- schemas --------------------------------------------------------------------------------


def test_every_clean_schema_parses_with_expected_fields(demo) -> None:
    meta = [f["name"] for f in load_avsc("clean_meta")["fields"]]
    assert meta == AVRO_META
    for table in demo.tables:
        schema = clean_schema(demo, table)
        fastavro.parse_schema(schema)
        names = [f["name"] for f in schema["fields"]]
        outputs = [c.output_name for c in table.columns if c.output_name]
        assert names == outputs + meta
        assert schema["namespace"] == "qoima.clean.demo"
        for field in schema["fields"][: len(outputs)]:
            source = next(c for c in table.columns if c.output_name == field["name"])
            if source.name in table.primary_key:
                assert not isinstance(field["type"], list)       # keys are never null
            else:
                assert field["type"][0] == "null" and field["default"] is None
        for dropped in DROPPED:
            assert dropped not in names


def test_quarantine_schema_parses() -> None:
    schema = load_avsc("quarantine")
    fastavro.parse_schema(schema)
    kinds = next(f for f in schema["fields"] if f["name"] == "error_kind")["type"]["symbols"]
    assert set(kinds) == {"undecodable", "unknown_table", "bad_value", "missing_value", "unexpected_op", "rule_violation",
                          "internal_error", "schema_drift", "depersonalization_check"}


def spec_header(schema: dict) -> bytes:
    """C3 01, then the 8-byte little-endian CRC-64-AVRO fingerprint of the canonical form."""
    return b"\xc3\x01" + crc64_avro(canonical(schema)).to_bytes(8, "little")


def demo_schemas(demo) -> dict[str, dict]:
    schemas = {demo.clean_topic(t): clean_schema(demo, t) for t in demo.tables}
    schemas["qoima.quarantine"] = load_avsc("quarantine")
    return schemas


def test_codec_knows_every_topic_with_distinct_fingerprints(demo, codec) -> None:
    fingerprints = set()
    for topic, schema in demo_schemas(demo).items():
        header = codec._by_name[topic][0]
        assert len(header) == 10 and header[:2] == b"\xc3\x01"
        assert header[2:] == spec_header(schema)[2:]
        fingerprints.add(header[2:])
    assert len(fingerprints) == len(demo.tables) + 1  # and the quarantine


def test_crc64_avro_reference_implementation() -> None:
    # Test vector from the Avro project (share/test/data/schema-tests.txt): "null" -> 7195948357588979594.
    assert crc64_avro(b'"null"') == 7195948357588979594
    assert crc64_avro(b"") == _EMPTY


def test_header_fingerprint_is_little_endian_per_spec(demo, codec) -> None:
    for topic, schema in demo_schemas(demo).items():
        assert codec._by_name[topic][0] == spec_header(schema), topic


# --- encode / decode ------------------------------------------------------------------------


def test_round_trip(codec) -> None:
    record = payment_record()
    payload = codec.encode("qoima.clean.demo.social.payments", record)
    name, decoded = codec.decode(payload)
    assert name == "qoima.clean.demo.social.payments"
    assert decoded == record
    assert str(decoded["amount"]) == "48500.50"


def test_single_object_header(codec, demo) -> None:
    payload = codec.encode("qoima.clean.demo.social.payments", payment_record())
    assert payload[:2] == b"\xc3\x01"
    assert payload[:10] == codec._by_name["qoima.clean.demo.social.payments"][0]
    assert len(payload) > 10
    # The body after the 10-byte header is plain Avro binary of the record.
    schema = clean_schema(demo, demo.table("social.payments"))
    body = fastavro.schemaless_reader(io.BytesIO(payload[10:]), fastavro.parse_schema(schema), None)
    assert body["payment_id"] == 9001


def test_decode_unknown_fingerprint(codec) -> None:
    payload = codec.encode("qoima.clean.demo.social.payments", payment_record())
    forged = payload[:2] + b"\x00" * 8 + payload[10:]
    with pytest.raises(ValueError, match="fingerprint"):
        codec.decode(forged)


def test_decode_from_a_different_regulation_refused(demo, codec) -> None:
    # A table with one more column: its schema, hence its fingerprint, differs.
    table = demo.table("social.payments")
    extra = table.model_copy(update={"columns": [*table.columns, table.columns[3].model_copy(update={"name": "note"})]})
    other = AvroCodec({"qoima.clean.demo.social.payments": clean_schema(demo, extra)})
    payload = other.encode("qoima.clean.demo.social.payments", {**payment_record(), "note": None})
    with pytest.raises(ValueError) as info:
        codec.decode(payload)
    assert "fingerprint" in str(info.value)
    assert payload[2:10].hex() in str(info.value)


@pytest.mark.parametrize("payload", [b"", b"\xc3\x01\x00", b"\x00\x01" + b"\x00" * 20, b'{"json": true}'])
def test_decode_bad_magic(codec, payload: bytes) -> None:
    with pytest.raises(ValueError, match="single-object"):
        codec.decode(payload)


def test_codec_for_is_deterministic(demo, codec) -> None:
    payload = codec.encode("qoima.clean.demo.social.payments", payment_record())
    assert codec_for([demo]).decode(payload)[1] == payment_record()


# --- DDL ------------------------------------------------------------------------------------


def column_lines(sql: str) -> dict[str, str]:
    return dict(re.findall(r"^    `([^`]+)` (.+?),?$", sql, flags=re.M))


@pytest.mark.parametrize(("table_name", "order_by", "days"), [
    ("population.persons", "person_id", 3650),
    ("social.organizations", "org_id", 3650),
    ("social.payments", "payment_id", 1825),
])
def test_create_table_sql(demo, table_name: str, order_by: str, days: int) -> None:
    table = demo.table(table_name)
    sql = create_table_sql(demo, table)
    assert sql.startswith(f"CREATE TABLE IF NOT EXISTS udw.`{demo.warehouse_table(table)}` (")
    assert "ENGINE = ReplacingMergeTree(_version, _is_deleted)" in sql
    assert f"ORDER BY (`{order_by}`)" in sql
    assert f"TTL toDateTime(_source_ts) + INTERVAL {days} DAY" in sql
    lines = column_lines(sql)
    for column in table.columns:
        if column.output_name is None:
            assert f"`{column.name}`" not in sql
            continue
        ddl_type = lines[column.output_name]
        assert ("Nullable(" in ddl_type) is column.nullable, (column.name, ddl_type)
    for name, ch_type in META_COLUMNS:
        assert lines[name] == ch_type
        assert "Nullable" not in ch_type
    for dropped in DROPPED:
        assert dropped not in sql
    if table_name == "population.persons":
        assert "`iin`" not in sql and "`phone`" not in sql  # only their hashes
        assert lines["iin_hash"] == "String"
        assert lines["phone_hash"] == "Nullable(String)"
        assert lines["birth_date_year"] == "UInt16"
        assert lines["kato_code_region"] == "LowCardinality(Nullable(String))"
        assert lines["updated_at"] == "DateTime64(6, 'UTC')"
        assert lines["person_id"] == "Int64"
    if table_name == "social.payments":
        assert lines["amount"] == "Decimal(14, 2)"
        assert lines["period"] == "Date32"
        assert lines["paid_at"] == "Nullable(DateTime64(6, 'UTC'))"


def test_no_ttl_without_retention(demo) -> None:
    table = demo.table("social.payments").model_copy(update={"retention_days": None})
    assert "TTL" not in create_table_sql(demo, table)


def test_comment_is_quoted(demo) -> None:
    table = demo.table("social.payments").model_copy(update={"description": "it's a \\ test"})
    assert create_table_sql(demo, table).endswith("COMMENT 'it\\'s a \\\\ test'")


def test_warehouse_zero_values(demo) -> None:
    persons = {c.name: c for c in warehouse_columns(demo.table("population.persons"))}
    assert persons["person_id"].zero == 0
    assert persons["iin_hash"].zero == ""
    assert persons["birth_date_year"].zero == 0
    assert persons["sex"].zero == ""
    assert persons["status"].zero == ""
    assert persons["updated_at"].zero == datetime(1970, 1, 1, tzinfo=UTC)
    assert persons["phone_hash"].zero is None           # nullable
    assert persons["kato_code_region"].zero is None
    payments = {c.name: c for c in warehouse_columns(demo.table("social.payments"))}
    assert payments["amount"].zero == Decimal(0)
    assert payments["period"].zero == date(1970, 1, 1)
    assert payments["paid_at"].zero is None
    for column in [*persons.values(), *payments.values()]:
        assert (column.zero is None) is column.nullable


def test_warehouse_columns_match_avro_fields(demo) -> None:
    for table in demo.tables:
        avro = [f["name"] for f in clean_schema(demo, table)["fields"]][: -len(AVRO_META)]
        assert [c.name for c in warehouse_columns(table)] == avro
    assert [c.name for c in warehouse_columns(demo.table("population.persons"))] == [
        "person_id", "iin_hash", "birth_date_year", "sex", "phone_hash", "kato_code_region", "status", "updated_at"]


# --- every action: one source of truth for the output name and type ------------------------

ALL_ACTIONS = {
    "name": "social.appeals",
    "primary_key": ["appeal_id", "iin"],
    "columns": [
        {"name": "appeal_id", "type": "bigint", "nullable": False},
        {"name": "iin", "type": "char(12)", "nullable": False, "action": "hash", "kind": "iin"},
        {"name": "passport_no", "type": "text", "action": "hash", "kind": "passport"},
        {"name": "born", "type": "date", "action": "generalize", "to": "year"},
        {"name": "born_again", "type": "date", "nullable": False, "action": "generalize", "to": "age_band"},
        {"name": "kato", "type": "varchar(9)", "action": "generalize", "to": "kato_region"},
        {"name": "address", "type": "text", "action": "generalize", "to": "address_region"},
        {"name": "postcode", "type": "varchar(8)", "action": "generalize", "to": "postcode_region"},
        {"name": "body", "type": "text", "action": "redact"},
        {"name": "secret", "type": "text", "action": "drop"},
    ],
}
EXPECTED = {  # output name: (Avro type, ClickHouse DDL type)
    "appeal_id": ("long", "Int64"),
    "iin_hash": ("string", "String"),
    "passport_no_hash": (["null", "string"], "Nullable(String)"),
    "born_year": (["null", "int"], "Nullable(UInt16)"),
    "born_again_age_band": (["null", "string"], "LowCardinality(String)"),
    "kato_region": (["null", "string"], "LowCardinality(Nullable(String))"),
    "address_region": (["null", "string"], "LowCardinality(Nullable(String))"),
    "postcode_region": (["null", "string"], "LowCardinality(Nullable(String))"),
    "body_redacted": (["null", "string"], "Nullable(String)"),
}


def test_every_action_has_matching_avro_and_clickhouse_types(demo) -> None:
    from model.regulation import Table

    table = Table.model_validate(ALL_ACTIONS)
    schema = clean_schema(demo, table)
    fastavro.parse_schema(schema)
    avro = {f["name"]: f["type"] for f in schema["fields"][: -len(AVRO_META)]}
    lines = column_lines(create_table_sql(demo, table))
    assert list(avro) == list(EXPECTED) == [c.name for c in warehouse_columns(table)]
    for name, (avro_type, ddl_type) in EXPECTED.items():
        assert avro[name] == avro_type, name
        assert lines[name] == ddl_type, name
    assert "secret" not in lines and "`secret`" not in create_table_sql(demo, table)
    assert "ORDER BY (`appeal_id`, `iin_hash`)" in create_table_sql(demo, table)


def test_new_action_records_round_trip(demo) -> None:
    from model.regulation import Table

    table = Table.model_validate(ALL_ACTIONS)
    codec = AvroCodec({"t": clean_schema(demo, table)})
    record = {
        "appeal_id": 1, "iin_hash": "a" * 52, "passport_no_hash": None, "born_year": 1985,
        "born_again_age_band": "30-39", "kato_region": "75", "address_region": "15", "postcode_region": "old:05",
        "body_redacted": "ИИН [IIN]", "_op": "c", "_version": 1, "_is_deleted": 0,
        "_source_ts_ms": datetime(2024, 1, 1, tzinfo=UTC), "_processed_ts_ms": datetime(2024, 1, 1, tzinfo=UTC),
        "_key_id": "k1", "_defects": [], "_held_by": [], "_unchanged": [],
    }
    assert codec.decode(codec.encode("t", record))[1] == record


def test_zero_values_fill_what_a_schema_does_not_let_be_null() -> None:
    from datetime import date, datetime, timezone
    from decimal import Decimal

    from schemas.avro_codec import zero_value

    assert [zero_value(t) for t in ("long", "int", "string", "boolean", "bytes")] == [0, 0, "", False, b""]
    assert zero_value({"type": "int", "logicalType": "date"}) == date(1970, 1, 1)
    assert zero_value({"type": "long", "logicalType": "timestamp-micros"}) == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert zero_value({"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 0}) == Decimal(0)
    assert zero_value(["null", "string"]) is None
    assert zero_value({"type": "array", "items": "string"}) == []
    with pytest.raises(ValueError, match="no zero value"):
        zero_value("mystery")
