"""The watermarks: what the poller knows of each table, and how it survives a restart.

After the events of a page are flushed, the table's watermark goes to the compacted topic
`qoima.marker-state` (`watermark_record`); at start the poller reads that topic to its end
(`load_states`) and resumes each table from its record (`restored`). No local state."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from connectors.marker.errors import PollerConfigError, PollerError
from connectors.marker.table import MarkerTable
from model.names import MARKER_STATE_GROUP, MARKER_STATE_TOPIC
from schemas.kafka_clients import consumer_config

log = logging.getLogger("qoima.poller")


@dataclass
class TableState:
    position: int | None = None      # watermark: every row with a lower marker has been produced
    snapshot_done: bool = False      # the first full pass reached the end of the table
    # key -> marker position produced, for rows a lookback may read again
    seen: dict[tuple, int] = field(default_factory=dict)
    # key -> version of rows produced and not deleted; None while reconciliation is off
    live: dict[tuple, int] | None = None
    polls: int = 0
    columns: tuple[str, ...] = ()    # the source's columns, for undeclared-column notes


def state_key(table: MarkerTable) -> str:
    return f"{table.regulation.provider}/{table.name}"


def watermark_record(table: MarkerTable, position: int, snapshot_done: bool, saved_ms: int) -> tuple[bytes, bytes]:
    """(key, value) of a table's watermark in the state topic."""
    value = {"marker": table.marker, "kind": table.kind, "position": position,
             "snapshot_done": snapshot_done, "saved_ms": saved_ms}
    return state_key(table).encode(), json.dumps(value).encode()


def restored(table: MarkerTable, saved: dict[str, Any] | None) -> TableState:
    """The table's state from its stored record; from the start when there is none or it does not fit."""
    if not saved:
        return TableState()
    if not isinstance(saved, dict) or saved.get("marker") != table.marker or saved.get("kind") != table.kind:
        log.warning("%s %s: the stored watermark is for another marker column; reading the table from the start",
                    table.regulation.provider, table.name)
        return TableState()
    position = saved.get("position")
    if isinstance(position, bool) or not isinstance(position, int):
        log.warning("%s %s: the stored watermark is damaged; reading the table from the start",
                    table.regulation.provider, table.name)
        return TableState()
    return TableState(position=position, snapshot_done=bool(saved.get("snapshot_done")))


def load_states(bootstrap: str, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """The latest watermark of every marker table, read from the compacted state topic."""
    consumer = Consumer(consumer_config(bootstrap, MARKER_STATE_GROUP, {"auto.offset.reset": "earliest"}))
    try:
        try:
            topics = consumer.list_topics(timeout=timeout).topics
        except KafkaException as exc:
            raise PollerError("kafka", f"cannot reach Kafka at {bootstrap} ({exc.args[0]})") from None
        if MARKER_STATE_TOPIC not in topics:
            raise PollerConfigError(f"topic {MARKER_STATE_TOPIC} does not exist; `qoima up` creates it (compacted, "
                                    "one partition)")
        low, high = consumer.get_watermark_offsets(TopicPartition(MARKER_STATE_TOPIC, 0), timeout=timeout)
        states: dict[str, dict[str, Any]] = {}
        if high <= low:
            return states
        consumer.assign([TopicPartition(MARKER_STATE_TOPIC, 0, low)])
        deadline = time.monotonic() + 6 * timeout
        seen = low
        while seen < high:
            if time.monotonic() > deadline:
                raise PollerError("kafka", f"{MARKER_STATE_TOPIC} not read to its end in time")
            for message in consumer.consume(num_messages=500, timeout=1.0):
                if message.error():
                    continue
                seen = message.offset() + 1
                key = (message.key() or b"").decode("utf-8", "replace")
                if message.value() is None:
                    states.pop(key, None)
                    continue
                try:
                    states[key] = json.loads(message.value())
                except ValueError:  # not ours or damaged: that table is read from the start
                    log.warning("%s offset %d: not a watermark record; ignored", MARKER_STATE_TOPIC, message.offset())
                    states.pop(key, None)
        return states
    finally:
        consumer.close()
