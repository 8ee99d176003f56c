"""Column actions from the regulation, compiled once per table and applied to every row.

A row leaves this module with no clear identifier: hashed columns carry an HMAC pseudonym,
dropped columns are gone, generalized columns hold only the coarse value. A value that fails
its identifier's validation is never hashed as if it were valid: it gets the `invalid:`
marker (a keyed hash under a separate subkey, so equal bad values still group together)
and is reported as a defect by column name only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from connectors.regulation import Action, Generalization, Table
from streams import normalize
from streams.keys import KeyRing, pseudonym
from streams.pg_types import parse_pg_type

INVALID_PREFIX = "invalid:"


@dataclass(frozen=True)
class Defect:
    column: str
    problem: str  # never contains the value itself


class _Hasher:
    def __init__(self, ring: KeyRing, kind: str) -> None:
        self._key = ring.subkey(kind)
        self._invalid_key = ring.subkey(f"invalid/{kind}")
        self._normalize = normalize.BY_KIND[kind]

    def __call__(self, value: str) -> tuple[str, bool]:
        canonical = self._normalize(value)
        if canonical is None:
            return INVALID_PREFIX + pseudonym(self._invalid_key, value.encode(), 26), False
        return pseudonym(self._key, canonical.encode()), True


def _kato_region(code: str) -> str | None:
    code = code.strip()
    return code[:2] if len(code) == 9 and code.isdigit() else None


@dataclass(frozen=True)
class _Step:
    source: str
    output: str
    action: Action
    apply: Callable[[Any], Any]
    kind: str | None = None


class TablePlan:
    """What happens to each column of one table, with decoding and depersonalization fused."""

    def __init__(self, table: Table, ring: KeyRing) -> None:
        self.table = table
        self.key_id = ring.key_id
        self.steps: list[_Step] = []
        hashers: dict[str, _Hasher] = {}
        for column in table.columns:
            if column.action is Action.drop:
                continue
            decode = parse_pg_type(column.type).decode
            if column.action is Action.hash:
                kind = column.kind.value
                hasher = hashers.setdefault(kind, _Hasher(ring, kind))
                self.steps.append(_Step(column.name, column.output_name, column.action, hasher, kind))
            elif column.action is Action.generalize and column.to is Generalization.year:
                self.steps.append(_Step(column.name, column.output_name, column.action,
                                        lambda v, d=decode: d(v).year))
            elif column.action is Action.generalize:
                self.steps.append(_Step(column.name, column.output_name, column.action,
                                        lambda v, d=decode: _kato_region(d(v)), "kato"))
            else:
                self.steps.append(_Step(column.name, column.output_name, column.action, decode))
        self.output_columns = [s.output for s in self.steps]

    def apply(self, row: dict[str, Any]) -> tuple[dict[str, Any], list[Defect]]:
        """Depersonalize one source row (Debezium's `after` or `before`).

        Raises ValueError naming the column (not the value) when a value cannot be decoded.
        """
        out: dict[str, Any] = {}
        defects: list[Defect] = []
        for step in self.steps:
            value = row.get(step.source)
            if value is None:
                out[step.output] = None
                continue
            try:
                result = step.apply(value)
            except (ValueError, TypeError, ArithmeticError, OverflowError) as exc:
                # The exception text may quote the value; keep only its type.
                raise ValueError(f"column {step.source}: cannot decode a {type(value).__name__} "
                                 f"as declared ({type(exc).__name__})") from None
            if step.action is Action.hash:
                result, valid = result
                if not valid:
                    defects.append(Defect(step.source, f"not a valid {step.kind}"))
            elif step.kind == "kato" and result is None:
                defects.append(Defect(step.source, "not a 9-digit KATO code"))
            out[step.output] = result
        return out, defects

    def salvage(self, row: dict[str, Any]) -> dict[str, Any]:
        """Whatever columns can be depersonalized, for a quarantined event; the rest omitted."""
        out: dict[str, Any] = {}
        for step in self.steps:
            value = row.get(step.source)
            try:
                result = None if value is None else step.apply(value)
            except (ValueError, TypeError, ArithmeticError, OverflowError):
                continue
            out[step.output] = result[0] if step.action is Action.hash and result else result
        return out

    def key_only(self, row: dict[str, Any]) -> dict[str, Any]:
        """The depersonalized primary key of a delete event; every other column is null."""
        keys = set(self.table.primary_key)
        full, _ = self.apply({k: v for k, v in row.items() if k in keys})
        return full


def plans_for(tables: list[Table], ring: KeyRing) -> dict[str, TablePlan]:
    return {t.name: TablePlan(t, ring) for t in tables}

