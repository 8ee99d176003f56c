"""Quality rules that need more than the row: uniqueness, integrity, consistency against a
reference table, and timeliness.

The state lives in mappings the caller provides: in the processor they are the stores of
streams/state_store.py, logged to a compacted topic in each batch's transaction, so the state
survives restarts; in unit tests they are dicts. State never holds a clear value: identifier values are stored as keyed digests
(HMAC under the `quality-state` subkey), row keys as their JSON.

- uniqueness: the identifier columns of a rule never repeat across the stream. Each value
  digest maps to the rows that hold it, each row to its value digest, so an update that
  changes the value or a delete frees the row's old value.
- integrity: a referenced key exists. Rows of the referenced table keep a digest set; a row
  whose reference is missing waits `grace_seconds` for the referenced row to arrive, then its
  rule reports an incident (the row itself is already loaded: integrity never rejects or holds).
- consistency `against` a reference table: each row of the reference table keeps, under the
  digest of its `match` values, its key and one digest per `compare` column (`references`), and
  `owners` maps its key back to that match digest, since a delete's before image holds only the
  key. A row of the checking table whose reference row is known is judged on arrival, and its
  rule's action applies to it; one whose reference row is not known yet waits `grace_seconds`
  in `pending`, then a contradiction is reported as an incident (the row is already loaded) and
  a still missing reference row is integrity's business, not this rule's. A null on either side
  of a compared pair is no contradiction: completeness rules report missing values.
- timeliness: the lag from source commit to processing exceeds `max_lag_seconds`.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import MutableMapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable

from model.regulation import IdentifierKind, Regulation, Table
from model.rules import Rule, RuleAction, RuleKind
from model import normalize
from streams.keys import base32
from model.expressions import value_category
from schemas.envelope import Change
from streams.decode import decoder
from streams.quality import Violation


@dataclass(frozen=True)
class _Column:
    name: str
    decode: Callable[[Any], Any]
    canonical: Callable[[Any], str]


def _column(table: Table, name: str, kind: IdentifierKind | None = None) -> _Column:
    column = table.column(name)
    decode = decoder(column.source_type)
    kind = kind or column.kind
    normalizer = normalize.BY_KIND.get(kind.value) if kind else None

    def canonical(value: Any) -> str:
        text = str(value).strip()
        return (normalizer(text) or text) if normalizer else text

    return _Column(name, decode, canonical)


@dataclass(frozen=True)
class _Unique:
    rule: Rule
    columns: tuple[_Column, ...]


@dataclass(frozen=True)
class _Reference:
    rule: Rule
    column: _Column
    target: str            # "schema.table.column" of the referenced key


@dataclass(frozen=True)
class _Against:
    rule: Rule
    scope: str                          # "<table>|<rule>": the prefix of its state keys
    salt: str                           # its pairs, in every digest: state written under other pairs never matches
    reference: str                      # the reference table
    match: tuple[_Column, ...]          # this table's columns, then the reference table's, pair by pair
    reference_match: tuple[_Column, ...]
    compare: tuple[_Column, ...]
    reference_compare: tuple[_Column, ...]


def _pair_error(rule: Rule, table: Table, message: str) -> ValueError:
    return ValueError(f"rule {rule.name} of {table.name}: {message}")


def _comparable(rule: Rule, table: Table, name: str, reference: Table, their_name: str,
                field: str) -> tuple[_Column, _Column]:
    """One pair of `match` or `compare`, canonicalized alike on both sides."""
    if their_name not in {c.name for c in reference.columns}:
        raise _pair_error(rule, table, f"'{field}' names column {their_name!r}, which {reference.name} does not "
                                       f"declare ({', '.join(c.name for c in reference.columns)}); fix the name")
    ours, theirs = table.column(name), reference.column(their_name)
    if ours.kind and theirs.kind and ours.kind is not theirs.kind:
        raise _pair_error(rule, table, f"{name} holds {ours.kind.value} but {reference.name}.{their_name} holds "
                                       f"{theirs.kind.value}; pair columns of the same kind in '{field}'")
    category = value_category(ours)
    if category != value_category(theirs):
        raise _pair_error(rule, table, f"{name} is {ours.type} but {reference.name}.{their_name} is {theirs.type}; "
                                       f"pair columns of the same type in '{field}'")
    # One normalizer for both sides, so that every spelling of one identifier matches.
    kind = ours.kind or theirs.kind
    pair = (_column(table, name, kind), _column(reference, their_name, kind))
    if category == "number":
        # numeric(14,2) decodes 100 as Decimal('100.00'), an integer column as 100: the same number.
        pair = tuple(replace(c, canonical=lambda value: format(Decimal(str(value)).normalize(), "f")) for c in pair)
    return pair


def _against(rule: Rule, table: Table, by_name: dict[str, tuple[Regulation, Table]]) -> _Against:
    if rule.against not in by_name:
        raise _pair_error(rule, table, f"reference table {rule.against} is not regulated; declare it in a "
                                       "regulation or fix 'against'")
    reference = by_name[rule.against][1]
    match = [_comparable(rule, table, ours, reference, theirs, "match") for ours, theirs in rule.match.items()]
    compare = [_comparable(rule, table, ours, reference, theirs, "compare") for ours, theirs in rule.compare.items()]
    salt = json.dumps([rule.against, list(rule.match.items()), list(rule.compare.items())])
    return _Against(rule, f"{table.name}|{rule.name}", salt, rule.against,
                    tuple(p[0] for p in match), tuple(p[1] for p in match),
                    tuple(p[0] for p in compare), tuple(p[1] for p in compare))


class StatefulRules:
    def __init__(self, regulations: list[Regulation], digest_key: bytes, values: MutableMapping,
                 owners: MutableMapping, references: MutableMapping, pending: MutableMapping) -> None:
        self._key = digest_key
        self._values, self._owners, self._refs, self._pending = values, owners, references, pending
        self._unique: dict[str, list[_Unique]] = {}
        self._integrity: dict[str, list[_Reference]] = {}
        self._timely: dict[str, list[Rule]] = {}
        self._referenced: dict[str, list[tuple[str, _Column]]] = {}   # table -> (target, column)
        self._against: dict[str, list[_Against]] = {}     # checking table -> its rules against another
        self._reference_of: dict[str, list[_Against]] = {}  # reference table -> the rules it is the reference of
        self._by_scope: dict[str, _Against] = {}
        self._tables: dict[str, tuple[Regulation, Table]] = {}
        by_name = {t.name: (r, t) for r in regulations for t in r.tables}
        for regulation in regulations:
            for table in regulation.tables:
                self._tables[table.name] = (regulation, table)
                for rule in table.rules:
                    if rule.kind is RuleKind.uniqueness:
                        self._unique.setdefault(table.name, []).append(
                            _Unique(rule, tuple(_column(table, c) for c in rule.columns)))
                    elif rule.kind is RuleKind.integrity:
                        target_table, target_column = rule.references.rsplit(".", 1)
                        if target_table not in by_name:
                            raise ValueError(f"rule {rule.name}: referenced table {target_table} is not regulated")
                        self._integrity.setdefault(table.name, []).append(
                            _Reference(rule, _column(table, rule.column), rule.references))
                        referenced = by_name[target_table][1]
                        entry = (rule.references, _column(referenced, target_column))
                        if entry not in self._referenced.setdefault(target_table, []):
                            self._referenced[target_table].append(entry)
                    elif rule.kind is RuleKind.consistency and rule.stateful:  # against a reference table
                        against = self._by_scope[f"{table.name}|{rule.name}"] = _against(rule, table, by_name)
                        self._against.setdefault(table.name, []).append(against)
                        self._reference_of.setdefault(rule.against, []).append(against)
                    elif rule.kind is RuleKind.timeliness:
                        self._timely.setdefault(table.name, []).append(rule)

    def _digest(self, *parts: str) -> str:
        # Keyed BLAKE2b, 128 bits: state digests are compared, never shown or joined on, so
        # they need a keyed one-way function, not the pseudonyms' HMAC-SHA256. Base32 like the
        # pseudonyms: base64's '-' and '_' cut its letters into words that `qoima scan` took
        # for known names.
        data = "\x1f".join(parts).encode()  # parts are text; no part holds a unit separator
        return base32(hashlib.blake2b(data, key=self._key, digest_size=16).digest())

    def observe(self, table: Table, change: Change, now_ms: int) -> list[Violation]:
        """Update the state with one change; the violations of its row (not integrity's)."""
        row, name = change.row, table.name
        # The row's key as a digest too: a hashed primary key (an IIN) is a clear identifier.
        pk = self._digest(name, json.dumps([row.get(k) for k in table.primary_key], default=str))
        violations = []
        for rule in self._timely.get(name, []):
            if not change.is_delete and now_ms - change.source_ts_ms > rule.max_lag_seconds * 1000:
                violations.append(Violation.of(rule, (), f"processed more than {rule.max_lag_seconds} s "
                                                       "after the source commit"))
        for unique in self._unique.get(name, []):
            violation = self._observe_unique(name, unique, row, pk, change.is_delete)
            if violation:
                violations.append(violation)
        for target, column in self._referenced.get(name, []):
            self._observe_referenced(target, column, row, pk, change.is_delete)
        if not change.is_delete:
            for reference in self._integrity.get(name, []):
                self._observe_reference(name, reference, row, pk, now_ms)
        for against in self._reference_of.get(name, []):
            self._observe_reference_row(against, row, pk, change.is_delete)
        for against in self._against.get(name, []):
            violation = self._observe_against(against, row, pk, change.is_delete, now_ms)
            if violation:
                violations.append(violation)
        return violations

    def forget(self, table: str) -> int:
        """A TRUNCATE of `table`: drop every entry its rows made (their identifiers, the
        references they provide, the rows of it still waiting); the number of entries dropped."""
        # Its uniqueness rules' keys; its rows as the reference of another table's rule (under
        # that rule's scope); the digests its columns provide to integrity rules; its own rows
        # waiting (integrity and consistency). Nothing of another table's rows.
        unique = tuple(f"{table}|{u.rule.name}|" for u in self._unique.get(table, []))
        scopes = tuple(f"{against.scope}|" for against in self._reference_of.get(table, []))
        prefixes = {
            id(self._values): unique,
            id(self._owners): (*unique, *scopes),
            id(self._refs): (f"{table}.", *scopes),
            id(self._pending): (f"{table}|",),
        }
        dropped = 0
        for mapping in (self._values, self._owners, self._refs, self._pending):
            for key in [k for k in list(mapping.keys()) if k.startswith(prefixes[id(mapping)])]:
                del mapping[key]
                dropped += 1
        return dropped

    @staticmethod
    def _canonical(column: _Column, row: dict) -> str | None:
        raw = row.get(column.name)
        if raw is None:
            return None
        try:
            return column.canonical(column.decode(raw))
        except (ValueError, TypeError, ArithmeticError):
            return None  # an undecodable value is reported by the row's own checks

    def _values_of(self, columns: tuple[_Column, ...], row: dict) -> tuple[str, ...] | None:
        values = tuple(self._canonical(column, row) for column in columns)
        # An empty identifier is completeness's business, not uniqueness's.
        return None if None in values else values

    def _observe_unique(self, table: str, unique: _Unique, row: dict, pk: str, deleted: bool) -> Violation | None:
        owner_key = f"{table}|{unique.rule.name}|{pk}"
        previous = self._owners.get(owner_key)
        values = None if deleted else self._values_of(unique.columns, row)
        digest = None if values is None else self._digest(table, unique.rule.name, *values)
        if previous and previous != digest:
            value_key = f"{table}|{unique.rule.name}|{previous}"
            holders = [h for h in self._values.get(value_key) or [] if h != pk]
            if holders:
                self._values[value_key] = holders
            else:
                self._values.pop(value_key, None)
            del self._owners[owner_key]
        if digest is None:
            return None
        value_key = f"{table}|{unique.rule.name}|{digest}"
        holders = self._values.get(value_key) or []
        if pk not in holders:
            # Assigned, not appended: a store logs a key when it is assigned, not when a list it holds grows.
            self._values[value_key] = holders = [*holders, pk]
        self._owners[owner_key] = digest
        if holders == [pk]:
            return None
        names = ", ".join(c.name for c in unique.columns)
        return Violation.of(unique.rule, tuple(c.name for c in unique.columns),
                          f"{names}: the same value as another row")

    def _observe_referenced(self, target: str, column: _Column, row: dict, pk: str, deleted: bool) -> None:
        raw = row.get(column.name)
        if raw is None:
            return
        key = f"{target}|{self._digest(target, column.canonical(column.decode(raw)))}"
        if deleted:
            if self._refs.get(key) == pk:
                del self._refs[key]
        else:
            self._refs[key] = pk

    def _observe_reference(self, table: str, reference: _Reference, row: dict, pk: str, now_ms: int) -> None:
        raw = row.get(reference.column.name)
        pending_key = f"{table}|{reference.rule.name}|{pk}"
        if raw is None:
            self._pending.pop(pending_key, None)
            return
        digest = self._digest(reference.target, reference.column.canonical(reference.column.decode(raw)))
        if f"{reference.target}|{digest}" in self._refs:
            self._pending.pop(pending_key, None)
        else:
            self._pending[pending_key] = [now_ms + reference.rule.grace_seconds * 1000, digest, reference.target]

    def _compared(self, against: _Against, columns: tuple[_Column, ...], row: dict) -> list[str | None]:
        """One digest per compare pair (None for a null), labelled by this table's column so that
        both sides of a pair digest alike."""
        values = [self._canonical(column, row) for column in columns]
        return [None if value is None else self._digest(against.salt, ours.name, value)
                for value, ours in zip(values, against.compare)]

    def _observe_reference_row(self, against: _Against, row: dict, pk: str, deleted: bool) -> None:
        row_key = f"{against.scope}|{pk}"
        previous = self._owners.get(row_key)
        values = None if deleted else self._values_of(against.reference_match, row)
        digest = None if values is None else self._digest(against.salt, *values)
        if previous and previous != digest:
            old_key = f"{against.scope}|{previous}"
            if (self._refs.get(old_key) or [None])[0] == pk:  # not if a duplicate has taken it over since
                del self._refs[old_key]
            del self._owners[row_key]
        if digest is None:
            return
        entry = [pk, self._compared(against, against.reference_compare, row)]
        # Assigned only on change: a store logs every assignment.
        if self._refs.get(f"{against.scope}|{digest}") != entry:
            self._refs[f"{against.scope}|{digest}"] = entry
        if previous != digest:
            self._owners[row_key] = digest

    def _observe_against(self, against: _Against, row: dict, pk: str, deleted: bool, now_ms: int) -> Violation | None:
        pending_key = f"{against.scope}|{pk}"
        values = None if deleted else self._values_of(against.match, row)
        compared = [] if values is None else self._compared(against, against.compare, row)
        if not any(compared):  # no reference to look for, or nothing that could contradict it
            self._pending.pop(pending_key, None)
            return None
        digest = self._digest(against.salt, *values)
        reference = self._refs.get(f"{against.scope}|{digest}")
        if reference is None:
            self._pending[pending_key] = [now_ms + against.rule.grace_seconds * 1000, digest, compared]
            return None
        self._pending.pop(pending_key, None)
        return self._contradiction(against, compared, reference[1])

    @staticmethod
    def _contradiction(against: _Against, ours: list, theirs: list, late: bool = False) -> Violation | None:
        pairs = [(mine, other) for mine, other, a, b in zip(against.compare, against.reference_compare, ours, theirs)
                 if a is not None and b is not None and a != b]
        if not pairs:
            return None
        names = ", ".join(mine.name for mine, _ in pairs)
        problem = (f"{names}: not as in {against.reference} "
                   f"({', '.join(f'{against.reference}.{other.name}' for _, other in pairs)})")
        if late:
            problem += ", whose row arrived after this one"
        return Violation.of(against.rule, tuple(mine.name for mine, _ in pairs), problem)

    def expire(self, now_ms: int) -> list[tuple[Regulation, Table, Violation]]:
        """Rows whose grace period is over: a reference still missing (integrity) or arrived and
        contradicting (consistency) is one violation each; either way the row is forgotten."""
        expired = []
        for pending_key, entry in list(self._pending.items()):
            if entry[0] > now_ms:
                continue
            del self._pending[pending_key]
            table_name, rule_name, _ = pending_key.split("|", 2)
            if table_name not in self._tables:
                continue  # no longer regulated
            regulation, table = self._tables[table_name]
            violation = self._expired(table, rule_name, entry)
            if violation is not None:
                expired.append((regulation, table, violation))
        return expired

    def _expired(self, table: Table, rule_name: str, entry: list) -> Violation | None:
        against = self._by_scope.get(f"{table.name}|{rule_name}")
        if against is not None:
            _, digest, compared = entry
            reference = self._refs.get(f"{against.scope}|{digest}")
            if reference is None:
                return None  # still missing: an integrity rule's business
            violation = self._contradiction(against, compared, reference[1], late=True)
            # The row is loaded already: what is left is the incident.
            return violation and replace(violation, action=RuleAction.flag.value)
        rule = next((r for r in table.rules if r.name == rule_name and r.kind is RuleKind.integrity), None)
        if rule is None:
            return None  # the rule was removed or changed since
        _, digest, target = entry
        if f"{target}|{digest}" in self._refs:
            return None
        return Violation.of(rule, (rule.column,), f"{rule.column}: no {target} row after {rule.grace_seconds} s")
