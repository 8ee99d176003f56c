"""Data-quality rules (DM385 §35, §49) at run time: checked on each decoded source row.

The rules themselves, their parameters and their validation against the table are the
model's (model/rules.py, the expression language in model/expressions.py). Here the
stateless kinds (completeness, accuracy, consistency by expression) are compiled once per
table into closures and evaluated on the row as `streams.decode.decoder` gives it (dates, Decimal, UTC
datetimes, str) and BEFORE depersonalization, so a rule can look at the clear IIN or phone;
what comes out is a list of `Violation`s that name the rule and the columns, never a value,
so they may travel with the clean record, into the quarantine and into the incident journal.

Every accuracy check skips an empty value: requiring one is what completeness rules are for,
so one missing value is one violation, not two. The stateful kinds (uniqueness, integrity,
timeliness, coverage) and consistency `against` a reference table need other rows, other
tables or the clock (`Rule.stateful`); `RuleSet.stateful` hands them to whoever evaluates them
(streams/stateful_rules.py).

Cost (the 2-core dev box, Python 3.11, other jobs running): the nine demo-like rules of
tests/unit/test_quality.py `timing_setup` on one clean row took 5.4 µs per row:
`.venv/bin/python -m timeit -r 7 -s "from tests.unit.test_quality import timing_setup;
rs, row, today = timing_setup()" "rs.evaluate(row, today)"` gave "50000 loops, best of 7:
5.41 usec per loop". The phone normalizer (a spaced spelling) is about 1.4 µs of it; IINs in
canonical form take an unrolled check-digit path (0.6 µs instead of 2.5 through the normalizer).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, Callable, Iterable

from model import identifiers, normalize
from model.fold import fold
from model.expressions import TypedColumn, compile_expression, value_category, value_getter
from model.reference import load_reference
from model.regulation import Table
from model.rules import (AllowedCheck, CompletenessRule, ExpressionRule, IdentifierCheck, PatternCheck, RangeCheck,
                         ReferenceCheck, Rule, RuleAction, RuleCheck, RuleError, RuleKind)
from streams.decode import decoder


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    kind: str            # the rule's kind: completeness, accuracy, consistency
    incident_type: str   # DM385 §49 incident type, one of schemas.incidents.TYPES
    action: str          # reject, flag or hold
    columns: tuple[str, ...]
    problem: str         # names the rule and the columns, never a value

    @classmethod
    def of(cls, rule: Rule, columns: Iterable[str], problem: str) -> Violation:
        """A violation of `rule` by `columns`; `problem` must name no value."""
        return cls(rule.name, rule.kind.value, rule.kind.incident_type, rule.action.value, tuple(columns),
                   f"{problem} (rule {rule.name})")

    def note(self) -> str:
        """One line for a record's `_defects`."""
        return f"{', '.join(self.columns) or '-'}: {self.problem}"


def _blank(value: Any) -> bool:
    return value is None or (value.__class__ is str and (not value or value.isspace()))


# --- the checks: a rule as a function of (row, today) ----------------------------------------

Check = Callable[[dict, date], "Violation | None"]


def _completeness(table: Table, rule: CompletenessRule) -> Check:
    getters = tuple((name, value_getter(table.column(name))) for name in rule.columns)

    def check(row: dict, today: date) -> Violation | None:
        missing = [name for name, get in getters if _blank(get(row))]
        return Violation.of(rule, missing, f"empty: {', '.join(missing)}") if missing else None
    return check


def _twelve_digits_valid(fifth: bytes) -> Callable[[str], bool]:
    """identifiers.is_valid_iin / is_valid_bin for a value of exactly 12 ASCII digits, unrolled
    (0.5 µs instead of 2.5); anything else is False here and goes to the normalizer."""
    def valid(value: str) -> bool:
        if len(value) != 12 or not value.isascii() or not value.isdigit():
            return False
        b = value.encode()
        if b[4] not in fifth:
            return False
        # sum(weight * (byte - 48)) with weights 1..11; 48 * 66 = 3168
        control = (b[0] + 2 * b[1] + 3 * b[2] + 4 * b[3] + 5 * b[4] + 6 * b[5] + 7 * b[6] + 8 * b[7]
                   + 9 * b[8] + 10 * b[9] + 11 * b[10] - 3168) % 11
        if control == 10:  # second pass, weights 3..11, 1, 2
            control = (3 * b[0] + 4 * b[1] + 5 * b[2] + 6 * b[3] + 7 * b[4] + 8 * b[5] + 9 * b[6] + 10 * b[7]
                       + 11 * b[8] + b[9] + 2 * b[10] - 3168) % 11
            if control == 10:
                return False
        return b[11] - 48 == control
    return valid


# A value in canonical form that these accept is one the normalizer accepts too
# (tests/unit/test_quality.py checks it), so the common case skips the normalizer's regexes.
CANONICAL = {"iin": _twelve_digits_valid(b"0123"), "bin": _twelve_digits_valid(b"456"),
             "phone": identifiers.is_valid_phone}


def _identifier(rule: IdentifierCheck, column: TypedColumn) -> Check:
    kind = rule.identifier.value
    normalized, get = normalize.BY_KIND[kind], value_getter(column)
    canonical = CANONICAL.get(kind, lambda value: False)
    bad = Violation.of(rule, (column.name,), f"{column.name}: not a valid {kind}")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        if value is None or canonical(value) or _blank(value) or normalized(value) is not None:
            return None
        return bad
    return check


def _allowed(rule: AllowedCheck, column: TypedColumn) -> Check:
    allowed = rule.members(column)
    get = value_getter(column)
    bad = Violation.of(rule, (column.name,), f"{column.name}: not one of the {len(allowed)} allowed values")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        return None if _blank(value) or value in allowed else bad
    return check


def _range(rule: RangeCheck, column: TypedColumn) -> Check:
    low, high = rule.bounds(column)
    get = value_getter(column)
    below = Violation.of(rule, (column.name,), f"{column.name}: below the minimum {low}")
    above = Violation.of(rule, (column.name,), f"{column.name}: above the maximum {high}")
    as_date = value_category(column) == "datetime"   # a timestamp is compared by its UTC date

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        if value is None:
            return None
        if as_date:
            value = value.date()
        # Written as 'not (bound <= value)' so that a NaN fails too.
        if low is not None and not low <= value:
            return below
        if high is not None and not value <= high:
            return above
        return None
    return check


def _reference(rule: ReferenceCheck, column: TypedColumn) -> Check:
    reference = load_reference(rule.reference)
    contains, get = reference.contains, value_getter(column)
    bad = Violation.of(rule, (column.name,), f"{column.name}: not a known {reference.name} code")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        return None if _blank(value) or contains(value) else bad
    return check


def _pattern(rule: PatternCheck, column: TypedColumn) -> Check:
    match = re.compile(rule.pattern).fullmatch
    get = value_getter(column)
    bad = Violation.of(rule, (column.name,), f"{column.name}: does not match the pattern")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        return None if _blank(value) or match(value) is not None else bad
    return check


_ACCURACY = {RuleCheck.identifier: _identifier, RuleCheck.allowed: _allowed, RuleCheck.range: _range,
             RuleCheck.reference: _reference, RuleCheck.pattern: _pattern}


def _consistency(table: Table, rule: ExpressionRule) -> Check:
    condition, names = compile_expression(rule.name, rule.expression, table)
    bad = Violation.of(rule, names, f"does not hold: {' '.join(rule.expression.split())}")

    def check(row: dict, today: date) -> Violation | None:
        return bad if condition(row, today) is False else None
    return check


def compile_rule(table: Table, rule: Rule) -> Check:
    """A stateless rule of a validated table as a function of (row, today)."""
    if rule.kind is RuleKind.completeness:
        return _completeness(table, rule)
    if rule.kind is RuleKind.consistency and not rule.stateful:
        return _consistency(table, rule)
    if rule.kind is RuleKind.accuracy:
        return _ACCURACY[rule.check](rule, table.column(rule.column))
    raise RuleError(f"rule {rule.name}: kind '{rule.kind.value}' is evaluated by a stateful check, not per row")


def _reads(table: Table, rule: Rule) -> Iterable[str]:
    """The columns a stateless rule reads."""
    if rule.kind is RuleKind.completeness:
        return rule.columns
    if rule.kind is RuleKind.consistency:
        return compile_expression(rule.name, rule.expression, table)[1]
    return (rule.column,)


class RuleSet:
    """A table's quality rules, compiled once; `evaluate` checks one decoded row."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.rules: list[Rule] = [r for r in table.rules if not r.stateful]
        self._stateful: list[Rule] = [r for r in table.rules if r.stateful]
        self._checks: tuple[tuple[Rule, Check], ...] = tuple((r, compile_rule(table, r)) for r in self.rules)
        self._reads: tuple[frozenset[str], ...] = tuple(frozenset(_reads(table, r)) for r in self.rules)
        read = {name for rule in self.rules for name in _reads(table, rule)}
        self.columns: tuple[str, ...] = tuple(c.name for c in table.columns if c.name in read)
        self._decoders = tuple((name, decoder(table.column(name).source_type)) for name in self.columns)

    @classmethod
    def for_table(cls, table: Table) -> "RuleSet":
        return cls(table)

    def __len__(self) -> int:
        return len(self._checks)

    @property
    def stateful(self) -> list[Rule]:
        """Rules of kinds uniqueness, integrity, timeliness and coverage, and consistency against a
        reference table: evaluated elsewhere."""
        return list(self._stateful)

    def evaluate(self, row: dict, today: date, skip: frozenset[str] = frozenset()) -> list[Violation]:
        """The violations of the stateless rules on one decoded source row (`streams.decode.decoder`'s
        values), `today` being the row's commit date. A rule that raises on an odd value (it
        cannot, for values of the declared types) is reported as a flag, not propagated."""
        violations = []
        for (rule, check), reads in zip(self._checks, self._reads):
            if skip and reads & skip:
                continue  # reads a value the change did not send (checked when it was loaded)
            try:
                found = check(row, today)
            except Exception as exc:  # noqa: BLE001 - one odd value must not stop the stream
                found = replace(Violation.of(rule, (), f"could not be evaluated ({type(exc).__name__})"),
                                action=RuleAction.flag.value)
            if found is not None:
                violations.append(found)
        return violations

    def decode(self, row: dict, skip: frozenset[str] = frozenset()) -> dict:
        """The columns the rules read, decoded from Debezium's JSON form (an `after` image);
        `skip`: columns not to decode (an unchanged value's placeholder, streams/unchanged.py).

        Raises ValueError naming the column, never the value, like TablePlan.apply."""
        out = {}
        for name, decode in self._decoders:
            value = row.get(name)
            if value is None or name in skip:
                out[name] = None
                continue
            try:
                decoded = decode(value)
            except (ValueError, TypeError, ArithmeticError, OverflowError) as exc:
                raise ValueError(f"column {name}: cannot decode a {type(value).__name__} as declared "
                                 f"({type(exc).__name__})") from None
            # Rules read text as the depersonalization does (model/fold.py): 'active' with a
            # zero-width space in it is 'active' to an allowed-values rule too.
            out[name] = fold(decoded) if decoded.__class__ is str else decoded
        return out

    @staticmethod
    def rejects(violations: Iterable[Violation]) -> list[Violation]:
        """Violations whose rule quarantines the row."""
        return [v for v in violations if v.action == "reject"]

    @staticmethod
    def holds(violations: Iterable[Violation]) -> list[Violation]:
        """Violations whose rule keeps the row out of the analysts' table until resolved."""
        return [v for v in violations if v.action == "hold"]

    @staticmethod
    def flags(violations: Iterable[Violation]) -> list[Violation]:
        """Violations that only mark the loaded row."""
        return [v for v in violations if v.action == "flag"]
