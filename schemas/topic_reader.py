"""Reading everything a topic holds now, partition by partition, for audits and replays."""
from __future__ import annotations


from typing import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from model.names import throwaway_group
from schemas.kafka_clients import consumer_config


def throwaway_consumer(bootstrap: str, purpose: str) -> Consumer:
    """A consumer in a group of its own that commits nothing: reading never moves anyone. It
    reads committed records only and says when it reached a partition's end (`read_topic`)."""
    return Consumer(consumer_config(bootstrap, throwaway_group(purpose),
                                    {"isolation.level": "read_committed", "enable.partition.eof": True}))


def read_topic(consumer: Consumer, topic: str) -> Iterator[tuple[int, Message]]:
    """(partition, message) for every committed message from each partition's low watermark to
    its end, with a `throwaway_consumer`.

    The end is the consumer's end-of-partition event, not the high watermark: the processor
    writes in transactions, and a transaction's commit marker takes the last offset of a
    partition without ever being delivered, so a reader waiting to reach the high watermark
    would wait forever."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    for partition in sorted(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= low:
            continue
        consumer.assign([TopicPartition(topic, partition, low)])
        position, at_end = low, False
        while not at_end and position < high:
            for message in consumer.consume(num_messages=5000, timeout=5):
                error = message.error()
                if error is not None:
                    if error.fatal():
                        raise KafkaException(error)
                    at_end = at_end or (error.code() == KafkaError._PARTITION_EOF
                                        and (message.topic(), message.partition()) == (topic, partition))
                    continue
                position = message.offset() + 1
                yield partition, message
