"""PostgreSQL -> Debezium -> Kafka -> processor -> ClickHouse, on the real local stack."""
from __future__ import annotations

import os
import signal
import threading
import time

from infra.demo.source import LoadDriver
from infra.stack import SOURCE_DB
from tests.e2e.warehouse import compare, highest_version, loaded_twice, poll_until, wait_converged


def test_initial_snapshot_lands_with_equal_checksums(stack, pg, ch):
    seeded = pg.execute("SELECT count(*) FROM social.payments").fetchone()[0]
    assert seeded > 1000, "the stack seeds the demo source before the connector starts"
    wait_converged(pg, ch, timeout=120)
    for table in ("population.persons", "social.organizations", "social.payments"):
        source_rows, warehouse_rows, differing = compare(pg, ch, table)
        assert source_rows == warehouse_rows and not differing


def test_insert_update_delete_visible_within_10_seconds(stack, pg, ch):
    wait_converged(pg, ch, timeout=120)
    person_iin, org_bin = pg.execute(
        "SELECT p.iin, o.bin FROM population.persons p, social.organizations o LIMIT 1").fetchone()
    with pg.transaction():
        new_id = pg.execute(
            "INSERT INTO social.payments (person_iin, org_bin, payment_type, amount, period, status) "
            "VALUES (%s, %s, 'pension', 123456.78, '2026-11-01', 'pending') RETURNING payment_id",
            (person_iin, org_bin)).fetchone()[0]
    updated_id = pg.execute("SELECT min(payment_id) FROM social.payments WHERE payment_id <> %s",
                            (new_id,)).fetchone()[0]
    pg.execute("UPDATE social.payments SET status = 'returned', amount = 1.05, updated_at = now() "
               "WHERE payment_id = %s", (updated_id,))
    deleted_id = pg.execute("SELECT max(payment_id) FROM social.payments WHERE payment_id NOT IN (%s, %s)",
                            (new_id, updated_id)).fetchone()[0]
    pg.execute("DELETE FROM social.payments WHERE payment_id = %s", (deleted_id,))
    started = time.monotonic()
    while time.monotonic() - started < 10:
        rows = dict(ch.query(
            "SELECT payment_id, (status, toString(amount)) FROM udw.demo__social__payments FINAL "
            "WHERE payment_id IN {ids:Array(Int64)}", parameters={"ids": [new_id, updated_id, deleted_id]}
        ).result_rows)
        if rows == {new_id: ("pending", "123456.78"), updated_id: ("returned", "1.05")}:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"changes not visible through FINAL within 10 s: {rows}")
    # The delete is a row with the flag set, not a missing row: replays cannot resurrect it.
    flags = ch.query("SELECT max(_is_deleted) FROM udw.demo__social__payments WHERE payment_id = {id:Int64}",
                     parameters={"id": deleted_id}).result_rows
    assert flags == [(1,)]


def test_sink_killed_mid_load_loses_nothing_and_duplicates_nothing(stack, pg, ch):
    wait_converged(pg, ch, timeout=120)
    marks = {table: highest_version(ch, table) for table in ("demo__population__persons", "demo__social__payments")}
    stop = threading.Event()
    driver = LoadDriver(stack.pg_admin_conninfo(SOURCE_DB), rate=300, seed=7)
    summary = {}
    worker = threading.Thread(target=lambda: summary.update(result=driver.run(duration=20, stop_event=stop)))
    worker.start()
    try:
        time.sleep(5)
        sink = stack.managed("sink")
        pid = sink.pid()
        assert pid is not None, "the sink runs before it is killed"
        os.killpg(pid, signal.SIGKILL)
        poll_until(lambda: sink.pid() is None, 10, "the sink gone after SIGKILL")
        stack.start_qoima("sink", ["sink"], stack.s.ports.sink_metrics)
    finally:
        worker.join(timeout=60)
        stop.set()
    assert summary["result"].changes > 3000
    wait_converged(pg, ch, timeout=90)
    for table, key in (("demo__population__persons", "person_id"), ("demo__social__payments", "payment_id")):
        assert loaded_twice(ch, table, key, marks[table]) == [], f"{table}: a version loaded twice after the sink was killed"
