"""Clean topics to ClickHouse in batches, committing Kafka offsets only after ClickHouse acked.

A batch closes at `QOIMA_SINK_BATCH_ROWS` rows or `QOIMA_SINK_BATCH_MS` after its first
message, whichever comes first. Each table's part of a batch is one insert carrying a
deduplication token built from the exact offsets it holds, so a retry of the same insert
adds nothing; a replay with other batch boundaries adds rows that FINAL collapses by
`_version`. An insert that fails is retried with back-off and nothing is committed until
it succeeds: the sink stalls visibly (metrics, alert) rather than skipping data.
"""
from __future__ import annotations

import logging
import signal
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import clickhouse_connect
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from connectors.regulation import Regulation, Table, load_all
from monitoring import metrics
from qoima.settings import Settings
from sinks.ddl import META_COLUMNS, META_FIELDS, WAREHOUSE_DB, create_table_sql, warehouse_columns
from sinks.clickhouse_users import writer_client
from streams.avro_codec import codec_for

log = logging.getLogger("qoima.sink")
DEAD_LETTER_TOPIC = "qoima.deadletter.sink"


@dataclass
class _Target:
    regulation: Regulation
    table: Table
    ch_table: str
    column_names: list[str]
    fields: list[str]
    zeros: list[Any]
    rows: list[list[Any]] = field(default_factory=list)
    source_ts: list[float] = field(default_factory=list)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last)


class ClickHouseSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.regulations = load_all(settings.regulations_dir, settings.regulation_env())
        self.codec = codec_for(self.regulations)
        self.client = writer_client(settings)
        self.targets: dict[str, _Target] = {}
        for regulation in self.regulations:
            for table in regulation.tables:
                columns = warehouse_columns(table)
                names = [c.name for c in columns]
                self.targets[regulation.clean_topic(table)] = _Target(
                    regulation, table, regulation.warehouse_table(table),
                    column_names=names + [name for name, _ in META_COLUMNS],
                    fields=names + META_FIELDS,
                    zeros=[c.zero for c in columns] + [None] * len(META_FIELDS),
                )
        self._stopping = False

    def ensure_tables(self) -> None:
        self.client.command(f"CREATE DATABASE IF NOT EXISTS {WAREHOUSE_DB}")
        for target in self.targets.values():
            self.client.command(create_table_sql(target.regulation, target.table))

    def _row(self, target: _Target, record: dict[str, Any]) -> list[Any]:
        deleted = record["_is_deleted"] == 1
        row = []
        for name, zero in zip(target.fields, target.zeros):
            value = record.get(name)
            row.append(zero if value is None and deleted else value)
        return row

    def _insert(self, target: _Target) -> None:
        token = ";".join(f"{target.ch_table}:{p}:{a}-{b}" for p, (a, b) in sorted(target.offsets.items()))
        delay = 0.5
        while True:
            started = time.perf_counter()
            try:
                self.client.insert(f"{WAREHOUSE_DB}.`{target.ch_table}`", target.rows,
                                   column_names=target.column_names,
                                   settings={"insert_deduplication_token": token})
                break
            except Exception as exc:  # the driver raises several kinds; all mean "not stored"
                metrics.SINK_FAILURES.labels(target.ch_table).inc()
                log.warning("insert into %s failed (%s), retrying in %.1fs", target.ch_table, type(exc).__name__, delay)
                if self._stopping:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        elapsed = time.perf_counter() - started
        now = time.time()
        label = target.table.name
        metrics.SINK_ROWS.labels(label).inc(len(target.rows))
        metrics.SINK_BATCH_ROWS.labels(label).observe(len(target.rows))
        metrics.SINK_BATCH_SECONDS.labels(label).observe(elapsed)
        metrics.LAST_WRITE.labels(label).set(now)
        freshness = metrics.FRESHNESS.labels(label)
        for ts in target.source_ts:
            freshness.observe(max(0.0, now - ts))
        metrics.LAST_SOURCE_COMMIT.labels(label).set(max(target.source_ts))

    def _flush(self, consumer: Consumer) -> None:
        commits = []
        for topic, target in self.targets.items():
            if not target.offsets:
                continue
            if target.rows:
                self._insert(target)
            commits += [TopicPartition(topic, p, last + 1) for p, (_, last) in target.offsets.items()]
            target.rows.clear()
            target.source_ts.clear()
            target.offsets.clear()
        if commits:
            consumer.commit(offsets=commits, asynchronous=False)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.ensure_tables()
        consumer = Consumer({
            "bootstrap.servers": self.settings.kafka_bootstrap,
            "group.id": "qoima-sink",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        })
        dead_letters = Producer({"bootstrap.servers": self.settings.kafka_bootstrap, "acks": "all"})
        consumer.subscribe(sorted(self.targets))
        log.info("sink consuming %d clean topics into %s", len(self.targets), WAREHOUSE_DB)
        batch_rows, batch_s = self.settings.sink_batch_rows, self.settings.sink_batch_ms / 1000
        try:
            while not self._stopping:
                pending, deadline = 0, None
                while pending < batch_rows and not self._stopping:
                    timeout = 1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                    messages = consumer.consume(num_messages=batch_rows - pending, timeout=timeout)
                    for message in messages:
                        if message.error():
                            log.warning("consumer error: %s", message.error())
                            continue
                        pending += 1
                        deadline = deadline or time.monotonic() + batch_s
                        self._accept(message, dead_letters)
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                if pending:
                    dead_letters.flush(30)
                    self._flush(consumer)
        finally:
            consumer.close()

    def _accept(self, message, dead_letters: Producer) -> None:
        target = self.targets[message.topic()]
        partition, offset = message.partition(), message.offset()
        first, _ = target.offsets.get(partition, (offset, offset))
        target.offsets[partition] = (first, offset)
        try:
            _, record = self.codec.decode(message.value())
        except Exception as exc:
            # Clean topics hold no clear identifiers, so the bytes can be kept as they are.
            metrics.SINK_UNDECODABLE.labels(message.topic()).inc()
            log.error("undecodable message %s[%d]@%d (%s); sent to %s", message.topic(), partition, offset,
                      type(exc).__name__, DEAD_LETTER_TOPIC)
            dead_letters.produce(DEAD_LETTER_TOPIC, message.value(), key=message.key(),
                                 headers={"source": f"{message.topic()}:{partition}:{offset}", "error": type(exc).__name__})
            return
        target.rows.append(self._row(target, record))
        target.source_ts.append(record["_source_ts_ms"].timestamp())

    def _on_signal(self, signum, frame) -> None:
        self._stopping = True


def run(settings: Settings) -> None:
    metrics.serve(settings.ports.sink_metrics, settings.host)
    ClickHouseSink(settings).run()
