"""A table's load (`qoima snapshot`, Debezium's incremental snapshot) at the scale issue 12 asks
about, on the real stack: while the demo load writes 200 changes/s it converges to the source;
kill -9 of the processor or of Connect mid-load converges; a paused load reads on from where
it stopped instead of reading the table again.

Each case first adds FILL generated persons (`qoima demo fill`'s generator), so that the load
lasts several seconds, and deletes them at its end (the deletes stream like any other change),
so that later tests see the table they expect.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager

import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from infra.demo.source import fill_persons
from infra.stack import SOURCE_DB
from model.regulation import load_all
from sinks.clickhouse_users import writer_client
from tests.e2e.cli import qoima
from tests.e2e.crash import connectors_running, kill_9, restart
from tests.e2e.load import background_load
from tests.e2e.warehouse import highest_version, loaded_twice, poll_until, wait_converged

FILL = 20_000
RATE = 200
LOAD_SECONDS = 30
TABLE = "population.persons"
# Debezium reads an incremental snapshot in chunks of this many rows (connectors/debezium/shared.py).
CHUNK = 2048


@pytest.fixture
def filled(stack, pg, ch, request):
    """The persons table grown by FILL rows (or the test's parameter) and analysed (the load's
    estimate); how many rows it holds. The added rows are deleted afterwards and the warehouse
    waited for."""
    wait_converged(pg, ch, timeout=180)
    top = pg.execute("SELECT coalesce(max(person_id), 0) FROM population.persons").fetchone()[0]
    rows = fill_persons(stack.pg_admin_conninfo(SOURCE_DB), getattr(request, "param", FILL), seed=12)
    pg.execute("ANALYZE population.persons")
    wait_converged(pg, ch, timeout=180)
    yield rows
    pg.execute("DELETE FROM population.persons WHERE person_id > %s", (top,))
    wait_converged(pg, ch, timeout=180)


def _history(stack) -> str:
    demo = next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "demo")
    return f"udw.`{demo.history_table(demo.table(TABLE))}`"


def _read_again(writer, history: str, since_ms: int) -> tuple[int, int | None]:
    """Snapshot rows (op r) loaded since `since_ms`, and when the first of them was loaded (ms)."""
    count, first = writer.query(
        f"SELECT count(), toUnixTimestamp64Milli(min(_loaded_ts)) FROM {history} WHERE _op = 'r' "
        "AND _loaded_ts >= fromUnixTimestamp64Milli({since:Int64})", parameters={"since": since_ms}).result_rows[0]
    return int(count), int(first) if count else None


def _snapshot(stack, *flags: str) -> int:
    """`qoima snapshot demo population.persons --now` (or with `flags` instead); when it was asked, in ms."""
    asked = int(time.time() * 1000)
    result = qoima(stack, "snapshot", "demo", *(flags or (TABLE, "--now")))
    assert result.returncode == 0, result.stdout + result.stderr
    return asked


def test_a_load_while_the_demo_load_runs_converges_to_the_source(stack, pg, ch, filled, capsys):
    writer, history = writer_client(stack.s), _history(stack)
    with background_load(stack, RATE, LOAD_SECONDS, seed=21) as summary:
        started = time.monotonic()
        asked = _snapshot(stack)
        # Rows the demo load deletes meanwhile are not read: nearly all, not all.
        poll_until(lambda: _read_again(writer, history, asked)[0] >= 0.95 * filled, 240,
                   "the table read again by the snapshot")
        read_in = time.monotonic() - started
        first_ms = _read_again(writer, history, asked)[1]
    assert summary["result"].changes > RATE * LOAD_SECONDS / 3, "the demo load ran"
    # The snapshot's rows came while the demo load was writing: the load overlapped streaming.
    assert first_ms is not None and first_ms < asked + LOAD_SECONDS * 1000
    converged_in = wait_converged(pg, ch, timeout=240)
    with capsys.disabled():
        print(f"\n[initial load] {filled} rows read again in {read_in:.1f}s under {RATE} changes/s; converged "
              f"{converged_in:.1f}s after the load ended", flush=True)


@contextmanager
def _first_chunk_held(stack, pg):
    """The persons table locked (ACCESS EXCLUSIVE) for the block: a snapshot requested in it
    starts, and Debezium's first chunk read waits for the lock, which the block's end releases.
    What is done in the block comes before that chunk in the WAL, whatever the timing."""
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as locker:
        locker.execute("LOCK TABLE population.persons IN ACCESS EXCLUSIVE MODE")
        yield
        locker.rollback()


def _capture_waits_for_the_lock(pg) -> bool:
    return pg.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted "
                      "AND l.relation = 'population.persons'::regclass AND a.usename = 'qoima_capture'"
                      ).fetchone()[0] > 0


def _settled(writer, history: str, since_ms: int) -> int:
    """The snapshot rows loaded since `since_ms`, once three looks a second apart agree."""
    counts: list[int] = []

    def quiet() -> bool:
        counts.append(_read_again(writer, history, since_ms)[0])
        if len(counts) >= 3 and counts[-1] == counts[-3]:
            return True
        time.sleep(1)
        return False

    poll_until(quiet, 120, "the snapshot rows to stop coming")
    return counts[-1]


def test_kill_9_of_connect_mid_load_converges(stack, pg, ch, filled):
    writer, history = writer_client(stack.s), _history(stack)
    mark = highest_version(ch, "demo__population__persons")
    with _first_chunk_held(stack, pg):
        asked = _snapshot(stack)
        # Killed while its snapshot is under way: Debezium waits in its first chunk's read.
        poll_until(lambda: _capture_waits_for_the_lock(pg), 60, "Debezium reading the first chunk")
        kill_9(stack, "connect")
    time.sleep(2)  # down for a while, not a condition
    restart(stack, "connect")
    connectors_running(stack)
    # Back, Debezium reads the signal again from the replication slot (its offsets were not
    # flushed past it) and loads the table.
    poll_until(lambda: _read_again(writer, history, asked)[0] >= filled, 300, "the load after Connect's restart")
    wait_converged(pg, ch, timeout=240)
    assert loaded_twice(ch, "demo__population__persons", "person_id", mark) == []


def test_kill_9_of_the_processor_mid_load_converges(stack, pg, ch, filled):
    writer, history = writer_client(stack.s), _history(stack)
    mark = highest_version(ch, "demo__population__persons")
    with background_load(stack, RATE, LOAD_SECONDS, seed=22):
        asked = _snapshot(stack)
        poll_until(lambda: _read_again(writer, history, asked)[0] >= CHUNK, 120, "the load under way")
        loaded = _read_again(writer, history, asked)[0]
        kill_9(stack, "processor")
        assert loaded < filled, "killed mid-load, not after it"
        time.sleep(2)  # down for a while, not a condition: the source keeps changing meanwhile
        restart(stack, "processor")
        # Rows the demo load deletes meanwhile are not read: nearly all, not all.
        poll_until(lambda: _read_again(writer, history, asked)[0] >= 0.95 * filled, 300,
                   "the load finished after the processor was killed")
    wait_converged(pg, ch, timeout=240)
    assert loaded_twice(ch, "demo__population__persons", "person_id", mark) == []


def test_a_paused_load_reads_on_from_where_it_stopped(stack, pg, ch, filled):
    writer, history = writer_client(stack.s), _history(stack)
    with _first_chunk_held(stack, pg):
        asked = _snapshot(stack)
        _snapshot(stack, "--pause")   # in the WAL before the first chunk's end: Debezium stops after it
    paused_at = _settled(writer, history, asked)
    assert paused_at == CHUNK, f"{paused_at} rows read before the pause took effect, one chunk expected"
    status = qoima(stack, "status", "--json")
    loads = [entry for entry in json.loads(status.stdout)["loads"] if entry["table"] == TABLE]
    assert loads and loads[-1]["state"] == "paused", loads
    assert "--resume` reads on from where it stopped" in qoima(stack, "status").stdout
    # Streaming goes on while the load is paused, and the load reads nothing.
    person = pg.execute("SELECT max(person_id) FROM population.persons").fetchone()[0]
    pg.execute("UPDATE population.persons SET status = 'emigrated', updated_at = now() WHERE person_id = %s",
               (person,))
    wait_converged(pg, ch, timeout=60)
    assert _read_again(writer, history, asked)[0] == paused_at

    _snapshot(stack, "--resume")

    def read_whole() -> int | None:
        settled = _settled(writer, history, asked)
        return settled if settled >= filled else None

    total = poll_until(read_whole, 300, "the resumed load to read the table")
    # On from where it stopped: each row once, not the first chunk again.
    assert total == filled, f"{total} snapshot rows for a table of {filled}"
    status = json.loads(qoima(stack, "status", "--json").stdout)
    assert [entry["state"] for entry in status["loads"] if entry["table"] == TABLE][-1] in ("loading", "done")
    wait_converged(pg, ch, timeout=120)


def _throttles(stack) -> float:
    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.assessor_metrics}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "qoima_load_throttles_total" and sample.labels.get("provider") == "demo")


@pytest.mark.parametrize("filled", [80_000], indirect=True)
def test_a_load_pauses_for_the_processors_backlog_and_the_stream_flows_meanwhile(stack, pg, ch, filled):
    """Debezium reads far faster than the processor routes: the load governor pauses the load
    while the backlog is deep, so a change made mid-load waits behind a few seconds of it, not
    the whole table (governance/load_governor.py)."""
    writer, history = writer_client(stack.s), _history(stack)
    before = _throttles(stack)
    asked = _snapshot(stack)
    poll_until(lambda: _throttles(stack) > before, 120, "the load governor pausing the load")
    person = pg.execute("SELECT min(person_id) FROM population.persons").fetchone()[0]
    pg.execute("UPDATE population.persons SET status = 'emigrated', updated_at = now() WHERE person_id = %s",
               (person,))
    poll_until(lambda: ch.query("SELECT status FROM udw.demo__population__persons FINAL WHERE person_id = "
                                "{p:Int64}", parameters={"p": person}).result_rows == [("emigrated",)],
               120, "the change made mid-load in the warehouse")
    read = _read_again(writer, history, asked)[0]
    assert read < 0.9 * filled, f"the change waited behind the load: {read} of {filled} rows were loaded first"
    poll_until(lambda: _read_again(writer, history, asked)[0] >= filled, 300, "the load, resumed, to finish")
    wait_converged(pg, ch, timeout=240)
