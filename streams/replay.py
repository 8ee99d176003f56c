"""`qoima quarantine replay`: send quarantined events through the pipeline again after a fix.

A quarantine record points at its raw event (topic, partition, offset). Replay reads that
event again from the raw topic and routes it with the regulation and rules in force now:
- it passes now (the rule was changed or the processor fixed): its clean or held record is
  produced; loading it again is harmless, the warehouse keeps one row per key and version;
- it still fails: nothing is produced (no second quarantine record), and it is counted.
A data fix at the source needs no replay: the corrected row arrives as a new change.

Raw topics keep clear values one day only (privacy), so an event older than that cannot be
replayed; such records are reported as expired, never silently skipped. Historical-file rows
(`history:` sources) are replayed by loading the corrected file again.
"""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

from confluent_kafka import Consumer, Producer, TopicPartition

from schemas.avro_codec import AvroCodec, codec_for
from schemas.kafka_clients import producer_config
from model.names import QUARANTINE_TOPIC
from model.regulation import Regulation
from model.settings import Settings
from schemas.schema_history import SchemaHistory
from streams.keys import load_schedule
from streams.router import Router
from schemas.topic_reader import read_topic, throwaway_consumer


@dataclass
class ReplaySummary:
    quarantined: int = 0
    replayed: Counter = field(default_factory=Counter)     # outcome -> count (clean, held, still failing...)

    def render(self) -> str:
        lines = [f"quarantine records read: {self.quarantined}"]
        lines += [f"  {outcome:<22} {count}" for outcome, count in sorted(self.replayed.items())]
        return "\n".join(lines)


def _raw_event(consumer: Consumer, topic: str, partition: int, offset: int):
    consumer.assign([TopicPartition(topic, partition, offset)])
    for message in consumer.consume(num_messages=1, timeout=10):
        if not message.error() and message.offset() == offset:
            return message
    return None


def replay(bootstrap: str, router: Router, codec: AvroCodec, table: str | None = None) -> ReplaySummary:
    """Replay every quarantined raw event (of `table` only, if given)."""
    summary = ReplaySummary()
    reader = throwaway_consumer(bootstrap, "replay")
    fetcher = throwaway_consumer(bootstrap, "replay")
    producer = Producer(producer_config(bootstrap))
    raw_topics = set(router.raw_topics)
    seen: set[tuple[str, int, int]] = set()
    try:
        records = [codec.decode(m.value())[1] for _, m in read_topic(reader, QUARANTINE_TOPIC)]
        for record in records:
            if table and record["table"] != table:
                continue
            source = (record["source_topic"], record["source_partition"], record["source_offset"])
            if source in seen:  # quarantined more than once (an earlier replay, a restart)
                continue
            seen.add(source)
            summary.quarantined += 1
            if source[0] not in raw_topics:
                summary.replayed["not replayable here"] += 1
                continue
            low, _ = fetcher.get_watermark_offsets(TopicPartition(source[0], source[1]), timeout=10)
            message = _raw_event(fetcher, *source) if source[2] >= low else None
            if message is None:
                summary.replayed["raw event expired"] += 1
                continue
            out = router.route(*source, message.value())
            if out is None or out.outcome == "quarantined":
                summary.replayed["still failing"] += 1
                continue
            producer.produce(out.topic, out.value, key=out.key)
            summary.replayed[out.outcome] += 1
        if producer.flush(30):
            raise RuntimeError("replayed records were not all acknowledged by Kafka; run the replay again")
    finally:
        reader.close()
        fetcher.close()
    return summary


def replay_quarantine(settings: Settings, regulations: list[Regulation], table: str | None = None) -> ReplaySummary:
    """`qoima quarantine replay`: `replay` with today's regulations, keys and rules."""
    # Quarantined under an earlier regulation: read with the schema it was written with.
    codec = codec_for(regulations, SchemaHistory(settings.kafka_bootstrap).lookup)
    keys = load_schedule(settings.key_id, dict(os.environ), settings.master_key_file)
    # Stateless rules only: the processor's uniqueness and integrity state lives in its own
    # state stores, and a replay must not change it behind the processor's back.
    return replay(settings.kafka_bootstrap, Router(regulations, keys, codec), codec, table=table)
