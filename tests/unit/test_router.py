"""The router (streams/router.py) fed hand-written Debezium envelopes (JSON, schemas disabled).

Every output, clean or quarantined, is checked for privacy: its bytes (raw and read as UTF-8)
and its decoded record must not contain the clear IIN, BIN, phone digits or names of the input.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from streams.versions import raw_event_version

from streams.keys import pseudonym
from streams.router import QUARANTINE_TOPIC, Output

PERSONS_RAW = "qoima.raw.demo.population.persons"
PERSONS_CLEAN = "qoima.clean.demo.population.persons"
PAYMENTS_RAW = "qoima.raw.demo.social.payments"
PAYMENTS_CLEAN = "qoima.clean.demo.social.payments"

IIN = "850101300124"
BIN = "071240500401"
LAST, FIRST, MIDDLE = "Сейітқалиева", "Әйгерім", "Қайратқызы"
ADDRESS = "Алматы, Абай даңғылы 10, кв. 5"
CLEAR = [IIN, BIN, "7012345678", "701 234 56 78", "234-56-78", LAST, FIRST, MIDDLE, "Абай", "даңғылы",
         "751110000"]

LSN = 24_023_128
SOURCE_TS = 1_705_314_600_000  # 2024-01-15T10:30:00Z


def person_row(**overrides) -> dict:
    row = {
        "person_id": 42, "iin": IIN, "last_name": LAST, "first_name": FIRST, "middle_name": MIDDLE,
        "birth_date": 5479, "sex": "F", "phone": "+7 701 234 56 78", "address": ADDRESS,
        "kato_code": "751110000", "status": "active", "updated_at": "2024-01-15T16:30:00.123456+06:00",
    }
    row.update(overrides)
    return row


def payment_row(**overrides) -> dict:
    row = {
        "payment_id": 9001, "person_iin": IIN, "org_bin": BIN, "payment_type": "pension",
        "amount": "48500.5", "period": 19723, "status": "paid", "paid_at": "2024-01-20T04:00:00Z",
        "updated_at": "2024-01-20T04:00:00Z",
    }
    row.update(overrides)
    return row


def envelope(op: str, after: dict | None, before: dict | None = None, table: str = "population.persons",
             lsn: int = LSN) -> bytes:
    schema, name = table.split(".")
    event = {
        "before": before,
        "after": after,
        "source": {"version": "2.7.3.Final", "connector": "postgresql", "name": "qoima.raw.demo",
                   "ts_ms": SOURCE_TS, "snapshot": "true" if op == "r" else "false", "db": "gosdata",
                   "sequence": "[null,\"24023128\"]", "schema": schema, "table": name, "txId": 771,
                   "lsn": lsn, "xmin": None},
        "op": op,
        "ts_ms": SOURCE_TS + 150,
        "transaction": None,
    }
    return json.dumps(event, ensure_ascii=False).encode("utf-8")


@pytest.fixture()
def check(codec):
    """Route, then assert the output leaks nothing; return (output, decoded record)."""

    def assert_private(out: Output) -> dict:
        name, record = codec.decode(out.value)
        assert name == out.topic
        decoded = json.dumps(record, default=str, ensure_ascii=False)
        for blob in (out.value, out.key or b""):
            as_text = blob.decode("utf-8", errors="replace")
            for clear in CLEAR:
                assert clear.encode("utf-8") not in blob, clear
                assert clear not in as_text, clear
        for clear in CLEAR:
            assert clear not in decoded, clear
            assert all(clear not in d for d in out.defects)
        return record

    return assert_private


@pytest.mark.parametrize("leak", [IIN, FIRST, "8 (701) 234-56-78"])
def test_privacy_check_itself_catches_a_leak(codec, check, leak: str) -> None:
    record = {"provider": "demo", "table": None, "source_topic": PERSONS_RAW, "source_partition": 0,
              "source_offset": 1, "reason": f"bad value {leak}", "error_kind": "bad_value",
              "payload_depersonalized": None, "payload_bytes": 1, "payload_digest": "x",
              "quarantined_ts_ms": datetime.now(timezone.utc), "key_id": "k1"}
    out = Output(QUARANTINE_TOPIC, b"k", codec.encode(QUARANTINE_TOPIC, record), "", "quarantined")
    with pytest.raises(AssertionError):
        check(out)


# --- clean records --------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["c", "u", "r"])
def test_create_update_snapshot_are_clean(router, check, ring, op: str) -> None:
    before = person_row(status="pending") if op == "u" else None
    out = router.route(PERSONS_RAW, 0, 17, envelope(op, person_row(), before))
    assert out is not None
    assert (out.topic, out.outcome, out.op, out.table) == (PERSONS_CLEAN, "clean", op, "population.persons")
    assert out.key == b"[42]"
    assert out.defects == ()
    assert out.source_ts_ms == SOURCE_TS
    record = check(out)
    expected = {
        "person_id": 42,
        "iin_hash": pseudonym(ring.subkey("iin"), IIN.encode()),
        "birth_date_year": 1985,
        "sex": "F",
        "phone_hash": pseudonym(ring.subkey("phone"), b"+77012345678"),
        "kato_code_region": "75",
        "status": "active",
        "updated_at": datetime(2024, 1, 15, 10, 30, 0, 123456, tzinfo=timezone.utc),
        "_op": op,
        "_version": raw_event_version(17),
        "_is_deleted": 0,
        "_source_ts_ms": datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc),
        "_key_id": "k1",
        "_defects": [],
        "_held_by": [],
        "_unchanged": [],
    }
    processed = record.pop("_processed_ts_ms")
    assert record == expected
    assert abs((datetime.now(timezone.utc) - processed).total_seconds()) < 60


def test_payment_types_round_trip(router, check, ring) -> None:
    out = router.route(PAYMENTS_RAW, 0, 1, envelope("c", payment_row(), table="social.payments"))
    record = check(out)
    assert out.topic == PAYMENTS_CLEAN
    assert record["amount"] == Decimal("48500.50")
    assert record["period"] == date(2024, 1, 1)
    assert record["paid_at"] == datetime(2024, 1, 20, 4, tzinfo=timezone.utc)
    assert record["person_iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert record["org_bin_hash"] == pseudonym(ring.subkey("bin"), BIN.encode())


def test_same_person_joins_across_tables(router, codec) -> None:
    person = codec.decode(router.route(PERSONS_RAW, 0, 1, envelope("c", person_row())).value)[1]
    pay = codec.decode(router.route(PAYMENTS_RAW, 0, 1, envelope("c", payment_row(), table="social.payments")).value)[1]
    assert person["iin_hash"] == pay["person_iin_hash"]


def test_version_follows_the_raw_offset_not_the_lsn(router, codec) -> None:
    """A transaction that began before another and committed after it has the lower LSNs but
    the later raw offset: the later offset wins, as the later commit must (streams/versions.py)."""
    committed_later = codec.decode(router.route(PERSONS_RAW, 0, 9, envelope("u", person_row(), lsn=100)).value)[1]
    committed_first = codec.decode(router.route(PERSONS_RAW, 0, 8, envelope("u", person_row(), lsn=200)).value)[1]
    assert committed_later["_version"] > committed_first["_version"]
    assert (committed_first["_version"], committed_later["_version"]) == (raw_event_version(8), raw_event_version(9))


def test_schemas_enabled_envelope_tolerated(router, check) -> None:
    inner = json.loads(envelope("c", person_row()))
    wrapped = json.dumps({"schema": {"type": "struct"}, "payload": inner}, ensure_ascii=False).encode()
    out = router.route(PERSONS_RAW, 0, 3, wrapped)
    assert out.outcome == "clean"
    check(out)


def test_defective_identifiers_are_clean_with_notes(router, check) -> None:
    out = router.route(PERSONS_RAW, 0, 4, envelope("c", person_row(iin="850101300125", phone="+7 916 123 45 67")))
    assert out.outcome == "clean"
    record = check(out)
    assert record["iin_hash"].startswith("invalid:")
    # The identifier's own validation, and the demo's flag rule iin_valid on the same column.
    assert sorted(record["_defects"]) == ["iin: not a valid iin", "iin: not a valid iin (rule iin_valid)",
                                          "phone: not a valid phone"]
    assert list(out.defects) == record["_defects"]
    assert [(v.rule, v.action) for v in out.violations] == [("iin_valid", "flag")]
    assert "850101300125" not in json.dumps(record, default=str)


def test_undeclared_column_noted_not_loaded(router, check) -> None:
    out = router.route(PERSONS_RAW, 0, 5, envelope("c", person_row(passport_no="N98765432")))
    assert out.outcome == "clean"
    record = check(out)
    assert record["_defects"] == ["passport_no: not declared in the regulation, not loaded"]
    assert b"N98765432" not in out.value
    assert "passport_no" not in record


# --- deletes and tombstones -----------------------------------------------------------------


def test_delete_with_key_only(router, check) -> None:
    out = router.route(PAYMENTS_RAW, 0, 6, envelope("d", None, before={"payment_id": 9001}, table="social.payments"))
    assert (out.outcome, out.op, out.key) == ("clean", "d", b"[9001]")
    record = check(out)
    assert record["_is_deleted"] == 1
    assert record["_op"] == "d"
    assert record["_version"] == raw_event_version(6)
    assert record["payment_id"] == 9001
    for column in ("person_iin_hash", "org_bin_hash", "payment_type", "amount", "period", "status", "paid_at",
                   "updated_at"):
        assert record[column] is None


def test_delete_with_full_before_image_keeps_only_the_key(router, check) -> None:
    # REPLICA IDENTITY FULL sends the whole old row; only the key may leave.
    out = router.route(PERSONS_RAW, 0, 7, envelope("d", None, before=person_row()))
    record = check(out)
    assert record["_is_deleted"] == 1 and record["person_id"] == 42
    assert record["iin_hash"] is None and record["phone_hash"] is None and record["sex"] is None


def test_tombstone_is_nothing(router) -> None:
    assert router.route(PERSONS_RAW, 0, 8, None) is None


# --- quarantine -----------------------------------------------------------------------------


def quarantined(out: Output, check, kind: str) -> dict:
    assert out.topic == QUARANTINE_TOPIC
    assert out.outcome == "quarantined"
    assert out.reason_kind == kind
    record = check(out)
    assert record["error_kind"] == kind
    assert record["key_id"] == "k1"
    return record


def test_garbage_bytes(router, check) -> None:
    raw = b"\x00\xff\xfegarbage " + IIN.encode()
    out = router.route(PERSONS_RAW, 2, 99, raw)
    record = quarantined(out, check, "undecodable")
    assert out.key == f"{PERSONS_RAW}:2:99".encode()
    assert (record["provider"], record["table"]) == ("demo", "population.persons")
    assert (record["source_topic"], record["source_partition"], record["source_offset"]) == (PERSONS_RAW, 2, 99)
    assert record["payload_bytes"] == len(raw)
    assert record["payload_depersonalized"] is None
    assert len(record["payload_digest"]) == 52


@pytest.mark.parametrize("raw", [b"[1, 2, 3]", b'{"op": "c"}', b'{"op": "c", "source": {}, "after": {}}',
                                 b'{"op": "d", "source": {"lsn": 1, "ts_ms": 2}, "before": null}'])
def test_not_an_envelope(router, check, raw: bytes) -> None:
    quarantined(router.route(PERSONS_RAW, 0, 1, raw), check, "undecodable")


def test_payload_digest_matches_replays(router, codec) -> None:
    raw = b"not json at all"
    a = codec.decode(router.route(PERSONS_RAW, 0, 1, raw).value)[1]
    b = codec.decode(router.route(PERSONS_RAW, 0, 2, raw).value)[1]
    c = codec.decode(router.route(PERSONS_RAW, 0, 3, raw + b"!").value)[1]
    assert a["payload_digest"] == b["payload_digest"] != c["payload_digest"]


def test_unknown_topic(router, check) -> None:
    out = router.route("qoima.raw.other.public.people", 0, 1, envelope("c", person_row()))
    record = quarantined(out, check, "unknown_table")
    assert record["provider"] == "other"
    assert record["table"] is None
    assert out.table == ""


def test_missing_mandatory_column(router, check, ring) -> None:
    out = router.route(PERSONS_RAW, 0, 10, envelope("c", person_row(sex=None)))
    record = quarantined(out, check, "missing_value")
    assert record["reason"] == "mandatory column(s) empty: sex"
    salvaged = json.loads(record["payload_depersonalized"])
    assert salvaged["iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert salvaged["sex"] is None
    assert "last_name" not in salvaged and "address" not in salvaged


def test_mandatory_column_absent_from_row_is_schema_drift(router, check) -> None:
    # Debezium's row image holds every column: one missing was dropped or renamed at the source.
    row = person_row()
    del row["status"]
    out = router.route(PERSONS_RAW, 0, 11, envelope("u", row))
    record = quarantined(out, check, "schema_drift")
    assert "status" in record["reason"] and "replay" in record["reason"]
    assert [(v.rule, v.incident_type, v.columns) for v in out.violations] == [
        ("schema_drift_absent", "other", ("status",))]


def test_nullable_column_absent_from_row_loads_empty_with_an_incident(router, codec) -> None:
    row = person_row()
    del row["phone"]
    out = router.route(PERSONS_RAW, 0, 13, envelope("u", row))
    assert out.outcome == "clean"
    _, record = codec.decode(out.value)
    assert record["phone_hash"] is None
    assert "phone: not sent by the source, loaded empty" in record["_defects"]
    assert [(v.rule, v.columns) for v in out.violations] == [("schema_drift_absent", ("phone",))]


def test_column_added_at_the_source_is_reported_as_drift(router, codec) -> None:
    out = router.route(PERSONS_RAW, 0, 14, envelope("u", person_row(passport_no="N1234567")))
    assert out.outcome == "clean"
    assert [(v.rule, v.incident_type, v.columns) for v in out.violations] == [
        ("schema_drift_added", "other", ("passport_no",))]
    assert "N1234567" not in out.violations[0].problem


def test_delete_images_are_not_judged_for_drift(router) -> None:
    out = router.route(PERSONS_RAW, 0, 15, envelope("d", None, before={"person_id": 7}))
    assert out.outcome == "clean" and out.violations == ()


def test_wrong_typed_value(router, check) -> None:
    out = router.route(PERSONS_RAW, 0, 12, envelope("c", person_row(birth_date="1985-01-01")))
    record = quarantined(out, check, "bad_value")
    assert record["reason"].startswith("column birth_date:")
    assert "1985-01-01" not in record["reason"]
    assert "birth_date_year" not in json.loads(record["payload_depersonalized"])


def test_truncate_becomes_a_marker_on_the_clean_topic(router, codec) -> None:
    raw = json.dumps({"before": None, "after": None, "source": {"lsn": LSN, "ts_ms": SOURCE_TS,
                      "schema": "population", "table": "persons"}, "op": "t", "ts_ms": SOURCE_TS}).encode()
    out = router.route(PERSONS_RAW, 0, 13, raw)
    assert (out.topic, out.outcome, out.op, out.table) == (PERSONS_CLEAN, "truncated", "t", "population.persons")
    _, record = codec.decode(out.value)
    assert (record["_op"], record["_version"], record["_is_deleted"]) == ("t", raw_event_version(13), 1)
    assert record["person_id"] == 0  # the key field the schema does not let be null: a zero, not a row
    assert record["iin_hash"] is None and record["_defects"] == []


def test_a_logical_decoding_message_is_unexpected_op(router, check) -> None:
    raw = json.dumps({"op": "m", "source": {"lsn": LSN, "ts_ms": SOURCE_TS}, "message": {"prefix": "x"},
                      "ts_ms": SOURCE_TS}).encode()
    record = quarantined(router.route(PERSONS_RAW, 0, 15, raw), check, "unexpected_op")
    assert "'m'" in record["reason"]


def test_internal_error_keeps_only_digest(router, check) -> None:
    raw = envelope("c", person_row())
    out = router.internal_error(PERSONS_RAW, 0, 14, raw, "AttributeError")
    record = quarantined(out, check, "internal_error")
    assert "AttributeError" in record["reason"]
    assert record["payload_depersonalized"] is None
    assert record["payload_bytes"] == len(raw)


# --- known bugs: the router raises instead of quarantining -----------------------------------


def test_wrong_typed_kato_code_is_bad_value(router, check) -> None:
    out = router.route(PERSONS_RAW, 0, 20, envelope("c", person_row(kato_code=751110000)))
    quarantined(out, check, "bad_value")


def test_delete_without_key_is_quarantined(router, check) -> None:
    out = router.route(PAYMENTS_RAW, 0, 21, envelope("d", None, before={"status": "paid"}, table="social.payments"))
    assert out.outcome == "quarantined"
    check(out)


def test_numeric_nan_is_bad_value(router, check) -> None:
    out = router.route(PAYMENTS_RAW, 0, 22, envelope("c", payment_row(amount="NaN"), table="social.payments"))
    quarantined(out, check, "bad_value")


def test_incremental_snapshot_read_needs_no_lsn(router, codec) -> None:
    """Debezium's incremental-snapshot reads carry no `lsn`; their version is their raw offset,
    which puts them after every change Debezium emitted before the chunk."""
    event = {"op": "r", "before": None, "after": {"org_id": 5, "bin": BIN, "name": "x", "kato_code": "751110000",
                                                 "updated_at": "2024-01-20T04:00:00Z"},
             "source": {"lsn": None, "sequence": '["30614560","30614999"]', "ts_ms": 1, "snapshot": "incremental",
                        "schema": "social", "table": "organizations"}}
    out = router.route("qoima.raw.demo.social.organizations", 0, 33, json.dumps(event).encode())
    assert out.outcome == "clean", out.reason
    assert codec.decode(out.value)[1]["_version"] == raw_event_version(33)
