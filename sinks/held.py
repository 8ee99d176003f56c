"""Releasing a clean topic the sink held back after a failed depersonalization check.

The held messages contain clear identifiers, so they must neither be loaded nor stay in
Kafka. Once the cause is fixed (the regulation or the processor), the operator, with the sink
stopped, skips them: the sink group's offset moves past the held batch and every record up to
it is deleted from the topic. The rows of the held batch are then re-derived from the source
(`qoima snapshot <table>` or a processor replay), never from the leaking messages.
"""
from __future__ import annotations

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from model.names import SINK_GROUP
from schemas.kafka_clients import admin_config, consumer_config



def skip_held(bootstrap: str, topic: str, partition: int, through_offset: int) -> None:
    """Commit the sink group past `through_offset` and delete the records up to it."""
    consumer = Consumer(consumer_config(bootstrap, SINK_GROUP))
    try:
        committed = consumer.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
        if committed > through_offset:
            raise SystemExit(f"{topic}[{partition}] is already committed at {committed}, past {through_offset}")
        try:
            consumer.commit(offsets=[TopicPartition(topic, partition, through_offset + 1)], asynchronous=False)
        except KafkaException as exc:
            raise SystemExit(f"cannot move the sink past the held batch ({exc.args[0].str()}); "
                             "stop the sink first (`qoima down` stops it, `qoima up` starts it again)") from None
    finally:
        consumer.close()
    admin = AdminClient(admin_config(bootstrap))
    futures = admin.delete_records([TopicPartition(topic, partition, through_offset + 1)])
    for future in futures.values():
        future.result(timeout=30)
