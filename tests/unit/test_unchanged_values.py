"""Unchanged large values (TOAST under REPLICA IDENTITY DEFAULT, issue 13 item 1): the processor
never reads Debezium's placeholder as a value and names the column in `_unchanged`; the sink fills
it from the row's latest version. The e2e test with the real stack is
tests/e2e/test_unchanged_values.py; the placeholders here are the ones observed there.
"""
from __future__ import annotations

import json

import pytest

from sinks import unchanged as sink_fill
from streams.unchanged import PLACEHOLDER, UnchangedColumns, is_placeholder
from tests.unit.test_router import envelope

TOPIC = "qoima.raw.demo.social.appeals"
AS_BYTES = [95, 95, 100, 101, 98, 101, 122, 105, 117, 109, 95, 117, 110, 97, 118, 97, 105, 108, 97, 98, 108, 101,
            95, 118, 97, 108, 117, 101]   # '__debezium_unavailable_value' as an integer array, as Debezium sent it


def appeal(**overrides) -> dict:
    row = {"appeal_id": 7, "applicant": "Нұрлан Әлібеков", "body": "Прошу пересмотреть, ИИН 900101300126",
           "address": "г. Алматы, ул. Абая 1", "attachment": '{"pages": 3}', "tags": ["pension"],
           "pages": [1, 2, 3], "status": "open", "updated_at": "2026-11-23T10:00:00Z"}
    row.update(overrides)
    return row


@pytest.mark.parametrize(("value", "expected"), [
    (PLACEHOLDER, True), ([PLACEHOLDER], True), (AS_BYTES, True),
    ("__debezium_unavailable_value ", False), ([PLACEHOLDER, "x"], False), (AS_BYTES[:-1], False),
    (None, False), ("", False), (28, False),
])
def test_the_placeholder_in_each_spelling(value, expected: bool) -> None:
    assert is_placeholder(value) is expected
    assert PLACEHOLDER == "__debezium_unavailable_value"
    assert AS_BYTES == list(PLACEHOLDER.encode())


def test_only_updates_and_only_variable_length_columns(demo) -> None:
    columns = UnchangedColumns(demo.table("social.appeals"))
    assert columns.columns == ("applicant", "body", "address", "attachment", "tags", "pages", "status")
    row = appeal(body=PLACEHOLDER, tags=[PLACEHOLDER], pages=AS_BYTES)
    assert columns.of("u", row) == {"body", "tags", "pages"}
    assert columns.of("c", row) == frozenset()   # an insert sends every value
    assert columns.of("r", row) == frozenset()


def test_the_placeholder_is_never_loaded_or_hashed(router, codec) -> None:
    row = appeal(applicant=PLACEHOLDER, body=PLACEHOLDER, address=PLACEHOLDER, attachment=PLACEHOLDER,
                 tags=[PLACEHOLDER], pages=AS_BYTES)
    out = router.route(TOPIC, 0, 5, envelope("u", row, table="social.appeals"))
    assert out.outcome == "clean"
    _, record = codec.decode(out.value)
    assert record["_unchanged"] == ["address_region", "applicant_hash", "attachment", "body_redacted", "pages", "tags"]
    for name in record["_unchanged"]:
        assert record[name] is None
    assert record["status"] == "open"
    assert record["_defects"] == []   # unchanged is not a defect
    assert PLACEHOLDER not in json.dumps(record, default=str)


def test_an_update_with_every_value_is_loaded_whole(router, codec) -> None:
    out = router.route(TOPIC, 0, 6, envelope("u", appeal(), table="social.appeals"))
    _, record = codec.decode(out.value)
    assert record["_unchanged"] == []
    assert record["body_redacted"] == "Прошу пересмотреть, ИИН [IIN]"
    assert record["address_region"] == "75"


# --- the sink's fill -----------------------------------------------------------------------------

FIELDS = ["appeal_id", "body", "tags", "_version", "_defects"]


def _rows(*rows: tuple) -> list[list]:
    return [list(row) for row in rows]


def test_filled_from_an_earlier_row_of_the_batch_then_from_the_warehouse() -> None:
    rows = _rows((1, "long text v1", ["a"], 10, []),
                 (1, None, ["b"], 11, []),            # body unchanged: from the row above
                 (1, None, None, 12, []),             # both unchanged: from the row above, filled itself
                 (2, None, ["c"], 13, []))            # body unchanged, key 2 not in the batch before
    asked = []

    def latest(database, table, keys, columns, wanted, before):
        asked.append((database, table, keys, columns, wanted, before))
        return {(2,): ("text of 2",)} if table == "t" else {}

    lost = sink_fill.fill(rows, FIELDS, ["appeal_id"], {1: ["body"], 2: ["body", "tags"], 3: ["body"]},
                          [("udw", "t"), ("qoima_meta", "held")], latest)
    assert lost == 0
    assert rows[1][1:3] == ["long text v1", ["b"]]
    assert rows[2][1:3] == ["long text v1", ["b"]]
    assert rows[3][1:3] == ["text of 2", ["c"]]
    # Only key 2 needed the warehouse, below the batch's first version; found in the first table.
    assert asked == [("udw", "t", ["appeal_id"], ["body"], [(2,)], 10)]


def test_the_twin_table_is_asked_for_what_the_first_lacks() -> None:
    rows = _rows((5, None, ["x"], 20, []))

    def latest(database, table, keys, columns, wanted, before):
        return {(5,): ("held text",)} if table == "held" else {}

    assert sink_fill.fill(rows, FIELDS, ["appeal_id"], {0: ["body"]}, [("udw", "t"), ("qoima_meta", "held")],
                          latest) == 0
    assert rows[0][1] == "held text"


def test_a_value_found_nowhere_stays_empty_with_a_defect() -> None:
    rows = _rows((9, None, ["x"], 30, ["status: something"]))
    lost = sink_fill.fill(rows, FIELDS, ["appeal_id"], {0: ["body"]}, [("udw", "t")], lambda *a: {})
    assert lost == 1
    assert rows[0][1] is None
    assert rows[0][4] == ["status: something", f"body: {sink_fill.NOT_FOUND}"]
