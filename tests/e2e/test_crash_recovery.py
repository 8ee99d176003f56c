"""kill -9 of any single process under load, then restart: the warehouse equals the source.

Each case drives inserts, updates and deletes at the source, kills one component with SIGKILL
at a random moment of the load (the seed is printed, and QOIMA_CRASH_SEED replays a run),
starts it again the way `qoima up` does and waits for the warehouse to equal the source.
No row version may be loaded twice (read from the history table, where nothing merges copies
away): retried inserts carry deduplication tokens, the sink's first batch after a restart leaves
out what a previous life loaded (sinks/clickhouse_sink.py), and every row version carries its
place in commit order (streams/versions.py). The figures printed are
the ones docs/benchmarks.md reports.
"""
from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.e2e.crash import connectors_running, kill_9, restart
from tests.e2e.load import background_load
from tests.e2e.warehouse import highest_version, loaded_twice, poll_until, wait_converged

LOAD_SECONDS = 24
TABLES = {"demo__population__persons": "person_id", "demo__social__payments": "payment_id",
          "demo__social__organizations": "org_id"}
RATE = 200
SEED = int(os.environ.get("QOIMA_CRASH_SEED", time.time_ns() % 1_000_000))


@pytest.mark.parametrize("component", ["processor", "sink", "connect", "kafka", "clickhouse"])
def test_kill_9_under_load_then_restart_converges(stack, pg, ch, component, capsys):
    rng = random.Random(f"{SEED}-{component}")
    wait_converged(pg, ch, timeout=180)
    marks = {table: highest_version(ch, table) for table in TABLES}
    seed = rng.randrange(1 << 30)
    kill_at = rng.uniform(3, LOAD_SECONDS - 8)
    started = time.monotonic()
    with background_load(stack, RATE, LOAD_SECONDS, seed) as summary:
        time.sleep(kill_at)
        kill_9(stack, component)
        down_at = time.monotonic()
        time.sleep(2)  # down for a while, not a condition: the load keeps writing meanwhile
        restart(stack, component)
        restarted_in = time.monotonic() - down_at
        connectors_running(stack)
    changes = summary["result"].changes
    assert changes > RATE * LOAD_SECONDS / 3, f"the load ran ({changes} changes)"
    converged_in = wait_converged(pg, ch, timeout=240)
    with capsys.disabled():  # the figures docs/benchmarks.md reports
        print(f"\n[crash] seed={SEED} component={component} killed at {kill_at:.1f}s of {LOAD_SECONDS}s load, "
              f"back in {restarted_in:.1f}s, {changes} changes, converged {converged_in:.1f}s after the load ended "
              f"({time.monotonic() - started:.0f}s in all)", flush=True)
    for table, key in TABLES.items():
        assert loaded_twice(ch, table, key, marks[table]) == [], \
            f"{table}: a version loaded twice after {component} was killed"


def test_processor_killed_alone_is_restarted_by_its_supervisor(stack, pg, ch, capsys):
    """The supervisor, not the test, brings the processor back: what happens on an OOM kill."""
    wait_converged(pg, ch, timeout=180)
    supervisor = stack.managed("processor").pid()
    assert supervisor is not None
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    assert len(children) == 1, "the supervisor runs exactly one processor"
    os.kill(int(children[0]), signal.SIGKILL)
    person = pg.execute("SELECT person_id FROM population.persons ORDER BY person_id LIMIT 1").fetchone()[0]
    pg.execute("UPDATE population.persons SET status = 'emigrated', updated_at = now() WHERE person_id = %s",
               (person,))
    started = time.monotonic()
    poll_until(lambda: Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split() not in ([], children),
               30, "a new processor under the same supervisor")
    converged_in = wait_converged(pg, ch, timeout=120)
    with capsys.disabled():  # the figures docs/benchmarks.md reports
        print(f"\n[crash] processor killed alone: converged {time.monotonic() - started:.1f}s after the kill "
              f"({converged_in:.1f}s of waiting for convergence)", flush=True)
    assert stack.managed("processor").pid() == supervisor


def test_a_sink_killed_behind_a_large_backlog_loads_it_after_restart(stack, pg, ch):
    """A restarted sink checks every row of its first batch against what is already loaded (a
    previous life may have inserted it before it died). Spelled as one IN list, 30,000 such rows
    exceeded ClickHouse's max_query_size and the sink retried that read forever; it reads in
    slices now. The backlog builds in the clean topic while the sink is down."""
    from confluent_kafka import Consumer, TopicPartition

    from infra.demo.source import fill_persons
    from infra.stack import SOURCE_DB

    wait_converged(pg, ch, timeout=180)
    marks = {table: highest_version(ch, table) for table in TABLES}
    managed = stack.managed("sink")
    os.killpg(managed.pid(), signal.SIGKILL)
    poll_until(lambda: managed.pid() is None, 10, "the sink gone after SIGKILL")
    clean = TopicPartition("qoima.clean.demo.population.persons", 0)
    consumer = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": "test-backlog",
                         "isolation.level": "read_committed"})
    try:
        before = consumer.get_watermark_offsets(clean, timeout=10)[1]
        fill_persons(stack.pg_admin_conninfo(SOURCE_DB), 30_000, seed=SEED)
        poll_until(lambda: consumer.get_watermark_offsets(clean, timeout=10)[1] >= before + 30_000, 180,
                   "30,000 clean records waiting for the sink")
    finally:
        consumer.close()
    restart(stack, "sink")
    wait_converged(pg, ch, tables=("population.persons",), timeout=240)
    for table, key in TABLES.items():
        assert loaded_twice(ch, table, key, marks[table]) == [], f"{table}: a version loaded twice"


def _kafka_up(stack) -> float | None:
    import requests

    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.assessor_metrics}/metrics", timeout=5).text
    values = [float(line.split()[1]) for line in text.splitlines() if line.startswith("qoima_kafka_up ")]
    return values[0] if values else None


def test_a_stopped_broker_is_reported_until_it_is_back(stack, pg, ch):
    """Kafka stopped (a full disk stops it) fails no Qoima process: the processor and the sink
    wait for it. The assessor's `qoima_kafka_up` is what QoimaKafkaDown fires on."""
    poll_until(lambda: _kafka_up(stack) == 1, 60, "qoima_kafka_up 1 while the broker runs")
    kill_9(stack, "kafka")
    try:
        # A round every 15 s, each waiting up to 5 s for an answer.
        poll_until(lambda: _kafka_up(stack) == 0, 60, "qoima_kafka_up 0 once the broker is gone")
    finally:
        restart(stack, "kafka")
    connectors_running(stack)
    poll_until(lambda: _kafka_up(stack) == 1, 60, "qoima_kafka_up 1 again once the broker is back")
    # A change made after the outage flows: the processor's first commit after it once failed
    # and its abort then hung twelve minutes in librdkafka; the worker now leaves after 240 s
    # and comes back (streams/commit_watchdog.py).
    pg.execute("UPDATE social.organizations SET kato_code = '751110000', updated_at = now() "
               "WHERE org_id = (SELECT max(org_id) FROM social.organizations)")
    wait_converged(pg, ch, timeout=360)
