"""Bring existing ClickHouse tables in line with the regulation, where that is safe.

The regulation is the contract: a column exists in the warehouse because the regulation
declares it (with its privacy action), so Qoima changes warehouse tables when the regulation
changes, never on its own guess from source events. At start the sink compares each table's
columns in ClickHouse with the regulation's and
- adds a column the regulation now declares (existing rows read NULL, or the type's default
  for a non-nullable column, until a `qoima snapshot` refills them);
- widens a column whose new type holds every value of the old one (Int32 -> Int64,
  Float32 -> Float64, Decimal(p,s) -> Decimal(p',s') with room for as many integer and
  fractional digits, Date -> Date32, T -> Nullable(T), String <-> LowCardinality(String));
- leaves a column the regulation no longer declares where it is: its history stays queryable;
- refuses anything else (narrowing, another type family, Nullable -> not Nullable) with a
  message that names the column and what to do: the sink does not start until an operator
  decides, so no row is written under the wrong type.
docs/schema-evolution.md describes every case end to end.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_INTS = ["Int8", "Int16", "Int32", "Int64", "Int128", "Int256"]
_UINTS = ["UInt8", "UInt16", "UInt32", "UInt64", "UInt128", "UInt256"]
_DECIMAL = re.compile(r"^Decimal\((\d+),\s*(\d+)\)$")


class SchemaEvolutionError(RuntimeError):
    """A warehouse column cannot follow the regulation without an operator."""


def _unwrap(ch_type: str, wrapper: str) -> tuple[str, bool]:
    prefix = f"{wrapper}("
    if ch_type.startswith(prefix) and ch_type.endswith(")"):
        return ch_type[len(prefix):-1], True
    return ch_type, False


def _normal(ch_type: str) -> str:
    return re.sub(r",\s*", ", ", ch_type.strip())


def widens(old: str, new: str) -> bool:
    """True when every value of ClickHouse type `old` is a value of `new`, unchanged."""
    old, new = _normal(old), _normal(new)
    if old == new:
        return True
    old_inner, old_lc = _unwrap(old, "LowCardinality")
    new_inner, new_lc = _unwrap(new, "LowCardinality")
    if old_lc or new_lc:
        return widens(old_inner, new_inner)
    old_inner, old_null = _unwrap(old, "Nullable")
    new_inner, new_null = _unwrap(new, "Nullable")
    if old_null and not new_null:
        return False
    if old_null or new_null:
        return widens(old_inner, new_inner)
    for ladder in (_INTS, _UINTS):
        if old in ladder and new in ladder:
            return ladder.index(new) >= ladder.index(old)
    if old in _UINTS and new in _INTS:
        return _INTS.index(new) > _UINTS.index(old)
    if (old, new) in {("Float32", "Float64"), ("Date", "Date32")}:
        return True
    old_dec, new_dec = _DECIMAL.match(old), _DECIMAL.match(new)
    if old_dec and new_dec:
        (p, s), (p2, s2) = map(int, old_dec.groups()), map(int, new_dec.groups())
        return s2 >= s and p2 - s2 >= p - s
    return False


@dataclass(frozen=True)
class Alteration:
    table: str            # database.`name`
    statement: str
    change: str           # for the log: what and why


def plan(table: str, existing: dict[str, str], wanted: list[tuple[str, str]]) -> list[Alteration]:
    """ALTER statements that make `table` (existing: column -> type) hold the `wanted` columns.

    Raises SchemaEvolutionError naming every column that cannot follow safely."""
    alterations, refused = [], []
    for name, ch_type in wanted:
        if name not in existing:
            alterations.append(Alteration(table, f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS `{name}` {ch_type}",
                                          f"{table}.{name}: added as {ch_type} (the regulation declares it now)"))
        elif _normal(existing[name]) != _normal(ch_type):
            if widens(existing[name], ch_type):
                alterations.append(Alteration(table, f"ALTER TABLE {table} MODIFY COLUMN `{name}` {ch_type}",
                                              f"{table}.{name}: widened from {existing[name]} to {ch_type}"))
            else:
                refused.append(f"{table}.{name}: ClickHouse has {existing[name]}, the regulation now gives "
                               f"{ch_type}, which does not hold every value of the old type")
    if refused:
        raise SchemaEvolutionError(
            "the warehouse cannot follow the regulation safely:\n  " + "\n  ".join(refused)
            + "\nKeep the old type in the regulation, or migrate the table by hand (docs/schema-evolution.md).")
    return alterations
