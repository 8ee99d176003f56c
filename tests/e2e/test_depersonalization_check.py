"""The depersonalization check (R394 §20.5): in the pipeline it holds a leaking batch back
with a critical incident; on demand (`qoima scan`) it finds planted leaks of every kind."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
import requests
from confluent_kafka import Consumer, Producer, TopicPartition

from model.regulation import load_all
from connectors.snapshot import request_snapshot
from governance.depersonalization_check import known_values, scan_topics, scan_warehouse
from sinks.clickhouse_users import writer_client
from sinks.held import skip_held
from schemas.avro_codec import codec_for
from tests.e2e.warehouse import incident_events, wait_converged

CLEAR_IIN = "900101300126"      # valid check digit
CLEAR_BIN = "120540001238"      # valid BIN check digit (5th digit 4)


@pytest.fixture(scope="module")
def regulations(stack):
    return load_all(stack.s.regulations_dir, stack.s.regulation_env())


@pytest.fixture(scope="module")
def writer(stack):
    return writer_client(stack.s)


def _org_record(org_id: int, name: str, bin_hash: str = "b" * 52) -> dict:
    now = datetime.now(timezone.utc)
    return {"org_id": org_id, "bin_hash": bin_hash, "name": name, "kato_code": "751110000", "updated_at": now,
            "_op": "c", "_version": 1, "_is_deleted": 0, "_source_ts_ms": now, "_processed_ts_ms": now,
            "_key_id": "k1", "_defects": []}


def test_a_leaking_clean_batch_is_held_back_with_a_critical_incident(stack, pg, ch, writer, regulations):
    wait_converged(pg, ch, tables=("social.organizations",), timeout=120)
    regulation = regulations[0]
    topic = regulation.clean_topic(regulation.table("social.organizations"))
    codec = codec_for(regulations)
    producer = Producer({"bootstrap.servers": stack.s.kafka_bootstrap, "acks": "all"})
    offsets = []
    producer.produce(topic, codec.encode(topic, _org_record(990_000_001, f"ТОО Контакт {CLEAR_IIN}")),
                     on_delivery=lambda err, msg: offsets.append(msg.offset()))
    producer.flush(10)
    (offset,) = offsets

    last = offset
    try:
        rows = incident_events(writer, "rule = 'depersonalization_check' AND origin = 'sink'", 30,
                               "the leaking batch")
        severity, detail = rows[-1]
        # The held batch is whatever the sink had gathered: the planted record and any others.
        first, last = map(int, re.search(r"partition 0 offsets (\d+)-(\d+)", detail).groups())
        assert first <= offset <= last
        assert severity == "critical" and "name: ['iin']" in detail
        assert CLEAR_IIN not in detail
        assert ch.query("SELECT count() FROM udw.demo__social__organizations WHERE org_id = 990000001"
                        ).result_rows == [(0,)]
        metrics = requests.get(f"http://{stack.s.host}:{stack.s.ports.sink_metrics}/metrics", timeout=5).text
        assert 'qoima_sink_held{table="social.organizations"} 1.0' in metrics

        # The on-demand scan sees the leak in the topic too.
        report = scan_topics(stack.s, regulations, known_values(regulations, stack.s.regulation_env()))
        assert report.findings[(f"{topic}[0].name", "iin")] == 1
    finally:
        # The runbook: sink stopped, skip past the held batch (its records are deleted), sink
        # started, the held batch's legitimate rows re-derived from the source by a re-snapshot.
        stack.managed("sink").stop()
        skip_held(stack.s.kafka_bootstrap, topic, 0, last)
        stack.start_qoima("sink", ["sink"], stack.s.ports.sink_metrics)
        request_snapshot(regulation, ["social.organizations"], stack.s.regulation_env())
    consumer = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": "probe"})
    low, _ = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    assert low > last, "the held records are deleted from the clean topic"
    pg.execute("UPDATE social.organizations SET kato_code = '711110000', updated_at = now() "
               "WHERE org_id = (SELECT min(org_id) FROM social.organizations)")
    wait_converged(pg, ch, tables=("social.organizations",), timeout=90)


def test_scan_finds_planted_leaks_of_every_kind(stack, pg, writer, regulations):
    known = known_values(regulations, stack.s.regulation_env())
    surname = pg.execute("SELECT last_name FROM population.persons ORDER BY person_id LIMIT 1").fetchone()[0]
    planted = [
        _org_record(991_000_001, f"ТОО {CLEAR_IIN}"),
        _org_record(991_000_002, "тел. 8 (701) 234-56-78"),
        _org_record(991_000_003, "почта ivan.petrov@mail.kz"),
        _org_record(991_000_004, f"ИП {surname}"),
        _org_record(991_000_005, "ТОО Чисто", bin_hash=CLEAR_BIN),
    ]
    from sinks.ddl import META_FIELDS, warehouse_columns  # the sink's own column order
    table = regulations[0].table("social.organizations")
    names = [c.name for c in warehouse_columns(table)]
    columns = names + ["_op", "_version", "_is_deleted", "_source_ts", "_processed_ts", "_key_id", "_defects"]
    writer.insert("udw.demo__social__organizations", [[r[f] for f in names + META_FIELDS] for r in planted],
                  column_names=columns)
    try:
        report = scan_warehouse(writer, regulations, known)
        where = "udw.demo__social__organizations"
        assert {kind for (place, kind) in report.findings if place.startswith(where)} == \
            {"iin", "phone", "email", "name", "bin"}
        assert report.findings[(f"{where}.bin_hash", "bin")] == 1
        assert report.rows > 7000 and report.rows_per_second > 0
    finally:
        for name in ("demo__social__organizations", "demo__social__organizations__history"):
            writer.command(f"ALTER TABLE udw.{name} DELETE WHERE org_id > 991000000", settings={"mutations_sync": 2})
    clean = scan_warehouse(writer, regulations, known)
    assert not clean.findings, clean.render("warehouse")


def test_the_processor_quarantines_a_kept_column_that_holds_an_identifier(stack, pg, ch, writer):
    """The check in the processor: an organization named with its owner's IIN (a kept column)
    never reaches the clean topic; the row is quarantined with a critical incident."""
    wait_converged(pg, ch, tables=("social.organizations",), timeout=120)
    org_id, name = pg.execute("SELECT org_id, name FROM social.organizations ORDER BY org_id DESC LIMIT 1").fetchone()
    pg.execute("UPDATE social.organizations SET name = %s, updated_at = now() WHERE org_id = %s",
               (f"ИП Сейтова {CLEAR_IIN}", org_id))
    try:
        rows = incident_events(writer, "rule = 'depersonalization_check' AND origin = 'processor'", 60,
                               "the processor's depersonalization check")
        severity, detail = rows[-1]
        assert severity == "critical" and "name: iin" in detail
        assert CLEAR_IIN not in detail
        # The warehouse keeps the row as it was: the leaking version never reached it.
        assert ch.query(f"SELECT name FROM udw.demo__social__organizations FINAL WHERE org_id = {int(org_id)}"
                        ).result_rows == [(name,)]
        assert ch.query("SELECT count() FROM udw.demo__social__organizations WHERE position(name, {iin:String}) > 0",
                        parameters={"iin": CLEAR_IIN}).result_rows == [(0,)]
    finally:
        pg.execute("UPDATE social.organizations SET name = %s, updated_at = now() WHERE org_id = %s", (name, org_id))
    wait_converged(pg, ch, tables=("social.organizations",), timeout=90)
