"""Data-quality rules (streams/quality.py, `rules:` in model/rules.py): each check
passes good data and catches a planted defect, the demo generator's defects are caught, and
regulation mistakes are named with their fix. Violations never carry a value."""
from __future__ import annotations

import copy
import random
from dataclasses import astuple
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from model.regulation import RegulationError, RuleKind, Table, load_regulation
from infra.demo import generator
from schemas import incidents
from model import normalize
from model.expressions import compile_expression
from model.reference import kato_regions, load_reference
from streams.quality import RuleSet

TODAY = date(2026, 3, 15)

PERSONS = {
    "name": "population.persons",
    "primary_key": ["person_id"],
    "columns": [
        {"name": "person_id", "type": "bigint", "nullable": False},
        {"name": "iin", "type": "char(12)", "nullable": False, "action": "hash", "kind": "iin"},
        {"name": "last_name", "type": "text", "action": "drop", "kind": "name"},
        {"name": "first_name", "type": "text", "action": "drop", "kind": "name"},
        {"name": "middle_name", "type": "text", "action": "drop", "kind": "name"},
        {"name": "birth_date", "type": "date", "action": "generalize", "to": "year"},
        {"name": "sex", "type": "char(1)"},
        {"name": "phone", "type": "text", "action": "hash", "kind": "phone"},
        {"name": "address", "type": "text", "action": "drop"},
        {"name": "kato_code", "type": "varchar(9)", "action": "generalize", "to": "kato_region"},
        {"name": "status", "type": "text"},
        {"name": "updated_at", "type": "timestamptz"},
        {"name": "verified", "type": "boolean"},
        {"name": "score", "type": "double precision"},
    ],
}
PAYMENTS = {
    "name": "social.payments",
    "primary_key": ["payment_id"],
    "columns": [
        {"name": "payment_id", "type": "bigint", "nullable": False},
        {"name": "person_iin", "type": "char(12)", "nullable": False, "action": "hash", "kind": "iin"},
        {"name": "org_bin", "type": "char(12)", "nullable": False, "action": "hash", "kind": "bin"},
        {"name": "payment_type", "type": "text"},
        {"name": "amount", "type": "numeric(14,2)"},
        {"name": "period", "type": "date"},
        {"name": "status", "type": "text"},
        {"name": "paid_at", "type": "timestamptz"},
    ],
}

# The rules of the brief, in YAML as an operator writes them.
DEMO_PERSON_RULES = yaml.safe_load("""
- {name: iin_valid, kind: accuracy, column: iin, check: identifier, identifier: iin, action: flag}
- {name: sex_values, kind: accuracy, column: sex, check: allowed, values: [M, F], action: reject}
- {name: phone_format, kind: accuracy, column: phone, check: identifier, identifier: phone, action: flag}
- {name: kato_known, kind: accuracy, column: kato_code, check: reference, reference: kato_regions, action: flag}
- {name: birth_not_future, kind: consistency, expression: "birth_date <= today", action: flag}
- {name: mandatory, kind: completeness, columns: [kato_code], action: flag}
- {name: regex_example, kind: accuracy, column: status, check: pattern, pattern: "^[a-z_]+$", action: flag}
""")
# A missing phone is not a defect in the generator (not everyone leaves one), so the demo
# persons rules require only kato_code; the brief's [kato_code, phone] is tested separately.
DEMO_PAYMENT_RULES = yaml.safe_load("""
- {name: amount_range, kind: accuracy, column: amount, check: range, min: 0, max: 10000000, action: hold}
- {name: paid_has_date, kind: consistency, expression: "status != 'paid' or paid_at is not None", action: flag}
- {name: type_known, kind: accuracy, column: payment_type, check: allowed,
   values: [pension, child_benefit, disability, unemployment, housing], action: reject}
- {name: person_known, kind: integrity, column: person_iin, references: population.persons.iin}
- {name: one_payment, kind: uniqueness, columns: [person_iin, period, payment_type]}
""")


def table(base: dict, rules: list[dict]) -> Table:
    return Table.model_validate({**copy.deepcopy(base), "rules": copy.deepcopy(rules)})


def rule_set(base: dict, *rules: dict) -> RuleSet:
    return RuleSet.for_table(table(base, list(rules)))


def fired(rules: RuleSet, row: dict, today: date = TODAY) -> set[str]:
    return {v.rule for v in rules.evaluate(row, today)}


GOOD_IIN = generator.make_iin(random.Random(7), date(1985, 1, 1), "M")
BAD_IIN = GOOD_IIN[:11] + str((int(GOOD_IIN[11]) + 1) % 10)


# --- each stateless check ------------------------------------------------------------------

CHECKS = [
    # (rule, good values, planted defects)
    ({"kind": "accuracy", "column": "iin", "check": "identifier", "identifier": "iin"},
     [GOOD_IIN, GOOD_IIN[:6] + " " + GOOD_IIN[6:]], [BAD_IIN, "85010130012X", GOOD_IIN[:11]]),
    ({"kind": "accuracy", "column": "phone", "check": "identifier", "identifier": "phone"},
     ["+7 701 234 56 78", "87012345678"], ["12345", "+7 (7O1) 234-56-78", "+7 901 234 56 78"]),
    ({"kind": "accuracy", "column": "sex", "check": "allowed", "values": ["M", "F"]},
     ["M", "F"], ["X", "m"]),
    ({"kind": "accuracy", "column": "score", "check": "range", "min": 0, "max": 1.5},
     [0.0, 1.5, 0.7], [-0.1, 1.6, float("nan")]),
    ({"kind": "accuracy", "column": "birth_date", "check": "range", "min": "1900-01-01", "max": date(2026, 1, 1)},
     [date(1900, 1, 1), date(1985, 6, 1)], [date(1899, 12, 31), date(2085, 6, 1)]),
    ({"kind": "accuracy", "column": "updated_at", "check": "range", "min": "2020-01-01"},
     [datetime(2020, 1, 1, tzinfo=timezone.utc)], [datetime(2019, 12, 31, 23, 59, tzinfo=timezone.utc)]),
    ({"kind": "accuracy", "column": "kato_code", "check": "reference", "reference": "kato_regions"},
     ["751110000", "101010000", "621010000"], ["991010000", "75111000", "7511100000", "75111000A"]),
    ({"kind": "accuracy", "column": "status", "check": "pattern", "pattern": "^[a-z_]+$"},
     ["active", "on_hold"], ["Active", "active\n", "on hold"]),
    ({"kind": "accuracy", "column": "verified", "check": "allowed", "values": [True]},
     [True], [False]),
]


@pytest.mark.parametrize("rule, good, bad", CHECKS, ids=[f"{c[0]['check']}-{c[0]['column']}" for c in CHECKS])
def test_accuracy_check_passes_good_values_and_catches_defects(rule, good, bad) -> None:
    rules = rule_set(PERSONS, {"name": "r", **rule})
    column = rule["column"]
    for value in good:
        assert rules.evaluate({column: value}, TODAY) == [], value
    for value in bad:
        [violation] = rules.evaluate({column: value}, TODAY)
        assert violation.rule == "r" and violation.columns == (column,)
        assert violation.kind == "accuracy" and violation.incident_type == "accuracy_contradiction"


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_accuracy_checks_leave_empty_values_to_completeness(empty) -> None:
    rules = rule_set(PERSONS,
                     {"name": "phone_ok", "kind": "accuracy", "column": "phone", "check": "identifier", "identifier": "phone"},
                     {"name": "kato_ok", "kind": "accuracy", "column": "kato_code", "check": "reference", "reference": "kato_regions"},
                     {"name": "status_ok", "kind": "accuracy", "column": "status", "check": "pattern", "pattern": "[a-z]+"},
                     {"name": "mandatory", "kind": "completeness", "columns": ["kato_code", "phone"]})
    [violation] = rules.evaluate({"phone": empty, "kato_code": empty, "status": empty}, TODAY)
    assert violation.rule == "mandatory" and violation.incident_type == "completeness"
    assert violation.columns == ("kato_code", "phone")
    [violation] = rules.evaluate({"phone": "+77012345678", "kato_code": empty, "status": "active"}, TODAY)
    assert violation.columns == ("kato_code",)
    assert rules.evaluate({"phone": "+77012345678", "kato_code": "751110000"}, TODAY) == []


def test_identifier_fast_path_agrees_with_the_normalizers() -> None:
    rng = random.Random(5)
    values = []
    for _ in range(2000):
        iin = generator.make_iin(rng, date(1940, 1, 1) + timedelta(days=rng.randrange(30000)), rng.choice("MF"))
        values += [iin, iin[:11] + str(rng.randrange(10)), generator.make_phone(rng),
                   generator.make_phone(rng, malformed=True), "+7" + iin[:10], f"{rng.randrange(10**12):012d}"]
    values += ["", " ", "+77012345678", "+77012345678 ", "070240000015", "070250000015"]
    for kind in ("iin", "bin", "phone"):
        rules = rule_set(PERSONS, {"name": "r", "kind": "accuracy", "column": "status", "check": "identifier",
                                   "identifier": kind})
        for value in values:
            expected = not value.strip() or normalize.BY_KIND[kind](value) is not None
            assert (rules.evaluate({"status": value}, TODAY) == []) is expected, (kind, value)


def test_unrolled_check_digit_agrees_with_identifiers() -> None:
    from model.identifiers import is_valid_bin, is_valid_iin
    from streams.quality import CANONICAL
    rng = random.Random(6)
    values = [f"{rng.randrange(10**12):012d}" for _ in range(50000)]
    values += [v[:11] + d for v in values[:2000] for d in "0123456789"]   # every check digit
    values += ["", "12345678901", "1234567890123", "12345678901a", "１２３４５６７８９０１２"]
    for value in values:
        assert CANONICAL["iin"](value) is is_valid_iin(value), value
        assert CANONICAL["bin"](value) is is_valid_bin(value), value


def test_char_columns_are_compared_without_their_padding() -> None:
    rules = rule_set(PERSONS, {"name": "sex_values", "kind": "accuracy", "column": "sex", "check": "allowed",
                               "values": ["M", "F"]})
    assert rules.evaluate({"sex": "M"}, TODAY) == []
    rules = rule_set({**PERSONS, "columns": [*PERSONS["columns"], {"name": "code", "type": "char(4)"}]},
                     {"name": "code_ok", "kind": "accuracy", "column": "code", "check": "pattern", "pattern": "[A-Z]{2}"})
    assert rules.evaluate({"code": "AB  "}, TODAY) == []
    assert len(rules.evaluate({"code": "ABC "}, TODAY)) == 1


def test_range_on_numeric_column_is_exact_with_float_bounds() -> None:
    rules = rule_set(PAYMENTS, {"name": "amount_range", "kind": "accuracy", "column": "amount", "check": "range",
                                "min": 0.1, "max": 10000000})
    assert rules.evaluate({"amount": Decimal("0.10")}, TODAY) == []
    assert rules.evaluate({"amount": Decimal("10000000.00")}, TODAY) == []
    assert "below the minimum" in rules.evaluate({"amount": Decimal("0.09")}, TODAY)[0].problem
    assert "above the maximum" in rules.evaluate({"amount": Decimal("10000000.01")}, TODAY)[0].problem


# --- consistency expressions ---------------------------------------------------------------


def holds(expression: str, row: dict, base: dict = PERSONS, today: date = TODAY) -> bool:
    rules = rule_set(base, {"name": "x", "kind": "consistency", "expression": expression})
    return rules.evaluate(row, today) == []


def test_expression_today_is_the_commit_date() -> None:
    assert holds("birth_date <= today", {"birth_date": TODAY})
    assert not holds("birth_date <= today", {"birth_date": TODAY + timedelta(days=1)})
    assert holds("birth_date <= today", {"birth_date": TODAY + timedelta(days=1)}, today=TODAY + timedelta(days=1))


def test_expression_null_is_unknown_and_unknown_passes() -> None:
    # As in an SQL CHECK constraint: a rule fails only when its expression is False.
    assert holds("birth_date <= today", {"birth_date": None})
    assert holds("birth_date <= today", {})
    assert holds("status == 'paid'", {"status": None})
    assert holds("not (status == 'paid')", {"status": None})
    assert holds("status != 'paid' or paid_at is not None", {"status": None, "paid_at": None}, PAYMENTS)
    # False and unknown is False; True or unknown is True.
    assert not holds("status == 'x' and birth_date <= today", {"status": "y", "birth_date": None})
    assert holds("status == 'y' or birth_date <= today", {"status": "y", "birth_date": None})
    # 'is None' is never unknown.
    assert not holds("birth_date is not None", {"birth_date": None})
    assert holds("birth_date is None", {})


def test_expression_paid_needs_a_date() -> None:
    expression = "status != 'paid' or paid_at is not None"
    paid_at = datetime(2026, 1, 5, 6, tzinfo=timezone.utc)
    assert holds(expression, {"status": "paid", "paid_at": paid_at}, PAYMENTS)
    assert holds(expression, {"status": "pending", "paid_at": None}, PAYMENTS)
    assert not holds(expression, {"status": "paid", "paid_at": None}, PAYMENTS)


def test_expression_features() -> None:
    row = {"status": "paid", "payment_type": "pension", "amount": Decimal("100.00"), "period": date(2026, 1, 1),
           "paid_at": datetime(2026, 1, 5, 21, tzinfo=timezone.utc)}
    for expression, expected in [
        ("status in ('paid', 'returned')", True),
        ("status not in ['paid', 'returned']", False),
        ("len(payment_type) <= 7", True),
        ("len(payment_type) > 7", False),
        ("0 < amount <= 100", True),
        ("0 < amount < 100", False),
        ("amount >= -5.5", True),
        ("period >= '2025-01-01'", True),
        ("period < '2026-01-01'", False),
        ("paid_at <= today", True),                    # a timestamp against a date: its UTC date
        ("paid_at >= period", True),
        ("paid_at < '2026-01-05'", False),
        ("not status == 'paid' or amount > 0", True),
        ("status == 'paid' and amount > 1000", False),
    ]:
        assert holds(expression, row, PAYMENTS) is expected, expression
    assert holds("verified", {"verified": True})
    assert not holds("verified == False", {"verified": True})
    assert holds("verified", {"verified": None})


def test_expression_columns_are_reported_in_table_order() -> None:
    persons = table(PERSONS, [])
    _, names = compile_expression("r", "status == 'x' or birth_date <= today or len(iin) == 12", persons)
    assert names == ("iin", "birth_date", "status")


# --- the demo generator's defects ---------------------------------------------------------

PERSON_DEFECT_RULES = {
    "bad_iin_check_digit": {"iin_valid"},
    "null_kato": {"mandatory"},
    "bad_phone": {"phone_format"},
    "future_birth_date": {"birth_not_future"},
}


def test_demo_person_rules_catch_each_generator_defect_and_pass_clean_rows() -> None:
    rules = rule_set(PERSONS, *DEMO_PERSON_RULES)
    rng = random.Random(11)
    seen = set()
    for _ in range(3000):
        row = generator.make_person(rng, defect_rate=0.2, today=TODAY)  # dates are date objects already
        defect = row.pop("_defect")
        assert fired(rules, row) == PERSON_DEFECT_RULES.get(defect, set()), (defect, row)
        seen.add(defect)
    assert seen == set(generator.PERSON_DEFECTS) | {None}


def decoded_payment(row: dict) -> dict:
    # As streams.decode.decoder gives it: timestamptz in UTC; amount is a Decimal, period a date already.
    row = dict(row)
    if row["paid_at"] is not None:
        row["paid_at"] = row["paid_at"].astimezone(timezone.utc)
    return row


def test_demo_payment_rules_catch_negative_amounts_and_leave_orphans_to_integrity() -> None:
    rules = rule_set(PAYMENTS, *DEMO_PAYMENT_RULES)
    assert [r.name for r in rules.stateful] == ["person_known", "one_payment"]
    rng = random.Random(12)
    seen = set()
    for _ in range(2000):
        row = decoded_payment(generator.make_payment(rng, GOOD_IIN, "070240000015", defect_rate=0.2, today=TODAY))
        defect = row.pop("_defect")
        # An orphan IIN is a valid IIN nobody has: only the stateful integrity rule can see it.
        expected = {"amount_range"} if defect == "negative_amount" else set()
        assert fired(rules, row) == expected, (defect, row)
        seen.add(defect)
    assert seen == set(generator.PAYMENT_DEFECTS) | {None}
    [violation] = rules.evaluate({"amount": Decimal("-5.00")}, TODAY)
    assert RuleSet.holds([violation]) == [violation] and RuleSet.rejects([violation]) == []


def test_brief_completeness_rule_requires_phone_too() -> None:
    rules = rule_set(PERSONS, {"name": "mandatory", "kind": "completeness", "columns": ["kato_code", "phone"],
                               "action": "flag"})
    [violation] = rules.evaluate({"kato_code": "751110000", "phone": None}, TODAY)
    assert violation.columns == ("phone",) and violation.action == "flag"


# --- stateful kinds, incident types, actions ------------------------------------------------


def test_stateful_rules_are_declared_with_parameters_but_not_evaluated() -> None:
    rules = rule_set(PAYMENTS,
                     {"name": "uniq", "kind": "uniqueness", "columns": ["person_iin", "period"]},
                     {"name": "orphans", "kind": "integrity", "column": "person_iin",
                      "references": "population.persons.iin"},
                     {"name": "orphans_slow", "kind": "integrity", "column": "person_iin",
                      "references": "population.persons.iin", "grace_seconds": 3600},
                     {"name": "late", "kind": "timeliness", "max_lag_seconds": 900},
                     {"name": "complete_set", "kind": "coverage", "tolerance": 0.05})
    assert len(rules) == 0 and rules.evaluate({"person_iin": None}, TODAY) == []
    by_name = {r.name: r for r in rules.stateful}
    assert list(by_name) == ["uniq", "orphans", "orphans_slow", "late", "complete_set"]
    assert by_name["uniq"].columns == ["person_iin", "period"] and by_name["uniq"].action.value == "flag"
    assert by_name["orphans"].grace_seconds == 300 and by_name["orphans_slow"].grace_seconds == 3600
    assert by_name["orphans"].references == "population.persons.iin"
    assert by_name["late"].max_lag_seconds == 900 and by_name["complete_set"].tolerance == 0.05
    assert {r.kind.incident_type for r in rules.stateful} == {"uniqueness", "integrity", "timeliness", "coverage"}


def test_every_kind_maps_to_a_dm385_incident_type() -> None:
    assert {k.value: k.incident_type for k in RuleKind} == {
        "completeness": "completeness", "accuracy": "accuracy_contradiction", "consistency": "consistency",
        "uniqueness": "uniqueness", "integrity": "integrity", "timeliness": "timeliness", "coverage": "coverage"}
    assert {k.incident_type for k in RuleKind} <= set(incidents.TYPES)
    assert {k.value for k in RuleKind if k.stateful} == {"uniqueness", "integrity", "timeliness", "coverage"}


def test_action_helpers() -> None:
    rules = rule_set(PERSONS, *DEMO_PERSON_RULES,
                     {"name": "held", "kind": "completeness", "columns": ["status"], "action": "hold"})
    violations = rules.evaluate({"iin": BAD_IIN, "sex": "X", "kato_code": "751110000", "status": None}, TODAY)
    assert [v.rule for v in violations] == ["iin_valid", "sex_values", "held"]
    assert [v.rule for v in RuleSet.rejects(violations)] == ["sex_values"]
    assert [v.rule for v in RuleSet.holds(violations)] == ["held"]
    assert [v.rule for v in RuleSet.flags(violations)] == ["iin_valid"]
    assert violations[0].note() == "iin: iin: not a valid iin (rule iin_valid)"


def test_a_rule_that_cannot_evaluate_is_flagged_not_raised() -> None:
    rules = rule_set(PERSONS, {"name": "sex_values", "kind": "accuracy", "column": "sex", "check": "allowed",
                               "values": ["M", "F"], "action": "reject"})
    [violation] = rules.evaluate({"sex": ["M", "secret-850101300124"]}, TODAY)  # unhashable: not decoded
    assert violation.action == "flag" and "could not be evaluated (TypeError)" in violation.problem
    assert "850101300124" not in repr(violation)


def test_decode_reads_debezium_values_of_the_rule_columns() -> None:
    rules = rule_set(PAYMENTS, *DEMO_PAYMENT_RULES)
    assert rules.columns == ("payment_type", "amount", "status", "paid_at")
    decoded = rules.decode({"amount": "-12.50", "status": "paid", "paid_at": "2026-01-05T10:00:00+05:00",
                            "payment_type": "pension", "period": 20454})
    assert decoded == {"payment_type": "pension", "amount": Decimal("-12.50"), "status": "paid",
                       "paid_at": datetime(2026, 1, 5, 5, tzinfo=timezone.utc)}
    assert fired(rules, decoded) == {"amount_range"}
    with pytest.raises(ValueError, match="column amount") as info:
        rules.decode({"amount": "secret-1"})
    assert "secret" not in str(info.value)


# --- violations never carry a value -------------------------------------------------------


def test_violation_text_never_contains_the_clear_value() -> None:
    planted_iin, planted_name = BAD_IIN, "Әлібекова"
    rules = rule_set(PERSONS, *DEMO_PERSON_RULES,
                     {"name": "name_short", "kind": "consistency", "expression": "len(last_name) <= 3"},
                     {"name": "name_latin", "kind": "accuracy", "column": "last_name", "check": "pattern",
                      "pattern": "[A-Za-z ]+"},
                     {"name": "name_known", "kind": "accuracy", "column": "last_name", "check": "allowed",
                      "values": ["Ivanov"]},
                     {"name": "iin_known", "kind": "accuracy", "column": "iin", "check": "reference",
                      "reference": "kato_regions"})
    row = {"iin": planted_iin, "last_name": planted_name, "sex": planted_name, "phone": planted_iin,
           "kato_code": planted_iin, "status": planted_name, "birth_date": date(2085, 1, 1)}
    violations = rules.evaluate(row, TODAY)
    assert {v.rule for v in violations} == {"iin_valid", "sex_values", "phone_format", "kato_known",
                                            "birth_not_future", "regex_example", "name_short", "name_latin",
                                            "name_known", "iin_known"}
    for violation in violations:
        text = " ".join(str(part) for part in astuple(violation))
        assert planted_iin not in text and planted_name not in text and "2085" not in text, violation


# --- reference data -----------------------------------------------------------------------


def test_kato_regions_reference() -> None:
    regions = kato_regions()
    assert sorted(regions) == ["10", "11", "15", "19", "23", "27", "31", "33", "35", "39", "43", "47", "55", "59",
                               "61", "62", "63", "71", "75", "79"]
    assert regions["10"][0].startswith("Абайская") and regions["62"][1].startswith("Ұлытау")
    assert regions["75"][0].endswith("Алматы")
    reference = load_reference("kato_regions")
    # every city the demo generator uses is in a known region
    assert all(reference.contains(code) for code in generator.KATO)


# --- regulation errors --------------------------------------------------------------------

REGULATION = {
    "provider": "acme",
    "organization": "Acme ministry",
    "information_system": "Acme register",
    "source": {"dbms": "postgresql", "host": "db.example", "port": 5432, "database": "acme",
               "user": "qoima_capture", "password": {"file": "/run/secrets/acme-password"}},
}


def regulation_error(tmp_path: Path, *rules: dict, base: dict = PERSONS) -> str:
    document = {**REGULATION, "tables": [{**copy.deepcopy(base), "rules": list(rules)}]}
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    with pytest.raises(RegulationError) as info:
        load_regulation(path, {})
    return str(info.value)


def test_demo_like_rules_load_from_a_regulation_file(tmp_path) -> None:
    document = {**REGULATION, "tables": [{**copy.deepcopy(PERSONS), "rules": DEMO_PERSON_RULES}]}
    path = tmp_path / "acme.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    regulation = load_regulation(path, {})
    persons = regulation.table("population.persons")
    assert [r.name for r in persons.rules] == [r["name"] for r in DEMO_PERSON_RULES]
    assert len(RuleSet.for_table(persons)) == len(DEMO_PERSON_RULES)


ACCURACY = {"name": "r", "kind": "accuracy", "action": "flag"}
CONSISTENCY = {"name": "r", "kind": "consistency"}

ERRORS = [
    # (rule, what the message must say)
    ({**ACCURACY, "column": "iinn", "check": "identifier", "identifier": "iin"},
     ["rule r", "'iinn' is not among the table's columns", "fix the name"]),
    ({"name": "r", "kind": "completeness", "columns": ["kato_code", "phone_no"]},
     ["rule r", "'phone_no' is not among"]),
    ({"name": "r", "kind": "uniqueness", "columns": ["inn"]}, ["rule r", "'inn' is not among"]),
    ({"name": "r", "kind": "accuracyy", "column": "iin"}, ["rules[r].kind", "'accuracy'", "'completeness'"]),
    ({"name": "r", "kind": "accuracy", "column": "sex", "check": "allowed", "values": ["M"], "acton": "flag"},
     ["rules[r].acton", "unknown field"]),
    ({**ACCURACY, "column": "sex", "check": "allowed", "values": ["M"], "action": "drop"},
     ["rules[r].action", "'reject'"]),
    ({**CONSISTENCY, "expression": "birth_date <= "}, ["rule r", "not valid", "birth_date <= today"]),
    ({**CONSISTENCY, "expression": "__import__('os').system('id')"}, ["rule r", "may not use"]),
    ({**CONSISTENCY, "expression": "__import__('os') is None"}, ["rule r", "calls other than len(column)"]),
    ({**CONSISTENCY, "expression": "birth_date.year <= 2000"}, ["rule r", "attribute access", "birth_date.year"]),
    ({**CONSISTENCY, "expression": "status[0] == 'a'"}, ["rule r", "subscripts"]),
    ({**CONSISTENCY, "expression": "(lambda: 1)() == 1"}, ["rule r", "may not use"]),
    ({**CONSISTENCY, "expression": "score + 1 > 2"}, ["rule r", "arithmetic"]),
    ({**CONSISTENCY, "expression": "(lambda: True) is None"}, ["rule r", "may not use lambda"]),
    ({**CONSISTENCY, "expression": "(x := 1) == 1"}, ["rule r", "may not use assignment"]),
    ({**CONSISTENCY, "expression": "status == f'{status}'"}, ["rule r", "may not use f-strings"]),
    ({**CONSISTENCY, "expression": "status in [s for s in 'ab']"}, ["rule r", "'in' needs a list of constants"]),
    ({**CONSISTENCY, "expression": "status in (status, 'a')"}, ["rule r", "'in' needs a list of constants"]),
    ({**CONSISTENCY, "expression": "open('x') is None"}, ["rule r", "calls other than len(column)"]),
    ({**CONSISTENCY, "expression": "birth_dat <= today"}, ["rule r", "unknown column `birth_dat`", "birth_date"]),
    ({**CONSISTENCY, "expression": "__builtins__ is None"}, ["rule r", "unknown column `__builtins__`"]),
    ({**CONSISTENCY, "expression": "birth_date <= 5"}, ["rule r", "compares date with number"]),
    ({**CONSISTENCY, "expression": "birth_date <= 'soon'"}, ["rule r", "not an ISO date"]),
    ({**CONSISTENCY, "expression": "status == None"}, ["rule r", "x is None"]),
    ({**CONSISTENCY, "expression": "status"}, ["rule r", "not a condition", "status is not None"]),
    ({**CONSISTENCY, "expression": "len(birth_date) > 1"}, ["rule r", "len() needs a text column"]),
    ({**ACCURACY}, ["rule r", "needs 'column", "'check' (one of identifier"]),
    ({**ACCURACY, "column": "iin", "check": "identifier"}, ["rule r", "needs 'identifier' (one of iin"]),
    ({**ACCURACY, "column": "score", "check": "range"}, ["rule r", "needs 'min', 'max' or both"]),
    ({**ACCURACY, "column": "status", "check": "pattern"}, ["rule r", "needs 'pattern'"]),
    ({**ACCURACY, "column": "status", "check": "pattern", "pattern": "([a-z]"}, ["rule r", "not a valid regular expression"]),
    ({**ACCURACY, "column": "kato_code", "check": "reference", "reference": "oktmo"},
     ["rule r", "no reference data 'oktmo'", "kato_regions"]),
    ({**ACCURACY, "column": "status", "check": "range", "min": 0}, ["rule r", "needs a number, date or timestamp column"]),
    ({**ACCURACY, "column": "birth_date", "check": "identifier", "identifier": "iin"}, ["rule r", "needs a text column"]),
    ({**ACCURACY, "column": "score", "check": "range", "min": 5, "max": 1}, ["rule r", "min is greater than max"]),
    ({**ACCURACY, "column": "birth_date", "check": "range", "min": "yesterday"}, ["rule r", "give a date"]),
    ({**ACCURACY, "column": "status", "check": "allowed", "values": [True, "no"]}, ["rule r", "quote text values"]),
    ({**ACCURACY, "column": "status", "check": "allowed", "values": [1]}, ["rule r", "quote it"]),
    ({**ACCURACY, "column": "status", "check": "allowed", "values": ["a"], "pattern": "a"},
     ["rule r", "'pattern' does not apply", "takes 'column', 'check', 'values'"]),
    ({"name": "r", "kind": "completeness", "column": "status"}, ["rule r", "needs 'columns: ["]),
    ({**CONSISTENCY}, ["rule r", "needs 'expression'"]),
    ({**CONSISTENCY, "expression": "status is not None", "column": "status"}, ["rule r", "'column' does not apply"]),
    ({"name": "r", "kind": "integrity", "column": "iin"}, ["rule r", "needs 'references: schema.table.column'"]),
    ({"name": "r", "kind": "integrity", "column": "iin", "references": "persons.iin"},
     ["rule r", "schema.table.column"]),
    ({"name": "r", "kind": "timeliness"}, ["rule r", "needs 'max_lag_seconds"]),
    ({"name": "r", "kind": "coverage"}, ["rule r", "needs 'tolerance"]),
    ({"name": "r", "kind": "coverage", "tolerance": 1.5}, ["rules[r].tolerance", "less than or equal to 1"]),
    ({"name": "r", "kind": "timeliness", "max_lag_seconds": 60, "grace_seconds": 5}, ["rule r", "'grace_seconds' does not apply"]),
]


@pytest.mark.parametrize("rule, expected", ERRORS, ids=[f"{i}-{e[1][-1][:30]}" for i, e in enumerate(ERRORS)])
def test_regulation_errors_name_the_rule_and_the_fix(tmp_path, rule, expected) -> None:
    message = regulation_error(tmp_path, rule)
    assert "tables[population.persons].rules" in message or "tables[population.persons]:" in message
    for part in expected:
        assert part in message, (part, message)


def test_duplicate_rule_names_are_refused(tmp_path) -> None:
    rule = {"name": "twice", "kind": "completeness", "columns": ["status"]}
    message = regulation_error(tmp_path, rule, rule)
    assert "rules declared twice: twice" in message


def timing_setup() -> tuple[RuleSet, dict, date]:
    """For `python -m timeit` (see the streams/quality.py docstring): nine demo-like rules, one row."""
    rules = [*DEMO_PERSON_RULES, *DEMO_PAYMENT_RULES[:2]]
    merged = {**PERSONS, "columns": [*PERSONS["columns"],
                                     *[c for c in PAYMENTS["columns"] if c["name"] in ("amount", "paid_at")]]}
    rules[5] = {"name": "mandatory", "kind": "completeness", "columns": ["kato_code", "phone"]}
    row = {"iin": GOOD_IIN, "sex": "M", "phone": "+7 701 234 56 78", "kato_code": "751110000",
           "birth_date": date(1985, 1, 1), "status": "paid", "amount": Decimal("1200.00"),
           "paid_at": datetime(2026, 1, 5, tzinfo=timezone.utc)}
    rule_set_ = rule_set(merged, *rules)
    assert len(rule_set_) == 9 and rule_set_.evaluate(row, TODAY) == []
    return rule_set_, row, TODAY
