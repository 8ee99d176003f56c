"""Where the poller's events, watermarks and heartbeats go: an idempotent acks=all Kafka producer
whose flush fails loudly instead of dropping events."""
from __future__ import annotations

import logging
from typing import Protocol

from confluent_kafka import Producer

from connectors.marker.errors import PollerError
from schemas.kafka_clients import produce, producer_config

_DELIVERY_TIMEOUT_S = 60.0


class Output(Protocol):
    def produce(self, topic: str, key: bytes | None, value: bytes | None) -> None: ...

    def flush(self) -> None:
        """Return once everything produced is acknowledged; raise PollerError otherwise."""


class KafkaOutput:
    """An idempotent acks=all producer whose flush fails loudly instead of dropping events."""

    def __init__(self, bootstrap: str) -> None:
        self._failures: list[str] = []
        self._producer = Producer(producer_config(bootstrap, client_id="qoima-poller", extra={
            "linger.ms": 20, "message.timeout.ms": int(_DELIVERY_TIMEOUT_S * 1000),
        }), logger=logging.getLogger("qoima.poller.kafka"))

    def _delivered(self, error, message) -> None:
        if error is not None:
            self._failures.append(str(error))

    def produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        produce(self._producer, topic, value, key, self._delivered)

    def flush(self) -> None:
        remaining = self._producer.flush(_DELIVERY_TIMEOUT_S + 5)
        failures, self._failures = self._failures, []
        if remaining or failures:
            raise PollerError("kafka", f"{remaining} message(s) undelivered, {len(failures)} failed"
                              + (f" (first: {failures[0]})" if failures else "") + "; the poll is repeated")
