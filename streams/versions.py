"""`_version`: the order in which Debezium emitted a row's changes, taken from the raw topic.

`ReplacingMergeTree(_version, _is_deleted)` keeps, for each key, the row with the highest
`_version`, so `_version` must grow in the order the source's changes took effect. A change's
own LSN does not: PostgreSQL writes a change's WAL record when the statement runs and decodes
the transaction at its commit, so a transaction that began before an incremental snapshot's
chunk SELECT and committed after its closing watermark carries LSNs below the chunk's read
events and lost to them (seed 142268 of the torture suite: deleted payments came back).

Debezium emits every change in commit order, and an incremental-snapshot chunk at its closing
watermark, in its place in that order; Kafka Connect's producer keeps that order in each
partition (idempotent, acks=all: infra/local/connect-distributed.properties), and a key always
hashes to the same partition. So the raw
event's offset orders every image of a row exactly as its source committed them, for every
connector (PostgreSQL, MariaDB, the marker poller) and for initial and incremental snapshots
alike. A connector restart re-emits events already sent; the re-emitted copies land at higher
offsets but carry the same images in the same order, so the last image still wins.

`CDC_BASE` (2^62) lifts these versions above every version the warehouse held before this
scheme: PostgreSQL LSNs, marker timestamps in microseconds, history rows' 0. A running
warehouse therefore switches over without a migration: the first change after the upgrade
wins over the row loaded before it, as it should. Two things would break the order and are
documented (docs/design.md, "Versions"): deleting and recreating a raw topic (offsets restart;
reload its tables) and adding partitions to a raw topic (a key may move partition).
"""
from __future__ import annotations

CDC_BASE = 1 << 62
_MAX_OFFSET = (1 << 63) - 1 - CDC_BASE  # Avro long and the UInt64 column both hold the sum


def raw_event_version(offset: int) -> int:
    """The `_version` of the change read at `offset` of its raw topic partition."""
    if offset < 0 or offset > _MAX_OFFSET:
        raise ValueError(f"raw offset {offset} outside 0..{_MAX_OFFSET}")
    return CDC_BASE + offset
