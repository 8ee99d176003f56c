"""The sink's read of already-loaded versions goes in slices small enough for ClickHouse's
max_query_size (sinks/clickhouse_sink.py `_slices`): a batch of 50,000 suspects in one IN list
was refused, and the sink retried that read forever (seen with two processor workers in a load)."""
from __future__ import annotations

from sinks.clickhouse_sink import _SUSPECTS_QUERY_BYTES, _slices

CDC_BASE = 1 << 62
LIMIT = 256 * 1024   # ClickHouse's default max_query_size, in bytes


def _literal(value) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def _sql_bytes(pairs: list[tuple]) -> int:
    """The IN list as the driver spells it: (key, version) tuples separated by ', '."""
    return len(", ".join("(" + ", ".join(_literal(v) for v in pair) + ")" for pair in pairs).encode())


def test_fifty_thousand_suspects_go_in_slices_under_the_limit_and_none_is_lost() -> None:
    pairs = [(person_id, CDC_BASE + 4_869_300 + person_id) for person_id in range(1, 50_001)]
    assert _sql_bytes(pairs) > LIMIT          # what the one query spelled
    slices = _slices(pairs, _SUSPECTS_QUERY_BYTES)
    assert len(slices) > 1 and [pair for part in slices for pair in part] == pairs
    assert all(_sql_bytes(part) < LIMIT for part in slices)


def test_keys_of_quotes_and_of_wide_characters_stay_under_the_limit() -> None:
    for text in ("'" * 1000, "қ" * 1000, "\U0001f600" * 1000):   # escaped to two bytes; two; four
        pairs = [(f"{text}{i}", CDC_BASE + i) for i in range(400)]
        slices = _slices(pairs, _SUSPECTS_QUERY_BYTES)
        assert [pair for part in slices for pair in part] == pairs
        assert all(_sql_bytes(part) < LIMIT for part in slices), text[:1]


def test_one_pair_always_makes_a_slice_and_nothing_makes_none() -> None:
    assert _slices([("y" * 300_000, 1)], _SUSPECTS_QUERY_BYTES) == [[("y" * 300_000, 1)]]
    assert _slices([], _SUSPECTS_QUERY_BYTES) == []
