"""Uniqueness, integrity and timeliness rules over a stream, with dicts as their state."""
from __future__ import annotations

import json

import pytest

from streams.envelope import Change
from streams.stateful_rules import StatefulRules

IIN_A, IIN_B = "900101300126", "850101300124"


@pytest.fixture()
def state() -> dict:
    return {"values": {}, "owners": {}, "references": {}, "pending": {}}


@pytest.fixture()
def rules(demo, state) -> StatefulRules:
    return StatefulRules([demo], b"k" * 32, **state)


def _person(demo, op: str, person_id: int, iin: str | None, ts: int = 1_000) -> tuple:
    row = {"person_id": person_id} if op == "d" else {"person_id": person_id, "iin": iin}
    return demo.table("population.persons"), Change(op, row, 10 + person_id, ts, "population", "persons")


def _payment(demo, payment_id: int, iin: str, ts: int = 1_000) -> tuple:
    row = {"payment_id": payment_id, "person_iin": iin}
    return demo.table("social.payments"), Change("c", row, 100 + payment_id, ts, "social", "payments")


def test_a_repeated_identifier_is_a_violation_and_an_update_frees_the_old_value(demo, rules) -> None:
    assert rules.observe(*_person(demo, "c", 1, IIN_A), now_ms=1_000) == []
    assert rules.observe(*_person(demo, "u", 1, IIN_A), now_ms=1_000) == []      # same row again: fine
    (violation,) = rules.observe(*_person(demo, "c", 2, IIN_A), now_ms=1_000)
    assert (violation.rule, violation.kind, violation.action) == ("iin_unique", "uniqueness", "flag")
    assert IIN_A not in violation.problem
    rules.observe(*_person(demo, "u", 1, IIN_B), now_ms=1_000)                    # row 1 moves to B
    assert rules.observe(*_person(demo, "c", 3, " 9001-0130-0126 "), now_ms=1_000)  # row 2 still holds A
    rules.observe(*_person(demo, "d", 2, None), now_ms=1_000)
    rules.observe(*_person(demo, "d", 3, None), now_ms=1_000)
    assert rules.observe(*_person(demo, "c", 4, IIN_A), now_ms=1_000) == []      # A is free again


def test_state_holds_digests_and_row_keys_only(demo, rules, state) -> None:
    rules.observe(*_person(demo, "c", 1, IIN_A), now_ms=1_000)
    rules.observe(*_payment(demo, 7, IIN_B), now_ms=1_000)
    assert IIN_A not in json.dumps(state) and IIN_B not in json.dumps(state)


def test_state_survives_a_new_instance(demo, rules, state) -> None:
    """What the processor's Faust tables give it across restarts: the same mappings."""
    rules.observe(*_person(demo, "c", 1, IIN_A), now_ms=1_000)
    again = StatefulRules([demo], b"k" * 32, **state)
    assert [v.rule for v in again.observe(*_person(demo, "c", 2, IIN_A), now_ms=1_000)] == ["iin_unique"]


def test_a_missing_reference_is_reported_after_its_grace_period_only(demo, rules) -> None:
    rules.observe(*_payment(demo, 1, IIN_A), now_ms=1_000)       # the person arrives later
    rules.observe(*_payment(demo, 2, IIN_B), now_ms=1_000)       # this person never does
    assert rules.expire(now_ms=5_000) == []                      # grace is 10 s
    rules.observe(*_person(demo, "c", 1, IIN_A), now_ms=6_000)
    expired = rules.expire(now_ms=11_001)
    assert [(t.name, v.rule, v.kind) for _, t, v in expired] == [("social.payments", "person_exists", "integrity")]
    assert IIN_B not in expired[0][2].problem
    assert rules.expire(now_ms=20_000) == []                     # reported once


def test_timeliness_uses_the_source_commit_time(demo, rules) -> None:
    table, change = _payment(demo, 3, IIN_A, ts=1_000)
    rules.observe(*_person(demo, "c", 9, IIN_A), now_ms=1_000)
    assert rules.observe(table, change, now_ms=60_000) == []
    (late,) = rules.observe(table, change, now_ms=62_000)
    assert (late.rule, late.kind) == ("loaded_in_time", "timeliness")
