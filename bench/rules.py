"""Processor throughput with every demo quality rule on against the same regulation with no
rules, in one run, in memory on one core:

- rules off (the baseline): `Router.route` (JSON decode, depersonalization, Avro) per event;
- all demo rules on: a whole worker's batch logic (streams/batch.py, fed back by `loopback`):
  raw events spread over four work partitions, routed with every rule, their cross-row claims
  judged, state changes collected for the changelog. Kafka is not part of this figure
  (bench/processor.py has it).

    .venv/bin/python bench/rules.py [--rows 20000] [--passes 1] [--with-store]

`--with-store` keeps the worker's state on its local store as the processor does (LMDB, written
in the background between passes), so that reads of keys not changed lately go to disk.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from datetime import date
from pathlib import Path

from model.regulation import load_regulation
from infra.demo import generator
from model.settings import REPO_ROOT, Settings
from schemas.avro_codec import codec_for
from streams.batch import loopback
from streams.keys import KeyRing, KeySchedule
from streams.processor import wire
from streams.router import Router

EPOCH = date(1970, 1, 1)


def _json(value):
    if isinstance(value, date) and not hasattr(value, "hour"):
        return (value - EPOCH).days
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def events(regulation, count: int) -> list[tuple[str, bytes, bytes]]:
    """(raw topic, Debezium's key, event) of `count` demo changes."""
    rng = random.Random(3)
    persons = [generator.make_person(rng, today=date(2026, 11, 23)) for _ in range(count // 4)]
    orgs = [generator.make_organization(rng) for _ in range(50)]
    out = []
    now_ms = int(time.time() * 1000)
    for i in range(count):
        if i % 4 == 0:
            key = json.dumps({"person_id": i})
            row, table = dict(persons[i // 4], person_id=i, updated_at="2026-11-23T10:00:00Z"), "population.persons"
        else:
            person, org = rng.choice(persons), rng.choice(orgs)
            row = dict(generator.make_payment(rng, person["iin"], org["bin"], kato_code=person["kato_code"],
                                              today=date(2026, 11, 23)),
                       payment_id=i, updated_at="2026-11-23T10:00:00Z")
            key, table = json.dumps({"payment_id": i}), "social.payments"
        row.pop("_defect", None)
        schema, name = table.split(".")
        event = {"op": "c", "before": None, "after": {k: (None if v is None else _json(v) if not isinstance(v, (int, str)) else v)
                                                      for k, v in row.items()},
                 "source": {"lsn": 1000 + i, "ts_ms": now_ms, "schema": schema, "table": name}}
        out.append((regulation.raw_topic(regulation.table(table)), key.encode(), json.dumps(event).encode()))
    return out


def measure(label: str, route, stream, baseline: float | None = None, events: int | None = None) -> float:
    """`events`: how many `route` handles (the stream's length unless it goes over it again)."""
    started = time.perf_counter()
    route(stream)
    rate = (events or len(stream)) / (time.perf_counter() - started)
    print(f"{label:<34} {rate:>10,.0f} events/s" + (f"  ({rate / baseline:.2f}x)" if baseline else ""))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--passes", type=int, default=1, help="times the whole worker routes the events")
    parser.add_argument("--with-store", action="store_true",
                        help="the worker's state on its local store (streams/state_store.py StateBase), as the "
                             "processor keeps it, written in the background after each pass: reads of keys not "
                             "changed since go to LMDB")
    args = parser.parse_args()
    settings = Settings.from_env({"QOIMA_HOME": "/tmp/qoima-bench"})
    with_rules = load_regulation(REPO_ROOT / "connectors/regulations/demo.yaml", settings.regulation_env())
    without = with_rules.model_copy(update={"tables": [t.model_copy(update={"rules": []}) for t in with_rules.tables]})
    ring = KeyRing("k1", bytes(range(32)))
    stream = events(with_rules, args.rows)
    off = Router([without], ring, codec_for([without]))
    worker, state, _ = wire([with_rules], KeySchedule.single(ring), codec_for([with_rules]), partitions=4)

    def route_only(part) -> None:
        for offset, (topic, _, value) in enumerate(part):
            off.route(topic, 0, offset, value)

    base = None
    if args.with_store:
        from streams.state_store import StateBase

        owned = lambda store: range(4)  # noqa: E731 - every partition: one worker
        base = StateBase(Path(tempfile.mkdtemp(prefix="qoima-bench-store-")) / "worker-0.lmdb")
        base.reset()
        base.rebuilt(state, owned, {})

    def whole_worker(part) -> None:
        for round_ in range(args.passes):
            if base is not None:   # what the last pass changed goes to the store; memory keeps only what changes
                base.save(state, owned, {}, background=True)
            for start in range(0, len(part), 5000):  # the processor's batches
                loopback(worker, [(topic, 0, (round_ + 1) * 10**7 + start + n, key, value, None)
                                  for n, (topic, key, value) in enumerate(part[start:start + 5000])], now=0)

    rules = sum(len(t.rules) for t in with_rules.tables)
    print(f"{len(stream)} demo events (1 person : 3 payments), {rules} rules declared, one core\n")
    measure("warm-up", route_only, stream[:2000])
    baseline = measure("rules off (baseline)", route_only, stream)
    label = "whole worker, state on its store" if base is not None else "all demo rules on, whole worker"
    measure(label, whole_worker, stream, baseline, events=len(stream) * args.passes)


if __name__ == "__main__":
    main()
