"""Debezium change events (JSON converter, schemas disabled) decoded into a typed change.

The source's own position (PostgreSQL LSN, MariaDB binlog coordinate) is not read: `_version`
comes from the raw event's offset, which follows commit order (streams/versions.py)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import orjson

OPS = {"r", "c", "u", "d", "t", "m"}


class EnvelopeError(ValueError):
    """The event is not a Debezium change envelope; the message never quotes its values."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Change:
    op: str                      # r (snapshot read), c, u, d, t (truncate)
    row: dict[str, Any]          # `after` for r/c/u, `before` for d, empty for t
    source_ts_ms: int            # commit time at the source
    schema: str
    table: str

    @property
    def is_delete(self) -> bool:
        return self.op == "d"


def _strict_fallback(value: bytes) -> Any:
    """What orjson refuses and the standard library reads (NaN and Infinity, integers beyond 64
    bits, lone surrogates): read as before orjson came, so no event decodes differently."""
    try:
        return json.loads(value)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("undecodable", f"not JSON ({type(exc).__name__} at byte {getattr(exc, 'pos', '?')})") from None


def decode(value: bytes | None) -> Change | None:
    """None for a tombstone (Kafka compaction marker that follows a delete)."""
    if value is None:
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        event = _strict_fallback(value)
    if not isinstance(event, dict):
        raise EnvelopeError("undecodable", f"expected a JSON object, got {type(event).__name__}")
    if "payload" in event and "schema" in event:
        event = event["payload"]  # tolerate a converter left with schemas enabled
    op = event.get("op")
    if op not in OPS:
        raise EnvelopeError("undecodable", "missing or unknown 'op' field")
    if op == "m":
        raise EnvelopeError("unexpected_op", "a logical decoding message ('m') is not a row change; it is not loaded")
    source = event.get("source")
    if not isinstance(source, dict):
        raise EnvelopeError("undecodable", "missing 'source' block")
    row = {} if op == "t" else event.get("before" if op == "d" else "after")
    if not isinstance(row, dict):
        which = "before" if op == "d" else "after"
        raise EnvelopeError("undecodable", f"operation {op!r} without a '{which}' row image")
    ts_ms = source.get("ts_ms")
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int):
        raise EnvelopeError("undecodable", "source block lacks an integer 'ts_ms'")
    return Change(op=op, row=row, source_ts_ms=ts_ms,
                  schema=str(source.get("schema", source.get("db", ""))),  # MariaDB: the database
                  table=str(source.get("table", "")))


def key_json(values: list[Any], default: Callable[[Any], Any]) -> str:
    """`json.dumps(values, default=default)`, the text of a row key (clean record keys, claim
    digests): the same text, made without the encoder for the usual all-integer key."""
    if all(value.__class__ is int for value in values):
        return "[" + ", ".join(map(str, values)) + "]"
    return json.dumps(values, default=default)
