"""Declarative data-quality rules (DM385 §35, §49), checked on each decoded source row.

A table's `rules:` in its regulation (docs/regulation.md, "Quality rules") declare what a
correct row looks like. The processor evaluates the stateless kinds here, on the row as
`PgType.decode` gives it (dates, Decimal, UTC datetimes, str) and BEFORE depersonalization,
so a rule can look at the clear IIN or phone; what comes out is a list of `Violation`s that
name the rule and the columns, never a value, so they may travel with the clean record, into
the quarantine and into the incident journal.

- completeness: the listed columns are not empty (null, or text of only spaces);
- accuracy: one column passes a check: `identifier` (a valid IIN, BIN, phone... as the
  normalizers of model/normalize.py accept it), `allowed` (one of `values`), `range`
  (`min` <= value <= `max`), `reference` (a code known to reference data in
  model/reference/) or `pattern` (a regular expression the whole value matches);
- consistency: an `expression` over the row's columns holds (the language is below).

Every accuracy check skips an empty value: requiring one is what completeness rules are for,
so one missing value is one violation, not two. The stateful kinds (uniqueness, integrity,
timeliness, coverage) and consistency `against` a reference table need other rows, other
tables or the clock (`Rule.stateful`); `RuleSet.stateful` hands them to whoever evaluates them.

Expressions are parsed with `ast` and compiled into closures over a strict whitelist, never
given to eval(): column names, `today` (the row's commit date, a date), constants (text,
numbers, True, False, None), comparisons (== != < <= > >= in, not in), `is None`,
`is not None`, `and`, `or`, `not` and `len(column)`. Column types are checked when the
regulation is loaded: comparing a date column with a number is an error then, not a surprise
on some row later. A text constant compared with a date column is read as an ISO date
('2000-01-01'); a timestamp compared with a date (`paid_at <= today`) is compared by its UTC
date. Missing values follow SQL's three-valued logic, as in a CHECK constraint: any
comparison other than `is` with a null operand is *unknown*, `and`/`or`/`not` propagate it
(`False and unknown` is False, `True or unknown` is True), and a rule fails only when its
expression is False. So `birth_date <= today` passes on a row without a birth date, and a
completeness rule reports the gap.

Cost (the 2-core dev box, Python 3.11, other jobs running): the nine demo-like rules of
tests/unit/test_quality.py `timing_setup` on one clean row took 5.4 µs per row:
`.venv/bin/python -m timeit -r 7 -s "from tests.unit.test_quality import timing_setup;
rs, row, today = timing_setup()" "rs.evaluate(row, today)"` gave "50000 loops, best of 7:
5.41 usec per loop". The phone normalizer (a spaced spelling) is about 1.4 µs of it; IINs in
canonical form take an unrolled check-digit path (0.6 µs instead of 2.5 through the normalizer).
"""
from __future__ import annotations

import ast
import csv
import operator
import re
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple


from model.regulation import Column, Rule, RuleAction, RuleCheck, RuleKind, Table
from model import identifiers, normalize
from streams.depersonalize import kato_region

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "model" / "reference"
_IDENT = re.compile(r"[a-z][a-z0-9_]{0,62}")
_CHAR_N = re.compile(r"(?:char|character|bpchar)\(\d+\)")
_MAX_EXPRESSION = 2000


class RuleError(ValueError):
    """A rule cannot be compiled; the message names the rule and says what to fix."""


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    kind: str            # the rule's kind: completeness, accuracy, consistency
    incident_type: str   # DM385 §49 incident type, one of schemas.incidents.TYPES
    action: str          # reject, flag or hold
    columns: tuple[str, ...]
    problem: str         # names the rule and the columns, never a value

    def note(self) -> str:
        """One line for a record's `_defects`."""
        return f"{', '.join(self.columns) or '-'}: {self.problem}"


# --- reference data --------------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A reference list from model/reference/<name>.csv (a `code` column, then any others)."""

    name: str
    rows: dict[str, dict[str, str]]   # code -> the CSV row
    contains: Callable[[str], bool]   # does a source value match a known code


def _exact(codes: frozenset[str]) -> Callable[[str], bool]:
    return lambda value: value.strip() in codes


def _kato_prefix(codes: frozenset[str]) -> Callable[[str], bool]:
    # A source holds full 9-digit KATO codes; the list holds the regions' 2-digit prefixes.
    def contains(value: str) -> bool:
        region = kato_region(value)
        return region is not None and region in codes
    return contains


# How a source value is matched against a list; by default it must equal one of its codes.
_MATCHERS: dict[str, Callable[[frozenset[str]], Callable[[str], bool]]] = {"kato_regions": _kato_prefix}


def reference_names() -> list[str]:
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.csv"))


@lru_cache(maxsize=None)
def load_reference(name: str) -> Reference:
    path = REFERENCE_DIR / f"{name}.csv"
    if not _IDENT.fullmatch(name) or not path.is_file():
        raise RuleError(f"no reference data {name!r}; available: {', '.join(reference_names()) or 'none'} "
                        f"(files in {REFERENCE_DIR})")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or reader.fieldnames[0] != "code":
            raise RuleError(f"{path}: the first column must be 'code'")
        rows = {row["code"].strip(): row for row in reader if row.get("code", "").strip()}
    if not rows:
        raise RuleError(f"{path}: no codes")
    return Reference(name, rows, _MATCHERS.get(name, _exact)(frozenset(rows)))


def kato_regions() -> dict[str, tuple[str, str]]:
    """The 2-digit KATO region prefixes -> (Russian name, Kazakh name)."""
    return {code: (row["name_ru"], row["name_kk"]) for code, row in load_reference("kato_regions").rows.items()}


# --- column types ----------------------------------------------------------------------------


def _category(column: Column) -> str:
    """What Python values a column decodes to: number, date, datetime, bool or text."""
    clickhouse = column.source_type.clickhouse
    if clickhouse.startswith(("Int", "UInt", "Float", "Decimal")):
        return "number"
    if clickhouse.startswith("Date32"):
        return "date"
    if clickhouse.startswith("DateTime64"):
        return "datetime"
    if clickhouse == "Bool":
        return "bool"
    return "text"  # text, varchar, char, json, uuid


def _is_float(column: Column) -> bool:
    return column.source_type.clickhouse.startswith("Float")


Getter = Callable[[dict], Any]


def _getter(column: Column) -> Getter:
    name = column.name
    if _CHAR_N.fullmatch(" ".join(column.type.lower().split())):
        # char(n) is blank-padded by PostgreSQL and its trailing blanks are insignificant.
        def padded(row: dict, _name: str = name) -> Any:
            value = row.get(_name)
            return value.rstrip(" ") if value.__class__ is str else value
        return padded
    return lambda row, _name=name: row.get(_name)


def _blank(value: Any) -> bool:
    return value is None or (value.__class__ is str and (not value or value.isspace()))


# --- expressions -----------------------------------------------------------------------------

_HELP = ("an expression may use column names, today, constants (text in quotes, numbers, True, False, None), "
         "comparisons (== != < <= > >= in, not in), 'is None', 'is not None', and, or, not, len(column)")
_DISALLOWED = {
    ast.Attribute: "attribute access (a.b)",
    ast.Subscript: "subscripts (a[...])",
    ast.Call: "calls other than len(column)",
    ast.Lambda: "lambda",
    ast.BinOp: "arithmetic",
    ast.IfExp: "conditional expressions (x if c else y)",
    ast.NamedExpr: "assignment (:=)",
    ast.JoinedStr: "f-strings",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Dict: "dicts", ast.Starred: "starred expressions",
    ast.Await: "await", ast.Yield: "yield", ast.YieldFrom: "yield",
}
_ORDER = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_EQUALITY = {ast.Eq: operator.eq, ast.NotEq: operator.ne}
_CONSTANT_CATEGORY = {str: "text", bool: "bool", int: "number", float: "number", type(None): "none"}

Condition = Callable[[dict, date], "bool | None"]   # None: unknown (a null operand)
Value = Callable[[dict, date], Any]
_NOT_CONSTANT = object()


class _Operand(NamedTuple):
    fn: Value
    category: str              # number, text, date, datetime, bool, none; 'any' when types are not known
    constant: Any = _NOT_CONSTANT
    source: str = ""


class _Compiler:
    """Turns a whitelisted expression into closures; `columns` None checks only the syntax."""

    def __init__(self, rule: str, text: str, columns: dict[str, Column] | None) -> None:
        self.rule, self.text, self.columns = rule, text, columns
        self.getters = {name: _getter(c) for name, c in columns.items()} if columns else {}
        self.names: set[str] = set()

    def error(self, message: str) -> RuleError:
        return RuleError(f"rule {self.rule}: {message}")

    def disallowed(self, node: ast.AST) -> RuleError:
        what = _DISALLOWED.get(type(node), type(node).__name__)
        return self.error(f"the expression may not use {what} (`{ast.unparse(node)}`); {_HELP}")

    def compile(self) -> Condition:
        if len(self.text) > _MAX_EXPRESSION:
            raise self.error(f"expression longer than {_MAX_EXPRESSION} characters; split it into several rules")
        try:
            tree = ast.parse(self.text.strip(), mode="eval")
        except SyntaxError as exc:
            where = f", at character {exc.offset}" if exc.offset and exc.offset <= len(self.text.strip()) else ""
            raise self.error(f"the expression is not valid Python-style syntax ({exc.msg}{where}); write it "
                             "like \"birth_date <= today\" or \"status != 'paid' or paid_at is not None\"") from None
        return self.condition(tree.body)

    # Conditions evaluate to True, False or None (unknown).
    def condition(self, node: ast.AST) -> Condition:
        if isinstance(node, ast.BoolOp):
            parts = tuple(self.condition(v) for v in node.values)
            return _all(parts) if isinstance(node.op, ast.And) else _any(parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self.condition(node.operand)
            return lambda row, today: None if (x := inner(row, today)) is None else not x
        if isinstance(node, ast.Compare):
            pairs, left = [], node.left
            for op, right in zip(node.ops, node.comparators):
                pairs.append(self.comparison(left, op, right))
                left = right
            return pairs[0] if len(pairs) == 1 else _all(tuple(pairs))
        if isinstance(node, (ast.Name, ast.Constant)):
            operand = self.operand(node)
            if operand.category in ("bool", "any"):
                fn = operand.fn
                return lambda row, today: fn(row, today)
            raise self.error(f"`{ast.unparse(node)}` is not a condition; compare it, e.g. "
                             f"`{ast.unparse(node)} is not None`")
        if isinstance(node, ast.Call):
            self.operand(node)  # refuses calls other than len()
            raise self.error(f"`{ast.unparse(node)}` is not a condition; compare it, e.g. `{ast.unparse(node)} > 0`")
        raise self.disallowed(node)

    def operand(self, node: ast.AST) -> _Operand:
        source = ast.unparse(node)
        if isinstance(node, ast.Name):
            if node.id == "today":
                return _Operand(lambda row, today: today, "date", source=source)
            if self.columns is None:
                return _Operand(lambda row, today: None, "any", source=source)
            column = self.columns.get(node.id)
            if column is None:
                raise self.error(f"unknown column `{node.id}` in the expression; the table declares "
                                 f"{', '.join(self.columns)} (and `today` is the row's commit date)")
            self.names.add(node.id)
            get = self.getters[node.id]
            return _Operand(lambda row, today: get(row), _category(column), source=source)
        if isinstance(node, ast.Constant):
            category = _CONSTANT_CATEGORY.get(type(node.value))
            if category is None:
                raise self.error(f"constant `{source}` not allowed; {_HELP}")
            value = node.value
            return _Operand(lambda row, today: value, category, value, source)
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                and isinstance(node.operand, ast.Constant) and type(node.operand.value) in (int, float)):
            value = -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
            return _Operand(lambda row, today: value, "number", value, source)
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id == "len"):
                raise self.disallowed(node)
            if len(node.args) != 1 or node.keywords:
                raise self.error(f"len() takes one column (`{source}`)")
            inner = self.operand(node.args[0])
            if inner.category not in ("text", "any"):
                raise self.error(f"len() needs a text column, not {inner.category} (`{source}`)")
            fn = inner.fn
            return _Operand(lambda row, today: None if (v := fn(row, today)) is None else len(v), "number",
                            source=source)
        raise self.disallowed(node)

    def comparison(self, left: ast.AST, op: ast.cmpop, right: ast.AST) -> Condition:
        text = f"{ast.unparse(left)} {_OP_TEXT[type(op)]} {ast.unparse(right)}"
        if isinstance(op, (ast.Is, ast.IsNot)):
            if not (isinstance(right, ast.Constant) and right.value is None):
                raise self.error(f"'is' and 'is not' compare with None only (`{text}`); use == or != otherwise")
            fn = self.operand(left).fn
            if isinstance(op, ast.Is):
                return lambda row, today: fn(row, today) is None
            return lambda row, today: fn(row, today) is not None
        if any(isinstance(side, ast.Constant) and side.value is None for side in (left, right)):
            raise self.error(f"write `x is None` or `x is not None`, not == or != None (`{text}`)")
        if isinstance(op, (ast.In, ast.NotIn)):
            return self.membership(left, op, right, text)
        if type(op) not in _ORDER and type(op) not in _EQUALITY:
            raise self.disallowed(op)
        a, b = self.unify(self.operand(left), self.operand(right), text)
        if type(op) in _ORDER and "bool" in (a.category, b.category):
            raise self.error(f"true/false values have no order; use == or != (`{text}`)")
        compare = (_ORDER.get(type(op)) or _EQUALITY[type(op)])
        fa, fb = a.fn, b.fn
        if b.constant is not _NOT_CONSTANT:
            k = b.constant
            return lambda row, today: None if (x := fa(row, today)) is None else compare(x, k)

        def both(row: dict, today: date) -> bool | None:
            x = fa(row, today)
            if x is None:
                return None
            y = fb(row, today)
            return None if y is None else compare(x, y)
        return both

    def membership(self, left: ast.AST, op: ast.cmpop, right: ast.AST, text: str) -> Condition:
        if not isinstance(right, (ast.Tuple, ast.List, ast.Set)) or not right.elts:
            raise self.error(f"'in' needs a list of constants, e.g. `status in ('paid', 'returned')` (`{text}`)")
        item = self.operand(left)
        members = set()
        for element in right.elts:
            constant = self.operand(element)
            if constant.constant is _NOT_CONSTANT:
                raise self.error(f"'in' needs a list of constants, not `{ast.unparse(element)}` (`{text}`)")
            _, constant = self.unify(item, constant, text)
            members.add(constant.constant)
        members_ = frozenset(members)
        fn = item.fn
        if isinstance(op, ast.In):
            return lambda row, today: None if (x := fn(row, today)) is None else x in members_
        return lambda row, today: None if (x := fn(row, today)) is None else x not in members_

    def unify(self, a: _Operand, b: _Operand, text: str) -> tuple[_Operand, _Operand]:
        """Make two operands comparable, or refuse the comparison as a regulation error."""
        if "any" in (a.category, b.category):
            return a, b
        a, b = self.as_date(a, b, text), self.as_date(b, a, text)
        if {a.category, b.category} == {"date", "datetime"}:
            a, b = _to_date(a), _to_date(b)
        if a.category != b.category:
            raise self.error(f"`{text}` compares {a.category} with {b.category}; compare values of one type")
        return a, b

    def as_date(self, operand: _Operand, other: _Operand, text: str) -> _Operand:
        if (operand.category != "text" or operand.constant is _NOT_CONSTANT
                or other.category not in ("date", "datetime")):
            return operand
        try:
            value = date.fromisoformat(operand.constant)
        except ValueError:
            raise self.error(f"{operand.source} is not an ISO date (YYYY-MM-DD) in `{text}`") from None
        return _Operand(lambda row, today: value, "date", value, operand.source)


_OP_TEXT = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}


def _to_date(operand: _Operand) -> _Operand:
    if operand.category != "datetime":
        return operand
    fn = operand.fn
    return _Operand(lambda row, today: None if (v := fn(row, today)) is None else v.date(), "date",
                    source=operand.source)


def _junction(parts: tuple[Condition, ...], decisive: bool) -> Condition:
    """Three-valued `and` (decisive False) or `or` (decisive True): one decisive part settles it,
    else an unknown part leaves it unknown."""
    def junction(row: dict, today: date) -> bool | None:
        unknown = False
        for part in parts:
            x = part(row, today)
            if x is decisive:
                return decisive
            if x is None:
                unknown = True
        return None if unknown else not decisive
    return junction


def _all(parts: tuple[Condition, ...]) -> Condition:
    return _junction(parts, False)


def _any(parts: tuple[Condition, ...]) -> Condition:
    return _junction(parts, True)


def compile_expression(rule: str, text: str, table: Table | None = None) -> tuple[Condition, tuple[str, ...]]:
    """The compiled condition and the columns it reads (in the table's order).

    Without `table` only the syntax and the whitelist are checked (names and types are not).
    Raises RuleError naming the rule and the fix.
    """
    columns = {c.name: c for c in table.columns} if table is not None else None
    compiler = _Compiler(rule, text, columns)
    condition = compiler.compile()
    order = list(columns or ())
    return condition, tuple(sorted(compiler.names, key=order.index))


# --- rules -----------------------------------------------------------------------------------

Check = Callable[[dict, date], "Violation | None"]


def _violation(rule: Rule, columns: Iterable[str], problem: str) -> Violation:
    return Violation(rule.name, rule.kind.value, rule.kind.incident_type, rule.action.value, tuple(columns),
                     f"{problem} (rule {rule.name})")


def _column(table: Table, rule: Rule, name: str) -> Column:
    for column in table.columns:
        if column.name == name:
            return column
    raise RuleError(f"rule {rule.name}: column {name!r} is not among the table's columns "
                    f"({', '.join(c.name for c in table.columns)}); fix the name or declare the column")


def _text_column(rule: Rule, column: Column) -> None:
    if _category(column) != "text":
        raise RuleError(f"rule {rule.name}: check '{rule.check.value}' needs a text column; {column.name} is "
                        f"{column.type}")


def _completeness(table: Table, rule: Rule) -> Check:
    getters = tuple((name, _getter(_column(table, rule, name))) for name in rule.columns)

    def check(row: dict, today: date) -> Violation | None:
        missing = [name for name, get in getters if _blank(get(row))]
        return _violation(rule, missing, f"empty: {', '.join(missing)}") if missing else None
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
_CANONICAL = {"iin": _twelve_digits_valid(b"0123"), "bin": _twelve_digits_valid(b"456"),
              "phone": identifiers.is_valid_phone}


def _identifier(rule: Rule, column: Column) -> Check:
    _text_column(rule, column)
    kind = rule.identifier.value
    normalized, get = normalize.BY_KIND[kind], _getter(column)
    canonical = _CANONICAL.get(kind, lambda value: False)
    bad = _violation(rule, (column.name,), f"{column.name}: not a valid {kind}")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        if value is None or canonical(value) or _blank(value) or normalized(value) is not None:
            return None
        return bad
    return check


def _member(rule: Rule, column: Column, category: str, value: Any) -> Any:
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


def _allowed(rule: Rule, column: Column) -> Check:
    category = _category(column)
    if category == "datetime":
        raise RuleError(f"rule {rule.name}: check 'allowed' does not apply to timestamp column {column.name}; "
                        "use 'range'")
    allowed = frozenset(_member(rule, column, category, v) for v in rule.values)
    get = _getter(column)
    bad = _violation(rule, (column.name,), f"{column.name}: not one of the {len(allowed)} allowed values")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        return None if _blank(value) or value in allowed else bad
    return check


def _range(rule: Rule, column: Column) -> Check:
    category = _category(column)
    if category not in ("number", "date", "datetime"):
        raise RuleError(f"rule {rule.name}: check 'range' needs a number, date or timestamp column; "
                        f"{column.name} is {column.type}")
    low = None if rule.min is None else _member(rule, column, category, rule.min)
    high = None if rule.max is None else _member(rule, column, category, rule.max)
    if low is not None and high is not None and low > high:
        raise RuleError(f"rule {rule.name}: min is greater than max; swap them")
    get = _getter(column)
    below = _violation(rule, (column.name,), f"{column.name}: below the minimum {low}")
    above = _violation(rule, (column.name,), f"{column.name}: above the maximum {high}")
    as_date = category == "datetime"

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


def _reference(rule: Rule, column: Column) -> Check:
    _text_column(rule, column)
    try:
        reference = load_reference(rule.reference)
    except RuleError as exc:
        raise RuleError(f"rule {rule.name}: {exc}") from None
    contains, get = reference.contains, _getter(column)
    bad = _violation(rule, (column.name,), f"{column.name}: not a known {reference.name} code")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        return None if _blank(value) or contains(value) else bad
    return check


def _pattern(rule: Rule, column: Column) -> Check:
    _text_column(rule, column)
    try:
        match = re.compile(rule.pattern).fullmatch
    except re.error as exc:
        raise RuleError(f"rule {rule.name}: pattern is not a valid regular expression ({exc})") from None
    get = _getter(column)
    bad = _violation(rule, (column.name,), f"{column.name}: does not match the pattern")

    def check(row: dict, today: date) -> Violation | None:
        value = get(row)
        return None if _blank(value) or match(value) is not None else bad
    return check


_ACCURACY = {RuleCheck.identifier: _identifier, RuleCheck.allowed: _allowed, RuleCheck.range: _range,
             RuleCheck.reference: _reference, RuleCheck.pattern: _pattern}


def _consistency(table: Table, rule: Rule) -> Check:
    condition, names = compile_expression(rule.name, rule.expression, table)
    bad = _violation(rule, names, f"does not hold: {' '.join(rule.expression.split())}")

    def check(row: dict, today: date) -> Violation | None:
        return bad if condition(row, today) is False else None
    return check


def compile_rule(table: Table, rule: Rule) -> Check:
    """A stateless rule as a function of (row, today); RuleError names the rule and the fix."""
    if rule.kind is RuleKind.completeness:
        return _completeness(table, rule)
    if rule.kind is RuleKind.consistency and rule.expression is not None:
        return _consistency(table, rule)
    if rule.kind is RuleKind.accuracy:
        return _ACCURACY[rule.check](rule, _column(table, rule, rule.column))
    raise RuleError(f"rule {rule.name}: kind '{rule.kind.value}' is evaluated by a stateful check, not per row")


def _stateful_columns(table: Table, rule: Rule) -> None:
    """This table's side of a stateful rule; the other tables' side is checked by StatefulRules,
    which sees every regulation."""
    for name in ([rule.column] if rule.column else []) + list(rule.columns or ()):
        _column(table, rule, name)
    if rule.against is not None:
        if rule.against == table.name:
            raise RuleError(f"rule {rule.name}: 'against' names this table; name the reference table, "
                            "another regulated table")
        for name in [*(rule.match or ()), *(rule.compare or ())]:
            _column(table, rule, name)


def validate_rule(rule: Rule) -> None:
    """What can be checked of a rule without its table (called by the Rule model)."""
    if rule.expression is not None:
        compile_expression(rule.name, rule.expression)
    if rule.reference is not None:
        try:
            load_reference(rule.reference)
        except RuleError as exc:
            raise RuleError(f"rule {rule.name}: {exc}") from None
    if rule.pattern is not None:
        try:
            re.compile(rule.pattern)
        except re.error as exc:
            raise RuleError(f"rule {rule.name}: pattern is not a valid regular expression ({exc})") from None


def validate_rules(table: Table) -> None:
    """Every rule of a table against its columns (called by the Table model)."""
    names = [r.name for r in table.rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise RuleError(f"rules declared twice: {', '.join(duplicates)}; give each rule its own name")
    for rule in table.rules:
        if rule.stateful:
            _stateful_columns(table, rule)
        else:
            compile_rule(table, rule)


class RuleSet:
    """A table's quality rules, compiled once; `evaluate` checks one decoded row."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.rules: list[Rule] = [r for r in table.rules if not r.stateful]
        self._stateful: list[Rule] = [r for r in table.rules if r.stateful]
        self._checks: tuple[tuple[Rule, Check], ...] = tuple((r, compile_rule(table, r)) for r in self.rules)
        read = set()
        for rule in self.rules:
            read.update([rule.column] if rule.column else [])
            read.update(rule.columns or ())
            if rule.expression is not None:
                read.update(compile_expression(rule.name, rule.expression, table)[1])
        self.columns: tuple[str, ...] = tuple(c.name for c in table.columns if c.name in read)
        self._decoders = tuple((name, table.column(name).source_type.decode) for name in self.columns)

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

    def evaluate(self, row: dict, today: date) -> list[Violation]:
        """The violations of the stateless rules on one decoded source row (`PgType.decode`'s
        values), `today` being the row's commit date. A rule that raises on an odd value (it
        cannot, for values of the declared types) is reported as a flag, not propagated."""
        violations = []
        for rule, check in self._checks:
            try:
                violation = check(row, today)
            except Exception as exc:  # noqa: BLE001 - one odd value must not stop the stream
                violation = replace(_violation(rule, (), f"could not be evaluated ({type(exc).__name__})"),
                                    action=RuleAction.flag.value)
            if violation is not None:
                violations.append(violation)
        return violations

    def decode(self, row: dict) -> dict:
        """The columns the rules read, decoded from Debezium's JSON form (an `after` image).

        Raises ValueError naming the column, never the value, like TablePlan.apply."""
        out = {}
        for name, decode in self._decoders:
            value = row.get(name)
            if value is None:
                out[name] = None
                continue
            try:
                out[name] = decode(value)
            except (ValueError, TypeError, ArithmeticError, OverflowError) as exc:
                raise ValueError(f"column {name}: cannot decode a {type(value).__name__} as declared "
                                 f"({type(exc).__name__})") from None
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
