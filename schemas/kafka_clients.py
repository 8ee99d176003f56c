"""Configurations for confluent_kafka's Consumer, Producer and AdminClient, made in one place.

The guarantees Qoima relies on are the defaults here, so a site states only what differs:
- a consumer never auto-commits: Qoima commits after the work a message caused is done (the
  sink, after ClickHouse acknowledged), or never (audits, replays, reading a group's offsets);
- a producer waits for every in-sync replica (acks=all) and is idempotent, so a retried
  batch is not written twice; a site that does without idempotence says so.
`extra` holds librdkafka properties by their own names ("isolation.level", "linger.ms").
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any


def consumer_config(bootstrap: str, group: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A consumer in `group` that commits only when told to."""
    return {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False, **(extra or {})}


def producer_config(bootstrap: str, *, idempotent: bool = True, client_id: str | None = None,
                    extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A producer whose writes every in-sync replica acknowledges; idempotent unless told otherwise."""
    config: dict[str, Any] = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": idempotent}
    if client_id is not None:
        config["client.id"] = client_id
    return {**config, **(extra or {})}


def produce(producer: Any, topic: str, value: bytes | None, key: bytes | None = None,
            on_delivery: Callable[..., None] | None = None, partition: int | None = None,
            headers: list | None = None) -> None:
    """`producer.produce`, waiting while its local queue is full: deliveries drain the queue
    (`poll` serves them), so a burst slows down instead of failing with BufferError.
    `partition` None lets the producer's partitioner choose."""
    extra: dict[str, Any] = {}
    if partition is not None:
        extra["partition"] = partition
    if headers:
        extra["headers"] = headers
    while True:
        try:
            producer.produce(topic, value, key=key, on_delivery=on_delivery, **extra)
            return
        except BufferError:
            producer.poll(0.1)


def admin_config(bootstrap: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An admin client (topics, records, offsets)."""
    return {"bootstrap.servers": bootstrap, **(extra or {})}
