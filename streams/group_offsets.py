"""Where the processor group stands on its topics, read from outside the group.

One reading serves two purposes: the GapFiller needs where the previous worker stopped, and the
watchdog needs that and the end of each partition to see whether events wait.
"""
from __future__ import annotations

Partition = tuple[str, int]


def group_consumer(bootstrap: str, group: str):
    """A consumer that reads the group's commits without joining it (it never subscribes)."""
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "socket.timeout.ms": 5000, "log_level": 3})


def positions(consumer, topics: list[str], timeout: float = 5) -> tuple[dict[Partition, int], dict[Partition, int]]:
    """(where the group resumes, where each partition ends). A partition the group never committed
    resumes at its earliest offset, as Faust (auto.offset.reset=earliest) does."""
    from confluent_kafka import TopicPartition

    metadata = consumer.list_topics(timeout=timeout)
    partitions = [TopicPartition(t, p) for t in topics if t in metadata.topics for p in metadata.topics[t].partitions]
    resume, end = {}, {}
    for tp in consumer.committed(partitions, timeout=timeout):
        low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=timeout)
        resume[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else low
        end[(tp.topic, tp.partition)] = high
    return resume, end
