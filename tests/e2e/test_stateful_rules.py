"""Uniqueness, integrity and consistency against a table judge rows across rows (streams/cross_row):
a duplicate is caught across a processor restart, a payment whose person never arrives opens
an incident after the grace period, and a payment whose region contradicts the register opens
one. Each incident names its rows by their clean keys; the rows themselves are loaded."""
from __future__ import annotations

import random
import time
from datetime import date

from infra.demo import generator
from sinks.clickhouse_users import writer_client
from tests.e2e.warehouse import incident_events, poll_until, wait_converged

PERSONS = "udw.demo__population__persons"
PAYMENTS = "udw.demo__social__payments"
REGION_RULE = "region_agrees_with_register"
REGION_NOTE = f"kato_code: not as in population.persons (population.persons.kato_code) (rule {REGION_RULE})"


def _copy_person(pg, source_id: int) -> int:
    return pg.execute(
        "INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
        "SELECT iin, last_name, first_name, birth_date, sex, status, kato_code FROM population.persons "
        "WHERE person_id = %s RETURNING person_id", (source_id,)).fetchone()[0]


def _samples(stack, incident_key: str, since: float, sample: str, timeout: float = 60) -> list[str]:
    """The samples of the processor's detections of `incident_key` since `since`, once one names `sample`."""
    writer = writer_client(stack.s)

    def found():
        rows = writer.query("SELECT samples FROM qoima_meta.incident_events WHERE incident_key = {key:String} "
                            "AND origin = 'processor' AND detected_ts > toDateTime64({since:Float64}, 3)",
                            parameters={"key": incident_key, "since": since}).result_rows
        samples = [s for (row,) in rows for s in row]
        return samples if sample in samples else None

    return poll_until(found, timeout, f"an incident {incident_key} naming {sample}")


def _loaded(ch, person_id: int) -> None:
    poll_until(lambda: ch.query(f"SELECT 1 FROM {PERSONS} FINAL WHERE person_id = {{id:Int64}}",
                                parameters={"id": person_id}).result_rows, 30, f"person {person_id} loaded")


def _new_person(pg, ch) -> int:
    """A person with a valid IIN nobody has, once loaded: the processor has claimed its IIN.
    (Not an existing person: the demo's own rows include IINs the processor rejects, and a
    rejected row claims nothing.)"""
    person_id = pg.execute(
        "INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
        "VALUES (%s, 'Тестов', 'Тест', '1977-07-07', 'M', 'active', '751110000') RETURNING person_id",
        (_unused_iin(pg),)).fetchone()[0]
    _loaded(ch, person_id)
    return person_id


def test_uniqueness_survives_a_processor_restart(stack, pg, ch):
    first, second = _new_person(pg, ch), _new_person(pg, ch)
    started = time.time()
    duplicate = _copy_person(pg, first)
    _loaded(ch, duplicate)   # a duplicate is loaded; the incident names it
    _samples(stack, "demo/population.persons/iin_unique", started, f"[{duplicate}]")

    stack.managed("processor").stop()
    stack.start_processor()
    # The second person's IIN was seen only before the restart: the state came back.
    started = time.time()
    duplicate = _copy_person(pg, second)
    _samples(stack, "demo/population.persons/iin_unique", started, f"[{duplicate}]")
    wait_converged(pg, ch, tables=("population.persons",), timeout=60)


def test_a_payment_without_its_person_opens_an_integrity_incident(stack, pg, ch):
    org_bin = pg.execute("SELECT bin FROM social.organizations LIMIT 1").fetchone()[0]
    orphan = "551231300121"  # a valid IIN nobody in the demo has
    assert not pg.execute("SELECT 1 FROM population.persons WHERE iin = %s", (orphan,)).fetchone()
    started = time.time()
    payment = pg.execute("INSERT INTO social.payments (person_iin, org_bin, payment_type, amount, period, status) "
                         "VALUES (%s, %s, 'pension', 100.00, '2026-11-01', 'pending') RETURNING payment_id",
                         (orphan, org_bin)).fetchone()[0]
    # This payment's detection, not any orphan's: other tests leave orphan payments behind too.
    writer = writer_client(stack.s)

    def detection():
        rows = writer.query(
            "SELECT detail, toUnixTimestamp64Milli(detected_ts) / 1000 FROM qoima_meta.incident_events "
            "WHERE incident_key = 'demo/social.payments/person_exists' AND origin = 'processor' "
            "AND has(samples, {sample:String}) AND detected_ts > toDateTime64({since:Float64}, 3)",
            parameters={"sample": f"[{payment}]", "since": started}).result_rows
        return rows[0] if rows else None

    detail, detected = poll_until(detection, 60, f"an integrity incident naming payment {payment}")
    assert "person_iin: no population.persons.iin row after 10 s" in detail
    assert orphan not in detail
    assert detected - started >= 10, f"reported {detected - started:.1f} s after the payment, before the grace period"


def _unused_iin(pg) -> str:
    rng = random.Random()
    while True:
        iin = generator.make_iin(rng, date(1977, 7, 7), rng.choice("MF"))
        if not pg.execute("SELECT 1 FROM population.persons WHERE iin = %s", (iin,)).fetchone():
            return iin


def _payment(pg, iin: str, org_bin: str, kato: str) -> int:
    return pg.execute(
        "INSERT INTO social.payments (person_iin, org_bin, payment_type, amount, period, status, kato_code) "
        "VALUES (%s, %s, 'pension', 100.00, '2026-10-01', 'pending', %s) RETURNING payment_id",
        (iin, org_bin, kato)).fetchone()[0]


def _payment_loaded(ch, payment_id: int) -> None:
    poll_until(lambda: ch.query(f"SELECT 1 FROM {PAYMENTS} FINAL WHERE payment_id = {{id:Int64}}",
                                parameters={"id": payment_id}).result_rows, 30, f"payment {payment_id} loaded")


def test_a_payment_contradicting_the_register_is_flagged_with_an_incident(stack, pg, ch):
    org_bin = pg.execute("SELECT bin FROM social.organizations LIMIT 1").fetchone()[0]
    iin = _unused_iin(pg)
    person_id = pg.execute(
        "INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
        "VALUES (%s, 'Тестов', 'Тест', '1977-07-07', 'M', 'active', '751110000') RETURNING person_id",
        (iin,)).fetchone()[0]
    # Once the person is in the warehouse the processor has seen it: the payments are judged on arrival.
    poll_until(lambda: ch.query(f"SELECT 1 FROM {PERSONS} WHERE person_id = {{id:Int64}}",
                                parameters={"id": person_id}).result_rows, 30, "the person in the warehouse")
    started = time.time()
    contradicting = _payment(pg, iin, org_bin, "711110000")   # Astana, while the register says Almaty
    agreeing = _payment(pg, iin, org_bin, "751110000")

    _payment_loaded(ch, contradicting)   # action flag: loaded; the incident names it
    _payment_loaded(ch, agreeing)
    samples = _samples(stack, f"demo/social.payments/{REGION_RULE}", started, f"[{contradicting}]")
    assert f"[{agreeing}]" not in samples
    rows = incident_events(writer_client(stack.s),
                           f"incident_key = 'demo/social.payments/{REGION_RULE}' AND origin = 'processor' "
                           f"AND detected_ts > toDateTime64({started}, 3)", 30, "the contradicting payment")
    assert REGION_NOTE in rows[-1][1]
    for clear in (iin, "711110000", "751110000"):
        assert clear not in rows[-1][1]
