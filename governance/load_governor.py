"""The load governor: a table's load never buries the stream behind it.

Debezium reads an incremental snapshot as fast as Kafka takes it, tens of thousands of rows a
second, while the processor routes about five thousand (docs/benchmarks.md). Unchecked, a load
of a million rows queued a million events ahead of the provider's routine changes, and their
freshness went from 0.3 s to minutes (p99 260 s) for as long as the load ran. So a thread of the
assessor watches the processor's backlog, every event its group has yet to consume on the raw,
work and rules topics, four times a second, and while a provider has a load in the last day (its records, from
`qoima snapshot` and `qoima provider apply`):

- a backlog above `QOIMA_LOAD_BACKLOG_MAX` events pauses the provider's snapshot
  (Debezium's `pause-snapshot` signal; the record notes `throttled_ms`);
- a backlog below half of it resumes it, from the chunk where it stopped.

Streaming changes keep flowing throughout, so they wait behind at most about that many events.
An operator's own pause (`qoima snapshot --pause`) is never resumed here. Without a running
snapshot Debezium ignores both signals, so a load that has finished costs at most a signal row.
`QOIMA_LOAD_BACKLOG_MAX=0` turns the governor off.
"""
from __future__ import annotations

import logging
import threading
import time

from confluent_kafka import Consumer, TopicPartition

from connectors.snapshot import pause_loads, recorded_loads
from model.names import PROCESSOR_GROUP, RULES_TOPIC, WORK_TOPIC
from model.regulation import Regulation
from model.settings import Settings
from monitoring import metrics
from schemas.kafka_clients import consumer_config

log = logging.getLogger("qoima.load-governor")

# Debezium emits about 25,000 rows a second once resumed: a look every quarter second keeps the
# overshoot past the limit to a few chunks.
INTERVAL_S = 0.25


def backlog(consumer: Consumer, topics: list[str]) -> int:
    """Events the processor's group has not consumed yet, over `topics` (those it reads)."""
    metadata = consumer.list_topics(timeout=10).topics
    partitions = [TopicPartition(topic, p) for topic in topics if topic in metadata
                  for p in metadata[topic].partitions]
    if not partitions:
        return 0
    committed = {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(partitions, timeout=10)}
    total = 0
    for tp in partitions:
        low, high = consumer.get_watermark_offsets(tp, timeout=10, cached=False)
        done = committed.get((tp.topic, tp.partition), -1)
        total += high - (done if done >= 0 else low)   # never committed: all of it is ahead
    return total


def processor_topics(regulations: list[Regulation]) -> list[str]:
    """What the processor reads: the regulated tables' raw topics, its work and rules topics (not
    every `qoima.raw.` topic: Debezium also writes the signal table's, which nobody reads)."""
    return sorted({regulation.raw_topic(table) for regulation in regulations for table in regulation.tables}
                  | {WORK_TOPIC, RULES_TOPIC})


class Governor:
    """Decides, from the backlog and the load records, which providers' loads to pause or resume."""

    # While throttled and still above the limit, the pause goes again this often: Debezium keeps
    # a pause in memory only, and a Connect restart forgets it.
    RESEND_S = 10.0

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._sent: dict[str, float] = {}
        # Half, not less: Debezium takes a moment to read again, and the processor must not run dry.
        self.resume_below = limit // 2

    def decide(self, queued: int, loads: list[dict], now: float = 0.0) -> list[tuple[str, bool]]:
        """(provider, resume?) for each signal to send now (`now`: seconds, for the resending).
        A provider counts as throttled once every record of it is marked (a load requested
        since is not held yet), and as paused by its operator while any is."""
        providers: dict[str, list[dict]] = {}
        for load in loads:
            providers.setdefault(load["provider"], []).append(load)
        signals = []
        for provider, records in sorted(providers.items()):
            if any("paused_ms" in load for load in records):
                continue   # the operator's pause: theirs to resume
            marked = [("throttled_ms" in load) for load in records]
            # Marked by an earlier life of this process (`_sent` empty): said again at once.
            if queued > self.limit and (not all(marked) or now - self._sent.get(provider, -self.RESEND_S) >= self.RESEND_S):
                signals.append((provider, False))
                self._sent[provider] = now
            elif queued < self.resume_below and any(marked):
                signals.append((provider, True))
                self._sent.pop(provider, None)
        return signals


def step(settings: Settings, by_provider: dict[str, Regulation], topics: list[str], consumer: Consumer,
         governor: Governor) -> None:
    loads = [load for load in recorded_loads(settings.run_dir / "loads", int(time.time() * 1000))
             if load["provider"] in by_provider]
    if not loads:
        return
    # As the records say (the operator's --resume clears the governor's mark too).
    for provider in {load["provider"] for load in loads}:
        metrics.LOAD_THROTTLED.labels(provider).set(
            1 if any("throttled_ms" in load for load in loads if load["provider"] == provider) else 0)
    queued = backlog(consumer, topics)
    metrics.PROCESSOR_BACKLOG.set(queued)
    for provider, resume in governor.decide(queued, loads, time.monotonic()):
        if pause_loads(by_provider[provider], settings.regulation_env(), settings.run_dir / "loads", resume=resume,
                       by="throttled_ms") is None:
            log.info("%s: load left paused: its operator paused it meanwhile", provider)
            continue
        metrics.LOAD_THROTTLED.labels(provider).set(0 if resume else 1)
        if not resume:
            metrics.LOAD_THROTTLES.labels(provider).inc()
        log.info("%s: load %s (the processor's backlog: %d events, the limit %d)", provider,
                 "resumed" if resume else "paused", queued, governor.limit)


def run(settings: Settings, regulations: list[Regulation], stop: threading.Event, interval: float) -> None:
    by_provider = {r.provider: r for r in regulations if not r.polled}
    topics = processor_topics(regulations)
    governor = Governor(settings.load_backlog_max)
    # The processor's group, to read its committed offsets: never subscribed, so never a member.
    consumer = Consumer(consumer_config(settings.kafka_bootstrap, PROCESSOR_GROUP))
    warned = 0.0
    try:
        while not stop.is_set():
            try:
                step(settings, by_provider, topics, consumer, governor)
            except Exception as exc:  # noqa: BLE001 - Kafka or a source not answering: next turn
                if time.monotonic() - warned > 60:   # once a minute, not four times a second
                    warned = time.monotonic()
                    log.warning("load governor: %s (%s); trying again", type(exc).__name__,
                                str(exc).splitlines()[0][:200] if str(exc) else "")
            stop.wait(interval)
    finally:
        consumer.close()


def start(settings: Settings, regulations: list[Regulation], stop: threading.Event,
          interval: float = INTERVAL_S) -> threading.Thread | None:
    if settings.load_backlog_max == 0:
        return None
    thread = threading.Thread(target=run, args=(settings, regulations, stop, interval), name="qoima-load-governor",
                              daemon=True)
    thread.start()
    return thread
