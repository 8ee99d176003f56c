"""Debezium change events (JSON converter, schemas disabled) decoded into a typed change."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from streams.binlog_position import BinlogPositionError, binlog_version

OPS = {"r", "c", "u", "d", "t", "m"}


class EnvelopeError(ValueError):
    """The event is not a Debezium change envelope; the message never quotes its values."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Change:
    op: str                      # r (snapshot read), c, u, d
    row: dict[str, Any]          # `after` for r/c/u, `before` for d
    lsn: int                     # increases with every change of a row; ClickHouse's _version
    source_ts_ms: int            # commit time at the source
    schema: str
    table: str

    @property
    def is_delete(self) -> bool:
        return self.op == "d"


def _position(source: dict[str, Any], op: str) -> int | None:
    """The change's LSN. Incremental-snapshot reads carry no `lsn`, only `sequence`
    ([last committed LSN, current LSN] as strings): the stream position when the chunk was
    read, which is after every change the chunk already reflects. MariaDB events carry a
    binlog position instead (streams/binlog_position.py)."""
    lsn = source.get("lsn")
    if isinstance(lsn, int) and not isinstance(lsn, bool):
        return lsn
    if "file" in source and "pos" in source:  # PostgreSQL's source block has neither
        return binlog_version(source, snapshot_read=op == "r")
    try:
        sequence = json.loads(source.get("sequence") or "null")
        positions = [int(p) for p in sequence or [] if p is not None]
    except (TypeError, ValueError):
        return None
    return max(positions) if positions else None


def decode(value: bytes | None) -> Change | None:
    """None for a tombstone (Kafka compaction marker that follows a delete)."""
    if value is None:
        return None
    try:
        event = json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("undecodable", f"not JSON ({type(exc).__name__} at byte {getattr(exc, 'pos', '?')})") from None
    if not isinstance(event, dict):
        raise EnvelopeError("undecodable", f"expected a JSON object, got {type(event).__name__}")
    if "payload" in event and "schema" in event:
        event = event["payload"]  # tolerate a converter left with schemas enabled
    op = event.get("op")
    if op not in OPS:
        raise EnvelopeError("undecodable", "missing or unknown 'op' field")
    if op not in ("r", "c", "u", "d"):
        raise EnvelopeError("unexpected_op", f"operation {op!r} (truncate/message) is not loaded; it needs an operator")
    source = event.get("source")
    if not isinstance(source, dict):
        raise EnvelopeError("undecodable", "missing 'source' block")
    row = event.get("before" if op == "d" else "after")
    if not isinstance(row, dict):
        which = "before" if op == "d" else "after"
        raise EnvelopeError("undecodable", f"operation {op!r} without a '{which}' row image")
    try:
        lsn = _position(source, op)
    except BinlogPositionError as exc:
        raise EnvelopeError("undecodable", str(exc)) from None
    ts_ms = source.get("ts_ms")
    if lsn is None or not isinstance(ts_ms, int):
        raise EnvelopeError("undecodable", "source block lacks an LSN ('lsn' or 'sequence') or an integer 'ts_ms'")
    return Change(op=op, row=row, lsn=lsn, source_ts_ms=ts_ms,
                  schema=str(source.get("schema", source.get("db", ""))),  # MariaDB: the database
                  table=str(source.get("table", "")))
