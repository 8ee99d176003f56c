"""Schema evolution while the pipeline runs (docs/schema-evolution.md), on the real stack.

Columns added at the source open a drift incident and the rows keep loading; once the
regulation declares them, the sink adds them to ClickHouse by itself, messages written under
the old schema still load, and a widened type is applied with ALTER TABLE. A rename at the
source is reported as a column gone and a column come; a narrowing is refused.

The evolved regulation stays in force for the rest of the session (QOIMA_REGULATIONS_DIR):
going back would narrow `amount`, which is exactly what the sink refuses.
"""
from __future__ import annotations

import os
import re
import shutil
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from sinks.clickhouse_sink import ClickHouseSink
from sinks.clickhouse_users import writer_client
from sinks.schema_evolution import SchemaEvolutionError
from tests.e2e.warehouse import incident_events, poll_until, wait_converged

ORGANIZATIONS_CLEAN = "qoima.clean.demo.social.organizations"


def _clean_end(stack) -> int:
    """The end offset of the organizations' clean topic (a committed record moves it)."""
    consumer = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": "schema-evolution-probe"})
    try:
        return sum(consumer.get_watermark_offsets(TopicPartition(ORGANIZATIONS_CLEAN, p), timeout=10)[1]
                   for p in consumer.list_topics(ORGANIZATIONS_CLEAN, timeout=10).topics[ORGANIZATIONS_CLEAN].partitions)
    finally:
        consumer.close()

ORGS = "udw.demo__social__organizations"
PHONE = "+7 701 555 01 02"


def _evolve(source, target):
    shutil.copytree(source, target)
    demo = target / "demo.yaml"
    text = demo.read_text(encoding="utf-8")
    declared = ("      - {name: org_id, type: bigint, nullable: false}\n")
    assert declared in text
    text = text.replace(declared, declared + "      - {name: office_phone, type: text, action: hash, kind: phone}\n"
                                             "      - {name: fax, type: text}\n", 1)
    assert '{name: amount, type: "numeric(14,2)", nullable: false}' in text
    text = text.replace('{name: amount, type: "numeric(14,2)", nullable: false}',
                        '{name: amount, type: "numeric(16,2)", nullable: false}', 1)
    demo.write_text(text, encoding="utf-8")


def _columns(writer, table: str) -> dict[str, str]:
    database, name = table.split(".")
    return dict(writer.query("SELECT name, type FROM system.columns WHERE database = {d:String} AND table = {t:String}",
                             parameters={"d": database, "t": name}).result_rows)


def test_columns_added_declared_renamed_and_widened_while_running(stack, pg, ch, tmp_path):
    writer = writer_client(stack.s)
    wait_converged(pg, ch, timeout=120)
    org, other = [r[0] for r in pg.execute("SELECT org_id FROM social.organizations ORDER BY org_id LIMIT 2")]

    # 1. Added at the source, not yet declared: an incident, and the rows keep loading.
    started = time.time()
    pg.execute("ALTER TABLE social.organizations ADD COLUMN IF NOT EXISTS office_phone text, "
               "ADD COLUMN IF NOT EXISTS fax text")
    pg.execute("UPDATE social.organizations SET office_phone = %s, fax = '7172 55 01 02', name = name || ' ', "
               "updated_at = now() WHERE org_id = %s", (PHONE, org))
    rows = incident_events(writer, "incident_key = 'demo/social.organizations/schema_drift_added' "
                                   f"AND detected_ts > toDateTime64({started}, 3)", 60, "the added columns")
    assert "office_phone" in rows[-1][1] and "fax" in rows[-1][1] and PHONE not in rows[-1][1]
    wait_converged(pg, ch, tables=("social.organizations",), timeout=60)

    # 2. The regulation declares them and widens amount. A change processed under the old
    # schema waits in the clean topic while the sink is down: it must still load.
    evolved = tmp_path / "regulations"
    _evolve(stack.s.regulations_dir, evolved)
    stack.managed("sink").stop()
    try:
        before = _clean_end(stack)
        pg.execute("UPDATE social.organizations SET name = name || '.', updated_at = now() WHERE org_id = %s",
                   (other,))
        poll_until(lambda: _clean_end(stack) > before, 30, "the processor to write the change with the old schema")
        stack.managed("processor").stop()
        os.environ["QOIMA_REGULATIONS_DIR"] = str(evolved)
    finally:   # on the evolved regulations, or, when the wait failed, as they were
        stack.start_qoima("sink", ["sink"], stack.s.ports.sink_metrics)
        stack.start_processor()
    pg.execute("UPDATE social.organizations SET office_phone = %s, updated_at = now() WHERE org_id = %s",
               (PHONE, org))
    hashed, fax = poll_until(lambda: writer.query(
        f"SELECT office_phone_hash, fax FROM {ORGS} FINAL WHERE org_id = {{id:Int64}} AND office_phone_hash IS NOT NULL",
        parameters={"id": org}).result_rows[:1], 60, "the declared column in ClickHouse")[0]
    assert fax == "7172 55 01 02"
    assert re.fullmatch(r"[a-z2-7]+", hashed) and PHONE not in hashed and "7015550102" not in hashed
    for table in (ORGS, f"{ORGS}__history"):
        assert _columns(writer, table)["office_phone_hash"] == "Nullable(String)", table
    assert _columns(writer, "udw.demo__social__payments")["amount"] == "Decimal(16, 2)"
    assert writer.query(f"SELECT count() FROM {ORGS}__history WHERE org_id = {{id:Int64}} AND "
                        "office_phone_hash IS NOT NULL", parameters={"id": org}).result_rows[0][0] >= 1
    wait_converged(pg, ch, timeout=90)  # the old-schema change of `other` loaded too

    # 3. Renamed at the source: reported as gone and come; the row loads with fax empty.
    started = time.time()
    pg.execute("ALTER TABLE social.organizations RENAME COLUMN fax TO fax_number")
    try:
        pg.execute("UPDATE social.organizations SET name = name || '!', updated_at = now() WHERE org_id = %s", (org,))
        rows = incident_events(writer, "incident_key = 'demo/social.organizations/schema_drift_absent' "
                                       f"AND detected_ts > toDateTime64({started}, 3)", 60, "the renamed column")
        assert "fax" in rows[-1][1]
        defects = poll_until(lambda: writer.query(
            f"SELECT _defects FROM {ORGS} FINAL WHERE org_id = {{id:Int64}} AND fax IS NULL",
            parameters={"id": org}).result_rows[:1], 60, "the row without fax")[0][0]
        assert "fax: not sent by the source, loaded empty" in defects
        assert incident_events(writer, "incident_key = 'demo/social.organizations/schema_drift_added' "
                                       f"AND detected_ts > toDateTime64({started}, 3) AND detail LIKE '%fax_number%'",
                               60, "the new name")
    finally:
        pg.execute("ALTER TABLE social.organizations RENAME COLUMN fax_number TO fax")

    # 4. Narrowing back is refused before anything is written.
    with pytest.raises(SchemaEvolutionError, match=r"amount: ClickHouse has Decimal\(16, 2\)"):
        ClickHouseSink(stack.s).ensure_tables()  # the session's settings: the original regulation
