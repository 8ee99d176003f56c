"""Make sure the processor sees every raw offset, whatever Faust's fetcher skips.

Faust 0.15 resumes fetching before it seeks to the committed offsets, and it marks any jump
in offsets as a gap it treats as processed (faust-streaming #216, #596). Events that reach a
raw topic while a restarted worker is starting can thus be skipped and their offsets committed:
tests/e2e/test_crash_recovery.py lost four inserts that way. Raw topics are neither compacted
nor transactional, so their offsets are contiguous and a jump always means skipped events.

So the agent tracks, per partition, the next offset it expects: the group's committed offset
when the worker started, then each processed offset plus one. An event past that offset first
has the missing range read directly from Kafka and processed in order; an event before it was
processed already by this worker and is passed over. Processing twice is harmless downstream
(docs/design.md, invariant 4); skipping is what must never happen.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

from model.names import PROCESSOR_GAPS_GROUP
from streams.group_offsets import Partition, group_consumer, positions

log = logging.getLogger("qoima.gaps")

# Reads the events of one partition from `start` (inclusive) to `end` (exclusive): (offset, value).
RangeReader = Callable[[Partition, int, int], Iterator[tuple[int, bytes | None]]]


class GapFiller:
    def __init__(self, committed: dict[Partition, int], read_range: RangeReader) -> None:
        self._expected = dict(committed)
        self._read_range = read_range
        self.filled = 0
        self.passed_over = 0

    def before(self, tp: Partition, offset: int) -> tuple[bool, list[tuple[int, bytes | None]]]:
        """(process this event?, the skipped events to process first, in order)."""
        expected = self._expected.get(tp)
        if expected is not None and offset < expected:
            self.passed_over += 1
            return False, []
        missing: list[tuple[int, bytes | None]] = []
        if expected is not None and offset > expected:
            missing = [(o, v) for o, v in self._read_range(tp, expected, offset) if expected <= o < offset]
            if missing:
                self.filled += len(missing)
                log.warning("%s[%d]: Faust skipped %d event(s) from offset %d; read them directly",
                            tp[0], tp[1], len(missing), expected)
        self._expected[tp] = offset + 1
        return True, missing


def kafka_range_reader(bootstrap: str) -> RangeReader:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": PROCESSOR_GAPS_GROUP,
                         "enable.auto.commit": False, "log_level": 3})

    def read(tp: Partition, start: int, end: int) -> Iterator[tuple[int, bytes | None]]:
        consumer.assign([TopicPartition(tp[0], tp[1], start)])
        try:
            offset = start
            idle = 0
            while offset < end and idle < 10:
                message = consumer.poll(1.0)
                if message is None:
                    idle += 1
                    continue
                if message.error():
                    continue
                offset = message.offset() + 1
                if message.offset() < end:
                    yield message.offset(), message.value()
        finally:
            consumer.unassign()

    return read


def committed_offsets(bootstrap: str, group: str, topics: list[str]) -> dict[Partition, int]:
    """Where the previous worker stopped (the earliest offset where it never committed)."""
    consumer = group_consumer(bootstrap, group)
    try:
        return positions(consumer, topics, timeout=10)[0]
    finally:
        consumer.close()
