"""Every Avro schema Qoima has written with, kept in a compacted topic, so a reader can decode
a message written under an earlier regulation.

Producer and consumer derive schemas from the same regulation files, which is enough while the
regulation stands still. When it changes (a column declared, a type widened), the clean topics
still hold messages written with the old schema, and the sink, started with the new regulation,
does not know the old fingerprint. So the processor publishes each schema it writes with under
its fingerprint before it writes any message, and a reader that meets an unknown fingerprint
looks it up here and decodes with the writer's schema: the registry Confluent's serializers
keep in `_schemas`, reduced to what single-object encoding needs.
"""
from __future__ import annotations

import json
import logging

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from model.names import SCHEMA_HISTORY_GROUP, SCHEMA_TOPIC
from schemas.kafka_clients import consumer_config, producer_config

log = logging.getLogger("qoima.schemas")



def publish(bootstrap: str, schemas: dict[bytes, tuple[str, dict]]) -> None:
    """Record fingerprint -> (topic, schema); idempotent (the topic is compacted by fingerprint)."""
    producer = Producer(producer_config(bootstrap))
    for fp, (name, schema) in schemas.items():
        producer.produce(SCHEMA_TOPIC, key=fp.hex().encode(), value=json.dumps({"name": name, "schema": schema}))
    if producer.flush(30):
        raise RuntimeError(f"could not record the Avro schemas in {SCHEMA_TOPIC}: is Kafka up?")


class SchemaHistory:
    """Reads the whole topic when asked for a fingerprint it has not seen yet."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._known: dict[str, tuple[str, dict]] = {}

    def lookup(self, fp: bytes) -> tuple[str, dict] | None:
        if fp.hex() not in self._known:
            self._read()
        return self._known.get(fp.hex())

    def _read(self) -> None:
        consumer = Consumer(consumer_config(self._bootstrap, SCHEMA_HISTORY_GROUP))
        try:
            metadata = consumer.list_topics(SCHEMA_TOPIC, timeout=10).topics.get(SCHEMA_TOPIC)
            if metadata is None or metadata.error is not None:
                return
            for partition in metadata.partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(SCHEMA_TOPIC, partition), timeout=10)
                if high <= low:
                    continue
                consumer.assign([TopicPartition(SCHEMA_TOPIC, partition, OFFSET_BEGINNING)])
                offset = low
                while offset < high - 1:
                    message = consumer.poll(5)
                    if message is None:
                        break
                    if message.error():
                        continue
                    offset = message.offset()
                    entry = json.loads(message.value())
                    self._known[message.key().decode()] = (entry["name"], entry["schema"])
        finally:
            consumer.close()
        log.info("schema history: %d schema(s) known", len(self._known))
