"""One batch of events in, everything the batch causes out: records, detections, state, metrics.

Pure logic, no Kafka: streams/processor.py writes a batch's `Effects` in one Kafka transaction
together with the offsets it consumed, so each of them happens exactly once or not at all.

A worker reads three kinds of topics, and a batch may hold all three (docs/design.md, "Scale-out"):

- raw topics (one partition each: their offsets are the rows' versions): each event is passed
  on to the work topic, in the partition its primary key hashes to, with its raw coordinates in
  a header. A TRUNCATE goes to every work partition, so that each partition's rows before it are
  deleted and none after it; a tombstone is counted and dropped.
- the work topic: each event is routed (streams/router.py) as if read from its raw topic, into
  its clean, held or quarantine record; a loaded row's cross-row claims go to the rules topic.
- the rules topic: claims are judged (streams/cross_row/judge.py); verdicts become incidents.

What a batch writes:
- records: in the events' order (a table's clean records keep their order, so a TRUNCATE
  marker stays in its place among them), then claims;
- detections: rule violations summed per incident key (provider/table/rule) over the batch,
  one incident event each, with up to five depersonalized record keys as samples; verdicts of
  rows whose grace period ended (integrity, late consistency) join them;
- state: the changelog records of the cross-row rules' stores and of the access log's buckets
  (streams/state_store.py);
- access events (PD236): each routed row of a table holding personal data is counted in its
  work partition's bucket for the interval (streams/access_log.py); a bucket whose interval has
  ended becomes one event on the access topic, and leaves the state, in the same transaction;
- metrics: counted per batch and label, then added to the Prometheus counters once.
"""
from __future__ import annotations

import logging
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import orjson

from model.names import ACCESS_TOPIC, INCIDENT_TOPIC, PROCESSOR_STATE_TOPIC, RULES_TOPIC, WORK_TOPIC
from monitoring import metrics
from schemas import envelope
from schemas.avro_codec import AvroCodec
from schemas.incidents import Detection
from streams.access_log import AccessLog
from streams.cross_row.claims import forget_claim
from streams.cross_row.judge import Judge
from streams.quality import Violation
from streams.router import LEAK_CHECK, Output, Router
from streams.state_store import StateStores

log = logging.getLogger("qoima.processor")

# topic, partition, offset, key, value, headers
RawEvent = tuple[str, int, int, "bytes | None", "bytes | None", "list | None"]
# topic, key, value, partition (None: by the producer), headers
Record = tuple[str, "bytes | None", "bytes | None", "int | None", "list | None"]

RAW_ORIGIN = "qoima-raw"  # the work topic's header: "<raw topic>\x1f<partition>\x1f<offset>"
_MAX_SAMPLES = 5
# What a batch counts, by the first element of its key; the rest are the metric's labels.
_COUNTERS = {"in": metrics.EVENTS_IN, "out": metrics.EVENTS_OUT, "violation": metrics.QUALITY_VIOLATIONS,
             "defect": metrics.DEFECTS, "quarantined": metrics.QUARANTINED, "tombstone": metrics.TOMBSTONES,
             "access": metrics.PD_ACCESS_ROWS}


def partition_for(key: bytes, partitions: int) -> int:
    """The partition of `key` among `partitions`: a key always lands in the same one."""
    return zlib.crc32(key) % partitions


@dataclass
class _Incident:
    violation: Violation
    count: int = 0
    samples: list[str] = field(default_factory=list)


@dataclass
class Effects:
    records: list[Record] = field(default_factory=list)
    events: int = 0
    routed: int = 0       # events of the work topic
    seconds: float = 0.0  # routing time, for the per-event histogram


class BatchProcessor:
    """Batches through a Router and a Judge over `partitions` work and rules partitions;
    `expire_every_s` paces the grace checks."""

    def __init__(self, router: Router, codec: AvroCodec, judge: Judge | None = None,
                 state: StateStores | None = None, partitions: int = 1, expire_every_s: float = 1.0,
                 access: AccessLog | None = None) -> None:
        self.router, self.codec, self.judge, self.state, self.access = router, codec, judge, state, access
        self.partitions = partitions
        self._expire_every_s = expire_every_s
        self._last_expiry = 0.0
        self._table_of = {topic: router.topic_label(topic) for topic in router.raw_topics}

    def process(self, events: Iterable[RawEvent], now: float | None = None) -> Effects:
        now = time.time() if now is None else now
        self._now_ms = int(now * 1000)
        effects = Effects()
        incidents: dict[tuple[str, str, str], _Incident] = {}
        counts: Counter = Counter()
        claims: list[Record] = []
        started = time.perf_counter()
        for topic, partition, offset, key, value, headers in events:
            effects.events += 1
            if topic == WORK_TOPIC:
                effects.routed += 1
                # Without its header (never written so), the event is quarantined as from an unknown topic.
                origin = _origin(headers) or (topic, partition, offset)
                self._route(partition, origin, value, effects, claims, counts, incidents)
            elif topic == RULES_TOPIC:
                self._judge(partition, key, value, incidents)
            else:
                self._spread(topic, partition, offset, key, value, effects, counts)
        effects.records.extend(claims)
        effects.seconds = time.perf_counter() - started
        if self.judge is not None and now - self._last_expiry >= self._expire_every_s:
            self._last_expiry = now
            for regulation, table, violation, sample in self.judge.expire(int(now * 1000)):
                self._note(regulation.provider, table.name, (violation,), sample, incidents)
        if self.access is not None:
            for event in self.access.closed(self._now_ms):
                effects.records.append((ACCESS_TOPIC, event.event_id.encode(),
                                        self.codec.encode(ACCESS_TOPIC, event.record()), None, None))
                metrics.PD_ACCESS_EVENTS.labels(event.path).inc()
        for (provider, table, rule), incident in incidents.items():
            violation = incident.violation
            critical = violation.action == "hold" or violation.rule == LEAK_CHECK
            detection = Detection(provider, table, rule, violation.incident_type,
                                  "critical" if critical else "warning", incident.count,
                                  f"{incident.count} row(s), action {violation.action}: {violation.problem}",
                                  "processor", tuple(incident.samples))
            effects.records.append((INCIDENT_TOPIC, detection.key.encode(),
                                    self.codec.encode(INCIDENT_TOPIC, detection.record()), None, None))
        if self.state is not None:
            effects.records.extend((PROCESSOR_STATE_TOPIC, key, value, None, None)
                                   for key, value in self.state.changes())
        self._publish(counts, effects)
        return effects

    def _spread(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None,
                effects: Effects, counts: Counter) -> None:
        """A raw event, passed on to the work partition of its key, its raw coordinates in a header."""
        if value is None:
            counts[("tombstone", self._table_of.get(topic, topic))] += 1
            return
        origin = [(RAW_ORIGIN, f"{topic}\x1f{partition}\x1f{offset}".encode())]
        if key is not None:
            effects.records.append((WORK_TOPIC, key, value, partition_for(key, self.partitions), origin))
        elif _is_truncate(value):
            # Every partition, each after its own rows before the TRUNCATE (docs/design.md, "Scale-out").
            effects.records.extend((WORK_TOPIC, None, value, shard, origin) for shard in range(self.partitions))
        else:
            effects.records.append((WORK_TOPIC, None, value, 0, origin))

    def _route(self, shard: int, origin: tuple[str, int, int], value: bytes | None, effects: Effects,
               claims: list[Record], counts: Counter, incidents: dict) -> None:
        topic, partition, offset = origin
        try:
            out = self.router.route(topic, partition, offset, value, shard)
        except Exception as exc:  # a bug must quarantine the event, not stop the pipeline
            log.error("internal error on %s offset %s: %s", topic, offset, type(exc).__name__)
            out = self.router.internal_error(topic, partition, offset, value, type(exc).__name__)
        if out is None:
            counts[("tombstone", self._table_of.get(topic, topic))] += 1
            return
        self._count(out, topic, counts)
        if self.access is not None and out.table and out.outcome != "truncated":
            # A quarantined row was read too, but names no subject.
            subject = out.subject if out.outcome != "quarantined" else None
            path = self.access.note(shard, out.provider, out.table, out.op, subject, out.source_ts_ms, self._now_ms)
            if path is not None:
                counts[("access", out.table, path)] += 1
        self._note(out.provider, out.table, out.violations, out.key.decode("utf-8", "replace") if out.key else None,
                   incidents)
        effects.records.append((out.topic, out.key, out.value, None, None))
        for claim_key, message in out.claims:
            encoded = claim_key.encode()
            claims.append((RULES_TOPIC, encoded, orjson.dumps(message),
                           partition_for(encoded, self.partitions), None))
        if out.outcome == "truncated" and self.judge is not None:
            # Not keyed: every rules partition drops what this shard's rows of the table claimed there.
            key, message = forget_claim(out.table, shard)
            forget = orjson.dumps(message)
            claims.extend((RULES_TOPIC, key.encode(), forget, rules_partition, None)
                          for rules_partition in range(self.partitions))

    def _judge(self, partition: int, key: bytes | None, value: bytes | None, incidents: dict) -> None:
        if self.judge is None or value is None or key is None:
            return
        try:
            verdicts = self.judge.apply(partition, key.decode(), orjson.loads(value))
        except Exception as exc:  # noqa: BLE001 - one bad claim must not stop the worker on every restart
            # Claims are Qoima's own; one it cannot read (a bug, or a regulation changed under it)
            # costs that claim's verdict, logged, never the worker.
            log.error("claim in %s[%d] not judged: %s", RULES_TOPIC, partition, type(exc).__name__)
            metrics.CLAIMS_UNJUDGED.inc()
            return
        for regulation, table, violation, sample in verdicts:
            self._note(regulation.provider, table.name, (violation,), sample, incidents)

    @staticmethod
    def _note(provider: str, table: str, violations: Iterable[Violation], sample: str | None,
              incidents: dict[tuple[str, str, str], _Incident]) -> None:
        # The sample is a record's key, depersonalized (clean key JSON, or topic:partition:offset
        # of a quarantined event): safe to keep as an example of what broke the rule.
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
        if effects.routed:
            # Once per batch, the batch's mean per event: one observation per event would cost
            # more than the routing it measures.
            metrics.PROCESS_SECONDS.observe(effects.seconds / effects.events)
            metrics.BATCH_EVENTS.observe(effects.events)


def _origin(headers: list | None) -> tuple[str, int, int] | None:
    """The raw topic, partition and offset a work event was read at."""
    for name, value in headers or ():
        if name == RAW_ORIGIN:
            topic, partition, offset = value.decode().split("\x1f")
            return topic, int(partition), int(offset)
    return None


def _is_truncate(value: bytes) -> bool:
    """Whether a raw event without a key is Debezium's TRUNCATE (its key is null, since it
    changes no one row); decoded only for such events."""
    try:
        change = envelope.decode(value)
    except envelope.EnvelopeError:
        return False   # routed as it is, it is quarantined with the reason
    return change is not None and change.op == "t"


def loopback(batch: BatchProcessor, events: list[RawEvent], now: float | None = None,
             offsets: Counter | None = None) -> tuple[list[Record], list[Record]]:
    """One worker alone, without Kafka (tests and benchmarks): `events`, then the work and rules
    records they cause fed back as Kafka would deliver them, until none are left. Returns
    (the records that leave the processor, the work and rules records). `offsets` numbers the
    work and rules partitions across calls."""
    offsets = Counter() if offsets is None else offsets
    leaving: list[Record] = []
    internal: list[Record] = []
    while events:
        effects = batch.process(events, now=now)
        events = []
        for record in effects.records:
            topic, key, value, partition, headers = record
            if topic in (WORK_TOPIC, RULES_TOPIC):
                internal.append(record)
                offset = offsets[(topic, partition)]
                offsets[(topic, partition)] += 1
                events.append((topic, partition, offset, key, value, headers))
            else:
                leaving.append(record)
    return leaving, internal
