"""The processor's batch logic without Kafka: what one batch of raw events makes (records,
detections, state changelog), and the state stores' changelog, undo and restore."""
from __future__ import annotations

import json

from model.names import INCIDENT_TOPIC, PROCESSOR_STATE_TOPIC, QUARANTINE_TOPIC
from schemas.avro_codec import codec_for
from schemas.incidents import incident_codec
from streams.batch import BatchProcessor
from streams.depersonalize import TablePlan
from streams.router import Router
from streams.state_store import ChangelogStore, StateStores

IIN_A, IIN_B = "900101300126", "850101300124"
PERSONS, PAYMENTS = "qoima.raw.demo.population.persons", "qoima.raw.demo.social.payments"


def _event(table: str, after: dict, ts_ms: int = 1_705_314_600_000) -> bytes:
    schema, name = table.split(".")
    return json.dumps({"op": "c", "before": None, "after": after,
                       "source": {"lsn": 5, "ts_ms": ts_ms, "schema": schema, "table": name}}).encode()


def _person(person_id: int, iin: str, **change) -> bytes:
    return _event("population.persons", {
        "person_id": person_id, "iin": iin, "last_name": "A", "first_name": "B", "middle_name": None,
        "birth_date": 5479, "sex": "F", "phone": None, "address": None, "kato_code": "751110000", "status": "active",
        "updated_at": "2024-01-15T10:30:00Z", **change})


# --- the state stores ---------------------------------------------------------------------------


def test_a_store_logs_each_changed_key_once_with_its_latest_value_or_a_deletion() -> None:
    store = ChangelogStore("values")
    store["a"] = [1]
    store["a"] = [1, 2]
    store["b"] = [3]
    del store["b"]
    assert sorted(store.changes()) == [(b"values\x1fa", b"[1,2]"), (b"values\x1fb", None)]
    assert store.changes() == []   # logged once
    assert dict(store) == {"a": [1, 2]}


def test_rollback_restores_what_the_row_changed_and_keeps_earlier_changes() -> None:
    stores = StateStores()
    values = stores.stores["values"]
    values["kept"] = [1]
    stores.savepoint()
    values["kept"] = [1, 2]
    values["new"] = [3]
    del values["kept"]
    stores.rollback()
    assert dict(values) == {"kept": [1]}
    # "kept" was changed before the savepoint, so it is still to be logged; "new" never was.
    assert dict(stores.changes()) == {b"values\x1fkept": b"[1]"}


def test_restore_reads_the_changelog_in_order_and_keeps_the_last_value() -> None:
    stores = StateStores()
    stores.stores["values"]["stale"] = [9]
    keys = stores.restore([(b"owners\x1fx", b'"d1"'), (b"owners\x1fx", b'"d2"'), (b"values\x1fy", b"[1]"),
                           (b"values\x1fy", None), (b"gone-store\x1fz", b"1")])
    assert keys == 1
    assert dict(stores.stores["owners"]) == {"x": "d2"} and dict(stores.stores["values"]) == {}


# --- one batch -----------------------------------------------------------------------------------


def _batch(demo, ring) -> BatchProcessor:
    codec = codec_for([demo])
    return BatchProcessor(Router([demo], ring, codec, state=StateStores()), codec)


def test_a_batch_writes_its_records_in_order_then_one_detection_per_rule_then_its_state(demo, ring) -> None:
    batch = _batch(demo, ring)
    effects = batch.process([(PERSONS, 0, 1, _person(1, IIN_A)), (PERSONS, 0, 2, _person(2, IIN_A)),
                             (PERSONS, 0, 3, _person(3, IIN_A))], now=0)
    topics = [topic for topic, _, _ in effects.records]
    assert topics[:3] == ["qoima.clean.demo.population.persons"] * 3
    (detection,) = [value for topic, _, value in effects.records if topic == INCIDENT_TOPIC]
    record = incident_codec().decode(detection)[1]
    assert (record["rule"], record["count"], record["origin"]) == ("iin_unique", 2, "processor")
    assert len(record["samples"]) == 2
    state = [(key, value) for topic, key, value in effects.records if topic == PROCESSOR_STATE_TOPIC]
    assert state and all(IIN_A.encode() not in (key + (value or b"")) for key, value in state)
    assert topics.index(INCIDENT_TOPIC) > 2 and topics[-1] == PROCESSOR_STATE_TOPIC


def test_the_next_batch_logs_only_what_changed(demo, ring) -> None:
    batch = _batch(demo, ring)
    batch.process([(PERSONS, 0, 1, _person(1, IIN_A))], now=0)
    effects = batch.process([], now=0)
    assert effects.records == []


def test_a_quarantined_row_leaves_the_state_as_it_was(demo, ring) -> None:
    batch = _batch(demo, ring)
    batch.process([(PERSONS, 0, 1, _person(1, IIN_A))], now=0)
    before = {name: dict(store) for name, store in batch.router.state.stores.items()}
    # Rejected by status_known (action reject): quarantined, so person 2 must not take IIN_B.
    effects = batch.process([(PERSONS, 0, 2, _person(2, IIN_B, status="unknown"))], now=0)
    assert [topic for topic, _, _ in effects.records if topic != INCIDENT_TOPIC] == [QUARANTINE_TOPIC]
    assert {name: dict(store) for name, store in batch.router.state.stores.items()} == before
    # So the first row that brings IIN_B in and is loaded owns it: no duplicate.
    effects = batch.process([(PERSONS, 0, 3, _person(3, IIN_B))], now=0)
    assert not [value for topic, _, value in effects.records if topic == INCIDENT_TOPIC]


# --- the depersonalization check in the processor -------------------------------------------------

ORGS = "qoima.raw.demo.social.organizations"


def _organization(org_id: int, name: str) -> bytes:
    return _event("social.organizations", {"org_id": org_id, "bin": "071240500401", "name": name,
                                           "kato_code": "751110000", "updated_at": "2024-01-15T10:30:00Z"})


def test_a_kept_column_holding_an_identifier_is_quarantined_with_a_critical_incident(demo, ring) -> None:
    batch = _batch(demo, ring)
    effects = batch.process([(ORGS, 0, 1, _organization(1, f"ИП Сейтова {IIN_A}")),
                             (ORGS, 0, 2, _organization(2, "ТОО Жол"))], now=0)
    by_topic = {}
    for topic, _, value in effects.records:
        by_topic.setdefault(topic, []).append(value)
    assert len(by_topic["qoima.clean.demo.social.organizations"]) == 1   # the clean row goes on
    (quarantined,) = by_topic[QUARANTINE_TOPIC]
    assert IIN_A.encode() not in quarantined and IIN_A[:6].encode() not in quarantined
    record = codec_for([demo]).decode(quarantined)[1]
    assert record["error_kind"] == "depersonalization_check"
    assert "name: iin" in record["reason"]
    salvaged = json.loads(record["payload_depersonalized"])
    assert "name" not in salvaged and salvaged["org_id"] == 1   # what leaks is left out, the rest kept
    (detection,) = [incident_codec().decode(v)[1] for v in by_topic[INCIDENT_TOPIC]]
    assert (detection["rule"], detection["severity"], detection["count"]) == ("depersonalization_check", "critical", 1)
    assert IIN_A not in detection["detail"]


def test_the_check_reads_phones_and_emails_too_and_leaves_pseudonyms_alone(demo, ring) -> None:
    batch = _batch(demo, ring)
    for name in ("ТОО Жол, тел. +7 701 234 56 78", "Жол LLP, info@zhol.kz"):
        effects = batch.process([(ORGS, 0, 1, _organization(1, name))], now=0)
        assert [t for t, _, _ in effects.records if t not in (INCIDENT_TOPIC, PROCESSOR_STATE_TOPIC)] == \
            [QUARANTINE_TOPIC], name
    # The BIN column is hashed: its pseudonym is never mistaken for a leak.
    effects = batch.process([(ORGS, 0, 3, _organization(3, "ТОО Жол"))], now=0)
    assert [t for t, _, _ in effects.records] == ["qoima.clean.demo.social.organizations"]


def test_metrics_count_every_event_of_the_batch(demo, ring) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_in = sample("qoima_processor_events_in_total", table="population.persons", op="c")
    before_q = sample("qoima_quarantined_total", table="population.persons", reason="rule_violation")
    batch = _batch(demo, ring)
    batch.process([(PERSONS, 0, i, _person(i, IIN_A if i == 1 else IIN_B)) for i in range(1, 4)]
                  + [(PERSONS, 0, 4, _person(4, "020202300129", status="unknown"))], now=0)
    assert sample("qoima_processor_events_in_total", table="population.persons", op="c") == before_in + 3
    assert sample("qoima_quarantined_total", table="population.persons", reason="rule_violation") == before_q + 1


def test_the_check_reads_text_columns_only(demo, ring) -> None:
    # A UUID whose last group is twelve digits with a valid IIN check digit, and numbers, are not text.
    plan = TablePlan(demo.table("catalog.type_samples"), ring)
    checked = set(plan.checked_outputs)
    assert {"v_text", "v_varchar", "v_json"} <= checked
    assert not {"v_uuid", "v_bigint", "v_numeric"} & checked
    assert plan.clear_identifiers({"v_uuid": "123e4567-e89b-12d3-a456-900101300126", "v_text": "ok"}) == {}
    assert plan.clear_identifiers({"v_text": "ИИН 900101300126"}) == {"v_text": ("iin",)}
