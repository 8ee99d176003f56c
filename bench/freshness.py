"""End-to-end freshness and memory of the running local stack under the demo load.

Needs a stack started by `make run` (or `qoima up`). For each rate it drives the demo load for
the given duration, then reads from ClickHouse the exact freshness of every row written in
that window (`_loaded_ts - _source_ts`: warehouse write time minus source commit time), and
samples the resident memory of every component's process tree once a second. The low rate is
the baseline the high rate is compared with, in the same run.

    .venv/bin/python bench/freshness.py --rates 50 500 --duration 60 [--json]
"""
from __future__ import annotations

import argparse
import json
import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from cpu import children_of, processes, tree
from infra.demo.source import LoadDriver
from infra.stack import ORDER, SOURCE_DB, LocalStack
from model.settings import Settings
from sinks.clickhouse_users import writer_client

TABLES = ("demo__population__persons", "demo__social__organizations", "demo__social__payments")


def _tree_memory_kb(pid: int) -> tuple[int, int]:
    """Resident and anonymous memory (kB) of a process and all its descendants. Resident memory
    counts the pages of files a process maps, in each process that maps them: the processor's
    local state store (LMDB, mapped whole) shows up in the worker and again in its forked writer,
    though those pages are the kernel's page cache, shared and reclaimable. Anonymous memory is
    what the processes themselves allocated."""
    rss = anon = 0
    table = processes()
    for current in tree(pid, children_of(table)) if pid in table else ():
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
                elif line.startswith("RssAnon:"):
                    anon += int(line.split()[1])
        except OSError:
            pass
    return rss, anon


class MemorySampler(threading.Thread):
    def __init__(self, stack: LocalStack) -> None:
        super().__init__(daemon=True)
        self.pids = {name: stack.managed(name).pid() for name in ORDER}
        self.peak_kb = {name: 0 for name, pid in self.pids.items() if pid}
        self.peak_anon_kb = dict(self.peak_kb)
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            for name in self.peak_kb:
                rss, anon = _tree_memory_kb(self.pids[name])
                self.peak_kb[name] = max(self.peak_kb[name], rss)
                self.peak_anon_kb[name] = max(self.peak_anon_kb[name], anon)
            self.done.wait(1.0)


def freshness(client, since: datetime, until: datetime) -> tuple[int, float, float, float]:
    union = " UNION ALL ".join(
        f"SELECT dateDiff('millisecond', _source_ts, _loaded_ts) AS ms FROM udw.{t} "
        f"WHERE _source_ts BETWEEN {{since:DateTime64(3)}} AND {{until:DateTime64(3)}} AND _op != 'r'"
        for t in TABLES)
    rows, p50, p99, worst = client.query(
        f"SELECT count(), quantileExact(0.5)(ms), quantileExact(0.99)(ms), max(ms) FROM ({union})",
        parameters={"since": since, "until": until}).result_rows[0]
    return rows, p50 / 1000, p99 / 1000, worst / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", type=float, nargs="+", default=[50, 500])
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args()
    settings = Settings.from_env()
    stack = LocalStack(settings, progress=lambda _: None)
    if not stack.managed("sink").pid():
        raise SystemExit("the local stack is not running: start it with `make run` first")
    client = writer_client(settings)
    sampler = MemorySampler(stack)
    sampler.start()
    print(f"{'rate/s':>8} {'achieved':>9} {'rows':>7} {'p50 s':>7} {'p99 s':>7} {'max s':>7}")
    result: dict = {"rates": [], "duration_s": args.duration, "cores": os.cpu_count()}
    for rate in args.rates:
        since = datetime.now(timezone.utc)
        summary = LoadDriver(stack.pg_admin_conninfo(SOURCE_DB), rate, seed=int(rate)).run(duration=args.duration)
        until = datetime.now(timezone.utc)
        time.sleep(10)  # let the tail of the window reach the warehouse
        rows, p50, p99, worst = freshness(client, since, until)
        print(f"{rate:>8.0f} {summary.rate:>9.1f} {rows:>7d} {p50:>7.2f} {p99:>7.2f} {worst:>7.2f}", flush=True)
        result["rates"].append({"rate": rate, "achieved": round(summary.rate, 1), "rows": rows, "p50": p50,
                                "p99": p99, "max": worst})
    sampler.done.set()
    sampler.join()
    print("\npeak memory of each process tree, MiB (resident counts mapped files, such as the processor's "
          "state store, in every process mapping them; anonymous does not):")
    print(f"  {'':<14} {'resident':>9} {'anonymous':>10}")
    for name, kb in sampler.peak_kb.items():
        print(f"  {name:<14} {kb / 1024:9.0f} {sampler.peak_anon_kb[name] / 1024:10.0f}")
    print(f"  {'total':<14} {sum(sampler.peak_kb.values()) / 1024:9.0f} "
          f"{sum(sampler.peak_anon_kb.values()) / 1024:10.0f}   (cores: {os.cpu_count()})")
    result["peak_mib"] = {name: {"resident": round(kb / 1024), "anonymous": round(sampler.peak_anon_kb[name] / 1024)}
                          for name, kb in sampler.peak_kb.items()}
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
