"""Bad events go to quarantine without clear values and without stopping the pipeline;
every Qoima process is scraped by Prometheus and `qoima status` reports the live state."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import requests
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.avro_codec import codec_for
from model.regulation import load_all
from streams.router import QUARANTINE_TOPIC
from tests.e2e.warehouse import wait_converged

CLEAR_IIN = "900101300126"


def _produce_raw(settings, topic: str, values: list[bytes]) -> list[int]:
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap, "acks": "all"})
    offsets = []
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, msg: offsets.append(msg.offset()))
    producer.flush(10)
    return sorted(offsets)


def test_bad_events_are_quarantined_with_reasons_and_no_clear_values(stack, pg, ch):
    regulations = load_all(stack.s.regulations_dir, stack.s.regulation_env())
    codec = codec_for(regulations)
    topic = "qoima.raw.demo.population.persons"
    missing_sex = json.dumps({
        "before": None, "op": "c", "ts_ms": 1,
        "after": {"person_id": 99_000_001, "iin": CLEAR_IIN, "last_name": "Әлібекова", "first_name": "Айгүл",
                  "birth_date": 7305, "sex": None, "phone": "+7 701 234 56 78", "status": "active",
                  "updated_at": "2026-11-23T10:00:00Z"},
        "source": {"lsn": 1, "ts_ms": 1, "schema": "population", "table": "persons"},
    }).encode()
    offsets = _produce_raw(stack.s, topic, [b"\x00garbage " + CLEAR_IIN.encode(), missing_sex])
    consumer = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}"})
    consumer.assign([TopicPartition(QUARANTINE_TOPIC, 0, 0)])
    found = {}
    deadline = time.monotonic() + 30
    while len(found) < 2 and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=100, timeout=1):
            assert CLEAR_IIN.encode() not in message.value()
            assert "Айгүл".encode() not in message.value()
            _, record = codec.decode(message.value())
            if record["source_topic"] == topic and record["source_offset"] in offsets:
                found[record["source_offset"]] = record
    consumer.close()
    assert [found[o]["error_kind"] for o in offsets] == ["undecodable", "missing_value"]
    assert "sex" in found[offsets[1]]["reason"]
    assert found[offsets[1]]["payload_depersonalized"] is not None
    assert CLEAR_IIN not in found[offsets[1]]["payload_depersonalized"]
    # The pipeline goes on: a real change after the bad events still lands.
    pg.execute("UPDATE population.persons SET status = 'emigrated', updated_at = now() "
               "WHERE person_id = (SELECT min(person_id) FROM population.persons)")
    wait_converged(pg, ch, tables=("population.persons",), timeout=30)


def test_prometheus_scrapes_every_qoima_process(stack):
    deadline = time.monotonic() + 30
    while True:
        result = requests.get(f"{stack.s.prometheus_url}/api/v1/query",
                              params={"query": 'up{job=~"qoima-processor|qoima-sink"}'}, timeout=5).json()
        up = {r["metric"]["job"]: r["value"][1] for r in result["data"]["result"]}
        freshness = requests.get(f"{stack.s.prometheus_url}/api/v1/query",
                                 params={"query": "qoima_freshness_seconds_count"}, timeout=5).json()
        tables = {r["metric"]["table"] for r in freshness["data"]["result"]}
        if up == {"qoima-processor": "1", "qoima-sink": "1"} and \
                {"population.persons", "social.organizations", "social.payments"} <= tables:
            break
        assert time.monotonic() < deadline, f"scraped: {up}, freshness series for {tables}"
        time.sleep(1)
    rules = requests.get(f"{stack.s.prometheus_url}/api/v1/rules", timeout=5).json()
    names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    assert {"QoimaProcessorDown", "QoimaSinkDown", "QoimaFreshnessHigh"} <= names


def test_status_command_reports_connector_and_tables(stack, pg, ch):
    wait_converged(pg, ch, tables=("social.payments",), timeout=60)
    source_rows = pg.execute("SELECT count(*) FROM social.payments").fetchone()[0]
    env = {**os.environ, "QOIMA_HOME": str(stack.s.home)}
    result = subprocess.run([sys.executable, "-m", "qoima", "status", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["connectors"] == {"qoima-demo": "RUNNING", "qoima-shop": "RUNNING"}
    assert report["pollers"] == {"registry": "RUNNING"}
    assert {"demo.population.persons", "demo.social.organizations", "demo.social.payments",
            "demo.catalog.type_samples", "demo.social.appeals", "demo.registry_office.persons_main",
            "demo.registry_office.person_addresses", "registry.registry.licenses", "registry.reestr.zhiteli",
            "shop.shop.customers", "shop.shop.orders"} == set(report["tables"])
    assert report["tables"]["demo.social.payments"]["rows_in_warehouse"] == source_rows
    assert report["problems"] == []
