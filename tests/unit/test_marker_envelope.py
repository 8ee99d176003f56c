"""A polled row as Debezium's envelope (connectors/marker/envelope.py): through the real router it
becomes the very record CDC gives for the same row."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import yaml

from model.regulation import load_regulation
from schemas import envelope
from schemas.avro_codec import codec_for
from streams.keys import pseudonym
from streams.router import Router
from tests.unit.marker_fakes import (IIN, LICENSES_RAW, NOW, UTC, FakeKafka, FakeSource, clean_record,
                                     license_row, marker_regulation, micros, poller_for)


@pytest.fixture(scope="module")
def registry(unit_settings, regulation_env, demo_password_file):
    return marker_regulation(unit_settings, regulation_env)


def test_event_is_a_debezium_envelope(registry) -> None:
    source, kafka = FakeSource([license_row()]), FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    raw = [(k, v) for t, k, v in kafka.delivered if t == LICENSES_RAW]
    assert len(raw) == 1
    key, value = raw[0]
    assert json.loads(key) == {"license_id": 7}  # Debezium's key: the primary key as JSON
    change = envelope.decode(value)
    assert change.op == "r"  # the first full pass is a snapshot
    assert json.loads(value)["source"]["lsn"] == micros(datetime(2024, 1, 15, 10, 30, tzinfo=UTC))  # the marker
    assert change.source_ts_ms == NOW.timestamp() * 1000  # a snapshot's commit time is the poll's
    assert (change.schema, change.table) == ("registry", "licenses")
    assert change.row == {"license_id": 7, "holder_iin": IIN, "license_type": "pharmacy", "issued_on": 19732,
                          "revoked": False, "updated_at": "2024-01-15T10:30:00+00:00"}


def _marker_copy_of_demo(tmp_path, unit_settings, regulation_env):
    """demo.yaml as a marker regulation: same provider, so the same raw topics and router."""
    document = yaml.safe_load((unit_settings.regulations_dir / "demo.yaml").read_text(encoding="utf-8"))
    for name in ("snapshot", "heartbeat_seconds"):
        document["source"].pop(name, None)
    document["source"]["capture"] = "marker"
    # Tables under names that need quoting are captured by CDC only (model/regulation.py).
    document["tables"] = [t for t in document["tables"] if "source_table" not in t]
    for table in document["tables"]:
        table["marker"] = "updated_at"
    path = tmp_path / "demo_polled.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_regulation(path, regulation_env)


PERSON = {"person_id": 42, "iin": IIN, "last_name": "Сейітқалиева", "first_name": "Әйгерім", "middle_name": None,
          "birth_date": date(1985, 1, 1), "sex": "F", "phone": "+7 701 234 56 78",
          "address": "Алматы, Абай даңғылы 10", "kato_code": "751110000", "status": "active",
          "updated_at": datetime(2024, 1, 15, 16, 30, 0, 123456, tzinfo=timezone(timedelta(hours=6)))}
PERSON_DEBEZIUM = {**PERSON, "birth_date": 5479, "updated_at": "2024-01-15T10:30:00.123456Z"}
PAYMENT = {"payment_id": 9001, "person_iin": IIN, "org_bin": "071240500401", "payment_type": "pension",
           "amount": Decimal("48500.50"), "period": date(2024, 1, 1), "status": "paid",
           "paid_at": datetime(2024, 1, 14, 4, 0, tzinfo=UTC), "updated_at": datetime(2024, 1, 14, 4, 0, tzinfo=UTC),
           "kato_code": "751110000"}
PAYMENT_DEBEZIUM = {**PAYMENT, "amount": "48500.50", "period": 19723, "paid_at": "2024-01-14T04:00:00Z",
                    "updated_at": "2024-01-14T04:00:00Z"}


def _cdc(op: str, table: str, row: dict, ts_ms: int, lsn: int = 24_023_128, **extra) -> bytes:
    schema, name = table.split(".")
    return json.dumps({"before": None if op != "d" else row, "after": None if op == "d" else {**row, **extra},
                       "source": {"connector": "postgresql", "ts_ms": ts_ms, "lsn": lsn, "schema": schema,
                                  "table": name},
                       "op": op, "ts_ms": ts_ms + 5}, ensure_ascii=False).encode()


@pytest.mark.parametrize("table, row, debezium", [
    ("population.persons", PERSON, PERSON_DEBEZIUM),
    ("social.payments", PAYMENT, PAYMENT_DEBEZIUM),
])
def test_polled_row_becomes_the_record_cdc_gives(tmp_path, unit_settings, regulation_env, ring, table, row,
                                                 debezium) -> None:
    polled = _marker_copy_of_demo(tmp_path, unit_settings, regulation_env)
    codec = codec_for([polled])
    router = Router([polled], ring, codec)
    topic = polled.raw_topic(polled.table(table))
    source = FakeSource([row], extra=["legacy_note"])  # one column the regulation does not declare
    kafka = FakeKafka()
    poller = poller_for(polled, source, kafka)
    for state in poller.states.values():
        state.snapshot_done, state.position = True, 0  # past the first pass: an ordinary change
    poller.poll(polled)
    [value] = [v for t, _, v in kafka.delivered if t == topic]
    change = envelope.decode(value)
    assert change.op == "u"
    assert json.loads(value)["source"]["lsn"] == micros(row["updated_at"])  # the marker, in microseconds
    assert change.source_ts_ms == micros(row["updated_at"]) // 1000  # a timestamptz marker is the commit time
    from_poller = clean_record(router, codec, topic, value)
    from_cdc = clean_record(router, codec, topic, _cdc("u", table, debezium, change.source_ts_ms, legacy_note="x"))
    assert from_poller.pop("_version") == from_cdc.pop("_version")  # both the raw offset's (streams/versions.py)
    assert from_poller == from_cdc  # hashes, drops, generalizations, defects, commit time: all the same
    assert "legacy_note: not declared in the regulation, not loaded" in from_poller["_defects"]
    assert b"legacy_note\":null" in value  # named, its value never read


def test_deleted_flag_is_a_delete_with_the_key_only(registry, ring) -> None:
    codec = codec_for([registry])
    router = Router([registry], ring, codec)
    source, kafka = FakeSource([license_row(revoked=True)]), FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    [(key, value)] = [(k, v) for t, k, v in kafka.delivered if t == LICENSES_RAW]
    event = json.loads(value)
    assert event["op"] == "d" and event["after"] is None
    assert event["before"] == {"license_id": 7}  # the key only, as Debezium sends with the default replica identity
    assert json.loads(key) == {"license_id": 7}
    record = clean_record(router, codec, LICENSES_RAW, value)
    assert (record["_is_deleted"], record["_op"], record["license_id"]) == (1, "d", 7)
    assert record["holder_iin_hash"] is None


def test_hashed_like_cdc(registry, ring) -> None:
    codec = codec_for([registry])
    source, kafka = FakeSource([license_row()]), FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    [value] = [v for t, _, v in kafka.delivered if t == LICENSES_RAW]
    record = clean_record(Router([registry], ring, codec), codec, LICENSES_RAW, value)
    assert record["holder_iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert IIN not in json.dumps(record, default=str)
