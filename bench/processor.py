"""Processor runtimes on the same routing, in one run: events/s from raw topics to committed output.

Starts (or reuses) a Kafka broker of its own (QOIMA_HOME var/bench-stack, ports +2000, so a
running `make run` stack is left alone), pre-fills fresh raw topics with demo change events
(1 person : 3 payments, as bench/rules.py makes them) and runs each runtime over them with
every demo rule on, the stateful ones included, each in a fresh consumer group:

- faust: today's per-event Faust agent before this change (the baseline): one `Router.route`
  and one `send` per event, Faust tables for the rules' state, at-least-once commits;
- batch: streams/processor.py, one worker of the batch loop on confluent-kafka with Kafka
  transactions (records, incident detections, state changelog and offsets committed together):
  raw events spread over the work topic's partitions, routed, their claims judged from the
  rules topic, every step in the same worker.
- batch2: two such workers in one consumer group, each pinned to its own core (the broker
  shares them): the scale-out on this 2-core machine.

Each runtime runs in a child process pinned to one core (the broker has the other). Its rate
is the events it routed (the clean, held or quarantine record committed; the child reports its
count every 100 ms) divided by the time from its first routed event to its last: start-up is
not counted.

- quix: a quixstreams 3.28 application on the same routing (`run_quix`), exactly-once, in a venv
  of its own (var/bench-quix, made on first use: it pins confluent-kafka < 2.13 and pydantic < 2.14).

    .venv/bin/python bench/processor.py [--events 60000] [--runtimes faust quix batch batch2] [--partitions 4] [--json]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient  # noqa: E402

from model.regulation import Regulation, load_regulation  # noqa: E402
from model.settings import REPO_ROOT, Settings  # noqa: E402
from schemas.avro_codec import codec_for  # noqa: E402
from schemas.kafka_clients import admin_config, consumer_config, produce, producer_config  # noqa: E402
from streams.keys import KeyRing  # noqa: E402

BENCH_HOME = REPO / "var" / "bench-stack"
RING = KeyRing("k1", bytes(range(32)))


def bench_settings() -> Settings:
    return Settings.from_env({"QOIMA_HOME": str(BENCH_HOME), "QOIMA_PORT_SHIFT": "2000"})


def bench_regulation(settings: Settings, provider: str) -> Regulation:
    demo = load_regulation(REPO_ROOT / "connectors/regulations/demo.yaml", settings.regulation_env())
    return demo.model_copy(update={"provider": provider})


# --- the children: one runtime each -------------------------------------------------------------


def _pin_to_one_core(n: int) -> None:
    """Worker n on the n-th core from the last (one worker: the last core)."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[-1 - n % len(cores)]})


def _report_progress(count) -> None:
    """Print `count()` (events routed so far) every 100 ms: the parent's clock."""
    def report() -> None:
        while True:
            print(f"progress {count()}", flush=True)
            time.sleep(0.1)

    threading.Thread(target=report, daemon=True).start()


def run_batch(settings: Settings, regulation: Regulation, group: str) -> None:
    from model.names import WORK_TOPIC
    from streams.processor import Processor, partition_count, wire
    from streams.keys import KeySchedule

    codec = codec_for([regulation])
    batch, _, topics = wire([regulation], KeySchedule.single(RING), codec,
                            partition_count(settings.kafka_bootstrap, WORK_TOPIC))
    # One transactional id per worker: the same id would fence the other worker.
    instance = f"{group}-{os.getpid()}"
    processor = Processor(settings.kafka_bootstrap, batch, group=group, instance=instance)
    _report_progress(lambda: processor.routed)
    processor.run(topics)


def run_faust(settings: Settings, regulation: Regulation, group: str) -> None:
    """The per-event agent of streams/app.py before the batch loop, without its watchdog and gap
    filler (which only guarded against Faust's stalls and cost nothing per event). Its cross-row
    rules judge each row's claims at once, in Faust tables: one worker, no rules topic."""
    import faust

    from streams.cross_row.claims import Claims
    from streams.cross_row.judge import Judge
    from streams.cross_row.plan import CrossRowPlan
    from streams.router import Router

    codec = codec_for([regulation])
    # `datadir`: Faust's default is `<group>-data` in the working directory, the repository's root.
    app = faust.App(group, broker=f"kafka://{settings.kafka_bootstrap}", key_serializer="raw",
                    datadir=str(settings.data_dir / f"faust-{group}"), value_serializer="raw", web_enabled=False, store="memory://", topic_partitions=1,
                    processing_guarantee="at_least_once", producer_acks=-1, consumer_auto_offset_reset="earliest",
                    broker_commit_every=1000, broker_commit_interval=1.0)
    state = {name: app.Table(f"{group}-{name}", default=None, partitions=1)
             for name in ("owners", "values", "references", "pending")}
    plan = CrossRowPlan([regulation], RING.subkey("quality-state"))
    router = Router([regulation], RING, codec, Claims(plan, state["owners"]))
    judge = Judge(plan, state["values"], state["references"], state["pending"])
    raw = app.topic(*router.raw_topics, key_type=bytes, value_type=bytes)
    outputs: dict[str, object] = {}
    routed = [0]
    _report_progress(lambda: routed[0])

    @app.agent(raw)
    async def process(stream):
        async for event in stream.events():
            message = event.message
            out = router.route(message.topic, message.partition, message.offset, event.value)
            if out is None:
                continue
            for key, claim in out.claims:
                judge.apply(0, key, json.loads(json.dumps(claim)))
            if out.topic not in outputs:
                outputs[out.topic] = app.topic(out.topic, key_type=bytes, value_type=bytes)
            await outputs[out.topic].send(key=out.key, value=out.value)
            routed[0] += 1

    asyncio.set_event_loop(asyncio.new_event_loop())
    faust.Worker(app, loglevel="WARNING", redirect_stdouts=False).execute_from_commandline()


def run_quix(settings: Settings, regulation: Regulation, group: str) -> None:
    """A quixstreams 3.28 application (its own venv, var/bench-quix: it pins confluent-kafka < 2.13
    and pydantic < 2.14) on the same routing: one StreamingDataFrame per raw topic, the record sent
    to the topic `Router.route` chose (dynamic `to_topic`), exactly-once (Kafka transactions).
    Its cross-row rules judge each row's claims at once like the Faust baseline, in plain dicts:
    quixstreams' own state is scoped to the message key, and the judge reads other keys' entries,
    so this runtime writes no state changelog and its figure is an upper bound for quixstreams."""
    from quixstreams import Application
    from quixstreams.context import message_context
    from quixstreams.models.serializers import Serializer

    from streams.cross_row.claims import Claims
    from streams.cross_row.judge import Judge
    from streams.cross_row.plan import CrossRowPlan
    from streams.router import Router

    class RecordValue(Serializer):
        def __call__(self, value, ctx) -> bytes:
            return value.value

    codec = codec_for([regulation])
    plan = CrossRowPlan([regulation], RING.subkey("quality-state"))
    owners: dict = {}
    router = Router([regulation], RING, codec, Claims(plan, owners))
    judge = Judge(plan, {}, {}, {})
    app = Application(broker_address=settings.kafka_bootstrap, consumer_group=group, auto_offset_reset="earliest",
                      processing_guarantee="exactly-once", commit_interval=1.0, loglevel="WARNING",
                      state_dir=tempfile.mkdtemp(prefix="bench-quix-"), auto_create_topics=True)
    outputs = {name: app.topic(name, key_serializer="bytes", value_serializer=RecordValue())
               for name in codec.topics}
    routed = [0]
    _report_progress(lambda: routed[0])

    def route(value: bytes):
        context = message_context()
        out = router.route(context.topic, context.partition, context.offset, value)
        if out is None:
            return None
        for key, claim in out.claims:
            judge.apply(0, key, json.loads(json.dumps(claim)))
        routed[0] += 1
        return out

    for topic in router.raw_topics:
        sdf = app.dataframe(app.topic(topic, key_deserializer="bytes", value_deserializer="bytes"))
        sdf = sdf.apply(route).filter(lambda out: out is not None)
        sdf.to_topic(lambda out, key, timestamp, headers: outputs[out.topic], key=lambda out: out.key)
    app.run()


# --- the parent ---------------------------------------------------------------------------------


def prefill(settings: Settings, regulation: Regulation, count: int) -> dict[str, int]:
    """Demo events into the regulation's raw topics; the end offset of each."""
    sys.path.insert(0, str(REPO / "bench"))
    from rules import events  # the same events bench/rules.py routes in memory

    producer = Producer(producer_config(settings.kafka_bootstrap, extra={"linger.ms": 50}))
    for topic, key, value in events(regulation, count):
        produce(producer, topic, value, key)
    if producer.flush(60):
        raise SystemExit("the bench broker did not take the events")
    consumer = Consumer(consumer_config(settings.kafka_bootstrap, f"bench-probe-{uuid.uuid4()}"))
    ends = {t: consumer.get_watermark_offsets(TopicPartition(t, 0), timeout=10)[1] for t in _raw_topics(regulation)}
    consumer.close()
    return ends


def _raw_topics(regulation: Regulation) -> list[str]:
    return [regulation.raw_topic(t) for t in regulation.tables]


QUIX_VENV = REPO / "var" / "bench-quix"
# quixstreams 3.28.1 pins confluent-kafka < 2.13 and pydantic < 2.14, below Qoima's: its own venv.
QUIX_PACKAGES = ["quixstreams==3.28.1", "fastavro==1.13.1", "PyYAML==6.0.3", "confusable-homoglyphs==3.3.1",
                 "pydantic-settings"]


def quix_python() -> str:
    """The interpreter of the quixstreams venv, made on first use."""
    python = QUIX_VENV / "bin" / "python"
    if not python.exists():
        print(f"[bench] making {QUIX_VENV} for quixstreams (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(QUIX_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *QUIX_PACKAGES], check=True)
    return str(python)


def measure(runtime: str, provider: str, total: int, timeout: float) -> dict:
    """Run one runtime in children (two for `batch2`, one otherwise) until they have routed
    `total` events together; the rate from the first routed event to the last."""
    group = f"bench-{runtime}-{uuid.uuid4().hex[:8]}"
    workers = 2 if runtime == "batch2" else 1
    # stderr to a file: a child logging warnings into a pipe nobody reads yet would block on it.
    errors = tempfile.TemporaryFile(mode="w+")
    python = quix_python() if runtime == "quix" else sys.executable
    children = [subprocess.Popen([python, __file__, "--child", "batch" if workers > 1 else runtime,
                                  "--provider", provider, "--group", group, "--core", str(n)],
                                 stdout=subprocess.PIPE, stderr=errors, text=True) for n in range(workers)]
    counts = [0] * workers

    def follow(n: int) -> None:
        for line in children[n].stdout:
            if line.startswith("progress "):
                counts[n] = int(line.split()[1])

    for n in range(workers):
        threading.Thread(target=follow, args=(n,), daemon=True).start()
    first_at = first_count = None
    done_at, count = None, 0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and all(child.poll() is None for child in children):
            count, now = sum(counts), time.monotonic()
            if count and first_at is None:
                first_at, first_count = now, count
            if count >= total:
                done_at = now
                break
            time.sleep(0.02)
    finally:
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
    errors.seek(0)
    err = errors.read()
    errors.close()
    if done_at is None:
        tail = err.strip().splitlines()[-5:]
        raise SystemExit(f"{runtime}: routed {count} of {total} events in {timeout:.0f} s\n" + "\n".join(tail))
    elapsed = max(done_at - first_at, 1e-6)
    return {"events": total - first_count, "seconds": round(elapsed, 2),
            "events_per_s": round((total - first_count) / elapsed), "workers": workers}


def fresh_processor_topics(settings: Settings, partitions: int) -> None:
    """The work and rules topics, empty: a runtime's fresh group must not read an earlier run's."""
    from confluent_kafka.admin import NewTopic

    from model.names import RULES_TOPIC, WORK_TOPIC

    admin = AdminClient(admin_config(settings.kafka_bootstrap))
    existing = set(admin.list_topics(timeout=10).topics)
    for future in admin.delete_topics([t for t in (WORK_TOPIC, RULES_TOPIC) if t in existing]).values():
        future.result()
    deadline = time.monotonic() + 60
    while True:  # a deleted topic's name is free again only once the broker has removed it
        listed = admin.list_topics(timeout=10).topics
        missing = [NewTopic(t, partitions, 1) for t in (WORK_TOPIC, RULES_TOPIC) if t not in listed]
        if not missing:   # both still listed: their deletion has not finished yet
            if time.monotonic() > deadline:
                raise SystemExit("the processor's topics were not deleted within 60 s")
            time.sleep(0.2)
            continue
        futures = admin.create_topics(missing)
        try:
            for future in futures.values():
                future.result()
            return
        except Exception as exc:  # noqa: BLE001 - retried until the deadline, then shown
            if time.monotonic() > deadline:
                raise SystemExit(f"cannot recreate the processor's topics: {exc}") from None
            time.sleep(0.5)


def measure_restore(settings: Settings, keys: int) -> dict:
    """A worker's restart cost: `keys` state entries (digest-sized, as the cross-row rules write
    them) on a fresh compacted changelog, read back with streams/processor.py's restore: from
    the changelog alone into memory (the baseline), from the changelog into a new local store
    (a worker's first start, or a partition it did not own), then a restart with that store."""
    import tempfile as temp

    from confluent_kafka.admin import NewTopic

    from streams.processor import restore_state
    from streams.state_store import StateBase, StateStores

    topic = f"bench-state-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(admin_config(settings.kafka_bootstrap))
    admin.create_topics([NewTopic(topic, 1, 1, config={"cleanup.policy": "compact"})])[topic].result()
    producer = Producer(producer_config(settings.kafka_bootstrap, extra={"linger.ms": 50}))
    for i in range(keys):
        key = f"values\x1f{i % 4}|u|population.persons|iin_unique|{uuid.UUID(int=i).hex[-22:]}".encode()
        produce(producer, topic, b'["1.ydqglsgyqjwcoonfkvmxawmjkl"]', key)
    producer.flush(120)
    owned = lambda store: range(4)  # noqa: E731 - every partition: one worker
    stores = StateStores()
    started = time.monotonic()
    held = restore_state(settings.kafka_bootstrap, stores, owned, topic=topic)
    alone = time.monotonic() - started
    with temp.TemporaryDirectory() as directory:
        base = StateBase(Path(directory) / "worker-0.lmdb")
        started = time.monotonic()
        into = restore_state(settings.kafka_bootstrap, StateStores(), owned, base, topic=topic)
        rebuilt = time.monotonic() - started
        base.close()
        started = time.monotonic()
        again = StateStores()
        restore_state(settings.kafka_bootstrap, again, owned, StateBase(Path(directory) / "worker-0.lmdb"),
                      topic=topic)
        local = time.monotonic() - started
        assert into >= held and again["values"].get(f"0|u|population.persons|iin_unique|{uuid.UUID(int=0).hex[-22:]}")
    admin.delete_topics([topic])
    return {"keys": held, "seconds": round(alone, 2), "into_store_seconds": round(rebuilt, 2),
            "with_store_seconds": round(local, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--runtimes", nargs="+", default=["faust", "quix", "batch", "batch2"],
                        choices=["faust", "quix", "batch", "batch2"],
                        help="quix: quixstreams in its own venv; batch2: two batch workers in one group")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--partitions", type=int, default=4, help="work and rules partitions (batch runtime)")
    parser.add_argument("--restore-keys", type=int, default=1_000_000,
                        help="state entries a restarted worker reads back (0: skip)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--child", choices=["faust", "quix", "batch"], help=argparse.SUPPRESS)
    parser.add_argument("--provider", help=argparse.SUPPRESS)
    parser.add_argument("--group", help=argparse.SUPPRESS)
    parser.add_argument("--core", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    settings = bench_settings()
    if args.child:
        _pin_to_one_core(args.core)
        regulation = bench_regulation(settings, args.provider)
        {"faust": run_faust, "quix": run_quix, "batch": run_batch}[args.child](settings, regulation, args.group)
        return

    from infra.kafka import LocalKafka

    for directory in (settings.run_dir, settings.log_dir, settings.conf_dir, settings.data_dir):
        directory.mkdir(parents=True, exist_ok=True)
    kafka = LocalKafka(settings, progress=lambda line: print(f"[bench] {line}", flush=True))
    kafka.start()
    results = {}
    print(f"{args.events:,} demo events per runtime (1 person : 3 payments), every demo rule on, one core each\n")
    for runtime in args.runtimes:
        provider = f"b{uuid.uuid4().hex[:8]}"  # fresh raw, clean and held topics for each runtime
        regulation = bench_regulation(settings, provider)
        kafka.create_topics([regulation])
        fresh_processor_topics(settings, args.partitions)
        ends = prefill(settings, regulation, args.events)
        results[runtime] = measure(runtime, provider, sum(ends.values()), args.timeout)
        baseline = results.get("faust", {}).get("events_per_s")
        rate = results[runtime]["events_per_s"]
        ratio = f"  ({rate / baseline:.1f}x the Faust baseline)" if baseline and runtime != "faust" else ""
        print(f"{runtime:<8} {rate:>10,} events/s  ({results[runtime]['events']:,} events in "
              f"{results[runtime]['seconds']} s){ratio}", flush=True)
    restore = None
    if args.restore_keys:
        restore = measure_restore(settings, args.restore_keys)
        print(f"\nrestore of the state stores from their changelog into memory (the baseline): {restore['keys']:,} keys"
              f" in {restore['seconds']} s; into a new local store: {restore['into_store_seconds']} s; a restart"
              f" with that store: {restore['with_store_seconds']} s")
    if args.json:
        print(json.dumps({"events": args.events, "cores": len(os.sched_getaffinity(0)), "runtimes": results,
                          "restore": restore}))


if __name__ == "__main__":
    main()
