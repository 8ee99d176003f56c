"""What a value of a declared type may be: one definition for every stage that reads one.

A value reaches Qoima as Debezium's JSON (decoded by streams/decode), as PostgreSQL's text form
in a historical file (connectors/pg_text.py) or as a Python value the marker poller or a Parquet
file gives (connectors/debezium_encode.py). A refusal's message names the problem, never the value.

A value the source holds and ClickHouse cannot (a date before 1900 or after 2299, ±infinity, a
numeric NaN or ±Infinity, a numeric wider than declared) never costs its row when it arrives by
CDC: streams/decode reads it as what it is (a `date` of 1850, a `Beyond` for ±infinity and for
years Python cannot hold, a non-finite `Decimal`), so rules and generalizations compute from the
source value (an age band from a birth date of 1890), and `fitter` gives the
documented representation of a kept value with a problem for `_defects` (docs/type-mapping.md,
"Values ClickHouse cannot hold"). Historical files and the marker poller still refuse such
values (their parsers check the range; noted in the same section).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import total_ordering
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any, Callable

EPOCH_DATE = date(1970, 1, 1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)


class ValueRefused(ValueError):
    """A value cannot be read as its declared type; the message names the problem, never the value."""


def refusing(what: str, function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Any failure becomes ValueRefused; messages of library errors may quote the value, so only
    ValueRefused's own (written here) pass through, the rest are replaced by their type name."""

    def guarded(value: Any) -> Any:
        try:
            return function(value)
        except ValueRefused:
            raise
        except (ValueError, TypeError, ArithmeticError, OverflowError, RecursionError) as exc:
            raise ValueRefused(f"a {type(value).__name__} that is not a valid {what} ({type(exc).__name__})") from None

    return guarded


# --- ClickHouse's date range ---------------------------------------------------------------------
# ClickHouse documents Date32 and DateTime64 for 1900-01-01..2299-12-31. chdb 26.9 prints dates
# beyond it, but its date functions (toStartOfMonth, ...) then clamp, so a value outside is refused
# rather than stored where it would read back wrong.

FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(2299, 12, 31)
_FIRST_DAYS, _LAST_DAYS = (FIRST_DAY - EPOCH_DATE).days, (LAST_DAY - EPOCH_DATE).days
_FIRST_MICROS = _FIRST_DAYS * 86_400_000_000
_LAST_MICROS = (_LAST_DAYS + 1) * 86_400_000_000 - 1
_OUT_OF_RANGE = "outside ClickHouse's Date32/DateTime64 range 1900-01-01..2299-12-31"


def days_in_range(days: int) -> int:
    """`days` since 1970-01-01, if ClickHouse holds that date."""
    if not _FIRST_DAYS <= days <= _LAST_DAYS:
        raise ValueRefused(f"date {_OUT_OF_RANGE}")
    return days


def micros_in_range(micros: int) -> int:
    """`micros` since 1970-01-01 00:00 UTC, if ClickHouse holds that instant."""
    if not _FIRST_MICROS <= micros <= _LAST_MICROS:
        raise ValueRefused(f"timestamp {_OUT_OF_RANGE}")
    return micros


def day_in_range(value: date) -> date:
    return EPOCH_DATE + timedelta(days=days_in_range((value - EPOCH_DATE).days))


def instant_in_range(value: datetime) -> datetime:
    """`value` is aware and in UTC."""
    micros_in_range((value - EPOCH) // MICROSECOND)
    return value


@total_ordering
@dataclass(frozen=True)
class Beyond:
    """A date or instant the source holds that Python's date types cannot: PostgreSQL's infinity
    (`sign` 1) or -infinity (-1), or a year after 9999 or before 1. It orders after (before)
    every date and instant, so a rule such as `valid_to > today` reads it as PostgreSQL does."""

    sign: int
    infinite: bool

    def __lt__(self, other: object) -> bool:
        if isinstance(other, Beyond):
            return self.sign < other.sign
        if isinstance(other, (date, datetime)):
            return self.sign < 0
        return NotImplemented

    def __str__(self) -> str:
        if self.infinite:
            return "infinity" if self.sign > 0 else "-infinity"
        return "after 9999-12-31" if self.sign > 0 else "before 0001-01-01"


INFINITY, MINUS_INFINITY = Beyond(1, True), Beyond(-1, True)
_LAST_INSTANT = EPOCH + timedelta(microseconds=_LAST_MICROS)
_FIRST_INSTANT = EPOCH + timedelta(microseconds=_FIRST_MICROS)


def _saturated(value: Any, first: Any, last: Any, kind: str) -> tuple[Any, str | None]:
    """The nearest end of ClickHouse's range for a value outside it, and the problem to note."""
    if isinstance(value, Beyond):
        bound = last if value.sign > 0 else first
        return bound, f"{value} stored as {bound.isoformat()} ({kind} {_OUT_OF_RANGE})"
    if value < first:
        return first, f"{kind} before {first.isoformat()} stored as {first.isoformat()} ({_OUT_OF_RANGE})"
    if value > last:
        return last, f"{kind} after {last.isoformat()} stored as {last.isoformat()} ({_OUT_OF_RANGE})"
    return value, None


def fit_day(value: date | Beyond) -> tuple[date, str | None]:
    """A kept date as Date32 holds it: outside 1900-01-01..2299-12-31, the nearer end of it.
    Saturating keeps order (a `valid_to` of infinity stays later than every real date), and
    the problem in `_defects` says the value was replaced."""
    return _saturated(value, FIRST_DAY, LAST_DAY, "date")


def fit_instant(value: datetime | Beyond) -> tuple[datetime, str | None]:
    """A kept timestamp as DateTime64 holds it: saturated like `fit_day`."""
    return _saturated(value, _FIRST_INSTANT, _LAST_INSTANT, "timestamp")


def fit_decimal(value: Decimal, precision: int, scale: int) -> tuple[Decimal | None, str | None]:
    """A kept numeric as Decimal(p, s) holds it, exactly, or empty with the problem: NaN and
    ±Infinity have no Decimal, and a value wider than declared is never rounded."""
    if not value.is_finite():
        return None, f"numeric {'NaN' if value.is_nan() else 'infinity'} loaded empty (ClickHouse's Decimal has none)"
    try:
        return value.quantize(Decimal(1).scaleb(-scale), context=Context(prec=precision, traps=[Inexact, InvalidOperation])), None
    except (Inexact, InvalidOperation):
        return None, f"numeric wider than the declared numeric({precision},{scale}) loaded empty, never rounded"


# --- JSON and Python types ----------------------------------------------------------------------


def integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {type(value).__name__}")
    return value


def integer_in_range(value: int, bits: int) -> int:
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise ValueRefused(f"out of range for a {bits}-bit integer")
    return value


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected a boolean, got {type(value).__name__}")
    return value


def string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {type(value).__name__}")
    return value


# --- numeric and money --------------------------------------------------------------------------


def exact_numeric(value: Any, precision: int, scale: int) -> Decimal:
    """Exactly the declared numeric(p,s), or ValueError: never rounded, never NaN."""
    try:
        number = Decimal(string(value))
        if not number.is_finite():
            raise ValueError("numeric is not finite")
        context = Context(prec=precision, traps=[Inexact, InvalidOperation])
        return number.quantize(Decimal(1).scaleb(-scale), context=context)
    except (Inexact, InvalidOperation):
        raise ValueError(f"value does not fit numeric({precision},{scale}) exactly") from None


def decimal_text(number: Decimal) -> str:
    """An unconstrained numeric as stored: every digit, plain notation (never an exponent), and
    `NaN`, `Infinity`, `-Infinity` as PostgreSQL spells them."""
    if number.is_nan():
        return "NaN"
    if number.is_infinite():
        return "Infinity" if number > 0 else "-Infinity"
    return format(number, "f")


def refused_unless_numeric(text: str, precision: int, scale: int) -> Decimal:
    """`exact_numeric`, refused as ValueRefused (the text and Debezium forms refuse only so)."""
    try:
        return exact_numeric(text, precision, scale)
    except ValueError as exc:  # exact_numeric's own messages never quote the value
        raise ValueRefused(str(exc)) from None


# PostgreSQL keeps money as 64-bit cents (lc_monetary with 2 fraction digits, as in the C and
# en_US locales); Decimal(19, 2) is the narrowest ClickHouse type that holds all of it.
_MONEY_MIN, _MONEY_MAX = Decimal(-(1 << 63)).scaleb(-2), Decimal((1 << 63) - 1).scaleb(-2)
# Debezium 3.0's snapshot reads money through pgjdbc's PGmoney, a double: past 2^53 cents the
# cents may already be wrong, and such a value arrives in exponent notation.
_MONEY_EXACT_AS_DOUBLE = Decimal(1 << 53).scaleb(-2)


def money(value: Any) -> Decimal:
    """A money amount spelled as a plain or exponent number (as Debezium sends it)."""
    text = string(value)
    try:
        number = exact_numeric(text, 19, 2)
    except ValueError:
        raise ValueRefused("not a money amount (at most 2 fraction digits, within 64-bit cents)") from None
    if not _MONEY_MIN <= number <= _MONEY_MAX:
        raise ValueRefused("out of range for money (64-bit cents)")
    if "e" in text.lower() and abs(number) > _MONEY_EXACT_AS_DOUBLE:
        raise ValueRefused("money beyond 2^53 cents arrived as a double (Debezium snapshot) and may have lost cents")
    return number


# --- time of day and interval -------------------------------------------------------------------
# time and timetz are microseconds since midnight: PostgreSQL allows 24:00:00, which neither
# Python's datetime.time nor Avro's time-micros (as fastavro reads it) can hold.

DAY_MICROS = 86_400_000_000


def time_of_day(value: Any) -> int:
    """Microseconds since midnight, 00:00:00..24:00:00."""
    micros = integer(value)
    if not 0 <= micros <= DAY_MICROS:
        raise ValueRefused("time of day outside 00:00:00..24:00:00")
    return micros


# PostgreSQL keeps an interval as months, days and microseconds, which do not convert into one
# another (a month is not 30 days, a day is not 24 hours across a DST change): all three are
# kept, as a record in Avro and a named Tuple in ClickHouse.
_INT32, _INT64 = 1 << 31, 1 << 63


def interval_value(months: int, days: int, micros: int) -> dict[str, int]:
    if not (-_INT32 <= months < _INT32 and -_INT32 <= days < _INT32 and -_INT64 <= micros < _INT64):
        raise ValueRefused("interval out of PostgreSQL's range")
    return {"months": months, "days": days, "micros": micros}


# --- enums --------------------------------------------------------------------------------------


def enum_label(value: Any, labels: frozenset[str] | None) -> str:
    """`labels` None: the regulation lists none, and any label passes."""
    label = string(value)
    if labels is not None and label not in labels:
        raise ValueRefused("not one of the enum labels the regulation declares")
    return label


def fitter(clickhouse_type: str) -> Callable[[Any], tuple[Any, str | None]] | None:
    """How a kept value of `clickhouse_type` is fitted to what ClickHouse holds (`fit_day`,
    `fit_instant`, `fit_decimal`, element by element in an array), or None for a type whose
    every decoded value fits as it is."""
    for wrapper in ("Nullable(", "LowCardinality("):
        if clickhouse_type.startswith(wrapper):
            return fitter(clickhouse_type[len(wrapper):-1])
    if clickhouse_type.startswith("Array("):
        element = fitter(clickhouse_type[len("Array("):-1])
        if element is None:
            return None

        def array(values: list) -> tuple[list, str | None]:
            fitted, problems = [], []
            for value in values:
                value, problem = (None, None) if value is None else element(value)
                fitted.append(value)
                if problem:
                    problems.append(problem)
            return fitted, (f"{len(problems)} element(s): {problems[0]}" if problems else None)
        return array
    if clickhouse_type == "Date32":
        return fit_day
    if clickhouse_type.startswith("DateTime64"):
        return fit_instant
    if clickhouse_type.startswith("Decimal("):
        precision, scale = (int(n) for n in clickhouse_type[len("Decimal("):-1].split(","))
        return lambda value: fit_decimal(value, precision, scale)
    return None
