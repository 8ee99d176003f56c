"""No clear identifier reaches a clean topic, the quarantine topic or the warehouse."""
from __future__ import annotations

import re

import pytest
from schemas.topic_reader import read_topic, throwaway_consumer

from model.regulation import load_all
from governance.depersonalization_check import scan_topics
from model.leak_scan import KnownValues, scan_text
from streams.router import QUARANTINE_TOPIC
from tests.e2e.warehouse import wait_converged


@pytest.fixture(scope="module")
def known(pg) -> KnownValues:
    values = KnownValues()
    for phone, last, first in pg.execute("SELECT phone, last_name, first_name FROM population.persons"):
        values.add_phone(phone)
        values.add_name(last)
        values.add_name(first)
    assert len(values.phones) > 1000 and len(values.names) > 50
    return values


def _messages(settings, topics):
    consumer = throwaway_consumer(settings.kafka_bootstrap, "privacy-test")
    try:
        for topic in topics:
            for _, message in read_topic(consumer, topic):
                yield topic, message
    finally:
        consumer.close()


def test_clean_and_quarantine_topics_hold_no_clear_identifier(stack, pg, ch, known):
    wait_converged(pg, ch, timeout=120)
    regulations = load_all(stack.s.regulations_dir, stack.s.regulation_env())
    topics = [r.clean_topic(t) for r in regulations for t in r.tables] + [QUARANTINE_TOPIC]
    report = scan_topics(stack.s, regulations, known)
    assert report.rows > 5000, "the seeded rows passed through the clean topics"
    assert not report.findings, report.render("topics")
    # Independently of the scanner: no source IIN appears anywhere in the raw bytes.
    source_iins = {iin.encode() for (iin,) in pg.execute("SELECT iin FROM population.persons")}
    hits = [f"{topic}@{message.offset()}" for topic, message in _messages(stack.s, topics)
            if source_iins.intersection(re.findall(rb"[0-9]{12}", (message.key() or b"") + message.value()))]
    assert hits == []


def test_warehouse_string_columns_hold_no_clear_identifier(stack, pg, ch, known):
    wait_converged(pg, ch, timeout=120)
    columns = ch.query("SELECT table, name FROM system.columns WHERE database = 'udw' AND type LIKE '%String%'"
                       ).result_rows
    assert len(columns) >= 8
    findings, values = [], 0
    for table, column in columns:
        query = f"SELECT DISTINCT toString(`{column}`) FROM udw.`{table}` WHERE `{column}` IS NOT NULL"
        for (value,) in ch.query(query).result_rows:
            values += 1
            findings += scan_text(value, f"udw.{table}.{column}", known)
    assert values > 5000
    assert findings == []


def test_the_scan_itself_catches_planted_leaks(known):
    """Guards the two tests above against passing vacuously."""
    phone = next(iter(known.phones))
    name = next(iter(known.names))
    assert [f.kind for f in scan_text("x 900101300126 y", "t", known)] == ["iin"]
    assert scan_text("x 900101300127 y", "t", known) == []  # wrong check digit: not an IIN
    assert scan_text(f"call {phone[:2]} {phone[2:5]} {phone[5:8]}-{phone[8:10]}-{phone[10:]}", "t", known)
    assert scan_text(f"ФИО: {name.title()} ", "t", known)


# Random ids the components log (Kafka Connect's group member ids, after its port): masked
# before the scan. Connect's "connect-127.0.0.1:29083-3634239c-..." read as the digit run
# "29083-3634239", a valid IIN by chance, and failed a full run.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def test_logs_hold_no_clear_identifier(stack, pg, ch, known):
    wait_converged(pg, ch, timeout=120)
    logs = sorted(stack.s.log_dir.glob("*.log"))
    assert {p.stem for p in logs} >= {"processor", "sink", "connect", "kafka", "clickhouse"}
    findings = []
    for path in logs:
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            findings += scan_text(_UUID.sub("<uuid>", line), f"{path.name}:{number}", known)
    # The demo source has no e-mail column; third-party logs carry their maintainers' addresses.
    assert [f for f in findings if f.kind != "email"] == []
