"""Two processor workers over four work and rules partitions, on the shared test stack.

Worker 1 joins worker 0 in the group `qoima-processor`; with both, the torture rounds (one of
them during an incremental snapshot), a TRUNCATE followed by new rows, a duplicate identifier
routed and judged wherever its rows hash, and a kill -9 of worker 1 in the middle of a load all
end with the warehouse equal to the source. Worker 1 stops at the end; worker 0 takes its
partitions back. The figures printed are the ones docs/benchmarks.md reports.
"""
from __future__ import annotations

import os
import random
import signal
import time

import psycopg
import pytest
import requests

from connectors.snapshot import request_snapshot
from infra.qoima_processes import processor_process
from infra.stack import SOURCE_DB
from model.regulation import load_all
from sinks.clickhouse_users import writer_client
from tests.e2e.load import background_load
from tests.e2e.test_torture import Torturer
from tests.e2e.warehouse import highest_version, loaded_twice, poll_until, wait_converged

SEED = int(os.environ.get("QOIMA_SCALE_SEED", time.time_ns() % 1_000_000))
ROUNDS, TRANSACTIONS_PER_ROUND = 3, 30
LOAD_SECONDS, RATE = 20, 200
AFTER_TRUNCATE = 1000


def _metric(stack, worker: int, name: str) -> float:
    """The sum of one metric's samples on a worker's /metrics; 0 when it does not answer."""
    try:
        text = requests.get(f"http://{stack.s.host}:{stack.s.ports.processor_worker(worker)}/metrics", timeout=2).text
    except requests.RequestException:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


@pytest.fixture(scope="module")
def second_worker(stack):
    stack.qoima.start_processor(worker=1)
    yield
    # A static member's partitions wait for it until its session times out (10 s); then worker 0
    # takes them back, and the next module's changes converge a little later, nothing more.
    stack.managed(processor_process(1)).stop()


def test_two_workers_converge_through_torture_a_truncate_and_a_kill(stack, pg, ch, second_worker, capsys):
    wait_converged(pg, ch, timeout=180)
    routed = "qoima_processor_batch_events_count"
    # Both workers hold partitions: each routes (or judges, or spreads) some of the next changes.
    before = [_metric(stack, w, routed) for w in (0, 1)]
    rng = random.Random(SEED)
    demo = next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "demo")
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as conn:
        conn.autocommit = True
        torturer = Torturer(conn, rng)
        for round_no in range(1, ROUNDS + 1):
            if round_no == 2:
                request_snapshot(demo, ["social.payments", "population.persons"], stack.s.regulation_env())
            for _ in range(TRANSACTIONS_PER_ROUND):
                torturer.transaction()
            converged_in = wait_converged(pg, ch, timeout=180)
            with capsys.disabled():
                print(f"\n[scale-out] seed={SEED} round {round_no}/{ROUNDS}: converged {converged_in:.1f}s after "
                      "the last commit, two workers", flush=True)
    after = [_metric(stack, w, routed) for w in (0, 1)]
    assert all(a > b for a, b in zip(after, before)), f"both workers take batches ({before} -> {after})"


def test_a_truncate_with_two_workers_keeps_exactly_the_rows_after_it(stack, pg, ch, second_worker):
    wait_converged(pg, ch, timeout=180)
    rng = random.Random(SEED + 1)
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as conn:
        torturer = Torturer(conn, rng)
        conn.execute("TRUNCATE social.payments")
        for _ in range(5):   # in the TRUNCATE's transaction: their keys hash to every shard
            torturer.insert_payment()
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as conn:
        torturer = Torturer(conn, rng)
        for _ in range(AFTER_TRUNCATE):   # enough payments left for the tests after this one
            torturer.insert_payment()
    wait_converged(pg, ch, timeout=120)
    assert ch.query("SELECT count() FROM udw.demo__social__payments FINAL").result_rows[0][0] == 5 + AFTER_TRUNCATE


def test_a_duplicate_identifier_is_judged_whichever_worker_routes_its_rows(stack, pg, ch, second_worker):
    wait_converged(pg, ch, tables=("population.persons",), timeout=120)
    started = time.time()
    persons = [r[0] for r in pg.execute("SELECT person_id FROM population.persons WHERE iin ~ '^[0-9]{12}$' "
                                        "ORDER BY person_id LIMIT 8").fetchall()]
    copies = [pg.execute("INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, "
                         "kato_code) SELECT iin, last_name, first_name, birth_date, sex, status, kato_code "
                         "FROM population.persons WHERE person_id = %s RETURNING person_id", (p,)).fetchone()[0]
              for p in persons]
    writer = writer_client(stack.s)

    def counted():
        rows = writer.query("SELECT sum(count) FROM qoima_meta.incident_events WHERE incident_key = "
                            "'demo/population.persons/iin_unique' AND origin = 'processor' "
                            "AND detected_ts > toDateTime64({since:Float64}, 3)", parameters={"since": started}
                            ).result_rows
        return rows[0][0] if rows and rows[0][0] >= len(copies) else None

    # One duplicate per copy, wherever its row and the original hashed.
    assert poll_until(counted, 60, "an iin_unique detection per copy") == len(copies)
    wait_converged(pg, ch, tables=("population.persons",), timeout=60)


def test_a_worker_killed_under_load_is_back_at_once_and_nothing_is_lost(stack, pg, ch, second_worker, capsys):
    wait_converged(pg, ch, timeout=180)
    marks = {table: highest_version(ch, table) for table in ("demo__population__persons", "demo__social__payments")}
    rng = random.Random(f"{SEED}-kill")
    seed = rng.randrange(1 << 30)
    kill_at = rng.uniform(3, LOAD_SECONDS - 8)
    with background_load(stack, RATE, LOAD_SECONDS, seed) as summary:
        time.sleep(kill_at)
        managed = stack.managed(processor_process(1))
        os.killpg(managed.pid(), signal.SIGKILL)
        poll_until(lambda: managed.pid() is None, 10, "worker 1 gone after SIGKILL")
        batches = _metric(stack, 0, "qoima_processor_batch_events_count")
        restarted = time.monotonic()
        stack.qoima.start_processor(worker=1)
        # Static membership: it takes its partitions back without a rebalance, and takes a batch.
        poll_until(lambda: _metric(stack, 1, "qoima_processor_batch_events_count") > 0, 30,
                   "worker 1 taking batches again")
        consuming_in = time.monotonic() - restarted
        assert _metric(stack, 0, "qoima_processor_batch_events_count") > batches, "worker 0 went on meanwhile"
    changes = summary["result"].changes
    assert changes > RATE * LOAD_SECONDS / 3, f"the load ran ({changes} changes)"
    converged_in = wait_converged(pg, ch, timeout=240)
    with capsys.disabled():
        print(f"\n[scale-out] seed={SEED} worker 1 killed at {kill_at:.1f}s of a {LOAD_SECONDS}s load: taking "
              f"batches {consuming_in:.1f}s after its restart, {changes} changes, converged {converged_in:.1f}s "
              "after the load ended", flush=True)
    for table, key in (("demo__population__persons", "person_id"), ("demo__social__payments", "payment_id")):
        assert loaded_twice(ch, table, key, marks[table]) == [], \
            f"{table}: a version loaded twice after worker 1 was killed"
