"""Unchanged large values: what Debezium sends in their place, and which columns of a row hold it.

PostgreSQL stores a large value (over about 2 kB after compression) out of line, in TOAST. Under
REPLICA IDENTITY DEFAULT, the one most state-body databases use, an UPDATE that does not touch
such a value writes no copy of it to the WAL, and Debezium sends a placeholder instead
(`unavailable.value.placeholder`, default `__debezium_unavailable_value`), spelled per type as
observed on the local stack (Debezium 3.0.8, PostgreSQL 15):
- text, varchar, char, json, jsonb: the placeholder itself;
- a text array: a one-element array of it; an integer array: the placeholder's UTF-8 bytes as
  numbers (28 elements);
- bytea: null, which cannot be told from a real NULL. docs/type-mapping.md ("Unchanged large
  values") says why a table with a bytea column needs REPLICA IDENTITY FULL.

A placeholder is never decoded, hashed, redacted, scanned, judged or loaded as a value: the
column goes out empty and is named in the clean record's `_unchanged`, and the sink fills it
from the row's latest loaded version (sinks/unchanged.py). REPLICA IDENTITY FULL makes Debezium
send the value itself, and none of this applies.
"""
from __future__ import annotations

from typing import Any

from model.regulation import Action, Table

PLACEHOLDER = "__debezium_unavailable_value"
_AS_BYTES = list(PLACEHOLDER.encode())
_AS_ARRAY = [PLACEHOLDER]


def is_placeholder(value: Any) -> bool:
    if value.__class__ is str:
        return value == PLACEHOLDER
    return value.__class__ is list and (value == _AS_ARRAY or value == _AS_BYTES)


class UnchangedColumns:
    """Which columns of one table's UPDATE events may carry the placeholder, found once."""

    def __init__(self, table: Table) -> None:
        # Only variable-length types are stored out of line; a dropped column is never read.
        self.columns = tuple(c.name for c in table.columns
                             if c.action is not Action.drop and _may_be_toasted(c.source_type.family))

    def of(self, op: str, row: dict[str, Any]) -> frozenset[str]:
        """The source columns of an `op` event's row that hold the placeholder (none but in updates)."""
        if op != "u" or not self.columns:
            return frozenset()
        return frozenset(name for name in self.columns if is_placeholder(row.get(name)))


_TOASTABLE = {"text", "varchar", "char", "json", "jsonb", "bytea", "array", "numeric"}


def _may_be_toasted(family: str) -> bool:
    return family in _TOASTABLE
