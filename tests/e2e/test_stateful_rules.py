"""Uniqueness and integrity rules keep state in Faust tables: a duplicate is caught across a
processor restart, and a payment whose person never arrives opens an incident after the
grace period."""
from __future__ import annotations

import time

from sinks.clickhouse_users import writer_client
from tests.e2e.warehouse import incident_events, wait_converged

PERSONS = "udw.demo__population__persons"
NOTE = "iin: the same value as another row (rule iin_unique)"


def _copy_person(pg, source_id: int) -> int:
    return pg.execute(
        "INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
        "SELECT iin, last_name, first_name, birth_date, sex, status, kato_code FROM population.persons "
        "WHERE person_id = %s RETURNING person_id", (source_id,)).fetchone()[0]


def _defects(ch, person_id: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        rows = ch.query(f"SELECT _defects FROM {PERSONS} FINAL WHERE person_id = {{id:Int64}}",
                        parameters={"id": person_id}).result_rows
        if rows:
            return rows[0][0]
        assert time.monotonic() < deadline, f"person {person_id} did not reach the warehouse"
        time.sleep(0.5)


def test_uniqueness_survives_a_processor_restart(stack, pg, ch):
    wait_converged(pg, ch, tables=("population.persons",), timeout=120)
    first, second = (r[0] for r in pg.execute(
        "SELECT min(person_id) FROM population.persons WHERE iin ~ '^[0-9]{12}$' "
        "UNION ALL SELECT max(person_id) FROM population.persons WHERE iin ~ '^[0-9]{12}$'").fetchall())
    assert NOTE in _defects(ch, _copy_person(pg, first))

    stack.managed("processor").stop()
    stack.start_processor()
    # The second person's IIN was seen only before the restart: the state came back.
    assert NOTE in _defects(ch, _copy_person(pg, second), timeout=60)
    wait_converged(pg, ch, tables=("population.persons",), timeout=60)


def test_a_payment_without_its_person_opens_an_integrity_incident(stack, pg, ch):
    org_bin = pg.execute("SELECT bin FROM social.organizations LIMIT 1").fetchone()[0]
    orphan = "551231300121"  # a valid IIN nobody in the demo has
    assert not pg.execute("SELECT 1 FROM population.persons WHERE iin = %s", (orphan,)).fetchone()
    started = time.time()
    pg.execute("INSERT INTO social.payments (person_iin, org_bin, payment_type, amount, period, status) "
               "VALUES (%s, %s, 'pension', 100.00, '2026-11-01', 'pending')", (orphan, org_bin))
    rows = incident_events(writer_client(stack.s),
                           "incident_key = 'demo/social.payments/person_exists' AND origin = 'processor' "
                           f"AND detected_ts > toDateTime64({started}, 3)", 60, "the orphan payment")
    assert "person_iin: no population.persons.iin row after 10 s" in rows[-1][1]
    assert orphan not in rows[-1][1]
    assert time.time() - started >= 10, "reported only after the grace period"
