"""The sink's read of already-loaded versions goes in slices small enough for ClickHouse's
max_query_size (sinks/clickhouse_sink.py `_slices`): a batch of 50,000 suspects in one IN list
was refused, and the sink retried that read forever (seen with two processor workers in a load)."""
from __future__ import annotations

from sinks.clickhouse_sink import _SUSPECTS_QUERY_CHARS, _slices

CDC_BASE = 1 << 62


def _sql_size(pairs: list[tuple]) -> int:
    """The IN list as ClickHouse reads it: (key, version) tuples, comma-separated."""
    return len(",".join("(" + ",".join(repr(v) for v in pair) + ")" for pair in pairs))


def test_fifty_thousand_suspects_go_in_slices_under_the_limit_and_none_is_lost() -> None:
    pairs = [(person_id, CDC_BASE + 4_869_300 + person_id) for person_id in range(1, 50_001)]
    assert _sql_size(pairs) > 256 * 1024          # what the one query spelled
    slices = _slices(pairs, _SUSPECTS_QUERY_CHARS)
    assert len(slices) > 1 and [pair for part in slices for pair in part] == pairs
    assert all(_sql_size(part) < 256 * 1024 for part in slices)


def test_long_text_keys_make_smaller_slices_and_one_pair_always_fits_a_slice() -> None:
    pairs = [("x" * 40_000 + str(i), CDC_BASE + i) for i in range(10)]
    slices = _slices(pairs, _SUSPECTS_QUERY_CHARS)
    assert [len(part) for part in slices] == [3, 3, 3, 1]
    assert _slices([("y" * 300_000, 1)], _SUSPECTS_QUERY_CHARS) == [[("y" * 300_000, 1)]]
    assert _slices([], _SUSPECTS_QUERY_CHARS) == []
