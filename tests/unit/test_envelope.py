"""Debezium events are read with orjson, and what orjson refuses with the standard library, so
that no event decodes differently from before (schemas/envelope.py); row keys are the same
text as `json.dumps` gives."""
from __future__ import annotations

import math

import pytest

from schemas.envelope import EnvelopeError, decode, key_json

_SOURCE = b'"source": {"ts_ms": 1700000000000, "schema": "s", "table": "t"}'


def _event(after: bytes) -> bytes:
    return b'{"op": "c", "before": null, "after": ' + after + b", " + _SOURCE + b"}"


def test_an_ordinary_event_decodes() -> None:
    change = decode(_event(b'{"id": 7, "name": "\xd0\x90\xd0\xb9\xd0\xb3\xd2\xaf\xd0\xbb", "amount": "12.50"}'))
    assert (change.op, change.schema, change.table, change.source_ts_ms) == ("c", "s", "t", 1_700_000_000_000)
    assert change.row == {"id": 7, "name": "Айгүл", "amount": "12.50"}


@pytest.mark.parametrize("after, column, check", [
    (b'{"v": NaN}', "v", math.isnan),                                     # orjson refuses NaN
    (b'{"v": -Infinity}', "v", lambda v: v == float("-inf")),
    (b'{"v": 123456789012345678901234567890}', "v", lambda v: v == 123456789012345678901234567890),
    (b'{"v": "a\\ud800b"}', "v", lambda v: v == "a\ud800b"),             # a lone surrogate
    (b'{"v": [1, 18446744073709551617]}', "v", lambda v: v == [1, 18446744073709551617]),  # in an array
    (b'{"v": 1.5, "w": 123456789012345678901234567890}', "w", lambda v: v == 123456789012345678901234567890),
    (b'{"g": {"v": 123456789012345678901234567890}}', "g", lambda v: v == {"v": 123456789012345678901234567890}),
])
def test_what_orjson_refuses_is_read_as_the_standard_library_reads_it(after, column, check) -> None:
    assert check(decode(_event(after)).row[column])


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe{}", b'{"op": "c"'])
def test_what_neither_reads_is_undecodable_without_quoting_it(payload) -> None:
    with pytest.raises(EnvelopeError) as caught:
        decode(payload)
    assert caught.value.kind == "undecodable" and "not JSON" in str(caught.value)


@pytest.mark.parametrize("values, text", [
    ([1], "[1]"),
    ([12, -3], "[12, -3]"),
    ([True], "[true]"),                       # a bool is not an integer here
    (["Ab"], '["Ab"]'),
    (["Ә"], '["\\u04d8"]'),                  # escaped, as json.dumps escapes it
    ([None, 1.5], "[null, 1.5]"),
])
def test_a_row_key_is_the_text_json_dumps_gives(values, text) -> None:
    assert key_json(values, str) == text
