"""Unchanged large values on the real stack (issue 13 item 1): social.appeals runs under REPLICA
IDENTITY DEFAULT, and its applicant (hashed), body (redacted), address (generalized), attachment,
tags and pages (kept) are incompressible values above 8 kB, stored out of line. An UPDATE of
another column makes Debezium send its placeholder for each (streams/unchanged.py); the warehouse
must keep every one of them as it was, through a second update, until a change of one of them,
and the delete after it. Every version loaded (the corrections history) holds the values too.
"""
from __future__ import annotations

import json
import random
import string

import pytest

from streams.unchanged import PLACEHOLDER
from tests.e2e.warehouse import poll_until, sink_metric

TABLE = "udw.demo__social__appeals"
HISTORY = "udw.demo__social__appeals__history"
LARGE = ("applicant_hash", "body_redacted", "address_region", "attachment", "tags", "pages")
APPEAL = 9001
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщыэюяәғқңөұүһі"


def _incompressible(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _version_and_values(ch, appeal_id: int) -> tuple[int, tuple] | None:
    rows = ch.query(f"SELECT _version, _is_deleted, status, {', '.join(LARGE)} FROM {TABLE} FINAL "
                    "WHERE appeal_id = {id:Int64}", parameters={"id": appeal_id}).result_rows
    return (rows[0][0], rows[0][1:]) if rows else None


def _newer_than(ch, version: int):
    def probe():
        found = _version_and_values(ch, APPEAL)
        return found if found and found[0] > version else None
    return probe


@pytest.fixture(scope="module")
def loaded(pg, ch):
    rng = random.Random(13)
    with pg.transaction():
        assert pg.execute("SELECT relreplident FROM pg_class WHERE oid = 'social.appeals'::regclass").fetchone()[0] == "d"
        pg.execute("DELETE FROM social.appeals WHERE appeal_id = %s", (APPEAL,))
        pg.execute(
            "INSERT INTO social.appeals (appeal_id, applicant, body, address, attachment, tags, pages, status) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'open')",
            (APPEAL, _incompressible(rng, CYRILLIC, 9000),
             _incompressible(rng, string.ascii_letters, 9000) + " ИИН 900101300126 " + _incompressible(rng, string.ascii_letters, 200),
             "г. Алматы, " + _incompressible(rng, string.ascii_letters, 9000),
             json.dumps({"scan": _incompressible(rng, string.ascii_letters + string.digits, 12000)}),
             [_incompressible(rng, string.ascii_letters, 9000)],
             [rng.randrange(1 << 31) for _ in range(4000)]))
        # Out of line, not inline: what makes the UPDATE below leave them out of the WAL.
        stored = pg.execute("SELECT pg_column_size(body), pg_column_size(pages) FROM social.appeals "
                            "WHERE appeal_id = %s", (APPEAL,)).fetchone()
        assert min(stored) > 8000, stored
    first = poll_until(_newer_than(ch, -1), 90, "the appeal's insert in the warehouse")
    return first


def _sink_filled(stack) -> float:
    return sink_metric(stack, "qoima_sink_unchanged_filled_total", "social.appeals")


def test_an_update_of_another_column_keeps_every_large_value(stack, pg, ch, loaded):
    version, (deleted, status, *large) = loaded
    assert (deleted, status) == (0, "open")
    assert all(value not in (None, [], "") for value in large), large
    body = large[LARGE.index("body_redacted")]
    assert "[IIN]" in body and "900101300126" not in body and len(body) > 9000
    assert large[LARGE.index("address_region")] == "75"   # Almaty, from the long address
    filled_before = _sink_filled(stack)

    pg.execute("UPDATE social.appeals SET status = 'in review', updated_at = now() WHERE appeal_id = %s", (APPEAL,))
    version2, (deleted, status, *after) = poll_until(_newer_than(ch, version), 60, "the first update")
    assert (deleted, status) == (0, "in review")
    assert after == large
    assert _sink_filled(stack) >= filled_before + len(LARGE)   # the sink filled them, they were not sent

    pg.execute("UPDATE social.appeals SET status = 'answered', updated_at = now() WHERE appeal_id = %s", (APPEAL,))
    version3, (deleted, status, *after) = poll_until(_newer_than(ch, version2), 60, "the second update")
    assert (deleted, status) == (0, "answered")
    assert after == large

    # Every version loaded holds the values (the history keeps them all, merged or not).
    versions = ch.query(f"SELECT _version, {', '.join(LARGE)} FROM {HISTORY} WHERE appeal_id = {{id:Int64}} "
                        "ORDER BY _version", parameters={"id": APPEAL}).result_rows
    assert [row[0] for row in versions] == [version, version2, version3]
    assert all(list(row[1:]) == large for row in versions)
    text = json.dumps(versions, default=str, ensure_ascii=False)
    assert PLACEHOLDER not in text

    # A change of one large value replaces that one only; the delete after it removes the row.
    pg.execute("UPDATE social.appeals SET body = 'ответ получен', updated_at = now() WHERE appeal_id = %s", (APPEAL,))
    version4, (deleted, status, *after) = poll_until(_newer_than(ch, version3), 60, "the update of the body")
    expected = list(large)
    expected[LARGE.index("body_redacted")] = "ответ получен"
    assert after == expected
    pg.execute("DELETE FROM social.appeals WHERE appeal_id = %s", (APPEAL,))
    # FINAL hides a deleted row (ReplacingMergeTree's is_deleted); the history shows the delete.
    poll_until(lambda: _version_and_values(ch, APPEAL) is None, 60, "the delete")
    last = ch.query(f"SELECT _version, _is_deleted FROM {HISTORY} WHERE appeal_id = {{id:Int64}} ORDER BY _version DESC "
                    "LIMIT 1", parameters={"id": APPEAL}).result_rows[0]
    assert last[0] > version4 and last[1] == 1
