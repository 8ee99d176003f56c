"""The expression language of consistency rules: parsed with `ast`, compiled into closures.

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

A compiled condition reads a row as `streams.decode.decoder` gives it (dates, Decimal, UTC datetimes,
str); `value_category` and `value_getter` say how every rule reads a column's value.
"""
from __future__ import annotations

import ast
import operator
import re
from datetime import date
from typing import Any, Callable, Iterable, NamedTuple, Protocol

_CHAR_N = re.compile(r"(?:char|character|bpchar)\(\d+\)")
_MAX_EXPRESSION = 2000


class ExpressionError(ValueError):
    """An expression cannot be compiled; the message names the rule and says what to fix."""


class SourceType(Protocol):
    @property
    def clickhouse(self) -> str: ...


class TypedColumn(Protocol):
    """What rules read of a regulation's column (model.regulation.Column)."""

    @property
    def name(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def source_type(self) -> SourceType: ...


class ColumnsOf(Protocol):
    """A regulated table, as far as expressions read it (model.regulation.Table)."""

    @property
    def columns(self) -> Iterable[TypedColumn]: ...


def value_category(column: TypedColumn) -> str:
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


Getter = Callable[[dict], Any]


def value_getter(column: TypedColumn) -> Getter:
    """Reads the column's value from a decoded row, as rules compare it."""
    name = column.name
    if _CHAR_N.fullmatch(" ".join(column.type.lower().split())):
        # char(n) is blank-padded by PostgreSQL and its trailing blanks are insignificant.
        def padded(row: dict, _name: str = name) -> Any:
            value = row.get(_name)
            return value.rstrip(" ") if value.__class__ is str else value
        return padded
    return lambda row, _name=name: row.get(_name)


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

    def __init__(self, rule: str, text: str, columns: dict[str, TypedColumn] | None) -> None:
        self.rule, self.text, self.columns = rule, text, columns
        self.getters = {name: value_getter(c) for name, c in columns.items()} if columns else {}
        self.names: set[str] = set()

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"rule {self.rule}: {message}")

    def disallowed(self, node: ast.AST) -> ExpressionError:
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
            return _Operand(lambda row, today: get(row), value_category(column), source=source)
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


def compile_expression(rule: str, text: str, table: ColumnsOf | None = None) -> tuple[Condition, tuple[str, ...]]:
    """The compiled condition and the columns it reads (in the table's order).

    Without `table` only the syntax and the whitelist are checked (names and types are not).
    Raises ExpressionError naming the rule and the fix.
    """
    columns = {c.name: c for c in table.columns} if table is not None else None
    compiler = _Compiler(rule, text, columns)
    condition = compiler.compile()
    order = list(columns or ())
    return condition, tuple(sorted(compiler.names, key=order.index))
