"""Reading everything a topic holds now, partition by partition, for audits and replays."""
from __future__ import annotations


from typing import Iterator

from confluent_kafka import Consumer, Message, TopicPartition

from model.names import throwaway_group
from schemas.kafka_clients import consumer_config


def throwaway_consumer(bootstrap: str, purpose: str) -> Consumer:
    """A consumer in a group of its own that commits nothing: reading never moves anyone."""
    return Consumer(consumer_config(bootstrap, throwaway_group(purpose)))


def read_topic(consumer: Consumer, topic: str) -> Iterator[tuple[int, Message]]:
    """(partition, message) for every message between each partition's low and high watermark."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    for partition in sorted(partitions):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= low:
            continue
        consumer.assign([TopicPartition(topic, partition, low)])
        position = low
        while position < high:
            for message in consumer.consume(num_messages=5000, timeout=5):
                if message.error():
                    continue
                position = message.offset() + 1
                yield partition, message
