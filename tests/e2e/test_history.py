"""`qoima load-history` on the real stack (R394 §21): a CP1251, semicolon-separated CSV of new
persons lands in the warehouse depersonalized, next to the CDC rows and joinable with them;
rows with an empty mandatory column go to quarantine; nothing clear reaches either.

The loaded persons (person_id 900 000 000 and up) do not exist at the source, so the test
deletes them from the warehouse afterwards: the other tests compare warehouse and source.
"""
from __future__ import annotations

import json
import random
import time
import uuid
from datetime import datetime, timedelta

import pytest
from confluent_kafka import Consumer, TopicPartition

from streams.history_load import load_history
from infra.demo.generator import KZ_TZ, make_person
from sinks.clickhouse_users import ADMIN_USER, client
from model.leak_scan import KnownValues, scan_text
from streams.router import QUARANTINE_TOPIC
from model.names import ACCESS_EVENTS_TABLE
from sinks.clickhouse_users import writer_client
from tests.e2e.warehouse import poll_until, wait_converged

FIRST_ID = 900_000_000
ROWS = 200
MISSING_SEX = (17, 88, 150)          # row indexes whose mandatory `sex` is left empty
JOINED = 0                           # this row carries the IIN of a person already at the source
WAREHOUSE = "udw.demo__population__persons"
COLUMNS = ("person_id", "iin", "last_name", "first_name", "middle_name", "birth_date", "sex", "phone",
           "address", "kato_code", "status", "updated_at")
# CP1251 has no Kazakh letters; legacy CP1251 exports write their Russian look-alikes.
_TO_CP1251 = str.maketrans("ӘәҒғҚқҢңӨөҰұҮүҺһ", "АаГгКкНнОоУуУуХх")


def _field(value) -> str:
    text = "" if value is None else str(value).translate(_TO_CP1251)
    if any(c in text for c in ';"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _persons(source_iin: str) -> list[dict]:
    rng = random.Random(394)
    now = datetime.now(KZ_TZ).replace(microsecond=0)
    persons = []
    for i in range(ROWS):
        person = make_person(rng)
        person["person_id"] = FIRST_ID + i
        person["updated_at"] = (now - timedelta(days=rng.randint(1, 3650))).isoformat(sep=" ")
        if i % 2:  # both date spellings a Russian-locale export may hold
            person["birth_date"] = person["birth_date"].strftime("%d.%m.%Y")
        if i in MISSING_SEX:
            person["sex"] = None
        if i == JOINED:
            person["iin"] = source_iin
        persons.append({c: person[c] for c in COLUMNS})
    return persons


@pytest.fixture()
def history_rows_removed_afterwards(stack):
    yield
    admin = client(stack.s, ADMIN_USER)
    admin.command(f"ALTER TABLE {WAREHOUSE} DELETE WHERE person_id >= {FIRST_ID}", settings={"mutations_sync": 2})


def _known(persons: list[dict]) -> KnownValues:
    known = KnownValues()
    for person in persons:
        known.add_phone(person["phone"])
        for name in ("last_name", "first_name", "middle_name"):
            known.add_name((person[name] or "").translate(_TO_CP1251) or None)
    return known


def _scan(column: str, value, where: str, known: KnownValues, no_names: KnownValues) -> list:
    """Pseudonyms and digests are scanned for IINs only: a base32 string holds letter runs that
    a short name (Ким, Пак, Цой) or its transliteration could match by chance."""
    if isinstance(value, list):
        return [f for item in value for f in _scan(column, item, where, known, no_names)]
    if not isinstance(value, str):
        return []
    return scan_text(value, where, no_names if column.endswith(("_hash", "_digest")) else known)


def _quarantined(settings, origin: str, expected: int, timeout: float = 30.0) -> list:
    from model.regulation import load_all
    from schemas.avro_codec import codec_for

    codec = codec_for(load_all(settings.regulations_dir, settings.regulation_env()))
    consumer = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(QUARANTINE_TOPIC, 0, 0)])
    found, deadline = [], time.monotonic() + timeout
    try:
        while len(found) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=500, timeout=1):
                assert not message.error(), message.error()
                _, record = codec.decode(message.value())
                if record["source_topic"] == origin:
                    found.append((message.value(), record))
    finally:
        consumer.close()
    return found


def test_history_file_loads_depersonalized_and_quarantines_bad_rows(stack, pg, ch, tmp_path,
                                                                      history_rows_removed_afterwards):
    wait_converged(pg, ch, tables=("population.persons",), timeout=120)
    source_id, source_iin = pg.execute(
        "SELECT person_id, iin FROM population.persons ORDER BY person_id LIMIT 1").fetchone()
    persons = _persons(source_iin)
    path = tmp_path / f"persons-{uuid.uuid4().hex[:8]}.csv"
    lines = [";".join(COLUMNS)] + [";".join(_field(p[c]) for c in COLUMNS) for p in persons]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1251"))

    started_ms = int(time.time() * 1000)
    summary = load_history(stack.s, "demo", "population.persons", path, progress=False)

    assert (summary.format, summary.encoding, summary.delimiter) == ("csv", "cp1251", ";")
    assert (summary.rows_read, summary.loaded) == (ROWS, ROWS - len(MISSING_SEX))
    assert summary.quarantined == {"missing_value": len(MISSING_SEX)}
    assert summary.reasons == {("missing_value", "mandatory column(s) empty: sex"): len(MISSING_SEX)}
    assert summary.warnings == []

    deadline = time.monotonic() + 30
    while True:
        count = ch.query(f"SELECT count() FROM {WAREHOUSE} FINAL WHERE person_id >= {FIRST_ID}").result_rows[0][0]
        if count == ROWS - len(MISSING_SEX):
            break
        assert time.monotonic() < deadline, f"{count} of {ROWS - len(MISSING_SEX)} history rows in the warehouse after 30 s"
        time.sleep(0.5)

    # Reading the file was an access to personal data (PD236): every row read, quarantined ones too.
    writer = writer_client(stack.s)
    read = poll_until(lambda: writer.query(
        f"SELECT sum(`rows`), min(subjects_exact) FROM {ACCESS_EVENTS_TABLE} FINAL WHERE path = 'history' "
        f"AND `table` = 'population.persons' AND first_read >= fromUnixTimestamp64Milli({started_ms}) "
        f"HAVING sum(`rows`) = {ROWS}").result_rows, 30, "the access events of the history load")
    assert read[0][0] == ROWS

    result = ch.query(f"SELECT * FROM {WAREHOUSE} FINAL WHERE person_id >= {FIRST_ID} ORDER BY person_id")
    rows = [dict(zip(result.column_names, row)) for row in result.result_rows]
    expected = {p["person_id"]: p for i, p in enumerate(persons) if i not in MISSING_SEX}
    assert [r["person_id"] for r in rows] == sorted(expected)
    for row in rows:
        person = expected[row["person_id"]]
        assert (row["_op"], row["_version"], row["_is_deleted"]) == ("r", 0, 0)
        assert (row["sex"], row["status"]) == (person["sex"], person["status"])
        birth = person["birth_date"]
        assert row["birth_date_year"] == (int(birth[-4:]) if isinstance(birth, str) else birth.year)
        assert row["iin_hash"] != person["iin"] and len(row["iin_hash"]) >= 34

    # The same IIN gets the same pseudonym from a history file as from CDC: analysts can join.
    cdc_hash = ch.query(f"SELECT iin_hash FROM {WAREHOUSE} FINAL WHERE person_id = {source_id}").result_rows
    assert cdc_hash == [(rows[0]["iin_hash"],)] and rows[0]["person_id"] == FIRST_ID + JOINED

    known, no_names = _known(persons), KnownValues()
    assert len(known.names) > 50 and len(known.phones) > 100
    findings = []
    for row in rows:
        for column, value in row.items():
            findings += _scan(column, value, f"{WAREHOUSE}.{column}", known, no_names)
    assert findings == []

    quarantined = _quarantined(stack.s, f"history:{path.name}", len(MISSING_SEX))
    assert sorted(r["source_offset"] for _, r in quarantined) == [i + 1 for i in MISSING_SEX]
    clear = [p["iin"] for p in persons] + [(p["last_name"] or "").translate(_TO_CP1251) for p in persons]
    for raw, record in quarantined:
        assert (record["error_kind"], record["source_partition"]) == ("missing_value", 0)
        assert not any(value.encode("utf-8") in raw for value in clear if value)
        payload = json.loads(record["payload_depersonalized"])
        for column, value in {**record, **payload}.items():
            if column != "payload_depersonalized":
                findings += _scan(column, value, f"quarantine.{column}", known, no_names)
    assert findings == []
    text = summary.render()
    assert scan_text(text, "summary", known) == [] and not any(p["iin"] in text for p in persons)
