"""The processor's batch logic without Kafka: what batches of raw, work and rules events make
(records, detections, state changelog), and the state stores' changelog and restore."""
from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from model.names import INCIDENT_TOPIC, PROCESSOR_STATE_TOPIC, QUARANTINE_TOPIC, RULES_TOPIC, WORK_TOPIC
from schemas.avro_codec import codec_for
from schemas.incidents import incident_codec
from streams.batch import RAW_ORIGIN, BatchProcessor, loopback, partition_for
from streams.cross_row.claims import Claims
from streams.cross_row.judge import Judge
from streams.cross_row.plan import CrossRowPlan
from streams.depersonalize import TablePlan
from streams.router import Router
from streams.state_store import ChangelogStore, StateBase, StateStores

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


def test_restore_reads_the_changelog_in_order_and_keeps_the_last_value() -> None:
    stores = StateStores()
    stores.stores["values"]["stale"] = [9]
    keys = stores.restore([(b"owners\x1fx", b'"d1"'), (b"owners\x1fx", b'"d2"'), (b"values\x1fy", b"[1]"),
                           (b"values\x1fy", None), (b"gone-store\x1fz", b"1")])
    assert keys == 1
    assert dict(stores.stores["owners"]) == {"x": "d2"} and dict(stores.stores["values"]) == {}


def test_restore_keeps_the_partitions_the_worker_owns() -> None:
    stores = StateStores()
    records = [(b"owners\x1f0|t|a", b'"x"'), (b"owners\x1f1|t|b", b'"y"'), (b"values\x1f1|u|c", b"[1]"),
               (b"values\x1f3|u|d", b"[2]"), (b"pending\x1funpartitioned", b"[3]")]
    owned = {"owners": {1}, "values": {3}, "references": set(), "pending": {0, 1, 2, 3}, "access": {1}}
    assert stores.restore(records, owned.__getitem__) == 2
    assert dict(stores["owners"]) == {"1|t|b": "y"} and dict(stores["values"]) == {"3|u|d": [2]}


ALL = {"owners": {0, 1}, "values": {0, 1}, "references": {0, 1}, "pending": {0, 1}, "access": {0, 1}}


def _based(tmp_path, owned=ALL) -> tuple[StateStores, StateBase]:
    """Stores attached to an empty local store, as a worker's first start leaves them."""
    stores, base = StateStores(), StateBase(tmp_path / "worker-0.lmdb")
    assert base.load(stores, owned.__getitem__) is None     # nothing written yet: rebuilt from the changelog
    base.reset()
    base.rebuilt(stores, owned.__getitem__, {0: 0})
    return stores, base


def test_the_local_store_gives_back_the_owned_state_and_where_to_read_on(tmp_path) -> None:
    stores, base = _based(tmp_path)
    stores["owners"].update({"0|t|a": "x", "1|t|b": "y"})
    stores["values"].update({"0|u|c": ["0.r"], "1|u|d": ["1.s"]})
    stores["pending"]["1|t|r|pk"] = [5, "k", None, "s"]
    assert base.save(stores, ALL.__getitem__, {0: 1234}) is True
    assert stores["owners"]._data == {}     # written: read from the store now, not held in memory
    assert stores["owners"]["1|t|b"] == "y" and "0|u|c" in stores["values"]
    base.close()
    again, reopened = StateStores(), StateBase(tmp_path / "worker-0.lmdb")
    # Fewer partitions than then (another worker took some): usable; the memory stores keep theirs.
    fewer = {"owners": {1}, "values": {1}, "references": {1}, "pending": {1}, "access": {1}}
    assert reopened.load(again, fewer.__getitem__) == {0: 1234}
    assert again["values"].get("1|u|d") == ["1.s"] and again["pending"]._data == {"1|t|r|pk": [5, "k", None, "s"]}
    assert again["owners"].get("9|t|none") is None and "9|t|none" not in again["owners"]


def test_memory_holds_what_changed_since_the_store_was_written_deletions_included(tmp_path) -> None:
    stores, base = _based(tmp_path)
    owners = stores["owners"]
    owners.update({"0|t|a": "x", "0|t|b": "y", "1|t|c": "z"})
    assert len(owners.changes()) == 3     # the batch's changelog records, then its base write
    base.save(stores, ALL.__getitem__, {0: 1})
    del owners["0|t|a"]
    owners["0|t|b"] = "y2"
    owners["0|t|d"] = "new"
    assert "0|t|a" not in owners and owners.get("0|t|a") is None and owners["0|t|b"] == "y2"
    assert sorted(owners) == ["0|t|b", "0|t|d", "1|t|c"] and sorted(owners.keys_with_prefix("0|")) == ["0|t|b", "0|t|d"]
    assert sorted(owners.changes()) == [(b"owners\x1f0|t|a", None), (b"owners\x1f0|t|b", b'"y2"'),
                                        (b"owners\x1f0|t|d", b'"new"')]
    base.save(stores, ALL.__getitem__, {0: 2})
    assert owners._data == {} and sorted(owners) == ["0|t|b", "0|t|d", "1|t|c"]
    with pytest.raises(KeyError):
        del owners["0|t|a"]


def test_a_background_write_leaves_memory_only_for_what_did_not_change_since(tmp_path) -> None:
    import time

    stores, base = _based(tmp_path)
    owners = stores["owners"]
    owners.update({"0|t|a": "then", "0|t|b": "kept"})
    assert base.save(stores, ALL.__getitem__, {0: 7}, background=True) is True
    owners["0|t|a"] = "now"   # the forked writer does not see this
    deadline = time.monotonic() + 10
    while base.save(stores, ALL.__getitem__, {0: 8}, background=True) is False:   # the first still writing
        assert time.monotonic() < deadline, "the background write finished"
        time.sleep(0.02)
    # The first write is done: "0|t|b" left memory; "0|t|a" changed since, so memory keeps it.
    assert "0|t|b" not in owners._data and owners._data.get("0|t|a") == "now"
    assert owners["0|t|b"] == "kept" and owners["0|t|a"] == "now"
    base.close()   # stops the second writer


def test_a_background_save_skips_its_turn_while_the_previous_writer_runs(tmp_path) -> None:
    import subprocess

    stores, base = _based(tmp_path)
    stores["owners"]["0|t|a"] = "x"
    writer = subprocess.Popen(["sleep", "30"])   # stands for a writer that has not finished
    base._writer = writer.pid
    try:
        assert base.save(stores, ALL.__getitem__, {0: 1}, background=True) is False
        assert stores["owners"]._data == {"0|t|a": "x"}
    finally:
        writer.kill()
    # Stopping, the worker waits for the writer, then writes in the foreground.
    assert base.save(stores, ALL.__getitem__, {0: 2}, background=False) is True
    assert base.load(StateStores(), ALL.__getitem__) == {0: 2}


def test_a_restore_stops_a_writer_at_work_and_starts_from_what_is_written(tmp_path) -> None:
    import subprocess

    stores, base = _based(tmp_path)
    writer = subprocess.Popen(["sleep", "30"])
    base._writer, base._written = writer.pid, {"owners": {"0|t|a": "x"}}
    assert base.load(stores, ALL.__getitem__) == {0: 0}
    assert base._writer is None and base._written == {}
    with pytest.raises(ProcessLookupError):   # killed and reaped
        os.kill(writer.pid, 0)


def test_a_store_not_covering_the_partitions_or_too_old_is_rebuilt_from_the_changelog(tmp_path, monkeypatch) -> None:
    stores, base = _based(tmp_path)
    stores["owners"]["0|t|x"] = "stale"
    base.save(stores, ALL.__getitem__, {0: 10})
    more = {**ALL, "values": {0, 1, 2}}
    assert base.load(StateStores(), more.__getitem__) is None
    monkeypatch.setattr(StateBase, "MAX_AGE_S", -1)
    assert base.load(StateStores(), ALL.__getitem__) is None
    monkeypatch.setattr(StateBase, "MAX_AGE_S", 3600)
    # Rebuilt: emptied, then the changelog in order, only the owned partitions, the last record winning.
    base.reset()
    base.rebuild([(b"owners\x1f2|t|a", b'"v1"'), (b"owners\x1f2|t|a", b'"v2"'), (b"values\x1f2|u|b", b"[1]"),
                  (b"values\x1f2|u|b", None), (b"owners\x1f0|t|other", b'"o"'), (b"pending\x1f2|t|r|k", b"[1]")],
                 {**more, "owners": {2}, "pending": {2}}.__getitem__)
    rebuilt = StateStores()
    owned = {**more, "owners": {2}, "pending": {2}}
    base.rebuilt(rebuilt, owned.__getitem__, {0: 99})
    assert dict(rebuilt["owners"].items()) == {"2|t|a": "v2"} and list(rebuilt["values"]) == []
    assert rebuilt["pending"]._data == {"2|t|r|k": [1]}
    assert base.load(StateStores(), owned.__getitem__) == {0: 99}


# --- batches -------------------------------------------------------------------------------------


class Pipeline:
    """A worker's batch logic, its work and rules records fed back to it as Kafka would."""

    def __init__(self, demo, ring, partitions: int = 1) -> None:
        codec = codec_for([demo])
        self.state = StateStores()
        plan = CrossRowPlan([demo], b"k" * 32)
        router = Router([demo], ring, codec, Claims(plan, self.state["owners"]))
        judge = Judge(plan, self.state["values"], self.state["references"], self.state["pending"])
        self.batch = BatchProcessor(router, codec, judge, self.state, partitions)
        self._offsets: Counter = Counter()
        self.internal: list = []   # the work and rules records of the last run

    def run(self, raw: list[tuple[str, int, bytes | None, bytes | None]], now: float = 0) -> list:
        """(raw topic, offset, key, value) through every step; the records that leave the processor."""
        events = [(topic, 0, offset, key, value, None) for topic, offset, key, value in raw]
        leaving, self.internal = loopback(self.batch, events, now, self._offsets)
        return [(topic, key, value) for topic, key, value, _, _ in leaving]


def _key(person_id: int) -> bytes:
    return json.dumps({"person_id": person_id}).encode()


def test_raw_events_go_to_the_work_partition_of_their_key_with_their_coordinates(demo, ring) -> None:
    batch = Pipeline(demo, ring, partitions=4).batch
    truncate = json.dumps({"op": "t", "before": None, "after": None,
                           "source": {"ts_ms": 1, "schema": "population", "table": "persons"}}).encode()
    effects = batch.process([(PERSONS, 0, 7, _key(1), _person(1, IIN_A), None),
                             (PERSONS, 0, 8, None, truncate, None),
                             (PERSONS, 0, 9, _key(2), None, None)], now=0)   # a tombstone: dropped
    work = [(key, partition, headers) for topic, key, _, partition, headers in effects.records]
    assert work[0] == (_key(1), partition_for(_key(1), 4), [(RAW_ORIGIN, f"{PERSONS}\x1f0\x1f7".encode())])
    assert [partition for _, partition, _ in work[1:]] == [0, 1, 2, 3]   # every shard sees the TRUNCATE
    assert len(work) == 5


def test_a_batch_writes_its_records_in_order_then_one_detection_per_rule_then_its_state(demo, ring) -> None:
    pipeline = Pipeline(demo, ring)
    out = pipeline.run([(PERSONS, n, _key(n), _person(n, IIN_A)) for n in (1, 2, 3)])
    topics = [topic for topic, _, _ in out]
    assert topics[:3] == ["qoima.clean.demo.population.persons"] * 3
    (detection,) = [value for topic, _, value in out if topic == INCIDENT_TOPIC]
    record = incident_codec().decode(detection)[1]
    assert (record["rule"], record["count"], record["origin"]) == ("iin_unique", 2, "processor")
    assert record["samples"] == ["[2]", "[3]"]   # the clean keys of the later rows
    state = [(key, value) for topic, key, value in out if topic == PROCESSOR_STATE_TOPIC]
    assert state and all(IIN_A.encode() not in (key + (value or b"")) for key, value in state)
    claims = [value for topic, _, value, _, _ in pipeline.internal if topic == RULES_TOPIC]
    assert claims and all(IIN_A.encode() not in value for value in claims)
    assert topics.index(INCIDENT_TOPIC) > 2 and topics[-1] == PROCESSOR_STATE_TOPIC


def test_the_next_batch_logs_only_what_changed(demo, ring) -> None:
    pipeline = Pipeline(demo, ring)
    pipeline.run([(PERSONS, 1, _key(1), _person(1, IIN_A))])
    assert pipeline.batch.process([], now=0).records == []


def test_a_quarantined_row_claims_nothing(demo, ring) -> None:
    pipeline = Pipeline(demo, ring)
    pipeline.run([(PERSONS, 1, _key(1), _person(1, IIN_A))])
    before = {name: dict(store) for name, store in pipeline.state.stores.items()}
    # Rejected by status_known (action reject): quarantined, so person 2 must not take IIN_B.
    out = pipeline.run([(PERSONS, 2, _key(2), _person(2, IIN_B, status="unknown"))])
    assert [topic for topic, _, _ in out if topic != INCIDENT_TOPIC] == [QUARANTINE_TOPIC]
    assert not [r for r in pipeline.internal if r[0] == RULES_TOPIC]
    assert {name: dict(store) for name, store in pipeline.state.stores.items()} == before
    # So the first row that brings IIN_B in and is loaded owns it: no duplicate.
    out = pipeline.run([(PERSONS, 3, _key(3), _person(3, IIN_B))])
    assert not [value for topic, _, value in out if topic == INCIDENT_TOPIC]


def test_a_truncate_reaches_the_sink_once_per_shard_after_that_shards_rows(demo, ring) -> None:
    pipeline = Pipeline(demo, ring, partitions=4)
    truncate = json.dumps({"op": "t", "before": None, "after": None,
                           "source": {"ts_ms": 1, "schema": "population", "table": "persons"}}).encode()
    out = pipeline.run([*[(PERSONS, n, _key(n), _person(n, f"{n:06d}300126")) for n in range(1, 9)],
                        (PERSONS, 9, None, truncate), (PERSONS, 10, _key(1), _person(1, IIN_A))])
    clean = [(key, codec_for([demo]).decode(value)[1]) for topic, key, value in out
             if topic == "qoima.clean.demo.population.persons"]
    markers = [record["_version"] for key, record in clean if record["_op"] == "t"]
    assert len(markers) == 4 and len(set(markers)) == 1
    # In each shard's output, its rows before the TRUNCATE come before its marker and the row after it after.
    assert [record["_op"] for key, record in clean][-1] == "c" and clean[-1][1]["_version"] > markers[0]
    assert not [k for k in pipeline.state["owners"] if "|population.persons|" in k and not k.startswith(
        str(partition_for(_key(1), 4)))]   # only the row after the TRUNCATE claims anything now


# --- the depersonalization check in the processor -------------------------------------------------

ORGS = "qoima.raw.demo.social.organizations"


def _organization(org_id: int, name: str) -> bytes:
    return _event("social.organizations", {"org_id": org_id, "bin": "071240500401", "name": name,
                                           "kato_code": "751110000", "updated_at": "2024-01-15T10:30:00Z"})


def test_a_kept_column_holding_an_identifier_is_quarantined_with_a_critical_incident(demo, ring) -> None:
    out = Pipeline(demo, ring).run([(ORGS, 1, b"1", _organization(1, f"ИП Сейтова {IIN_A}")),
                                    (ORGS, 2, b"2", _organization(2, "ТОО Жол"))])
    by_topic = {}
    for topic, _, value in out:
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
    pipeline = Pipeline(demo, ring)
    for name in ("ТОО Жол, тел. +7 701 234 56 78", "Жол LLP, info@zhol.kz"):
        out = pipeline.run([(ORGS, 1, b"1", _organization(1, name))])
        assert [t for t, _, _ in out if t not in (INCIDENT_TOPIC, PROCESSOR_STATE_TOPIC)] == [QUARANTINE_TOPIC], name
    # The BIN column is hashed: its pseudonym is never mistaken for a leak.
    out = pipeline.run([(ORGS, 3, b"3", _organization(3, "ТОО Жол"))])
    assert [t for t, _, _ in out if t != PROCESSOR_STATE_TOPIC] == ["qoima.clean.demo.social.organizations"]


def test_metrics_count_every_event_of_the_batch(demo, ring) -> None:
    from prometheus_client import REGISTRY

    def sample(name: str, **labels) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before_in = sample("qoima_processor_events_in_total", table="population.persons", op="c")
    before_q = sample("qoima_quarantined_total", table="population.persons", reason="rule_violation")
    Pipeline(demo, ring).run([(PERSONS, i, _key(i), _person(i, IIN_A if i == 1 else IIN_B)) for i in range(1, 4)]
                             + [(PERSONS, 4, _key(4), _person(4, "020202300129", status="unknown"))])
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


def test_a_claim_it_cannot_judge_costs_its_verdict_not_the_worker(demo, ring) -> None:
    from prometheus_client import REGISTRY

    pipeline = Pipeline(demo, ring)
    before = REGISTRY.get_sample_value("qoima_processor_claims_unjudged_total") or 0.0
    bad = [(RULES_TOPIC, 0, 0, b"u|population.persons|iin_unique|x", b"not json", None),
           (RULES_TOPIC, 0, 1, b"u|population.persons|iin_unique|x", b'{"k": "unheard-of", "pk": "0.a"}', None)]
    effects = pipeline.batch.process(bad, now=0)
    assert REGISTRY.get_sample_value("qoima_processor_claims_unjudged_total") == before + 2
    assert [r for r in effects.records if r[0] == INCIDENT_TOPIC] == []


def test_claims_of_a_rule_removed_since_are_ignored(demo, ring) -> None:
    """An operator drops a rule and restarts: claims made under it may still wait in the rules topic."""
    pipeline = Pipeline(demo, ring)
    judge = pipeline.batch.judge
    claim = {"k": "claim", "t": "population.persons", "r": "no_longer_declared", "pk": "0.a", "s": "[1]"}
    assert judge.apply(0, "u|population.persons|no_longer_declared|d", claim) == []
    assert judge.apply(0, "u|population.persons|no_longer_declared|d", {**claim, "pk": "0.b"}) == []
    check = {"k": "check", "t": "social.payments", "r": "gone", "pk": "0.c", "c": ["x"], "s": "[2]", "due": 1}
    judge.apply(0, "a|social.payments|gone|m", {"k": "ref", "pk": "0.d", "c": ["y"]})
    assert judge.apply(0, "a|social.payments|gone|m", check) == []


def test_a_fork_that_fails_keeps_the_changes_in_memory_for_the_next_turn(tmp_path, monkeypatch) -> None:
    stores, base = _based(tmp_path)
    stores["owners"]["0|t|a"] = "x"

    def no_memory() -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(os, "fork", no_memory)
    assert base.save(stores, ALL.__getitem__, {0: 1}, background=True) is False
    assert stores["owners"]["0|t|a"] == "x" and stores["owners"]._data == {"0|t|a": "x"}
    monkeypatch.undo()
    assert base.save(stores, ALL.__getitem__, {0: 2}) is True and stores["owners"]._data == {}
    assert stores["owners"]["0|t|a"] == "x"
    base.close()


def test_a_writer_that_fails_leaves_memory_whole_and_the_next_one_writes_it(tmp_path, monkeypatch) -> None:
    import time

    stores, base = _based(tmp_path)
    stores["owners"]["0|t|a"] = "x"

    def broken(*args) -> bool:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(StateBase, "_write", staticmethod(broken))
    assert base.save(stores, ALL.__getitem__, {0: 1}, background=True) is True   # the child fails
    monkeypatch.undo()
    deadline = time.monotonic() + 10
    while base.save(stores, ALL.__getitem__, {0: 2}, background=True) is False:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert stores["owners"]._data == {"0|t|a": "x"}     # the failed write dropped nothing
    base.save(stores, ALL.__getitem__, {0: 3})          # stopping: waits for the second writer, then writes
    assert stores["owners"]._data == {} and stores["owners"]["0|t|a"] == "x"
    assert base.load(StateStores(), ALL.__getitem__) == {0: 3}
    base.close()


def test_a_writer_outlived_by_its_worker_cannot_put_an_older_state_over_a_newer_one(tmp_path) -> None:
    stores, base = _based(tmp_path)
    stale_seen = base._seen
    stores["owners"]["0|t|a"] = "new"
    base.save(stores, ALL.__getitem__, {0: 5})   # the newer worker's write
    # A writer forked before it (it saw the older base) comes to commit its older state: refused.
    older = StateStores()
    older["owners"]["0|t|a"] = "old"
    assert StateBase._write(base._env, base._dbs, older, ALL.__getitem__, StateBase._meta_value(
        ALL.__getitem__, {0: 4}, 1.0), stale_seen) is False
    assert base.load(StateStores(), ALL.__getitem__) == {0: 5}
    fresh = StateStores()
    base.load(fresh, ALL.__getitem__)
    assert fresh["owners"]["0|t|a"] == "new"
    base.close()


def test_an_unreadable_store_is_deleted_and_rebuilt(tmp_path) -> None:
    stores, base = _based(tmp_path)
    base.close()
    (tmp_path / "worker-0.lmdb" / "data.mdb").write_bytes(b"not an LMDB file" * 512)
    again = StateBase(tmp_path / "worker-0.lmdb")
    assert again.load(StateStores(), ALL.__getitem__) is None
    again.reset()
    rebuilt = StateStores()
    again.rebuild([(b"owners\x1f0|t|a", b'"v"')], ALL.__getitem__)
    again.rebuilt(rebuilt, ALL.__getitem__, {0: 1})
    assert rebuilt["owners"]["0|t|a"] == "v"
    again.close()
