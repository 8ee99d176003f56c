"""The Faust processor: raw Debezium topics in, clean Avro topics and quarantine out.

At-least-once: Faust commits a raw offset only after the agent finished the event and the
producer flushed what the agent sent, so a crash replays events instead of losing them;
replays are harmless downstream because every record's `_version` is its raw event's place in
commit order (streams/versions.py), the same on every replay.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from types import SimpleNamespace
from typing import Callable

import faust

from model.regulation import load_all
from monitoring import metrics
from model.settings import Settings
from schemas.avro_codec import AvroCodec, codec_for
from model.names import INCIDENT_TOPIC, PROCESSOR_GROUP as GROUP, heartbeat_topic
from schemas.incidents import Detection
from streams.keys import load_schedule
from schemas import schema_history
from streams import watchdog
from streams.gap_filler import GapFiller, committed_offsets, kafka_range_reader
from streams.router import Router

log = logging.getLogger("qoima.processor")


READY_ONCE = threading.Event()  # the worker has been ready at least once: the watchdog may judge it


def create_app(settings: Settings, gaps_for: Callable[[list[str]], GapFiller] | None = None
               ) -> tuple[faust.App, list[str], AvroCodec]:
    """The Faust app, the topics its agent consumes and the codec it writes with. `gaps_for`
    makes the GapFiller for those topics (streams/gap_filler.py); without it none is used."""
    regulations = load_all(settings.regulations_dir, settings.regulation_env())
    keys = load_schedule(settings.key_id, dict(os.environ), settings.master_key_file)
    codec = codec_for(regulations)
    log.info("pseudonym keys in the schedule: %s", ", ".join(keys.key_ids))

    app = faust.App(
        GROUP,
        broker=f"kafka://{settings.kafka_bootstrap}",
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        store="memory://",
        topic_partitions=1,
        processing_guarantee="at_least_once",
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=1000,
        broker_commit_interval=1.0,
        # A killed worker's partitions wait out its session before a restarted one gets
        # them: 10 s instead of Faust's 60 s (heartbeats stay at every 3 s).
        broker_session_timeout=10.0,
    )
    # Uniqueness, integrity and consistency state, as Faust tables: changelog topics make it survive
    # restarts and rebalances. Keys and values are digests and row keys, never clear values.
    state = {name: app.Table(f"qoima-quality-{name}", default=None, partitions=1)
             for name in ("values", "owners", "references", "pending")}
    router = Router(regulations, keys, codec, state=state)
    heartbeats = [heartbeat_topic(r.provider) for r in regulations]
    raw = app.topic(*router.raw_topics, *heartbeats, key_type=bytes, value_type=bytes)
    gaps = gaps_for([*router.raw_topics, *heartbeats]) if gaps_for else None
    last_expiry = [0.0]
    outputs: dict[str, faust.TopicT] = {}

    def output_topic(name: str) -> faust.TopicT:
        if name not in outputs:
            outputs[name] = app.topic(name, key_type=bytes, value_type=bytes)
        return outputs[name]

    # Rule violations become incident detections, summed per incident and sent every few
    # seconds: one detection per bad row would flood the journal.
    pending: dict[tuple[str, str, str], list] = {}

    def note_violations(out) -> None:
        # The record's key is depersonalized (clean key JSON, or topic:partition:offset of a
        # quarantined event): safe to keep as a sample of what broke the rule.
        sample = out.key.decode("utf-8", "replace") if getattr(out, "key", None) else None
        for violation in out.violations:
            metrics.QUALITY_VIOLATIONS.labels(out.table, violation.rule, violation.action).inc()
            key = (out.provider, out.table, violation.rule)
            entry = pending.setdefault(key, [violation, 0, []])
            entry[1] += 1
            if sample and len(entry[2]) < 5:
                entry[2].append(sample)

    @app.timer(interval=5.0)
    async def flush_detections():
        while pending:
            (provider, table, rule), (violation, count, samples) = pending.popitem()
            detection = Detection(provider, table, rule, violation.incident_type,
                                  "critical" if violation.action == "hold" else "warning", count,
                                  f"{count} row(s), action {violation.action}: {violation.problem}", "processor",
                                  tuple(samples))
            await output_topic(INCIDENT_TOPIC).send(key=detection.key.encode(),
                                                    value=codec.encode(INCIDENT_TOPIC, detection.record()))

    @app.timer(interval=0.5)
    async def report_ready():
        # Faust resumes fetching before it seeks the stream to its committed offsets (faust-streaming
        # issues #216, #596); the GapFiller reads whatever it skips. The stack still treats the
        # processor as started only once recovery is complete and nothing rebalances.
        ready = app.tables.recovery.completed.is_set() and not app.rebalancing
        metrics.PROCESSOR_READY.set(1 if ready else 0)
        if ready:
            READY_ONCE.set()

    @app.agent(raw)
    async def process(stream):
        async for event in stream.events():
            message = event.message
            # Missing references are judged here, in stream context (Faust tables change only
            # there); Debezium's heartbeats keep this running while the tables are idle.
            if time.monotonic() - last_expiry[0] > 1.0:
                last_expiry[0] = time.monotonic()
                for regulation, expired_table, violation in router.stateful.expire(int(time.time() * 1000)):
                    note_violations(SimpleNamespace(violations=(violation,), provider=regulation.provider,
                                                    table=expired_table.name))
            todo = [(message.offset, event.value)]
            if gaps is not None:
                process_it, missing = gaps.before((message.topic, message.partition), message.offset)
                todo = missing + (todo if process_it else [])
                if missing:
                    metrics.GAP_EVENTS.inc(len(missing))
            for offset, value in todo:
                await handle(message.topic, message.partition, offset, value)

    async def handle(topic: str, partition: int, offset: int, value: bytes | None) -> None:
        if topic in heartbeats:
            return
        table = topic.split(".", 3)[-1]
        started = time.perf_counter()
        try:
            out = router.route(topic, partition, offset, value)
        except Exception as exc:  # a bug must quarantine the event, not stop the pipeline
            log.error("internal error on %s offset %s: %s", topic, offset, type(exc).__name__)
            out = router.internal_error(topic, partition, offset, value, type(exc).__name__)
        metrics.PROCESS_SECONDS.observe(time.perf_counter() - started)
        if out is None:
            metrics.TOMBSTONES.labels(table).inc()
            return
        note_violations(out)
        if out.outcome in ("clean", "held", "truncated"):
            metrics.EVENTS_IN.labels(out.table, out.op).inc()
            metrics.EVENTS_OUT.labels(out.table).inc()
            if out.outcome == "truncated":
                log.warning("%s: TRUNCATE at the source; the sink deletes the rows loaded before it", out.table)
            broken = {v.problem for v in out.violations}  # counted as rule violations instead
            for note in out.defects:
                if note not in broken:
                    metrics.DEFECTS.labels(out.table, note.split(":", 1)[0]).inc()
        else:
            metrics.EVENTS_IN.labels(out.table or table, "invalid").inc()
            metrics.QUARANTINED.labels(out.table or table, out.reason_kind).inc()
        await output_topic(out.topic).send(key=out.key, value=out.value)

    return app, [*router.raw_topics, *heartbeats], codec


def run(settings: Settings) -> None:
    metrics.serve(settings.ports.processor_metrics, settings.host)
    # Read before the worker starts: what the previous worker finished is where this one must begin.
    app, topics, codec = create_app(settings, gaps_for=lambda topics: GapFiller(
        committed_offsets(settings.kafka_bootstrap, GROUP, topics), kafka_range_reader(settings.kafka_bootstrap)))
    # Before the first message: a reader must be able to find every schema written with.
    schema_history.publish(settings.kafka_bootstrap, codec.schemas)
    watchdog.start(watchdog.kafka_offsets(settings.kafka_bootstrap, GROUP, topics), READY_ONCE.is_set,
                   settings.processor_stall_s)
    worker = faust.Worker(app, loglevel="INFO", redirect_stdouts=False)
    worker.execute_from_commandline()
