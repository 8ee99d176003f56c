"""The data passport, the catalog and lineage on the real stack (DM385 chapter 2, Appendix 1).

The demo providers' passports, read from their live sources, match the golden files in
tests/e2e/golden (regenerate with QOIMA_UPDATE_GOLDEN=1 and read the diff before committing);
a column added at the source makes a new version, keeps the old one and notifies the tables'
users; analysts' queries raise the usage statistics; lineage events are written and valid.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import requests
from openlineage.client.serde import Serde  # noqa: F401 - the events' own library must be importable here
from prometheus_client.parser import text_string_to_metric_families

from model.names import PASSPORTS_TABLE, TABLE_USAGE_TABLE
from sinks.clickhouse_users import writer_client
from tests.e2e.cli import qoima
from tests.e2e.warehouse import poll_until
from tests.unit.test_passport import _registry, _valid

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize("provider", ["demo", "registry", "shop"])
def test_the_demo_passports_match_their_golden_files(stack, tmp_path, provider):
    for fmt in ("csv", "json"):
        path = tmp_path / f"passport.{fmt}"
        result = qoima(stack, "passport", provider, "--format", fmt, "--out", str(path))
        assert result.returncode == 0, result.stderr
        text = path.read_text(encoding="utf-8")
        if fmt == "json":
            document = json.loads(text)
            assert document.pop("version") >= 1
            text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        golden = GOLDEN / f"passport-{provider}.{fmt}"
        if os.environ.get("QOIMA_UPDATE_GOLDEN"):
            golden.write_text(text, encoding="utf-8")
        assert text == golden.read_text(encoding="utf-8"), f"{provider}'s {fmt} passport differs from {golden}"
    html = qoima(stack, "passport", provider)
    assert html.returncode == 0 and html.stdout.startswith("<!DOCTYPE html>")


def test_a_column_added_at_the_source_makes_a_new_version_and_notifies(stack, pg):
    writer = writer_client(stack.s)
    before = writer.query(f"SELECT max(version) FROM {PASSPORTS_TABLE} WHERE provider = 'demo'").result_rows[0][0]
    # A column with a foreign key: the structure description reads it from the source's catalog.
    pg.execute("ALTER TABLE catalog.type_samples ADD COLUMN passport_probe bigint "
               "REFERENCES social.organizations (org_id)")
    try:
        # The assessor notices it on its next round (5 s in the tests).
        version, reason, changes = poll_until(lambda: (writer.query(
            f"SELECT version, reason, changes FROM {PASSPORTS_TABLE} FINAL WHERE provider = 'demo' "
            "AND position(changes, 'passport_probe') > 0 ORDER BY version LIMIT 1").result_rows or [None])[0], 60,
            "a passport version with the new column")
        assert version > (before or 0) and reason == "the source's schema changed"
        assert changes == "column catalog.type_samples.passport_probe added at the source (bigint)"
        probe = writer.query("SELECT reference_tbl_clmn, clmn_key_type, teg FROM qoima_meta.passport_structure "
                             f"WHERE provider = 'demo' AND version = {version} AND column_name = 'passport_probe'"
                             ).result_rows
        assert probe == [("social.organizations.org_id", "FK", "not_captured")]
        # The old version is kept, without the column.
        old = json.loads(writer.query(f"SELECT document FROM {PASSPORTS_TABLE} FINAL WHERE provider = 'demo' AND "
                                      f"version = {version - 1}").result_rows[0][0])
        assert not any(row["column_name"] == "passport_probe" for row in old["structure"])
        # The users of the provider's tables are told (DM385 §32), through their notify targets.
        def told() -> list[tuple[str, dict]]:
            rows = writer.query("SELECT url, payload FROM qoima_meta.notifications FINAL WHERE "
                                "event = 'passport_changed' AND incident_key = 'passport/demo'").result_rows
            return [(url, json.loads(payload)) for url, payload in rows
                    if json.loads(payload)["version"] == version]

        mine = poll_until(told, 30, "a passport_changed notification of the new version")
        assert "passport_probe" in mine[0][1]["changes"][0]
        assert {url for url, _ in mine} == {f"http://127.0.0.1:{stack.s.ports.demo_webhook}/hook"}
    finally:
        pg.execute("ALTER TABLE catalog.type_samples DROP COLUMN IF EXISTS passport_probe")


def _queries_today(stack, table: str) -> float:
    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.assessor_metrics}/metrics", timeout=5).text
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "qoima_table_queries_today" and s.labels.get("table") == table
               and s.labels.get("provider") == "demo")


def test_analyst_queries_raise_the_usage_count(stack, ch):
    writer = writer_client(stack.s)
    table = "udw.demo__social__organizations"

    def counted() -> int:
        rows = writer.query(f"SELECT queries FROM {TABLE_USAGE_TABLE} FINAL WHERE day = today() "
                            "AND `table` = {t:String}", parameters={"t": table}).result_rows
        return rows[0][0] if rows else 0

    before = counted()
    for _ in range(3):
        ch.query(f"SELECT count() FROM {table} FINAL")
    poll_until(lambda: counted() >= before + 3, 60, "the usage count to rise by the analyst's three queries")
    assert _queries_today(stack, "social.organizations") >= before + 3
    # The catalog is the analysts' to read.
    assert ch.query("SELECT count() FROM qoima_meta.passport_structure WHERE provider = 'demo'").result_rows[0][0] > 0


def test_lineage_events_are_written_and_valid(stack):
    path = stack.s.lineage_file
    kinds = poll_until(lambda: {json.loads(line)["job"]["name"].split(".")[1] for line in
                                path.read_text().splitlines()} >= {"capture", "process", "load", "assess"}
                       if path.exists() else False, 60, "capture, process, load and assess lineage events")
    assert kinds
    registry = _registry()
    for line in path.read_text().splitlines()[:200]:
        _valid(json.loads(line), registry)


def test_qoima_status_shows_the_passports_and_the_pd236_backlog(stack):
    result = qoima(stack, "status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["passports"]["demo"] >= 1 and report["passports"]["shop"] >= 1
    assert report["pd236"]["undelivered"] >= 0 and not [p for p in report["problems"] if "catalog" in p]
    text = qoima(stack, "status").stdout
    assert "Data passports: demo version" in text and "PD236 access events:" in text


def test_lineage_goes_to_a_kafka_topic(stack):
    import uuid

    from confluent_kafka import Consumer

    from governance.passport import lineage
    from model.regulation import load_all

    topic = f"qoima.lineage-test-{uuid.uuid4().hex[:8]}"
    settings = stack.s.model_copy(update={"lineage_transport": f"kafka:{topic}"})
    demo = next(r for r in load_all(settings.regulations_dir, settings.regulation_env()) if r.provider == "demo")
    assert lineage.emit(settings, lineage.flow_events(settings, demo)) == 3 * len(demo.tables)
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    events: list[dict] = []
    try:
        def read() -> bool:
            for message in consumer.consume(num_messages=100, timeout=1.0):
                if message.error() is None:
                    events.append(json.loads(message.value()))
            return len(events) >= 3 * len(demo.tables)

        poll_until(read, 60, f"the lineage events on {topic}")
    finally:
        consumer.close()
    registry = _registry()
    for event in events:
        _valid(event, registry)
    assert {e["job"]["name"] for e in events} >= {"demo.capture.population.persons", "demo.load.social.payments"}
