"""One batch of raw events in, everything the batch causes out: records, detections, state, metrics.

Pure logic, no Kafka: streams/processor.py writes a batch's `Effects` in one Kafka transaction
together with the raw offsets it consumed, so each of them happens exactly once or not at all.

- records: what the router made of each event, in the events' order (a table's clean records
  keep their order, so a TRUNCATE marker stays in its place among them);
- detections: rule violations summed per incident key (provider/table/rule) over the batch,
  one incident event each, with up to five depersonalized record keys as samples; violations
  of rows whose grace period ended (integrity, late consistency) join them;
- state: the changelog records of the stateful rules' stores (streams/state_store.py);
- metrics: counted per batch and label, then added to the Prometheus counters once.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from model.names import INCIDENT_TOPIC, PROCESSOR_STATE_TOPIC
from monitoring import metrics
from schemas.avro_codec import AvroCodec
from schemas.incidents import Detection
from streams.quality import Violation
from streams.router import LEAK_CHECK, Output, Router

log = logging.getLogger("qoima.processor")

RawEvent = tuple[str, int, int, "bytes | None"]   # topic, partition, offset, value
Record = tuple[str, "bytes | None", "bytes | None"]  # topic, key, value

_MAX_SAMPLES = 5
# What a batch counts, by the first element of its key; the rest are the metric's labels.
_COUNTERS = {"in": metrics.EVENTS_IN, "out": metrics.EVENTS_OUT, "violation": metrics.QUALITY_VIOLATIONS,
             "defect": metrics.DEFECTS, "quarantined": metrics.QUARANTINED, "tombstone": metrics.TOMBSTONES}


@dataclass
class _Incident:
    violation: Violation
    count: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass
class Effects:
    records: list[Record] = field(default_factory=list)
    events: int = 0
    seconds: float = 0.0   # routing time, for the per-event histogram


class BatchProcessor:
    """Routes batches through a Router; `expire_every_s` paces the stateful rules' grace checks."""

    def __init__(self, router: Router, codec: AvroCodec, expire_every_s: float = 1.0) -> None:
        self.router = router
        self.codec = codec
        self._expire_every_s = expire_every_s
        self._last_expiry = 0.0
        self._table_of = {topic: topic.split(".", 3)[-1] for topic in router.raw_topics}

    def process(self, events: Iterable[RawEvent], now: float | None = None) -> Effects:
        now = time.time() if now is None else now
        effects = Effects()
        incidents: dict[tuple[str, str, str], _Incident] = {}
        counts: Counter = Counter()
        started = time.perf_counter()
        for topic, partition, offset, value in events:
            effects.events += 1
            try:
                out = self.router.route(topic, partition, offset, value)
            except Exception as exc:  # a bug must quarantine the event, not stop the pipeline
                log.error("internal error on %s offset %s: %s", topic, offset, type(exc).__name__)
                out = self.router.internal_error(topic, partition, offset, value, type(exc).__name__)
            if out is None:
                counts[("tombstone", self._table_of.get(topic, topic))] += 1
                continue
            self._count(out, topic, counts)
            self._note(out.provider, out.table, out.violations, out.key, incidents)
            effects.records.append((out.topic, out.key, out.value))
        effects.seconds = time.perf_counter() - started
        if self.router.stateful is not None and now - self._last_expiry >= self._expire_every_s:
            self._last_expiry = now
            for regulation, table, violation in self.router.stateful.expire(int(now * 1000)):
                self._note(regulation.provider, table.name, (violation,), None, incidents)
        for (provider, table, rule), incident in incidents.items():
            violation = incident.violation
            critical = violation.action == "hold" or violation.rule == LEAK_CHECK
            detection = Detection(provider, table, rule, violation.incident_type,
                                  "critical" if critical else "warning", incident.count,
                                  f"{incident.count} row(s), action {violation.action}: {violation.problem}",
                                  "processor", tuple(incident.samples))
            effects.records.append((INCIDENT_TOPIC, detection.key.encode(),
                                    self.codec.encode(INCIDENT_TOPIC, detection.record())))
        if self.router.state is not None:
            effects.records.extend((PROCESSOR_STATE_TOPIC, key, value) for key, value in self.router.state.changes())
        self._publish(counts, effects)
        return effects

    @staticmethod
    def _note(provider: str, table: str, violations: Iterable[Violation], key: bytes | None,
              incidents: dict[tuple[str, str, str], _Incident]) -> None:
        # The record's key is depersonalized (clean key JSON, or topic:partition:offset of a
        # quarantined event): safe to keep as a sample of what broke the rule.
        sample = key.decode("utf-8", "replace") if key else None
        for violation in violations:
            incident = incidents.get((provider, table, violation.rule))
            if incident is None:
                incident = incidents[(provider, table, violation.rule)] = _Incident(violation)
            incident.count += 1
            if sample and len(incident.samples) < _MAX_SAMPLES:
                incident.samples.append(sample)

    def _count(self, out: Output, topic: str, counts: Counter) -> None:
        for violation in out.violations:
            counts[("violation", out.table, violation.rule, violation.action)] += 1
        if out.outcome in ("clean", "held", "truncated"):
            counts[("in", out.table, out.op)] += 1
            counts[("out", out.table)] += 1
            if out.outcome == "truncated":
                log.warning("%s: TRUNCATE at the source; the sink deletes the rows loaded before it", out.table)
            broken = {v.problem for v in out.violations}  # counted as rule violations instead
            for note in out.defects:
                if note not in broken:
                    counts[("defect", out.table, note.split(":", 1)[0])] += 1
        else:
            table = out.table or self._table_of.get(topic, topic)
            counts[("in", table, "invalid")] += 1
            counts[("quarantined", table, out.reason_kind)] += 1

    @staticmethod
    def _publish(counts: Counter, effects: Effects) -> None:
        for (kind, *labels), count in counts.items():
            _COUNTERS[kind].labels(*labels).inc(count)
        if effects.events:
            # Once per batch, the batch's mean per event: one observation per event would cost
            # more than the routing it measures.
            metrics.PROCESS_SECONDS.observe(effects.seconds / effects.events)
            metrics.BATCH_EVENTS.observe(effects.events)
