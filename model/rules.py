"""Data-quality rules of a table (DM385 §35, §49): what a regulation's `rules:` may declare.

A table's `rules:` (docs/regulation.md, "Quality rules") declare what a correct row looks like:

- completeness: the listed columns are not empty (null, or text of only spaces);
- accuracy: one column passes a check: `identifier` (a valid IIN, BIN, phone... as the
  normalizers of model/normalize.py accept it), `allowed` (one of `values`), `range`
  (`min` <= value <= `max`), `reference` (a code known to reference data in
  model/reference/) or `pattern` (a regular expression the whole value matches);
- consistency: an `expression` over the row's columns holds (model/expressions.py), or the
  row agrees with the matching row of a reference table (`against`, `match`, `compare`);
- uniqueness, integrity, timeliness, coverage: across rows, tables, the clock or the source.

Every kind is a model of its own, and every accuracy check too; `Rule` is their union, told
apart by `kind`, then by `check` (accuracy) or by whether `against` is given (consistency). A
model's fields are the parameters its kind takes, so a missing one is named with what to
write (the field's description) and one of another kind is refused with the list of those
this kind takes, before pydantic's own, terser errors. `validate_rules` checks the rules
against their table's columns when the regulation is loaded; streams/quality.py evaluates the
stateless kinds per row, streams/stateful_rules.py the stateful ones (`Rule.stateful`).
"""
from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Annotated, Any, Iterable, Literal, Protocol, Union, get_args

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, TypeAdapter,
                      field_validator, model_validator)
from pydantic_core import ErrorDetails

from model.expressions import ColumnsOf, TypedColumn, compile_expression, value_category
from model.identifiers import IdentifierKind
from model.reference import ReferenceDataError, load_reference

_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_COLUMN_PATH = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")
_TABLE_PATH = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class RuleError(ValueError):
    """A rule does not fit its table; the message names the rule and says what to fix."""


class RuleKind(str, Enum):
    """DM385 §35 quality indicators; `incident_type` is the §49 incident type a violation raises."""

    completeness = "completeness"
    accuracy = "accuracy"
    consistency = "consistency"
    uniqueness = "uniqueness"
    integrity = "integrity"
    timeliness = "timeliness"
    coverage = "coverage"

    @property
    def incident_type(self) -> str:
        return _INCIDENT_TYPES[self]

    @property
    def stateful(self) -> bool:
        """Needs other rows, tables or the clock, so it is not evaluated per row (streams/quality.py)."""
        return self in _STATEFUL_KINDS


_INCIDENT_TYPES = {
    RuleKind.completeness: "completeness", RuleKind.accuracy: "accuracy_contradiction",
    RuleKind.consistency: "consistency", RuleKind.uniqueness: "uniqueness", RuleKind.integrity: "integrity",
    RuleKind.timeliness: "timeliness", RuleKind.coverage: "coverage",
}
_STATEFUL_KINDS = frozenset({RuleKind.uniqueness, RuleKind.integrity, RuleKind.timeliness, RuleKind.coverage})


class RuleCheck(str, Enum):
    identifier = "identifier"
    allowed = "allowed"
    range = "range"
    reference = "reference"
    pattern = "pattern"


class RuleAction(str, Enum):
    reject = "reject"   # quarantined, not loaded
    flag = "flag"       # loaded, the violation listed on the row
    hold = "hold"       # kept out of the analysts' table until the incident is resolved


class RuledTable(ColumnsOf, Protocol):
    """A regulated table, as far as its rules are checked against it (model.regulation.Table)."""

    @property
    def name(self) -> str: ...

    @property
    def rules(self) -> Iterable[Rule]: ...


def _enum_values(enum: type[Enum]) -> str:
    return ", ".join(member.value for member in enum)


def _tag(model: type[BaseModel], field: str) -> Any:
    """The one value a Literal field of a rule model takes (its `kind` or `check`), else None."""
    info = model.model_fields.get(field)
    values = get_args(info.annotation) if info is not None else ()
    return values[0] if len(values) == 1 else None


# --- the common part -----------------------------------------------------------------------


class _Rule(BaseModel):
    """What every rule declares besides its parameters (the fields of each kind's model)."""

    # Unknown keys are typos far more often than features: refuse them.
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    kind: RuleKind
    action: RuleAction = RuleAction.flag
    description: str = ""

    @property
    def stateful(self) -> bool:
        """Evaluated by streams/cross_row, not per row: the stateful kinds, and consistency
        against a reference table (it needs that table's rows)."""
        return self.kind.stateful

    @classmethod
    def described(cls) -> str:
        """How messages name this sort of rule: "kind 'accuracy' with check 'range'"."""
        return f"kind '{_tag(cls, 'kind').value}'"

    @classmethod
    def parameters(cls) -> list[str]:
        """The parameters this sort of rule takes, in the order messages list them."""
        return [field for field in cls.model_fields if field not in _COMMON]

    @model_validator(mode="before")
    @classmethod
    def _parameters_fit(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("name"), str):
            return data  # pydantic's own error says what is wrong
        # A parameter written as null is one not given, as it always was.
        data = {key: value for key, value in data.items() if not (value is None and key in _PARAMETERS)}
        takes = cls.parameters()
        missing = [p for p in takes if p not in data and cls.model_fields[p].is_required()]
        if missing:
            raise ValueError(f"rule {data['name']}: {cls.described()} needs {_hints(cls, missing)}")
        # Keys no rule takes are left to pydantic's "unknown field": most likely a typo.
        extra = [p for p in _PARAMETERS if p in data and p not in takes]
        if extra:
            what = cls.described()
            raise ValueError(f"rule {data['name']}: {', '.join(repr(p) for p in extra)} does not apply to {what}; "
                             f"remove it ({what} takes {', '.join(repr(p) for p in takes)})")
        return data

    def validate_for(self, table: RuledTable) -> None:
        """Checks the rule against its table's columns; RuleError names the rule and the fix."""


def _hints(model: type[BaseModel], fields: list[str]) -> str:
    return " and ".join(model.model_fields[f].description or repr(f) for f in fields)


_COMMON = frozenset(_Rule.model_fields)


def _column(table: RuledTable, rule: _Rule, name: str) -> TypedColumn:
    for column in table.columns:
        if column.name == name:
            return column
    raise RuleError(f"rule {rule.name}: column {name!r} is not among the table's columns "
                    f"({', '.join(c.name for c in table.columns)}); fix the name or declare the column")


ColumnName = Annotated[str, Field(description="'column: <name>'")]
GraceSeconds = Annotated[int, Field(ge=0, description="'grace_seconds: <seconds>'")]


class _ColumnsRule(_Rule):
    columns: list[str] = Field(min_length=1, description="'columns: [<name>, ...]'")

    @model_validator(mode="after")
    def _columns_once(self) -> "_ColumnsRule":
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"rule {self.name}: a column is listed twice in 'columns'")
        return self

    def validate_for(self, table: RuledTable) -> None:
        for name in self.columns:
            _column(table, self, name)


# --- completeness and accuracy: evaluated per row ------------------------------------------


class CompletenessRule(_ColumnsRule):
    """None of `columns` is empty (null, or text of only spaces)."""

    kind: Literal[RuleKind.completeness]


class AccuracyRule(_Rule):
    """One column passes a check; each check is a model of its own below. Every check passes
    an empty value: requiring one is what completeness rules are for."""

    kind: Literal[RuleKind.accuracy]
    column: ColumnName
    check: RuleCheck = Field(description=f"'check' (one of {_enum_values(RuleCheck)})")

    @classmethod
    def described(cls) -> str:
        check = _tag(cls, "check")
        return super().described() + (f" with check '{check.value}'" if check is not None else "")

    def validate_for(self, table: RuledTable) -> None:
        self.validate_column(_column(table, self, self.column))

    def validate_column(self, column: TypedColumn) -> None:
        """Refuses a column of a type the check does not apply to (text, unless a check says otherwise)."""
        if value_category(column) != "text":
            raise RuleError(f"rule {self.name}: check '{self.check.value}' needs a text column; {column.name} is "
                            f"{column.type}")


class IdentifierCheck(AccuracyRule):
    """The value is a valid identifier of its kind, as the `hash` normalizers accept it."""

    check: Literal[RuleCheck.identifier]
    identifier: IdentifierKind = Field(description=f"'identifier' (one of {_enum_values(IdentifierKind)})")


class AllowedCheck(AccuracyRule):
    """The value is one of `values`."""

    check: Literal[RuleCheck.allowed]
    values: list[str | bool | int | float | date] = Field(min_length=1, description="'values: [...]'")

    def members(self, column: TypedColumn) -> frozenset:
        """`values` as the Python values the column decodes to."""
        category = value_category(column)
        if category == "datetime":
            raise RuleError(f"rule {self.name}: check 'allowed' does not apply to timestamp column {column.name}; "
                            "use 'range'")
        return frozenset(_constant(self, column, category, v) for v in self.values)

    def validate_column(self, column: TypedColumn) -> None:
        self.members(column)


class RangeCheck(AccuracyRule):
    """`min` <= value <= `max`, a timestamp compared by its UTC date."""

    check: Literal[RuleCheck.range]
    min: int | float | Decimal | date | str | None = None
    max: int | float | Decimal | date | str | None = None

    @field_validator("min", "max", mode="before")
    @classmethod
    def _bound(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("a bound is a number or a date (YYYY-MM-DD), not true/false")
        return value

    @model_validator(mode="after")
    def _a_bound(self) -> "RangeCheck":
        if self.min is None and self.max is None:
            raise ValueError(f"rule {self.name}: check 'range' needs 'min', 'max' or both")
        return self

    def bounds(self, column: TypedColumn) -> tuple[Any, Any]:
        """(min, max) as the Python values the column decodes to (dates for a timestamp); None: open."""
        category = value_category(column)
        if category not in ("number", "date", "datetime"):
            raise RuleError(f"rule {self.name}: check 'range' needs a number, date or timestamp column; "
                            f"{column.name} is {column.type}")
        low = None if self.min is None else _constant(self, column, category, self.min)
        high = None if self.max is None else _constant(self, column, category, self.max)
        if low is not None and high is not None and low > high:
            raise RuleError(f"rule {self.name}: min is greater than max; swap them")
        return low, high

    def validate_column(self, column: TypedColumn) -> None:
        self.bounds(column)


class ReferenceCheck(AccuracyRule):
    """The value is a code of a reference list (model/reference/)."""

    check: Literal[RuleCheck.reference]
    reference: str = Field(description="'reference' (a file of model/reference/ without .csv, e.g. kato_regions)")

    @model_validator(mode="after")
    def _known_list(self) -> "ReferenceCheck":
        try:
            load_reference(self.reference)
        except ReferenceDataError as exc:
            raise ValueError(f"rule {self.name}: {exc}") from None
        return self


class PatternCheck(AccuracyRule):
    """The whole value matches a regular expression."""

    check: Literal[RuleCheck.pattern]
    pattern: str = Field(description="'pattern' (a regular expression the whole value matches)")

    @model_validator(mode="after")
    def _valid_pattern(self) -> "PatternCheck":
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"rule {self.name}: pattern is not a valid regular expression ({exc})") from None
        return self


def _is_float(column: TypedColumn) -> bool:
    return column.source_type.clickhouse.startswith("Float")


def _constant(rule: _Rule, column: TypedColumn, category: str, value: Any) -> Any:
    """A constant from the regulation as the Python value the column decodes to."""
    what = f"rule {rule.name}: {value!r} cannot be compared with column {column.name} ({column.type})"
    if isinstance(value, bool) or category == "bool":
        if isinstance(value, bool) and category == "bool":
            return value
        raise RuleError(f"{what}; YAML reads unquoted yes/no/on/off/true/false as true/false: quote text values")
    if category == "text":
        if isinstance(value, str):
            return value
        raise RuleError(f"{what}: quote it, e.g. '{value}'")
    if category == "number":
        if isinstance(value, (int, Decimal)):
            return value
        if isinstance(value, float):
            return value if _is_float(column) else Decimal(repr(value))
        if isinstance(value, str):
            try:
                number = Decimal(value.strip())
            except InvalidOperation:
                raise RuleError(f"{what}: give a number") from None
            return float(number) if _is_float(column) else number
        raise RuleError(f"{what}: give a number")
    # date, or datetime compared by its UTC date
    if isinstance(value, datetime):
        raise RuleError(f"{what}: give a date (YYYY-MM-DD); timestamps are compared by their UTC date")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise RuleError(f"{what}: give a date (YYYY-MM-DD)") from None
    raise RuleError(f"{what}: give a date (YYYY-MM-DD)")


def _check_given(data: Any) -> Any:
    # Without a (known) check pydantic cannot pick a model, so it could not say what else is missing.
    if isinstance(data, dict) and isinstance(data.get("name"), str) and data.get("check") is None:
        missing = [p for p in ("column", "check") if data.get(p) is None]
        raise ValueError(f"rule {data['name']}: kind 'accuracy' needs {_hints(AccuracyRule, missing)}")
    return data


_Accuracy = Annotated[Union[IdentifierCheck, AllowedCheck, RangeCheck, ReferenceCheck, PatternCheck],
                      Field(discriminator="check"), BeforeValidator(_check_given)]


# --- consistency: an expression over the row, or agreement with a reference table -----------

_AGAINST = ("against", "match", "compare")


class ExpressionRule(_Rule):
    """An expression over the row's columns holds (model/expressions.py); evaluated per row."""

    kind: Literal[RuleKind.consistency]
    expression: str = Field(description="'expression' (e.g. \"birth_date <= today\"), or 'against', 'match' and "
                                        "'compare' to agree with a reference table")

    @model_validator(mode="after")
    def _valid_syntax(self) -> "ExpressionRule":
        compile_expression(self.name, self.expression)  # names and types need the table: validate_for
        return self

    def validate_for(self, table: RuledTable) -> None:
        compile_expression(self.name, self.expression, table)


class _CrossRow(_Rule):
    """A rule that compares a row with other rows: its verdict is an incident, never the row's route.

    Other workers may be routing the other rows (streams/cross_row), so the verdict comes after
    the row has gone its way; and which of two duplicates is the wrong one is not for Qoima to
    say. Hence `flag` only: the row is loaded and the incident names it.
    """

    @model_validator(mode="after")
    def _flag_only(self) -> "_CrossRow":
        if self.action is not RuleAction.flag:
            raise ValueError(f"rule {self.name}: {self.described()} compares rows with other rows and reports "
                             f"what it finds as an incident; it cannot {self.action.value} a row. Use "
                             "'action: flag' (the default), or a per-row rule to hold or reject rows")
        return self


class AgainstRule(_CrossRow):
    """The row agrees with the matching row of a reference table (streams/stateful_rules.py)."""

    kind: Literal[RuleKind.consistency]
    against: str = Field(description="'against: schema.table' (the reference table)")
    match: dict[str, str] = Field(min_length=1, description="'match: {<column>: <reference column>, ...}' "
                                                            "(how a row finds its reference row)")
    compare: dict[str, str] = Field(min_length=1, description="'compare: {<column>: <reference column>, ...}' "
                                                              "(the columns that must agree)")
    grace_seconds: GraceSeconds = 300

    @property
    def stateful(self) -> bool:
        return True

    @classmethod
    def described(cls) -> str:
        return super().described() + " against a reference table"

    @model_validator(mode="after")
    def _table_path(self) -> "AgainstRule":
        if not _TABLE_PATH.match(self.against):
            raise ValueError(f"rule {self.name}: 'against' is schema.table, e.g. population.persons")
        return self

    def validate_for(self, table: RuledTable) -> None:
        # This table's side only: the reference table's is checked by StatefulRules, which sees
        # every regulation.
        if self.against == table.name:
            raise RuleError(f"rule {self.name}: 'against' names this table; name the reference table, "
                            "another regulated table")
        for name in [*self.match, *self.compare]:
            _column(table, self, name)


def _consistency_form(data: Any) -> str:
    if isinstance(data, dict):
        return "against" if any(data.get(p) is not None for p in _AGAINST) else "expression"
    return "against" if isinstance(data, AgainstRule) else "expression"


def _one_form(data: Any) -> Any:
    if (isinstance(data, dict) and isinstance(data.get("name"), str) and data.get("expression") is not None
            and any(data.get(p) is not None for p in _AGAINST)):
        raise ValueError(f"rule {data['name']}: kind 'consistency' takes either 'expression' (a condition on "
                         "the row) or 'against', 'match' and 'compare' (agreement with a reference table), "
                         "not both; split it into two rules")
    return data


_Consistency = Annotated[Union[Annotated[ExpressionRule, Tag("expression")], Annotated[AgainstRule, Tag("against")]],
                         Discriminator(_consistency_form), BeforeValidator(_one_form)]


# --- across rows, tables, the clock and the source -----------------------------------------


class UniquenessRule(_ColumnsRule, _CrossRow):
    """No two live rows share the values of `columns`."""

    kind: Literal[RuleKind.uniqueness]


class IntegrityRule(_CrossRow):
    """The row's `column` is found in `references` within `grace_seconds`."""

    kind: Literal[RuleKind.integrity]
    column: ColumnName
    references: str = Field(description="'references: schema.table.column'")
    grace_seconds: GraceSeconds = 300

    @model_validator(mode="after")
    def _column_path(self) -> "IntegrityRule":
        if not _COLUMN_PATH.match(self.references):
            raise ValueError(f"rule {self.name}: 'references' is schema.table.column, e.g. population.persons.iin")
        return self

    def validate_for(self, table: RuledTable) -> None:
        _column(table, self, self.column)


class TimelinessRule(_Rule):
    """A change reaches the processor within `max_lag_seconds` of its commit."""

    kind: Literal[RuleKind.timeliness]
    max_lag_seconds: int = Field(ge=1, description="'max_lag_seconds: <seconds>'")


class CoverageRule(_Rule):
    """At most a `tolerance` share of the source's objects is missing from the warehouse."""

    kind: Literal[RuleKind.coverage]
    tolerance: float = Field(ge=0, le=1, description="'tolerance: <ratio 0-1>'")


Rule = Annotated[Union[CompletenessRule, _Accuracy, _Consistency, UniquenessRule, IntegrityRule, TimelinessRule,
                       CoverageRule], Field(discriminator="kind")]
"""A data-quality rule of a table (DM385 §35, §49); docs/regulation.md, "Quality rules"."""

_MODELS: tuple[type[_Rule], ...] = (CompletenessRule, IdentifierCheck, AllowedCheck, RangeCheck, ReferenceCheck,
                                    PatternCheck, ExpressionRule, AgainstRule, UniquenessRule, IntegrityRule,
                                    TimelinessRule, CoverageRule)
# Every parameter some rule takes: one given to a rule that does not take it is refused by name.
_PARAMETERS = tuple(dict.fromkeys(p for model in _MODELS for p in model.parameters()))
_RULE = TypeAdapter(Rule)


def parse_rule(data: Any) -> Rule:
    """A rule from its regulation form (a dict as YAML gives it); pydantic's ValidationError if invalid."""
    return _RULE.validate_python(data)


def validate_rules(table: RuledTable) -> None:
    """Every rule of a table against its columns (called by the Table model): names unique,
    columns declared, checks fit the column types, expressions compare values of one type."""
    names = [r.name for r in table.rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuleError(f"rules declared twice: {', '.join(duplicates)}; give each rule its own name")
    for rule in table.rules:
        rule.validate_for(table)


# --- errors as the regulation reports them --------------------------------------------------

_DISCRIMINATORS: dict[str, type[Enum]] = {"kind": RuleKind, "check": RuleCheck}
_KIND_TAGS = frozenset(kind.value for kind in RuleKind)
_NESTED = {RuleKind.accuracy.value, RuleKind.consistency.value}   # kinds with a second tag in error locations


def plain_error(error: ErrorDetails) -> ErrorDetails:
    """A pydantic error inside a table's `rules` as if each rule were one model: the union tags
    pydantic adds to its location (rules.3.accuracy.range.min) removed (rules.3.min), and a
    missing or unknown `kind` or `check` reported at that field, as a missing field or as an
    unknown enum value."""
    loc = list(error["loc"])
    for i in range(len(loc) - 2):
        if loc[i] == "rules" and isinstance(loc[i + 1], int) and loc[i + 2] in _KIND_TAGS:
            del loc[i + 2:i + 4 if loc[i + 2] in _NESTED else i + 3]
            break
    error = {**error, "loc": tuple(loc)}
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        field = str(error.get("ctx", {}).get("discriminator", "")).strip("'")
        enum = _DISCRIMINATORS.get(field)
        if enum is not None:
            error["loc"] = (*loc, field)
            if error["type"] == "union_tag_not_found":
                error["type"] = "missing"
            else:
                *first, last = [repr(member.value) for member in enum]
                error["msg"] = f"Input should be {', '.join(first)} or {last}"
    return error
