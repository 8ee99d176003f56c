"""A load of national size: a million-row register into the warehouse, beside the rate at which
PostgreSQL alone reads the same table (the floor every load path is measured against).

Needs a stack started by `make run` (or `qoima up --no-demo`, so that only this benchmark's load
runs). In one run it:

1. adds `--rows` generated persons to the demo register (population.persons) by COPY, in
   transactions of 10,000 rows, as a bulk import at the source would; CDC streams them, and the
   time until the last is queryable in ClickHouse is the *bulk import through CDC* figure;
2. reads the whole table with `COPY ... TO STDOUT` (the *floor*: no Kafka, no processing);
3. re-snapshots the table (`qoima snapshot`'s Debezium incremental snapshot) and times it from
   the signal to the last snapshot row queryable in ClickHouse, every rule and
   depersonalization on, through the same processor and sink as every change; with `--rate`,
   the demo load runs meanwhile and the freshness of its changes during the snapshot is
   reported beside that of the same load before it. The CPU each component of the stack used
   during the snapshot is reported per loaded row (bench/cpu.py): on a machine of N cores, a
   load of R rows/s cannot cost more than N / R seconds of CPU per row all components together.

    .venv/bin/python bench/initial_load.py [--rows 1000000] [--rate 200] [--skip-fill] [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from freshness import freshness  # noqa: E402  (the same exact-quantile query as bench/freshness.py)
from cpu import cpu_by_component, machine_busy, spent  # noqa: E402

from connectors.snapshot import start_load  # noqa: E402
from infra.demo.source import LoadDriver, fill_persons  # noqa: E402
from infra.stack import SOURCE_DB, LocalStack  # noqa: E402
from model.regulation import load_regulation  # noqa: E402
from model.settings import Settings  # noqa: E402
from sinks.clickhouse_users import writer_client  # noqa: E402

TABLE = "population.persons"
HISTORY = "udw.demo__population__persons__history"


def source_count(conninfo: str) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]


def copy_floor(conninfo: str) -> tuple[int, float]:
    """(rows, seconds) of reading the whole table with COPY TO STDOUT, as text."""
    started = time.perf_counter()
    rows = 0
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        with cur.copy(f"COPY {TABLE} TO STDOUT") as copy:
            for block in copy:
                rows += bytes(block).count(b"\n")
    return rows, time.perf_counter() - started


# A load with the demo load running ends short of the row count taken before it: persons the demo
# load deletes before their chunk is read are not read. It has ended once it is this close and no
# snapshot row has come for QUIET_S.
NEARLY = 0.99
QUIET_S = 30


def wait_for(probe, target: int, timeout: float, label: str, last_ms=None) -> tuple[float, int]:
    """Poll `probe()` once a second until it reaches `target` (or, with `last_ms`, the time of
    the last row, until it is within NEARLY of it and quiet for QUIET_S); (seconds to the last
    row, last value). Prints progress every 10 s; stops at `timeout` with what it reached."""
    started = time.monotonic()
    started_ms = int(time.time() * 1000)
    last_print, value = started, 0
    while True:
        value = probe()
        now = time.monotonic()
        last = last_ms() if last_ms is not None and value >= NEARLY * target else None
        if last is not None and time.time() * 1000 - last > QUIET_S * 1000:
            return (last - started_ms) / 1000, value
        if value >= target or now - started > timeout:
            return now - started, value
        if now - last_print >= 10:
            rate = value / (now - started)
            print(f"  {label}: {value:,} of {target:,} rows, {rate:,.0f} rows/s", flush=True)
            last_print = now
        time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="persons to add before the load")
    parser.add_argument("--rate", type=float, default=0, help="demo changes/s while the snapshot runs (0: none)")
    parser.add_argument("--skip-fill", action="store_true", help="the table is filled already: snapshot only")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds each phase may take")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    settings = Settings.from_env()
    stack = LocalStack(settings, progress=lambda _: None)
    if not stack.managed("sink").pid():
        raise SystemExit("the local stack is not running: start it with `make run` (or `qoima up --no-demo`) first")
    conninfo = stack.pg_admin_conninfo(SOURCE_DB)
    client = writer_client(settings)
    regulation = load_regulation(settings.regulations_dir / "demo.yaml", settings.regulation_env())
    result: dict = {"rows": args.rows, "table": TABLE}

    def loaded(since_ms: int, op: str | None = None) -> int:
        where = f"_loaded_ts >= fromUnixTimestamp64Milli({since_ms})" + (f" AND _op = '{op}'" if op else "")
        # The history table: every version loaded stays there (the table analysts read merges a
        # snapshot row away once a later change of the row arrives).
        return int(client.command(f"SELECT uniqExact(person_id) FROM {HISTORY} WHERE {where}"))

    def last_snapshot_row_ms(since_ms: int) -> int | None:
        return int(client.command(f"SELECT toUnixTimestamp64Milli(max(_loaded_ts)) FROM {HISTORY} WHERE _op = 'r' "
                                  f"AND _loaded_ts >= fromUnixTimestamp64Milli({since_ms})")) or None

    if not args.skip_fill:
        print(f"1. bulk import at the source: {args.rows:,} persons by COPY, streamed by CDC", flush=True)
        since_ms = int(time.time() * 1000)
        started = time.monotonic()
        fill_persons(conninfo, args.rows, seed=12)
        written_s = time.monotonic() - started
        seconds, reached = wait_for(lambda: loaded(since_ms), args.rows, args.timeout, "CDC")
        seconds += written_s
        result["cdc_import"] = {"rows": reached, "seconds": round(seconds, 1), "rows_per_s": round(reached / seconds),
                                "source_write_seconds": round(written_s, 1)}
        print(f"   written at the source in {written_s:.1f} s; {reached:,} rows in the warehouse after "
              f"{seconds:.1f} s: {reached / seconds:,.0f} rows/s", flush=True)

    total = source_count(conninfo)
    rows, seconds = copy_floor(conninfo)
    floor = rows / seconds
    result["copy_floor"] = {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(floor)}
    print(f"2. the floor: COPY {TABLE} TO STDOUT read {rows:,} rows in {seconds:.2f} s: {floor:,.0f} rows/s",
          flush=True)

    stop = threading.Event()
    before = during = None
    if args.rate:
        print(f"   the demo load at {args.rate:.0f} changes/s for 60 s before the snapshot (its freshness "
              "is the baseline)", flush=True)
        since = datetime.now(timezone.utc)
        LoadDriver(conninfo, args.rate, seed=7).run(duration=60)
        until = datetime.now(timezone.utc)
        time.sleep(10)
        before = freshness(client, since, until)
        driver = LoadDriver(conninfo, args.rate, seed=8)
        load = threading.Thread(target=driver.run, kwargs={"stop_event": stop}, daemon=True)
        load.start()

    print(f"3. snapshot of {TABLE} ({total:,} rows) through Debezium's incremental snapshot, the "
          "processor and the sink", flush=True)
    since_ms = int(time.time() * 1000)
    since = datetime.now(timezone.utc)
    readings = [(time.time(), cpu_by_component(stack), machine_busy())]

    def snapshot_rows() -> int:   # and the CPU used so far, read each time the rows are counted
        readings.append((time.time(), cpu_by_component(stack), machine_busy()))
        return loaded(since_ms, "r")

    start_load(regulation, [TABLE], settings.regulation_env(), settings.run_dir / "loads")   # `qoima status` follows it
    waited_from = time.time()
    seconds, reached = wait_for(snapshot_rows, total, args.timeout, "snapshot", lambda: last_snapshot_row_ms(since_ms))
    # CPU from the signal up to the first reading after the last row arrived: the quiet tail
    # wait_for waits out is not the load's.
    last_row = waited_from + seconds
    end, cpu_end, busy_end = min((r for r in readings if r[0] >= last_row), key=lambda r: r[0], default=readings[-1])
    used, busy = spent(readings[0][1], cpu_end), busy_end - readings[0][2]
    window = end - readings[0][0]
    until = datetime.now(timezone.utc)
    if args.rate:
        stop.set()
        time.sleep(10)
        during = freshness(client, since, until)
    result["snapshot"] = {"rows": reached, "seconds": round(seconds, 1), "rows_per_s": round(reached / seconds)}
    print(f"   {reached:,} of {total:,} rows in the warehouse after {seconds:.1f} s: {reached / seconds:,.0f} rows/s "
          f"({reached / seconds / floor:.3f}x the COPY floor)", flush=True)
    cores = os.cpu_count() or 1
    used["(other: this benchmark, demo load, system)"] = max(0.0, busy - sum(used.values()))
    result["cpu"] = {"cores": cores, "seconds": round(window, 1), "machine_busy_share": round(busy / (window * cores), 3),
                     "us_per_row": {name: round(cpu_s / reached * 1e6) for name, cpu_s in used.items()}}
    print(f"   CPU during the snapshot ({window:.0f} s), per loaded row ({cores} cores, busy "
          f"{busy / (window * cores):.0%}; at 10,000 rows/s the whole stack may spend {cores * 100} µs a row):",
          flush=True)
    for name, cpu_s in used.items():
        print(f"     {name:<34} {cpu_s / reached * 1e6:>7,.0f} µs   {cpu_s / window:>5.0%} of a core", flush=True)
    print(f"     {'all':<34} {busy / reached * 1e6:>7,.0f} µs", flush=True)
    if args.rate:
        result["freshness"] = {"rate": args.rate, "before": dict(zip(("rows", "p50", "p99", "max"), before)),
                               "during": dict(zip(("rows", "p50", "p99", "max"), during))}
        for label, (n, p50, p99, worst) in (("before", before), ("during", during)):
            print(f"   freshness of the demo load {label} the snapshot: {n:,} rows, p50 {p50:.2f} s, "
                  f"p99 {p99:.2f} s, max {worst:.2f} s", flush=True)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
