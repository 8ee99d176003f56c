"""Quality assessment (DM385 §53-55), the corrections history (§49) and coverage on the real stack:
`qoima dq assess` records the seven indicators of every table, an update leaves both versions in
the history table, and the assessor's coverage gauges equal the source's counts."""
from __future__ import annotations

import json
import random
import time
from datetime import date, datetime, timezone

import requests
from prometheus_client.parser import text_string_to_metric_families

from infra.demo.generator import make_iin
from governance.quality_assessment import INDICATORS
from model.regulation import load_all
from tests.e2e.cli import qoima
from sinks.clickhouse_users import writer_client
from tests.e2e.warehouse import COMPARED, poll_until, wait_converged

PERSONS = "udw.demo__population__persons"
PAYMENTS = "udw.demo__social__payments"
PAYMENTS_HISTORY = "udw.demo__social__payments__history"
# Every regulated table is assessed: the demo's, its type samples, the marker-mode licences, the
# tables under names that need quoting and the MariaDB shop's two.
SOURCE_TABLES = (*COMPARED, "catalog.type_samples", "social.appeals", "registry.licenses", "shop.customers", "shop.orders")


def _person_without_kato(pg, ch) -> None:
    """Make sure the register holds a person with no KATO code (the demo rule kato_present flags it)."""
    if pg.execute("SELECT count(*) FROM population.persons WHERE kato_code IS NULL").fetchone()[0]:
        return
    iin = make_iin(random.Random(time.time_ns()), date(1991, 3, 14), "F")
    # Names no log line spells: the person stays, and test_privacy.py looks for every source
    # name in the logs ("Тест" folds to "test", which every path under var/test-stack holds).
    person_id = pg.execute(
        "INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
        "VALUES (%s, 'Абенова', 'Гульнар', '1991-03-14', 'F', 'active', NULL) RETURNING person_id",
        (iin,)).fetchone()[0]
    poll_until(lambda: ch.query(f"SELECT count() FROM {PERSONS} FINAL WHERE person_id = {{id:Int64}}",
                            parameters={"id": person_id}).result_rows[0][0], 30, "the person without KATO not loaded")


def test_dq_assess_records_the_seven_indicators(stack, pg, ch):
    wait_converged(pg, ch, timeout=120)
    _person_without_kato(pg, ch)
    started = datetime.now(timezone.utc).replace(microsecond=0)

    result = qoima(stack, "dq", "assess", "--json")
    assert result.returncode == 0, result.stderr
    report = {entry["table"]: entry for entry in json.loads(result.stdout)}
    assert set(report) == set(SOURCE_TABLES)
    for table, entry in report.items():
        assert list(entry["indicators"]) == list(INDICATORS), table
        for name, item in entry["indicators"].items():
            assert 0.0 <= item["value"] <= 1.0, (table, name, item)
        for columns in entry["columns"].values():
            for column, item in columns.items():
                assert 0.0 <= item["value"] <= 1.0, (table, column, item)
    persons = report["population.persons"]
    assert persons["indicators"]["completeness"]["value"] < 1.0, "a person without KATO is incomplete"
    assert persons["indicators"]["completeness"]["rows"] == \
        pg.execute("SELECT count(*) FROM population.persons").fetchone()[0]
    assert persons["columns"]["completeness"]["kato_code_region"]["value"] < 1.0

    # ... and recorded: the seven indicators of every table, in [0, 1], since the command started.
    writer = writer_client(stack.s)
    recorded = writer.query(
        "SELECT `table`, groupUniqArray(indicator), min(value), max(value) FROM qoima_meta.quality_assessments "
        "WHERE `column` = '' AND ts >= {started:DateTime64(3, 'UTC')} GROUP BY `table`",
        parameters={"started": started}).result_rows
    assert {t for t, *_ in recorded} == set(SOURCE_TABLES)
    for table, indicators, low, high in recorded:
        assert sorted(indicators) == sorted(INDICATORS), table
        assert 0.0 <= low <= high <= 1.0, table

    shown = qoima(stack, "dq", "report")
    assert shown.returncode == 0, shown.stderr
    assert "demo.population.persons" in shown.stdout and "completeness" in shown.stdout


def test_history_keeps_every_version_of_a_payment(stack, pg, ch):
    wait_converged(pg, ch, tables=("social.payments",), timeout=120)
    payment_id = pg.execute("SELECT min(payment_id) FROM social.payments").fetchone()[0]
    before = ch.query(f"SELECT _version FROM {PAYMENTS} FINAL WHERE payment_id = {{id:Int64}}",
                      parameters={"id": payment_id}).result_rows[0][0]
    pg.execute("UPDATE social.payments SET updated_at = now() WHERE payment_id = %s", (payment_id,))
    poll_until(lambda: ch.query(f"SELECT _version FROM {PAYMENTS} FINAL WHERE payment_id = {{id:Int64}}",
                            parameters={"id": payment_id}).result_rows[0][0] > before, 30, "the update not loaded")

    versions = ch.query(f"SELECT _version FROM {PAYMENTS_HISTORY} WHERE payment_id = {{id:Int64}} ORDER BY _version",
                        parameters={"id": payment_id}).result_rows
    assert len(versions) >= 2 and versions[0][0] <= before < versions[-1][0], versions
    rows, keys = ch.query(f"SELECT count(), uniqExact(payment_id) FROM {PAYMENTS_HISTORY}").result_rows[0]
    assert rows > keys
    # The history holds what the current table holds, and more.
    current = ch.query(f"SELECT count() FROM {PAYMENTS} FINAL").result_rows[0][0]
    assert keys >= current


def _assessor_metrics(stack) -> dict[tuple[str, str], float]:
    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.assessor_metrics}/metrics", timeout=5).text
    return {(sample.name, sample.labels.get("table", "")): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples
            if sample.name.startswith("qoima_coverage_")}


def test_coverage_gauges_equal_the_source_counts(stack, pg, ch):
    wait_converged(pg, ch, timeout=120)
    # A revoked licence is a (soft) delete: the marker-mode table counts only the others.
    where = {"registry.licenses": " WHERE revoked IS NOT TRUE"}
    # Counted under the source's own names (quoted: some need it, docs/regulation.md "Names").
    at_source = {t.name: f'"{t.schema_name}"."{t.table_name}"'
                 for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) for t in r.tables}
    source = {t: pg.execute(f"SELECT count(*) FROM {at_source[t]}{where.get(t, '')}").fetchone()[0]
              for t in SOURCE_TABLES if not t.startswith("shop.")}
    shop = stack.mariadb.owner_connection("shop")  # the MariaDB provider, counted in its own server
    try:
        with shop.cursor() as cursor:
            for table in ("shop.customers", "shop.orders"):
                cursor.execute(f"SELECT count(*) FROM {table}")
                source[table] = cursor.fetchone()[0]
    finally:
        shop.close()

    def matching():
        gauges = _assessor_metrics(stack)
        return all(gauges.get(("qoima_coverage_source_rows", t)) == n and
                   gauges.get(("qoima_coverage_warehouse_rows", t)) == n for t, n in source.items()) and gauges

    gauges = poll_until(matching, 60, f"coverage gauges never matched the source counts {source}: "
                                  f"{_assessor_metrics(stack)}")
    assert all(gauges[("qoima_coverage_tolerance", t)] > 0 for t in SOURCE_TABLES)
    # The assessor's own quality assessment is exported too: seven indicators per table.
    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.assessor_metrics}/metrics", timeout=5).text
    indicators = {(s.labels["table"], s.labels["indicator"]): s.value
                  for family in text_string_to_metric_families(text) for s in family.samples
                  if s.name == "qoima_quality_indicator"}
    assert {(t, i) for t in SOURCE_TABLES for i in INDICATORS} <= set(indicators)
    assert all(0.0 <= v <= 1.0 for v in indicators.values())


def test_source_silence_sees_the_latest_commit(stack, pg, ch):
    from governance.silence import SilenceWatch, last_commit
    from sinks.clickhouse_users import writer_client

    wait_converged(pg, ch, tables=tuple(COMPARED), timeout=120)
    regulation = load_all(stack.s.regulations_dir, stack.s.regulation_env())[0]
    last = last_commit(writer_client(stack.s), regulation)
    assert last is not None and time.time() - last < 3600
    assert SilenceWatch().observe(regulation, last) is None
    assert SilenceWatch().observe(regulation, last, now=last + 3 * 3600) is not None
