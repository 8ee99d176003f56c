"""The processor: raw Debezium topics in; clean, held, quarantine and incident records out, exactly once.

A batch loop on confluent-kafka (librdkafka) with Kafka transactions, chosen by measurement
over the per-event Faust agent it replaces (bench/processor.py, docs/design.md "The processing
core"). Each turn of the loop:

1. consumes up to `batch_events` raw events (waiting at most `batch_wait_ms` for them);
2. routes them (streams/batch.py: decode, rules, depersonalization, Avro), which yields the
   records to write, the batch's incident detections and the state stores' changelog records;
3. writes all of that and the offsets consumed in one transaction, and commits it.

Workers share the group `qoima-processor`: each gets some raw topics (to spread over the work
topic), some work partitions (to route) and some rules partitions (to judge), round robin; any
number of workers up to the partition count gives the same results (docs/design.md, "Scale-out").

A crash at any point loses nothing and duplicates nothing: an uncommitted transaction is
aborted (by the broker after `transaction.timeout.ms`, or at once when the worker comes back
with the same transactional id) and the raw events are read again from the committed offsets;
the sink and every other reader of these topics read `read_committed`. Incident detections and
state changes ride in the same transaction, so they too happen once per committed batch.
A worker stuck in a transaction call past every timeout it gave it (librdkafka does not always
keep them) leaves the same way, for its supervisor to start again (streams/commit_watchdog.py).

Versions stay what they were: a record's `_version` is its raw event's offset
(streams/versions.py), whichever batch or worker produced it.

Worker `n` joins the group as static member `qoima-processor-n`, and that is its transactional
id too: restarted after a kill -9, it takes its partitions back without waiting for its old
session to expire, and fences the transaction its previous life left open.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from model.names import (PROCESSOR_GROUP, PROCESSOR_STATE_TOPIC, RULES_TOPIC, WORK_TOPIC, processor_instance,
                         throwaway_group)
from model.regulation import Regulation, load_all
from model.settings import Settings
from monitoring import metrics
from schemas import schema_history
from schemas.avro_codec import AvroCodec, codec_for
from schemas.kafka_clients import admin_config, consumer_config, produce, producer_config
from streams.access_log import AccessLog
from streams.batch import BatchProcessor, RawEvent
from streams.commit_watchdog import CommitWatchdog
from streams.cross_row.claims import Claims
from streams.cross_row.judge import Judge
from streams.cross_row.plan import CrossRowPlan
from streams.keys import KeySchedule, load_schedule
from streams.router import LEAK_CHECK, Router
from streams.state_store import StateBase, StateStores

log = logging.getLogger("qoima.processor")

# A transaction left open by a killed worker that does not come back blocks read_committed
# readers (the sink) until the broker aborts it: 10 s, not the default minute.
TRANSACTION_TIMEOUT_MS = 10_000
# A change crosses two batches on its way (raw -> work, work -> clean), each waiting at most this
# long to fill: 20 ms, not 50, took 2,000 changes/s from p50 1.08 s to 0.99 s (docs/benchmarks.md).
# An idle turn commits nothing, so a short wait costs nothing when there is nothing to do.
BATCH_WAIT_MS = 20
# How often a worker writes its state's changes to its local store (StateBase): a restart reads
# the changelog written since, and memory holds the changes since, about this much of them.
CHECKPOINT_EVERY_S = 30.0
_COMMIT_TIMEOUT_S = 60.0
# A failed batch's abort only frees the sink's read_committed view a little sooner: the worker
# restarts at once and its next life aborts the transaction anyway (the broker, after 10 s).
_ABORT_TIMEOUT_S = 5.0
# A commit that has not returned in this long is stuck in librdkafka: its calls together take
# at most 60 s for the offsets, 120 s for the commit asked again within a minute, 5 s for the
# abort. The worker leaves (streams/commit_watchdog.py), before the consumer's 300 s poll limit.
_STUCK_AFTER_S = 4 * _COMMIT_TIMEOUT_S
_RESTORE_TIMEOUT_S = 300.0


class ProcessorError(RuntimeError):
    """The worker cannot go on; its supervisor restarts it from the committed offsets and state."""


def restore_state(bootstrap: str, stores: StateStores, owned: Callable[[str], set[int]] | None = None,
                  base: StateBase | None = None, timeout: float = _RESTORE_TIMEOUT_S,
                  topic: str = PROCESSOR_STATE_TOPIC) -> int:
    """The state of the partitions `owned(store name)` gives (all without it) into `stores`:
    with a `base` that covers them, the base and the changelog from its offsets on; with one
    that does not, the base is emptied and filled from the whole changelog; without one, the
    whole changelog into memory. The keys held."""
    consumer = Consumer(consumer_config(bootstrap, throwaway_group("processor-restore"), {
        "isolation.level": "read_committed", "enable.partition.eof": True, "fetch.max.bytes": 52_428_800}))
    started = time.monotonic()
    read = 0
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise ProcessorError(f"topic {topic} does not exist; `qoima up` creates it (compacted)")
        partitions = list(metadata.partitions)
        offsets = base.load(stores, owned) if base is not None and owned is not None else None
        rebuilding = base is not None and owned is not None and offsets is None
        if rebuilding:
            base.reset()
        origin = ("the local store and the changelog" if offsets is not None else
                  "the changelog, into the local store" if rebuilding else "the changelog")
        consumer.assign([TopicPartition(topic, p, (offsets or {}).get(p, OFFSET_BEGINNING)) for p in partitions])
        # To the end as it is now, not to an end of partition: under read_committed that waits until
        # no other worker has a transaction open, which under load can be the whole load (seen: 12 s).
        # What another worker commits from now on belongs to the partitions it owns, not to ours.
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        at_end = {p for p, end in ends.items() if end <= (offsets or {}).get(p, 0)}
        tail: list[tuple[bytes, bytes | None]] = []
        while len(at_end) < len(partitions):
            if time.monotonic() - started > timeout:
                raise ProcessorError(f"{topic} not read to its end within {timeout:.0f} s")
            records = []
            for message in consumer.consume(num_messages=10_000, timeout=0.2):
                error = message.error()
                if error is None:
                    records.append((message.key(), message.value()))
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(message.partition())
                elif error.fatal():
                    raise KafkaException(error)
            read += len(records)
            if rebuilding:
                base.rebuild(records, owned)   # straight into the base, batch by batch
            else:
                tail += records
            for position in consumer.position([TopicPartition(topic, p) for p in partitions if p not in at_end]):
                if position.offset >= ends[position.partition]:
                    at_end.add(position.partition)
        if rebuilding:
            base.rebuilt(stores, owned, ends)
            keys = stores.held()
        else:
            keys = stores.restore(tail, owned, clear=offsets is None)
    finally:
        consumer.close()
    seconds = time.monotonic() - started
    metrics.STATE_KEYS.set(keys)
    metrics.RESTORE_SECONDS.set(seconds)
    log.info("state restored from %s: %d keys, %d changelog records read, in %.2f s", origin, keys, read, seconds)
    return keys


class Processor:
    """One worker of the `qoima-processor` group."""

    def __init__(self, bootstrap: str, batch: BatchProcessor, worker: int = 0, batch_events: int = 5000,
                 batch_wait_ms: int = BATCH_WAIT_MS, restore: Callable[[dict[str, set[int]]], int] | None = None,
                 group: str = PROCESSOR_GROUP, instance: str | None = None,
                 checkpoint: Callable[[dict[str, set[int]], bool], bool | None] | None = None,
                 checkpoint_every_s: float = CHECKPOINT_EVERY_S) -> None:
        """`restore(assigned)` reloads the state of the work and rules partitions assigned
        (topic -> partitions); `checkpoint(assigned, stopping)` saves the committed state
        locally, every `checkpoint_every_s` (in the background) and when the worker stops.
        `group` and `instance` (the static member and transactional id) are the worker's own
        names from model/names.py; a benchmark gives others."""
        self.batch = batch
        self.batch_events, self.batch_wait_s = batch_events, batch_wait_ms / 1000
        self._restore = restore
        self._checkpoint, self._checkpoint_every_s = checkpoint, checkpoint_every_s
        self._last_checkpoint = time.monotonic()
        self.assigned: dict[str, set[int]] = {}
        self._stopping = False
        self.routed = 0   # work events routed in committed batches
        self._watchdog = CommitWatchdog(_STUCK_AFTER_S)
        instance = instance or processor_instance(worker)
        self.producer = Producer(producer_config(bootstrap, client_id=instance, extra={
            "transactional.id": instance, "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "linger.ms": 5, "batch.size": 1_000_000, "queue.buffering.max.messages": 500_000}),
            logger=logging.getLogger("qoima.processor.kafka"))
        self.consumer = Consumer(consumer_config(bootstrap, group, {
            "group.instance.id": instance,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            # Static membership keeps a killed worker's partitions for it this long: a restart
            # within it resumes at once; past it, another worker takes them over.
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
            "fetch.max.bytes": 52_428_800,
            "max.partition.fetch.bytes": 10_485_760,
            # Raw topics have one partition each: round robin spreads them over the workers too.
            "partition.assignment.strategy": "roundrobin",
        }), logger=logging.getLogger("qoima.processor.kafka"))

    def stop(self) -> None:
        self._stopping = True

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another worker may have changed the state since this one read it: read it again
        # before the first batch of what is now ours (nothing is open: this runs inside consume).
        assigned: dict[str, set[int]] = {}
        for p in partitions:
            assigned.setdefault(p.topic, set()).add(p.partition)
        self.assigned = assigned
        if self._restore is not None:
            self._restore(assigned)
        metrics.PROCESSOR_READY.set(1)
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in partitions) or "nothing")

    def run(self, topics: list[str]) -> None:
        with self._watchdog.watching():
            self.producer.init_transactions(_COMMIT_TIMEOUT_S)  # aborts what a previous life left open
        self.consumer.subscribe(topics, on_assign=self._assigned)
        try:
            while not self._stopping:
                self.turn()
                if self._checkpoint and time.monotonic() - self._last_checkpoint >= self._checkpoint_every_s:
                    self._save(stopping=False)
            # Only on a clean stop: after a failed transaction the memory may hold uncommitted changes.
            if self._checkpoint:
                self._save(stopping=True)
        finally:
            # After a failed commit too: the closing calls talk to the same broker.
            with self._watchdog.watching():
                self.consumer.close()
                self.producer.flush(10)
            self._watchdog.close()

    def _save(self, stopping: bool) -> None:
        self._last_checkpoint = time.monotonic()
        if self.assigned:
            started = time.monotonic()
            if self._checkpoint(self.assigned, stopping) is False:
                log.debug("local state save skipped: the previous one is still being written")
            else:
                log.debug("state save started (or done, when stopping) in %.2f s", time.monotonic() - started)

    def turn(self) -> int:
        """Consume, route and commit one batch; the number of raw events it held."""
        messages = self.consumer.consume(num_messages=self.batch_events, timeout=self.batch_wait_s)
        started = time.monotonic()
        events: list[RawEvent] = []
        offsets: dict[tuple[str, int], int] = {}
        for message in messages:
            error = message.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer: %s", error.str())
                continue
            events.append((message.topic(), message.partition(), message.offset(), message.key(), message.value(),
                           message.headers()))
            offsets[(message.topic(), message.partition())] = message.offset() + 1
        effects = self.batch.process(events)
        if not effects.records and not offsets:
            return 0
        with self._watchdog.watching():
            self._commit(effects.records, offsets)
        self.routed += effects.routed
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)
        return len(events)

    def _commit(self, records, offsets: dict[tuple[str, int], int]) -> None:
        producer = self.producer
        producer.begin_transaction()
        try:
            send = producer.produce
            for topic, key, value, partition, headers in records:
                try:
                    # Positional, -1 for the partitioner's choice: half the cost of keywords,
                    # and a batch sends several records per event.
                    send(topic, value, key, -1 if partition is None else partition, None, None, 0, headers)
                except BufferError:   # the local queue is full: wait for deliveries to drain it
                    produce(producer, topic, value, key, partition=partition, headers=headers)
            if offsets:
                producer.send_offsets_to_transaction(
                    [TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                    self.consumer.consumer_group_metadata(), _COMMIT_TIMEOUT_S)
            self._commit_transaction()
        except KafkaException as exc:
            error = exc.args[0]
            metrics.ABORTED_BATCHES.inc()
            if isinstance(error, KafkaError) and error.txn_requires_abort():
                try:
                    producer.abort_transaction(_ABORT_TIMEOUT_S)
                except KafkaException:
                    pass
            # The batch's state changes are in memory already: start again from what was committed.
            raise ProcessorError(f"transaction failed ({error}); restarting from the committed offsets") from None

    def _commit_transaction(self) -> None:
        deadline = time.monotonic() + _COMMIT_TIMEOUT_S
        while True:
            try:
                self.producer.commit_transaction(_COMMIT_TIMEOUT_S)
                return
            except KafkaException as exc:
                error = exc.args[0]
                # A broker restart makes the commit time out; it is safe to ask again.
                if not (isinstance(error, KafkaError) and error.retriable()) or time.monotonic() > deadline:
                    raise
                log.warning("commit of a batch not confirmed yet (%s); asking again", error.str())


def worker_id() -> int:
    return int(os.environ.get("QOIMA_PROCESSOR_WORKER", "0"))


def partition_count(bootstrap: str, topic: str) -> int:
    """The partitions of one of the processor's topics; `qoima up` creates them."""
    metadata = AdminClient(admin_config(bootstrap)).list_topics(topic, timeout=10).topics.get(topic)
    if metadata is None or metadata.error is not None:
        raise ProcessorError(f"topic {topic} does not exist; `qoima up` creates it")
    return len(metadata.partitions)


def wire(regulations: list[Regulation], keys: KeySchedule, codec: AvroCodec,
         partitions: int, access_interval_s: int = 60) -> tuple[BatchProcessor, StateStores, list[str]]:
    """A worker's batch logic over `partitions` work and rules partitions, its state stores and
    the topics it reads; PD236 access events per `access_interval_s`."""
    # Cross-row state must not change with key rotation: it is digested with the oldest key.
    plan = CrossRowPlan(regulations, keys.entries[0][1].subkey("quality-state"))
    state = StateStores()
    router = Router(regulations, keys, codec, Claims(plan, state["owners"]))
    judge = Judge(plan, state["values"], state["references"], state["pending"])
    access = AccessLog(regulations, keys, state["access"], access_interval_s)
    batch = BatchProcessor(router, codec, judge, state, partitions, access=access)
    return batch, state, [*router.raw_topics, WORK_TOPIC, RULES_TOPIC]


def build(settings: Settings) -> tuple[BatchProcessor, StateStores, list[str]]:
    """The worker `qoima processor` runs, from the settings and the regulations."""
    regulations = load_all(settings.regulations_dir, settings.regulation_env())
    keys = load_schedule(settings.key_id, dict(os.environ), settings.master_key_file)
    log.info("pseudonym keys in the schedule: %s", ", ".join(keys.key_ids))
    codec = codec_for(regulations)
    partitions = partition_count(settings.kafka_bootstrap, WORK_TOPIC)
    if partition_count(settings.kafka_bootstrap, RULES_TOPIC) != partitions:
        raise ProcessorError(f"{WORK_TOPIC} and {RULES_TOPIC} must have as many partitions; `qoima up` "
                             "creates both with processor_partitions")
    # Before the first record: a reader must be able to find every schema written with.
    schema_history.publish(settings.kafka_bootstrap, codec.schemas)
    return wire(regulations, keys, codec, partitions, settings.pd236_interval_s)


def owned_partitions(assigned: dict[str, set[int]]) -> Callable[[str], set[int]]:
    """Which state keys a worker keeps: `owners` by work partition, the rest by rules partition."""
    return lambda store: assigned.get(WORK_TOPIC if store in StateStores.BY_WORK_PARTITION else RULES_TOPIC, set())


def state_offsets(consumer: Consumer, topic: str = PROCESSOR_STATE_TOPIC) -> dict[int, int]:
    """The end of each partition of the state changelog: what a snapshot saved now reflects."""
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)[1]
            for p in metadata.partitions}


def run(settings: Settings) -> None:
    worker = worker_id()
    metrics.serve(settings.ports.processor_worker(worker), settings.host)
    batch, state, topics = build(settings)
    # At 0 from the start: `increase()` in QoimaProcessorLeakQuarantined counts nothing on a
    # series' first sample, and the first leak of a table must alert.
    for table in batch.router.tables:
        metrics.QUARANTINED.labels(table, LEAK_CHECK)
    directory = settings.data_dir / "processor"
    # The whole-state snapshot of earlier versions (`worker-<n>.state`, a gigabyte or more at
    # national scale) is replaced by the local store: a restart without it reads the changelog.
    for old in (directory / f"worker-{worker}.state", directory / f"worker-{worker}.partial"):
        old.unlink(missing_ok=True)
    base = StateBase(directory / f"worker-{worker}.lmdb")
    processor = Processor(
        settings.kafka_bootstrap, batch, worker,
        restore=lambda assigned: restore_state(settings.kafka_bootstrap, state, owned_partitions(assigned), base),
        checkpoint=lambda assigned, stopping: base.save(state, owned_partitions(assigned),
                                                        state_offsets(processor.consumer), not stopping))
    signal.signal(signal.SIGTERM, lambda *_: processor.stop())
    signal.signal(signal.SIGINT, lambda *_: processor.stop())
    try:
        processor.run(topics)
    except (ProcessorError, KafkaException) as exc:
        raise SystemExit(f"qoima processor: {exc}") from None
