"""What the cross-row rules of every regulated table compare, compiled once for both steps."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Callable

from model import normalize
from model.fold import fold
from model.expressions import value_category
from model.regulation import IdentifierKind, Regulation, Table
from model.rules import Rule, RuleKind
from streams.decode import decoder

_LETTERS = bytes.maketrans(b"0123456789", b"ghijklmnop")


@dataclass(frozen=True)
class Column:
    name: str
    decode: Callable[[Any], Any]
    canonical: Callable[[Any], str]


def _column(table: Table, name: str, kind: IdentifierKind | None = None) -> Column:
    column = table.column(name)
    decode = decoder(column.source_type)
    kind = kind or column.kind
    normalizer = normalize.BY_KIND.get(kind.value) if kind else None

    def canonical(value: Any) -> str:
        text = fold(str(value)).strip()
        return (normalizer(text) or text) if normalizer else text

    return Column(name, decode, canonical)


@dataclass(frozen=True)
class Unique:
    rule: Rule
    columns: tuple[Column, ...]


@dataclass(frozen=True)
class Reference:
    rule: Rule
    column: Column
    target: str            # "schema.table.column" of the referenced key


@dataclass(frozen=True)
class Against:
    rule: Rule
    table: str                          # the checking table
    scope: str                          # "<table>|<rule>"
    salt: str                           # its pairs, in every digest: state written under other pairs never matches
    reference: str                      # the reference table
    match: tuple[Column, ...]           # this table's columns, then the reference table's, pair by pair
    reference_match: tuple[Column, ...]
    compare: tuple[Column, ...]
    reference_compare: tuple[Column, ...]


def _pair_error(rule: Rule, table: Table, message: str) -> ValueError:
    return ValueError(f"rule {rule.name} of {table.name}: {message}")


def _comparable(rule: Rule, table: Table, name: str, reference: Table, their_name: str,
                field: str) -> tuple[Column, Column]:
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


def _against(rule: Rule, table: Table, by_name: dict[str, tuple[Regulation, Table]]) -> Against:
    if rule.against not in by_name:
        raise _pair_error(rule, table, f"reference table {rule.against} is not regulated; declare it in a "
                                       "regulation or fix 'against'")
    reference = by_name[rule.against][1]
    match = [_comparable(rule, table, ours, reference, theirs, "match") for ours, theirs in rule.match.items()]
    compare = [_comparable(rule, table, ours, reference, theirs, "compare") for ours, theirs in rule.compare.items()]
    salt = json.dumps([rule.against, list(rule.match.items()), list(rule.compare.items())])
    return Against(rule, table.name, f"{table.name}|{rule.name}", salt, rule.against,
                   tuple(p[0] for p in match), tuple(p[1] for p in match),
                   tuple(p[0] for p in compare), tuple(p[1] for p in compare))


class CrossRowPlan:
    """The cross-row rules of every table, their digests and the canonical form of their values.

    Digests are keyed BLAKE2b, 128 bits: they are compared, never shown or joined on, so they
    need a keyed one-way function, not the pseudonyms' HMAC-SHA256. Spelled as hex with the
    letters g-p for the digits 0-9 (`_LETTERS`, a byte table): one C call each, where base32 costs a Python
    loop, and a scan reads nothing into it: no digit runs an IIN or phone check would match,
    no '-' or '_' to cut it into words a name check would (base64 did).
    """

    def __init__(self, regulations: list[Regulation], digest_key: bytes) -> None:
        # Keyed once: each digest copies this state instead of hashing the key again.
        self._keyed = hashlib.blake2b(key=digest_key, digest_size=16)
        self.unique: dict[str, list[Unique]] = {}
        self.integrity: dict[str, list[Reference]] = {}
        self.timely: dict[str, list[Rule]] = {}
        self.referenced: dict[str, list[tuple[str, Column]]] = {}   # table -> (target, its column)
        self.against: dict[str, list[Against]] = {}                 # checking table -> its rules
        self.reference_of: dict[str, list[Against]] = {}            # reference table -> the rules it serves
        self.by_scope: dict[str, Against] = {}
        self.rules: dict[tuple[str, str], Rule] = {}                # (table, rule name) -> rule
        self.tables: dict[str, tuple[Regulation, Table]] = {}
        self._reads: dict[str, frozenset[str]] = {}
        by_name = {t.name: (r, t) for r in regulations for t in r.tables}
        for regulation in regulations:
            for table in regulation.tables:
                self.tables[table.name] = (regulation, table)
                for rule in table.rules:
                    self.rules[(table.name, rule.name)] = rule
                    if rule.kind is RuleKind.uniqueness:
                        self.unique.setdefault(table.name, []).append(
                            Unique(rule, tuple(_column(table, c) for c in rule.columns)))
                    elif rule.kind is RuleKind.integrity:
                        target_table, target_column = rule.references.rsplit(".", 1)
                        if target_table not in by_name:
                            raise ValueError(f"rule {rule.name}: referenced table {target_table} is not regulated")
                        self.integrity.setdefault(table.name, []).append(
                            Reference(rule, _column(table, rule.column), rule.references))
                        entry = (rule.references, _column(by_name[target_table][1], target_column))
                        if entry[0] not in [t for t, _ in self.referenced.get(target_table, [])]:
                            self.referenced.setdefault(target_table, []).append(entry)
                    elif rule.kind is RuleKind.consistency and rule.stateful:  # against a reference table
                        against = self.by_scope[f"{table.name}|{rule.name}"] = _against(rule, table, by_name)
                        self.against.setdefault(table.name, []).append(against)
                        self.reference_of.setdefault(rule.against, []).append(against)
                    elif rule.kind is RuleKind.timeliness:
                        self.timely.setdefault(table.name, []).append(rule)

    def reads(self, table: str) -> frozenset[str]:
        """The columns of `table` its claims read."""
        found = self._reads.get(table)
        if found is None:
            names = [c.name for u in self.unique.get(table, ()) for c in u.columns]
            names += [c.name for _, c in self.referenced.get(table, ())]
            names += [r.column.name for r in self.integrity.get(table, ())]
            names += [c.name for a in self.against.get(table, ()) for c in (*a.match, *a.compare)]
            names += [c.name for a in self.reference_of.get(table, ())
                      for c in (*a.reference_match, *a.reference_compare)]
            found = self._reads[table] = frozenset(names)
        return found

    def compares(self, table: str) -> bool:
        """Whether rows of `table` make claims (the table has cross-row rules or serves one)."""
        return bool(self.unique.get(table) or self.integrity.get(table) or self.referenced.get(table)
                    or self.against.get(table) or self.reference_of.get(table))

    def digest(self, *parts: str) -> str:
        data = "\x1f".join(parts).encode()  # parts are text; no part holds a unit separator
        hasher = self._keyed.copy()
        hasher.update(data)
        return hasher.hexdigest().encode().translate(_LETTERS).decode()

    @staticmethod
    def canonical(column: Column, row: dict) -> str | None:
        raw = row.get(column.name)
        if raw is None:
            return None
        try:
            return column.canonical(column.decode(raw))
        except (ValueError, TypeError, ArithmeticError):
            return None  # an undecodable value is reported by the row's own checks

    def values_of(self, columns: tuple[Column, ...], row: dict) -> tuple[str, ...] | None:
        values = tuple(self.canonical(column, row) for column in columns)
        # An empty identifier is completeness's business, not a cross-row rule's.
        return None if None in values else values

    def compared(self, against: Against, columns: tuple[Column, ...], row: dict) -> list[str | None]:
        """One digest per compare pair (None for a null), labelled by the checking table's column
        so that both sides of a pair digest alike."""
        values = [self.canonical(column, row) for column in columns]
        return [None if value is None else self.digest(against.salt, ours.name, value)
                for value, ours in zip(values, against.compare)]
