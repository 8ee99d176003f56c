"""Incident detections (DM385 §49) as Avro events on `qoima.incidents`.

Every component that detects a problem publishes a detection here; the sink loads them into
`qoima_meta.incident_events`, and `qoima_meta.incidents` groups them by key. Keeping the
journal behind a topic keeps the data flow one-way: processors and checks never write to
the warehouse themselves.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from confluent_kafka import Producer

from schemas.avro_codec import AvroCodec, load_avsc
from schemas.kafka_clients import producer_config
from model.names import INCIDENT_TOPIC
TYPES = ("coverage", "completeness", "accuracy_contradiction", "timeliness", "uniqueness", "consistency",
         "integrity", "other")
SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class Detection:
    provider: str
    table: str | None
    rule: str
    type: str
    severity: str
    count: int
    detail: str          # columns and counts only, never a value
    origin: str
    samples: tuple[str, ...] = ()   # depersonalized record keys, at most five

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"incident type {self.type!r} is not one of DM385's: {', '.join(TYPES)}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r} is not one of {', '.join(SEVERITIES)}")

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.table or '-'}/{self.rule}"

    def record(self) -> dict:
        return {"incident_key": self.key, "provider": self.provider, "table": self.table, "rule": self.rule,
                "type": self.type, "severity": self.severity, "count": self.count, "detail": self.detail,
                "origin": self.origin, "samples": list(self.samples[:5]), "detected_ts": datetime.now(timezone.utc)}


def incident_codec() -> AvroCodec:
    return AvroCodec({INCIDENT_TOPIC: load_avsc("incident")})


class IncidentPublisher:
    """Publishes detections and waits for the broker's acknowledgement: an incident that
    cannot be recorded is an error the caller must see, not a log line."""

    def __init__(self, bootstrap: str, codec: AvroCodec | None = None) -> None:
        self._codec = codec or incident_codec()
        self._producer = Producer(producer_config(bootstrap))

    def publish(self, detection: Detection, timeout: float = 30.0) -> None:
        errors = []
        self._producer.produce(INCIDENT_TOPIC, self._codec.encode(INCIDENT_TOPIC, detection.record()),
                               key=detection.key.encode(), on_delivery=lambda err, _: err and errors.append(err))
        remaining = self._producer.flush(timeout)
        if remaining or errors:
            raise RuntimeError(f"incident {detection.key} not recorded: {errors[0] if errors else 'broker timeout'}")
