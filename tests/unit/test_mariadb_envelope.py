"""MariaDB change events decode like PostgreSQL's (schemas/envelope.py): the database is the
schema, and the binlog coordinate is not needed for ordering (streams/versions.py)."""
from __future__ import annotations

import json

import pytest

from schemas.envelope import EnvelopeError, decode


def source(**extra) -> dict:
    return {"version": "3.0.1.Final", "connector": "mariadb", "name": "qoima.raw.shop", "ts_ms": 1_700_000_000_000,
            "snapshot": "false", "db": "shop", "sequence": None, "table": "customers", "server_id": 1,
            "gtid": "0-1-42", "file": "mariadb-bin.000003", "pos": 1081, "row": 0, "thread": 7, "query": None,
            **extra}


def event(op: str = "c", **extra) -> bytes:
    row = {"id": 1, "name": "x"}
    return json.dumps({"before": row if op in ("u", "d") else None, "after": None if op == "d" else row,
                       "source": source(**extra), "op": op, "ts_ms": 1_700_000_000_100}).encode()


def test_a_mariadb_event_decodes() -> None:
    change = decode(event("u"))
    assert (change.op, change.schema, change.table, change.source_ts_ms) == ("u", "shop", "customers", 1_700_000_000_000)
    assert change.row == {"id": 1, "name": "x"}


def test_a_mariadb_delete_keeps_its_before_image() -> None:
    change = decode(event("d"))
    assert change.is_delete and change.row == {"id": 1, "name": "x"}


def test_postgresql_events_name_their_schema() -> None:
    pg = {"before": None, "after": {"id": 1}, "op": "c",
          "source": {"connector": "postgresql", "lsn": 24_023_128, "ts_ms": 1, "schema": "social", "table": "t"}}
    assert decode(json.dumps(pg).encode()).schema == "social"


@pytest.mark.parametrize("ts_ms", [None, "1700000000000", True, 1.5])
def test_a_source_block_without_an_integer_commit_time_is_undecodable(ts_ms) -> None:
    with pytest.raises(EnvelopeError) as info:
        decode(event("c", ts_ms=ts_ms))
    assert info.value.kind == "undecodable" and "ts_ms" in str(info.value)
