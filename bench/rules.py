"""Processor throughput with every demo quality rule on against the same regulation with no
rules, in one run: `Router.route` (JSON decode, rules, depersonalization, Avro) on demo
events, one core. The stateful rules keep their state in dicts here (the state stores in the
processor, whose changelog writes are not part of this figure).

    .venv/bin/python bench/rules.py [--rows 20000]
"""
from __future__ import annotations

import argparse
import json
import random
import time
from datetime import date

from model.regulation import load_regulation
from infra.demo import generator
from model.settings import REPO_ROOT, Settings
from schemas.avro_codec import codec_for
from streams.keys import KeyRing
from streams.router import Router

EPOCH = date(1970, 1, 1)


def _json(value):
    if isinstance(value, date) and not hasattr(value, "hour"):
        return (value - EPOCH).days
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def events(regulation, count: int) -> list[tuple[str, bytes]]:
    rng = random.Random(3)
    persons = [generator.make_person(rng, today=date(2026, 11, 23)) for _ in range(count // 4)]
    orgs = [generator.make_organization(rng) for _ in range(50)]
    out = []
    now_ms = int(time.time() * 1000)
    for i in range(count):
        if i % 4 == 0:
            row, table = dict(persons[i // 4], person_id=i, updated_at="2026-11-23T10:00:00Z"), "population.persons"
        else:
            person, org = rng.choice(persons), rng.choice(orgs)
            row = dict(generator.make_payment(rng, person["iin"], org["bin"], kato_code=person["kato_code"],
                                              today=date(2026, 11, 23)),
                       payment_id=i, updated_at="2026-11-23T10:00:00Z")
            table = "social.payments"
        row.pop("_defect", None)
        schema, name = table.split(".")
        event = {"op": "c", "before": None, "after": {k: (None if v is None else _json(v) if not isinstance(v, (int, str)) else v)
                                                      for k, v in row.items()},
                 "source": {"lsn": 1000 + i, "ts_ms": now_ms, "schema": schema, "table": name}}
        out.append((regulation.raw_topic(regulation.table(table)), json.dumps(event).encode()))
    return out


def measure(label: str, router: Router, stream, baseline: float | None = None) -> float:
    started = time.perf_counter()
    for topic, value in stream:
        router.route(topic, 0, 0, value)
    rate = len(stream) / (time.perf_counter() - started)
    print(f"{label:<34} {rate:>10,.0f} events/s" + (f"  ({rate / baseline:.2f}x)" if baseline else ""))
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20000)
    args = parser.parse_args()
    settings = Settings.from_env({"QOIMA_HOME": "/tmp/qoima-bench"})
    with_rules = load_regulation(REPO_ROOT / "connectors/regulations/demo.yaml", settings.regulation_env())
    without = with_rules.model_copy(update={"tables": [t.model_copy(update={"rules": []}) for t in with_rules.tables]})
    ring = KeyRing("k1", bytes(range(32)))
    stream = events(with_rules, args.rows)
    state = {"values": {}, "owners": {}, "references": {}, "pending": {}}
    off = Router([without], ring, codec_for([without]))
    on = Router([with_rules], ring, codec_for([with_rules]), state=state)
    rules = sum(len(t.rules) for t in with_rules.tables)
    print(f"{len(stream)} demo events (1 person : 3 payments), {rules} rules declared, one core\n")
    measure("warm-up", off, stream[:2000])
    baseline = measure("rules off (baseline)", off, stream)
    measure("all demo rules on", on, stream, baseline)


if __name__ == "__main__":
    main()
