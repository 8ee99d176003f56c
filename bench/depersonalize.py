"""Depersonalization throughput on the demo persons table, Qoima's plan against a naive one.

Both run in this process on the same rows, one core each in turn:
- qoima: `TablePlan` compiled once from the regulation (subkeys derived once, one HMAC per
  hashed value, decoders bound per column), as the processor uses it;
- naive: what a per-field implementation typically does, looking the column's rule up in
  the regulation for every value, deriving the HMAC key with HKDF for every value and
  parsing dates through strings.
The full processor path (JSON decode + plan + Avro encode, `Router.route`) is measured too.

    .venv/bin/python bench/depersonalize.py [--rows 20000]
"""
from __future__ import annotations

import argparse
import json
import random
import time
from datetime import date, datetime, timedelta, timezone

from model.regulation import Action, load_regulation
from infra.demo import generator
from model.settings import REPO_ROOT, Settings
from model import normalize
from schemas.avro_codec import codec_for
from streams.depersonalize import TablePlan
from streams.keys import KeyRing, hkdf_sha256, pseudonym
from streams.router import Router

EPOCH = date(1970, 1, 1)


def demo_rows(count: int) -> list[dict]:
    rng = random.Random(1)
    rows = []
    for i in range(count):
        person = generator.make_person(rng, today=date(2026, 11, 23))
        person.pop("_defect", None)
        person["person_id"] = i + 1
        person["birth_date"] = (person["birth_date"] - EPOCH).days   # as Debezium sends it
        person["updated_at"] = "2026-11-23T10:00:00.000000Z"
        rows.append(person)
    return rows


def naive(table, master: bytes, row: dict) -> dict:
    out = {}
    for name, value in row.items():
        column = next((c for c in table.columns if c.name == name), None)
        if column is None or column.action is Action.drop:
            continue
        if value is None:
            out[name] = None
        elif column.action is Action.hash:
            key = hkdf_sha256(master, b"qoima-pseudonyms", f"k1/{column.kind.value}".encode())
            canonical = normalize.BY_KIND[column.kind.value](str(value))
            out[name + "_hash"] = pseudonym(key, (canonical or str(value)).encode())
        elif column.action is Action.generalize and column.to.value == "year":
            out[name + "_year"] = int((EPOCH + timedelta(days=int(value))).isoformat()[:4])
        elif column.action is Action.generalize:
            out[name + "_region"] = str(value)[:2]
        elif column.type == "timestamptz":
            out[name] = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
        else:
            out[name] = value
    return out


def measure(label: str, fn, rows: list, baseline: float | None = None) -> float:
    started = time.perf_counter()
    for row in rows:
        fn(row)
    rate = len(rows) / (time.perf_counter() - started)
    vs = f"  ({rate / baseline:.1f}x naive)" if baseline else ""
    print(f"{label:<44} {rate:>10,.0f} events/s{vs}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    settings = Settings.from_env({"QOIMA_HOME": "/tmp/qoima-bench"})
    regulation = load_regulation(REPO_ROOT / "connectors/regulations/demo.yaml", settings.regulation_env())
    table = regulation.table("population.persons")
    master = bytes(range(32))
    ring = KeyRing("k1", master)
    plan = TablePlan(table, ring)
    router = Router([regulation], ring, codec_for([regulation]))
    rows = demo_rows(args.rows)
    events = [json.dumps({"op": "c", "before": None, "after": r, "source": {
        "lsn": 1000 + i, "ts_ms": 1_790_000_000_000, "schema": "population", "table": "persons"}}).encode()
        for i, r in enumerate(rows)]
    topic = regulation.raw_topic(table)
    print(f"{args.rows} demo persons rows, one core\n")
    measure("warm-up", lambda r: plan.apply(r), rows[:2000])
    baseline = measure("naive per-field depersonalization", lambda r: naive(table, master, r), rows)
    measure("qoima TablePlan.apply", plan.apply, rows, baseline)
    # The whole processor step per event, for capacity planning; the naive variant has no
    # JSON or Avro stage, so this line is not compared with it.
    measure("qoima full path (JSON + plan + Avro)", lambda e: router.route(topic, 0, 0, e), events)


if __name__ == "__main__":
    main()
