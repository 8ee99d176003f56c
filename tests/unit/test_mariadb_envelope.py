"""MariaDB change events (streams/envelope.py, streams/binlog_position.py): the binlog position
becomes a `_version` that orders every change of a row, snapshot reads losing to later changes."""
from __future__ import annotations

import json

import pytest

from streams.binlog_position import BinlogPositionError, binlog_version
from streams.envelope import EnvelopeError, decode


def source(file: str = "mariadb-bin.000003", pos: int = 1081, row: int = 0, snapshot: str = "false",
           **extra) -> dict:
    return {"version": "3.0.1.Final", "connector": "mariadb", "name": "qoima.raw.shop", "ts_ms": 1_700_000_000_000,
            "snapshot": snapshot, "db": "shop", "sequence": None, "table": "customers", "server_id": 1,
            "gtid": "0-1-42", "file": file, "pos": pos, "row": row, "thread": 7, "query": None, **extra}


def event(op: str = "c", **position) -> bytes:
    row = {"id": 1, "name": "x"}
    return json.dumps({"before": row if op in ("u", "d") else None, "after": None if op == "d" else row,
                       "source": source(snapshot="true" if op == "r" else "false", **position), "op": op,
                       "ts_ms": 1_700_000_000_100}).encode()


def version(op: str = "c", **position) -> int:
    return decode(event(op, **position)).lsn


def test_a_mariadb_event_decodes() -> None:
    change = decode(event("u"))
    assert (change.op, change.schema, change.table, change.source_ts_ms) == ("u", "shop", "customers", 1_700_000_000_000)
    assert change.row == {"id": 1, "name": "x"}
    assert change.lsn == version("u", file="mariadb-bin.000003", pos=1081, row=0)


def test_versions_follow_the_binlog_across_files_positions_and_rows() -> None:
    ordered = [
        version(file="mariadb-bin.000001", pos=4),
        version(file="mariadb-bin.000001", pos=4, row=1),
        version(file="mariadb-bin.000001", pos=4, row=8190),
        version(file="mariadb-bin.000001", pos=5),
        version(file="mariadb-bin.000001", pos=(1 << 32) - 1, row=8190),
        version(file="mariadb-bin.000002", pos=4),
        version(file="mariadb-bin.000010", pos=4),     # compared as numbers, not as names
        version(file="mariadb-bin.099999", pos=4),
        version(file="mariadb-bin.262143", pos=(1 << 32) - 1, row=8190),
    ]
    ordered.sort(key=lambda v: v)  # sorting must not reorder them
    assert ordered == sorted(set(ordered)) and len(set(ordered)) == 9
    assert ordered[:2] == [version(file="mariadb-bin.000001", pos=4), version(file="mariadb-bin.000001", pos=4, row=1)]
    assert 0 < ordered[-1] < 1 << 63  # an Avro long and ClickHouse's UInt64 hold it


def test_versions_increase_in_the_order_events_are_written() -> None:
    positions = [("mariadb-bin.000009", pos, row) for pos in (4, 260, 900) for row in range(3)]
    positions += [("mariadb-bin.000010", pos, 0) for pos in (4, 256)]
    versions = [version(file=f, pos=p, row=r) for f, p, r in positions]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)


def test_a_snapshot_read_loses_to_a_change_at_the_same_position() -> None:
    # The initial snapshot's reads carry the position the stream resumes from; the first streamed
    # event may start exactly there.
    read = version("r", file="mariadb-bin.000003", pos=1081, row=0)
    assert read < version("u", file="mariadb-bin.000003", pos=1081, row=0)
    assert read < version("d", file="mariadb-bin.000003", pos=1081, row=0)
    # ...and wins over everything it already reflects
    assert read > version("u", file="mariadb-bin.000003", pos=1080, row=8190)
    assert read > version("c", file="mariadb-bin.000002", pos=5000)


def test_a_snapshot_reads_row_number_does_not_matter() -> None:
    assert version("r", row=0) == version("r", row=17)


def test_postgresql_events_keep_their_lsn() -> None:
    pg = {"before": None, "after": {"id": 1}, "op": "c",
          "source": {"connector": "postgresql", "lsn": 24_023_128, "ts_ms": 1, "schema": "social", "table": "t"}}
    change = decode(json.dumps(pg).encode())
    assert (change.lsn, change.schema) == (24_023_128, "social")


@pytest.mark.parametrize("position, problem", [
    ({"file": "binlog"}, "'file' is not a binlog file name"),
    ({"file": None}, "'file' is not a binlog file name"),
    ({"pos": -1}, "'pos' is not a non-negative integer"),
    ({"pos": "1081"}, "'pos' is not a non-negative integer"),
    ({"row": True}, "'row' is not a non-negative integer"),
    ({"pos": 0}, "binlog_legacy_event_pos"),
    ({"pos": 1 << 32}, "beyond 4 GiB"),
    ({"row": 8191}, "binlog_row_event_max_size"),
    ({"file": "mariadb-bin.262144"}, "RESET MASTER"),
])
def test_unorderable_positions_are_undecodable(position, problem) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode(event("c", **position))
    assert info.value.kind == "undecodable" and problem in str(info.value)


def test_binlog_version_layout() -> None:
    assert binlog_version(source(file="b.000001", pos=4, row=0), snapshot_read=False) == ((1 << 32 | 4) << 13) | 1
    assert binlog_version(source(file="b.000001", pos=4, row=5), snapshot_read=True) == (1 << 32 | 4) << 13
    with pytest.raises(BinlogPositionError):
        binlog_version({"file": "b.000001"}, snapshot_read=True)
