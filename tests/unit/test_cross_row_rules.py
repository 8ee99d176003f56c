"""Uniqueness, integrity, consistency against a reference table and timeliness rules over a
stream, with dicts as their state: streams/cross_row's two steps, wired by tests/unit/cross_row_harness.py."""
from __future__ import annotations

import json

import pytest

from model.rules import parse_rule
from schemas.avro_codec import codec_for
from schemas.envelope import Change
from streams.cross_row.claims import forget_claim
from streams.cross_row.plan import CrossRowPlan
from streams.router import Router
from tests.unit.cross_row_harness import CrossRow

IIN_A, IIN_B = "900101300126", "850101300124"
ALMATY, ASTANA = "751110000", "711110000"
REGION_RULE = "region_agrees_with_register"


@pytest.fixture()
def state() -> dict:
    return {"values": {}, "owners": {}, "references": {}, "pending": {}}


@pytest.fixture()
def rules(demo, state) -> CrossRow:
    return CrossRow([demo], b"k" * 32, state)


def _person(demo, op: str, person_id: int, iin: str | None, ts: int = 1_000) -> tuple:
    row = {"person_id": person_id} if op == "d" else {"person_id": person_id, "iin": iin}
    return demo.table("population.persons"), Change(op, row, ts, "population", "persons")


def _payment(demo, payment_id: int, iin: str, ts: int = 1_000) -> tuple:
    row = {"payment_id": payment_id, "person_iin": iin}
    return demo.table("social.payments"), Change("c", row, ts, "social", "payments")


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
    """What the processor's state stores give it across restarts (restored from their changelog): the same mappings."""
    rules.observe(*_person(demo, "c", 1, IIN_A), now_ms=1_000)
    again = CrossRow([demo], b"k" * 32, state)
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


# --- consistency against a reference table (demo: region_agrees_with_register) ----------------


def _registered(demo, op: str, person_id: int, iin: str | None, kato: str | None, ts: int = 1_000) -> tuple:
    row = {"person_id": person_id} if op == "d" else {"person_id": person_id, "iin": iin, "kato_code": kato}
    return demo.table("population.persons"), Change(op, row, ts, "population", "persons")


def _paid(demo, payment_id: int, iin: str, kato: str | None, op: str = "c") -> tuple:
    row = {"payment_id": payment_id} if op == "d" else {"payment_id": payment_id, "person_iin": iin, "kato_code": kato}
    return demo.table("social.payments"), Change(op, row, 1_000, "social", "payments")


def _regional(violations) -> list:
    return [v for v in violations if v.rule == REGION_RULE]


def _late(rules, now_ms: int) -> list:
    return [v for _, _, v in rules.expire(now_ms) if v.rule == REGION_RULE]


def test_a_payment_that_agrees_with_the_register_passes(demo, rules, state) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    assert _regional(rules.observe(*_paid(demo, 1, IIN_A, ALMATY), now_ms=1_000)) == []
    # Matched through the IIN's normalizer, compared after trimming: other spellings agree.
    assert _regional(rules.observe(*_paid(demo, 2, "9001-0130-0126", f" {ALMATY} "), now_ms=1_000)) == []
    assert state["pending"] == {} and _late(rules, 100_000) == []


def test_a_contradiction_is_a_violation_of_this_row_with_the_rules_action(demo, rules, state) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    (violation,) = _regional(rules.observe(*_paid(demo, 1, IIN_A, ASTANA), now_ms=1_000))
    assert (violation.kind, violation.incident_type, violation.action) == ("consistency", "consistency", "flag")
    assert violation.columns == ("kato_code",)
    assert violation.problem == ("kato_code: not as in population.persons (population.persons.kato_code) "
                                 f"(rule {REGION_RULE})")
    assert ALMATY not in violation.problem and ASTANA not in violation.problem and IIN_A not in violation.problem
    assert state["pending"] == {}
    # The payment corrected: its new version agrees.
    assert _regional(rules.observe(*_paid(demo, 1, IIN_A, ALMATY, op="u"), now_ms=2_000)) == []


def _with_region(demo, **update):
    """The demo regulation with region_agrees_with_register changed (and validated again)."""
    payments = demo.table("social.payments")
    rule = next(r for r in payments.rules if r.name == REGION_RULE)
    changed = parse_rule({**rule.model_dump(exclude_none=True), **update})
    rules = [changed if r is rule else r for r in payments.rules]
    tables = [payments.model_copy(update={"rules": rules}) if t is payments else t for t in demo.tables]
    return demo.model_copy(update={"tables": tables})


@pytest.mark.parametrize("action", ["hold", "reject"])
def test_a_cross_row_rule_reports_and_never_routes_a_row(demo, action) -> None:
    """Its verdict comes from other rows, possibly on other workers: an incident, not a route."""
    with pytest.raises(ValueError) as info:
        _with_region(demo, action=action)
    assert f"rule {REGION_RULE}: kind 'consistency' against a reference table compares rows" in str(info.value)
    assert f"cannot {action} a row. Use 'action: flag'" in str(info.value)
    with pytest.raises(ValueError, match="rule iin_unique: kind 'uniqueness' compares rows"):
        parse_rule({"name": "iin_unique", "kind": "uniqueness", "columns": ["iin"], "action": action})


def test_the_router_loads_the_contradicting_row_and_claims_its_values(demo, ring, state) -> None:
    plan = CrossRowPlan([demo], b"k" * 32)
    rules = CrossRow([demo], b"k" * 32, state)
    router = Router([demo], ring, codec_for([demo]), rules.claims)

    def event(table: str, after: dict) -> bytes:
        schema, name = table.split(".")
        return json.dumps({"op": "c", "before": None, "after": after,
                           "source": {"lsn": 5, "ts_ms": 1_705_314_600_000, "schema": schema, "table": name}}).encode()

    person = {"person_id": 1, "iin": IIN_A, "last_name": "A", "first_name": "B", "birth_date": 5479, "sex": "F",
              "kato_code": ALMATY, "status": "active", "updated_at": "2024-01-15T10:30:00Z"}
    payment = {"payment_id": 7, "person_iin": IIN_A, "org_bin": "071240500401", "payment_type": "pension",
               "amount": "100.00", "period": 19723, "status": "pending", "kato_code": ASTANA,
               "updated_at": "2024-01-20T04:00:00Z"}
    registered = router.route("qoima.raw.demo.population.persons", 0, 1, event("population.persons", person))
    assert rules.judge_claims(list(registered.claims)) == []
    out = router.route("qoima.raw.demo.social.payments", 0, 2, event("social.payments", payment), shard=3)
    assert out.outcome == "clean"  # loaded; its timeliness was judged on the row, 2024 is late
    assert "loaded_in_time" in [v.rule for v in out.violations]
    assert REGION_RULE not in [v.rule for v in out.violations]
    claimed = {message["k"] for _, message in out.claims}
    assert claimed == {"need", "check"} and all(m["pk"].startswith("3.") for _, m in out.claims)
    assert all(m["s"] == "[7]" for _, m in out.claims)  # the clean key: the incident's sample
    (violation,) = _regional(rules.judge_claims(list(out.claims)))
    assert violation.problem == f"kato_code: not as in population.persons (population.persons.kato_code) (rule {REGION_RULE})"
    assert plan.compares("social.payments")


def test_a_reference_row_arriving_later_is_judged_when_the_grace_period_ends(demo, rules, state) -> None:
    assert _regional(rules.observe(*_paid(demo, 1, IIN_A, ASTANA), now_ms=1_000)) == []   # contradicts, later
    assert _regional(rules.observe(*_paid(demo, 2, IIN_B, ALMATY), now_ms=1_000)) == []   # agrees, later
    assert _regional(rules.observe(*_paid(demo, 3, "551231300121", ALMATY), now_ms=1_000)) == []  # never comes
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=3_000)
    rules.observe(*_registered(demo, "c", 2, IIN_B, ALMATY), now_ms=3_000)
    assert _late(rules, 10_999) == []                                  # grace is 10 s
    (late,) = _late(rules, 11_000)
    # The row is loaded already: whatever the rule's action, what is left is the incident.
    assert (late.kind, late.incident_type, late.action, late.columns) == ("consistency", "consistency", "flag",
                                                                          ("kato_code",))
    assert late.problem == ("kato_code: not as in population.persons (population.persons.kato_code), whose row "
                            f"arrived after this one (rule {REGION_RULE})")
    assert _late(rules, 60_000) == []                                  # reported once
    assert not any(k.startswith(f"social.payments|{REGION_RULE}|") for k in state["pending"])


def test_a_deleted_reference_row_is_forgotten(demo, rules, state) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    # A delete's before image holds only the key (REPLICA IDENTITY DEFAULT).
    rules.observe(*_registered(demo, "d", 1, None, None), now_ms=2_000)
    assert _regional(rules.observe(*_paid(demo, 1, IIN_A, ASTANA), now_ms=2_000)) == []
    assert _late(rules, 100_000) == []        # a missing person is integrity's business
    assert not any(k.startswith(f"social.payments|{REGION_RULE}|") for k in state["references"] | state["owners"])


def test_a_reference_row_that_changes_its_match_frees_the_old_one(demo, rules) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    rules.observe(*_registered(demo, "u", 1, IIN_B, ASTANA), now_ms=1_000)   # IIN corrected, person moved
    assert _regional(rules.observe(*_paid(demo, 1, IIN_A, ASTANA), now_ms=1_000)) == []  # A is unknown now
    (violation,) = _regional(rules.observe(*_paid(demo, 2, IIN_B, ALMATY), now_ms=1_000))
    assert violation.columns == ("kato_code",)


def test_a_duplicate_reference_row_outlives_the_deletion_of_the_other(demo, rules) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    rules.observe(*_registered(demo, "c", 2, IIN_A, ASTANA), now_ms=1_000)   # the latest row counts
    rules.observe(*_registered(demo, "d", 1, None, None), now_ms=1_000)      # not the one that counts
    assert _regional(rules.observe(*_paid(demo, 1, IIN_A, ALMATY), now_ms=1_000))


def test_a_null_on_either_side_is_no_contradiction(demo, rules, state) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, None), now_ms=1_000)
    assert _regional(rules.observe(*_paid(demo, 1, IIN_A, ALMATY), now_ms=1_000)) == []
    rules.observe(*_registered(demo, "c", 2, IIN_B, ALMATY), now_ms=1_000)
    assert _regional(rules.observe(*_paid(demo, 2, IIN_B, None), now_ms=1_000)) == []
    # Nothing to compare: a payment without a region does not even wait for its person.
    rules.observe(*_paid(demo, 3, "551231300121", None), now_ms=1_000)
    assert not any(k.startswith(f"0|social.payments|{REGION_RULE}|") for k in state["pending"])
    assert _late(rules, 100_000) == []


def test_a_deleted_payment_stops_waiting(demo, rules, state) -> None:
    rules.observe(*_paid(demo, 1, IIN_A, ASTANA), now_ms=1_000)
    rules.observe(*_paid(demo, 1, None, None, op="d"), now_ms=2_000)
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=3_000)
    assert _late(rules, 100_000) == []


def test_consistency_state_holds_no_clear_values(demo, rules, state) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    rules.observe(*_paid(demo, 1, IIN_A, ASTANA), now_ms=1_000)
    rules.observe(*_paid(demo, 2, IIN_B, ASTANA), now_ms=1_000)              # pending
    dumped = json.dumps(state)
    assert any(k.startswith(f"0|a|social.payments|{REGION_RULE}|") for k in state["references"])
    assert any(k.startswith(f"0|social.payments|{REGION_RULE}|") for k in state["pending"])
    for clear in (IIN_A, IIN_B, ALMATY, ASTANA):
        assert clear not in dumped, clear


def test_changing_the_compared_columns_never_compares_stale_digests(demo, state) -> None:
    """The rule's pairs are part of every digest: state written under other pairs never matches."""
    before = CrossRow([demo], b"k" * 32, state)
    before.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    changed = _with_region(demo, compare={"kato_code": "address"})
    after = CrossRow([changed], b"k" * 32, state)
    # Read with the old pairs, the person's stored KATO digest would contradict this payment.
    assert _regional(after.observe(*_paid(changed, 1, IIN_A, ASTANA), now_ms=1_000)) == []
    # Payment 1 waits for the person under the new pairs (its key is a digest: see the privacy test).
    assert len([k for k in state["pending"] if k.startswith(f"0|social.payments|{REGION_RULE}|")]) == 1


def test_numbers_are_compared_as_numbers(demo, state) -> None:
    # An odd pairing, only to compare a numeric(14,2) with a bigint.
    regulation = _with_region(demo, compare={"amount": "person_id"})
    rules = CrossRow([regulation], b"k" * 32, state)
    rules.observe(*_registered(regulation, "c", 7, IIN_A, ALMATY), now_ms=1_000)
    table, change = _paid(regulation, 1, IIN_A, None)
    agreeing = Change("c", {**change.row, "amount": "7.00"}, 1_000, "social", "payments")
    differing = Change("c", {**change.row, "amount": "7.50"}, 1_000, "social", "payments")
    assert _regional(rules.observe(table, agreeing, now_ms=1_000)) == []
    assert [v.columns for v in _regional(rules.observe(table, differing, now_ms=1_000))] == [("amount",)]


@pytest.mark.parametrize("update, expected", [
    ({"against": "population.people"}, ["rule region_agrees_with_register of social.payments",
                                        "reference table population.people is not regulated", "'against'"]),
    ({"match": {"person_iin": "iin_code"}}, ["'match' names column 'iin_code'", "population.persons does not "
                                              "declare (person_id, iin,"]),
    ({"compare": {"kato_code": "region"}}, ["'compare' names column 'region'"]),
    ({"compare": {"kato_code": "birth_date"}}, ["kato_code is varchar(9) but population.persons.birth_date is date",
                                                "same type in 'compare'"]),
    ({"match": {"person_iin": "phone"}}, ["person_iin holds iin but population.persons.phone holds phone",
                                          "same kind in 'match'"]),
])
def test_reference_mistakes_are_named_when_the_rules_are_built(demo, state, update, expected) -> None:
    with pytest.raises(ValueError) as info:
        CrossRow([_with_region(demo, **update)], b"k" * 32, state)
    for part in expected:
        assert part in str(info.value), (part, str(info.value))


def test_a_truncate_forgets_the_table_and_only_that_table(demo, rules, state) -> None:
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000)
    rules.observe(*_registered(demo, "c", 2, IIN_B, ASTANA), now_ms=1_000)
    rules.observe(*_paid(demo, 6, "040404300124", ALMATY), now_ms=1_000)   # waits for its person
    waiting = dict(state["pending"])
    assert waiting and rules.forget("population.persons") > 0
    assert not [k for k in state["owners"] if k.startswith("0|population.persons|")]
    assert not [k for k in state["values"] if k.startswith("0|u|population.persons|")]
    region_scope = f"0|social.payments|{REGION_RULE}|"  # pending rows of the rule, by partition
    assert not [k for k in state["references"]
                if k.startswith(("0|r|population.persons.", f"0|a|social.payments|{REGION_RULE}|"))]
    assert state["pending"] == waiting  # the payments' own waiting rows are untouched
    # The register is empty now: IIN_A in a new row is no duplicate, and IIN_B's region is unknown.
    assert [v for v in rules.observe(*_registered(demo, "c", 7, IIN_A, ALMATY), now_ms=2_000)
            if v.rule == "iin_unique"] == []
    assert _regional(rules.observe(*_paid(demo, 8, IIN_B, ALMATY), now_ms=2_000)) == []
    assert len([k for k in state["pending"] if k.startswith(region_scope)]) == \
        len([k for k in waiting if k.startswith(region_scope)]) + 1   # payment 8 waits for its person
    assert rules.forget("social.payments") > 0
    assert not any(k.startswith("0|social.payments|") for k in state["pending"])


def test_a_truncate_seen_by_one_shard_forgets_that_shards_rows_only(demo, state) -> None:
    """Every shard passes the TRUNCATE on; until a shard has, its rows before it still count."""
    rules = CrossRow([demo], b"k" * 32, state, partitions=4)
    persons = demo.table("population.persons")
    rules.observe(*_registered(demo, "c", 1, IIN_A, ALMATY), now_ms=1_000, shard=0)
    rules.observe(*_registered(demo, "c", 2, IIN_B, ALMATY), now_ms=1_000, shard=1)
    for partition in range(4):
        assert rules.judge.apply(partition, *forget_claim(persons.name, 0)) == []
    rules.claims.forget(persons.name, 0)
    # Row 1 (shard 0) is forgotten, row 2 (shard 1) is not.
    assert [v.rule for v in rules.observe(*_registered(demo, "c", 3, IIN_A, ALMATY), now_ms=2_000, shard=2)
            if v.rule == "iin_unique"] == []
    assert [v.rule for v in rules.observe(*_registered(demo, "c", 4, IIN_B, ALMATY), now_ms=2_000, shard=2)
            if v.rule == "iin_unique"] == ["iin_unique"]


def test_state_holds_no_clear_key_or_identifier(demo, rules, state) -> None:
    # persons' primary key is person_id; payments name the person by IIN. Neither the keys nor
    # the identifiers may appear in any state key or value: the changelog topic never expires.
    rules.observe(*_registered(demo, "c", 424242, IIN_A, ALMATY), now_ms=1_000)
    rules.observe(*_paid(demo, 515151, IIN_B, ALMATY), now_ms=1_000)
    dumped = json.dumps({name: {k: v for k, v in mapping.items()} for name, mapping in state.items()})
    assert state["owners"] and state["pending"]
    for clear in ("424242", "515151", IIN_A, IIN_B):
        assert clear not in dumped


def test_state_digests_are_letters_so_a_scan_reads_nothing_into_them(demo, rules, state) -> None:
    # base64's '-' and '_' cut a digest's letters into words; `qoima scan` took some for known
    # names, and hex digits make runs an IIN check matches. A digest is one run of a-p.
    import re

    from model.leak_scan import KnownValues, scan_text

    for person_id in range(1, 400):
        rules.observe(*_person(demo, "c", person_id, f"{person_id:06d}300126"), now_ms=1_000)
    digests = [key.rsplit("|", 1)[1] for key in state["owners"]] + [v.rsplit("|", 1)[1] for v in state["owners"].values()]
    assert len(digests) > 300 and all(re.fullmatch(r"[a-p]{32}", d) for d in digests)
    known = KnownValues(names={"ali", "dana", "kim", "aru", "zhan", "erbol", "asel"})
    assert not scan_text(" ".join(digests), "state", known)
    assert not scan_text(" ".join(f"|{d}|" for d in digests), "state", known)


def _random_changes(demo, seed: int, count: int) -> list[tuple]:
    import random

    rng = random.Random(seed)
    iins = [f"{n:06d}300126" for n in range(1, 9)]
    regions = [ALMATY, ASTANA, None]
    changes = []
    for _ in range(count):
        if rng.random() < 0.6:
            op = rng.choice("ccud")
            changes.append(_registered(demo, op, rng.randrange(12), rng.choice(iins), rng.choice(regions)))
        else:
            op = rng.choice("ccd")
            changes.append(_paid(demo, rng.randrange(12), rng.choice(iins), rng.choice(regions), op=op))
    return changes


@pytest.mark.parametrize("seed", range(5))
def test_one_partition_or_four_give_the_same_verdicts(demo, seed) -> None:
    """Rows spread over four shards, their claims judged in four rules partitions: the same
    incidents, now and when the grace periods end, as with one worker."""
    verdicts = []
    for partitions in (1, 4):
        state = {"values": {}, "owners": {}, "references": {}, "pending": {}}
        rules = CrossRow([demo], b"k" * 32, state, partitions=partitions)
        found = sorted(v.rule for table, change in _random_changes(demo, seed, 300)
                       for v in rules.observe(table, change, now_ms=1_000))
        found += sorted(f"late:{v.rule}" for _, _, v in rules.expire(now_ms=100_000))
        if partitions == 4:
            assert len({k.split("|", 1)[0] for k in [*state["values"], *state["references"]]}) > 1
        verdicts.append(found)
    assert verdicts[0] == verdicts[1]
    assert "iin_unique" in verdicts[0] and any(v.startswith("late:") for v in verdicts[0])
