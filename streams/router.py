"""From one raw Debezium event to the clean record or the quarantine record it becomes.

Pure logic, no Kafka: the Faust agent feeds it events and sends what it returns, so the
whole decision (decode, depersonalize, validate, route) is testable without a broker.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from connectors.regulation import Regulation, Table
from streams import envelope
from streams.avro_codec import AvroCodec
from streams.depersonalize import TablePlan
from streams.keys import KeyRing, pseudonym

QUARANTINE_TOPIC = "qoima.quarantine"


@dataclass(frozen=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    table: str
    outcome: str                # clean | quarantined
    op: str = ""
    reason_kind: str = ""
    defects: tuple[str, ...] = field(default_factory=tuple)
    source_ts_ms: int | None = None


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class Router:
    def __init__(self, regulations: list[Regulation], ring: KeyRing, codec: AvroCodec) -> None:
        self._codec = codec
        self._key_id = ring.key_id
        self._digest_key = ring.subkey("quarantine-digest")
        self._tables: dict[str, tuple[Regulation, Table, TablePlan]] = {}
        for regulation in regulations:
            for table in regulation.tables:
                self._tables[regulation.raw_topic(table)] = (regulation, table, TablePlan(table, ring))

    @property
    def raw_topics(self) -> list[str]:
        return sorted(self._tables)

    def route(self, topic: str, partition: int, offset: int, value: bytes | None) -> Output | None:
        """The record to send for one raw event; None for a tombstone (nothing to load)."""
        entry = self._tables.get(topic)
        if entry is None:
            return self._quarantine(topic, partition, offset, value, None, None, "unknown_table",
                                    "no regulation declares this raw topic")
        regulation, table, plan = entry
        try:
            change = envelope.decode(value)
        except envelope.EnvelopeError as exc:
            return self._quarantine(topic, partition, offset, value, regulation, table, exc.kind, str(exc))
        if change is None:
            return None
        row = change.row
        if not change.is_delete:
            missing = [c.name for c in table.columns if not c.nullable and row.get(c.name) is None]
            if missing:
                return self._quarantine(topic, partition, offset, value, regulation, table, "missing_value",
                                        f"mandatory column(s) empty: {', '.join(missing)}", plan.salvage(row))
        try:
            record, defects = (plan.key_only(row), []) if change.is_delete else plan.apply(row)
        except ValueError as exc:
            return self._quarantine(topic, partition, offset, value, regulation, table, "bad_value", str(exc),
                                    plan.salvage(row))
        if change.is_delete:
            absent = [k for k in table.primary_key if record.get(table.column(k).output_name) is None]
            if absent:
                return self._quarantine(topic, partition, offset, value, regulation, table, "missing_value",
                                        f"delete without its key column(s) {', '.join(absent)}: check the "
                                        "table's REPLICA IDENTITY against the regulation's primary_key")
        declared = {c.name for c in table.columns}
        notes = [f"{d.column}: {d.problem}" for d in defects]
        notes += [f"{name}: not declared in the regulation, not loaded" for name in sorted(set(row) - declared)]
        now = datetime.now(timezone.utc)
        record.update(
            _op=change.op,
            _version=change.lsn,
            _is_deleted=1 if change.is_delete else 0,
            _source_ts_ms=datetime.fromtimestamp(change.source_ts_ms / 1000, timezone.utc),
            _processed_ts_ms=now,
            _key_id=self._key_id,
            _defects=notes,
        )
        clean_topic = regulation.clean_topic(table)
        key = json.dumps([record[plan.table.column(k).output_name] for k in table.primary_key],
                         default=_json_default).encode()
        try:
            encoded = self._codec.encode(clean_topic, record)
        except (ValueError, TypeError, OverflowError) as exc:
            return self._quarantine(topic, partition, offset, value, regulation, table, "bad_value",
                                    f"a value does not fit the clean schema ({type(exc).__name__})",
                                    plan.salvage(row))
        return Output(clean_topic, key, encoded, table.name, "clean",
                      op=change.op, defects=tuple(notes), source_ts_ms=change.source_ts_ms)

    def internal_error(self, topic: str, partition: int, offset: int, value: bytes | None, error: str) -> Output:
        entry = self._tables.get(topic)
        regulation, table = (entry[0], entry[1]) if entry else (None, None)
        return self._quarantine(topic, partition, offset, value, regulation, table, "internal_error",
                                f"processor error {error}; report it with the source offset")

    def _quarantine(self, topic: str, partition: int, offset: int, value: bytes | None,
                    regulation: Regulation | None, table: Table | None, kind: str, reason: str,
                    salvaged: dict[str, Any] | None = None) -> Output:
        raw = value or b""
        record = {
            "provider": regulation.provider if regulation else topic.split(".")[2] if topic.count(".") >= 2 else "",
            "table": table.name if table else None,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "reason": reason,
            "error_kind": kind,
            "payload_depersonalized": json.dumps(salvaged, default=_json_default, ensure_ascii=False) if salvaged else None,
            "payload_bytes": len(raw),
            "payload_digest": pseudonym(self._digest_key, raw),
            "quarantined_ts_ms": datetime.fromtimestamp(time.time(), timezone.utc),
            "key_id": self._key_id,
        }
        return Output(QUARANTINE_TOPIC, f"{topic}:{partition}:{offset}".encode(),
                      self._codec.encode(QUARANTINE_TOPIC, record), table.name if table else "",
                      "quarantined", reason_kind=kind)
