"""Quality rules that need more than the row: uniqueness, integrity and timeliness.

The state lives in mappings the caller provides: in the processor they are Faust tables,
backed by changelog topics, so the state survives restarts and rebalances; in unit tests they
are dicts. State never holds a clear value: identifier values are stored as keyed digests
(HMAC under the `quality-state` subkey), row keys as their JSON.

- uniqueness: the identifier columns of a rule never repeat across the stream. Each value
  digest maps to the rows that hold it, each row to its value digest, so an update that
  changes the value or a delete frees the row's old value.
- integrity: a referenced key exists. Rows of the referenced table keep a digest set; a row
  whose reference is missing waits `grace_seconds` for the referenced row to arrive, then its
  rule reports an incident (the row itself is already loaded: integrity never rejects or holds).
- timeliness: the lag from source commit to processing exceeds `max_lag_seconds`.
"""
from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Callable

from connectors.regulation import Regulation, Rule, RuleKind, Table
from streams import normalize
from streams.envelope import Change
from streams.keys import pseudonym
from streams.pg_types import parse_pg_type
from streams.quality import Violation, _violation


@dataclass(frozen=True)
class _Column:
    name: str
    decode: Callable[[Any], Any]
    canonical: Callable[[Any], str]


def _column(table: Table, name: str) -> _Column:
    column = table.column(name)
    decode = parse_pg_type(column.type).decode
    normalizer = normalize.BY_KIND.get(column.kind.value) if column.kind else None

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


class StatefulRules:
    def __init__(self, regulations: list[Regulation], digest_key: bytes, values: MutableMapping,
                 owners: MutableMapping, references: MutableMapping, pending: MutableMapping) -> None:
        self._key = digest_key
        self._values, self._owners, self._refs, self._pending = values, owners, references, pending
        self._unique: dict[str, list[_Unique]] = {}
        self._integrity: dict[str, list[_Reference]] = {}
        self._timely: dict[str, list[Rule]] = {}
        self._referenced: dict[str, list[tuple[str, _Column]]] = {}   # table -> (target, column)
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
                    elif rule.kind is RuleKind.timeliness:
                        self._timely.setdefault(table.name, []).append(rule)

    def _digest(self, *parts: str) -> str:
        return pseudonym(self._key, json.dumps(parts, ensure_ascii=False).encode(), 26)

    def observe(self, table: Table, change: Change, now_ms: int) -> list[Violation]:
        """Update the state with one change; the violations of its row (not integrity's)."""
        row, name = change.row, table.name
        pk = json.dumps([row.get(k) for k in table.primary_key], default=str)
        violations = []
        for rule in self._timely.get(name, []):
            if not change.is_delete and now_ms - change.source_ts_ms > rule.max_lag_seconds * 1000:
                violations.append(_violation(rule, (), f"processed more than {rule.max_lag_seconds} s "
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
        return violations

    def _values_of(self, columns: tuple[_Column, ...], row: dict) -> tuple[str, ...] | None:
        values = []
        for column in columns:
            raw = row.get(column.name)
            if raw is None:
                return None  # an empty identifier is completeness's business, not uniqueness's
            try:
                values.append(column.canonical(column.decode(raw)))
            except (ValueError, TypeError, ArithmeticError):
                return None  # an undecodable value is reported by the row's own checks
        return tuple(values)

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
            # Assigned, not appended: a Faust table sends its changelog on assignment only.
            self._values[value_key] = holders = [*holders, pk]
        self._owners[owner_key] = digest
        if holders == [pk]:
            return None
        names = ", ".join(c.name for c in unique.columns)
        return _violation(unique.rule, tuple(c.name for c in unique.columns),
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

    def expire(self, now_ms: int) -> list[tuple[Regulation, Table, Violation]]:
        """References still missing after their grace period: one violation each, then forgotten."""
        expired = []
        for pending_key, (deadline, digest, target) in list(self._pending.items()):
            if deadline > now_ms:
                continue
            del self._pending[pending_key]
            if f"{target}|{digest}" in self._refs:
                continue
            table_name, rule_name, _ = pending_key.split("|", 2)
            regulation, table = self._tables[table_name]
            rule = next(r for r in table.rules if r.name == rule_name)
            expired.append((regulation, table, _violation(
                rule, (rule.column,), f"{rule.column}: no {target} row after {rule.grace_seconds} s")))
        return expired
