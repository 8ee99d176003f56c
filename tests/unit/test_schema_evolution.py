"""Warehouse tables following the regulation: what is widened, added, refused; old schemas read."""
from __future__ import annotations

import pytest

from sinks.schema_evolution import SchemaEvolutionError, plan, widens
from schemas.avro_codec import AvroCodec


@pytest.mark.parametrize("old, new", [
    ("Int16", "Int32"), ("Int32", "Int64"), ("UInt8", "UInt64"), ("UInt32", "Int64"), ("Float32", "Float64"),
    ("Decimal(14, 2)", "Decimal(18, 2)"), ("Decimal(14, 2)", "Decimal(16, 4)"), ("Date", "Date32"),
    ("String", "Nullable(String)"), ("Int32", "Nullable(Int64)"), ("Nullable(Int32)", "Nullable(Int64)"),
    ("String", "LowCardinality(String)"), ("LowCardinality(Nullable(String))", "Nullable(String)"),
    ("Decimal(14,2)", "Decimal(14, 2)"),
])
def test_widening(old, new):
    assert widens(old, new)


@pytest.mark.parametrize("old, new", [
    ("Int64", "Int32"), ("Float64", "Float32"), ("Decimal(14, 2)", "Decimal(14, 4)"),
    ("Decimal(14, 4)", "Decimal(18, 2)"), ("Nullable(String)", "String"), ("String", "Int64"),
    ("Int32", "String"), ("Date32", "Date"), ("UInt64", "Int64"), ("DateTime64(6, 'UTC')", "Date32"),
])
def test_not_widening(old, new):
    assert not widens(old, new)


def test_plan_adds_and_widens_and_leaves_the_rest():
    existing = {"id": "Int64", "amount": "Decimal(14, 2)", "gone": "String", "_version": "UInt64"}
    wanted = [("id", "Int64"), ("amount", "Decimal(18, 2)"), ("office_phone_hash", "Nullable(String)"),
              ("_version", "UInt64")]
    statements = [a.statement for a in plan("udw.`t`", existing, wanted)]
    assert statements == ["ALTER TABLE udw.`t` MODIFY COLUMN `amount` Decimal(18, 2)",
                          "ALTER TABLE udw.`t` ADD COLUMN IF NOT EXISTS `office_phone_hash` Nullable(String)"]


def test_plan_refuses_narrowing_with_what_to_do():
    with pytest.raises(SchemaEvolutionError) as error:
        plan("udw.`t`", {"amount": "Decimal(18, 2)", "n": "Nullable(Int32)"},
             [("amount", "Decimal(14, 2)"), ("n", "Int32")])
    message = str(error.value)
    assert "udw.`t`.amount: ClickHouse has Decimal(18, 2)" in message
    assert "udw.`t`.n: ClickHouse has Nullable(Int32)" in message
    assert "docs/schema-evolution.md" in message


def _schema(*extra):
    return {"type": "record", "name": "t", "fields": [{"name": "id", "type": "long"}, *extra]}


def test_a_message_written_with_an_earlier_schema_is_read_with_it():
    old = AvroCodec({"clean": _schema()})
    message = old.encode("clean", {"id": 7})
    new_schema = _schema({"name": "phone_hash", "type": ["null", "string"], "default": None})
    history = {fp: entry for fp, entry in old.schemas.items()}
    new = AvroCodec({"clean": new_schema}, history=history.get)
    assert new.decode(message) == ("clean", {"id": 7})
    assert new.decode(new.encode("clean", {"id": 8, "phone_hash": "X"})) == ("clean", {"id": 8, "phone_hash": "X"})


def test_without_history_an_unknown_schema_is_refused():
    message = AvroCodec({"clean": _schema()}).encode("clean", {"id": 7})
    with pytest.raises(ValueError, match="unknown schema fingerprint"):
        AvroCodec({"clean": _schema({"name": "x", "type": "int"})}).decode(message)


def test_history_entry_must_match_its_fingerprint():
    old = AvroCodec({"clean": _schema()})
    message = old.encode("clean", {"id": 7})
    wrong = {fp: ("clean", _schema({"name": "x", "type": "int"})) for fp in old.schemas}
    with pytest.raises(ValueError, match="unknown schema fingerprint"):
        AvroCodec({"clean": _schema({"name": "y", "type": "int"})}, history=wrong.get).decode(message)
