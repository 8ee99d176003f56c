"""Quality assessment (DM385 §35, §53-55): the seven indicators of every regulated table, measured
in ClickHouse on a schedule and recorded as a time series.

Each indicator is a ratio in [0, 1] with the number of rows it was measured on. Unless said
otherwise it is measured over the table's current rows as analysts see them (`FINAL`, deleted
rows excluded); a measure over no rows is 1.0 with `rows` 0 (nothing found wrong, nothing
measured: read the two together).

- completeness: rows without a completeness-rule note in `_defects` and without a null in a
  column the regulation declares `nullable: false` (the DDL already makes those columns
  non-nullable and the processor quarantines such a row, so today the notes decide);
- accuracy: rows without an accuracy-rule note and without an identifier-validation note of the
  depersonalization step (`iin: not a valid iin`);
- consistency: rows without a consistency-rule note;
- uniqueness: distinct values over rows, per uniqueness rule (its columns as the warehouse
  names them: hashed columns compare pseudonyms, equal for equal values); a row with an empty
  value in a rule's columns counts as unique, as in SQL's UNIQUE and the processor's check.
  The table's value is its worst rule's; without a rule, the primary key's (1.0 under FINAL);
- integrity: rows whose reference exists in the referenced table's current rows, per integrity
  rule; an empty reference passes (completeness reports it), and rows changed within the
  rule's `grace_seconds` are not measured yet. The table's value is its worst rule's; none: 1.0;
- actuality (currency): rows whose `_source_ts` (their last change at the source, or the
  snapshot that read them) is within the expected refresh period of the source's `refresh`
  (REFRESH_PERIOD_S: two periods, so one late refresh does not already count; continuous: one
  day). A table whose rows rarely change scores low under continuous refresh by design: it says
  how much of the table was confirmed recently, not whether the capture is alive;
- timeliness: of the versions loaded in the last hour (the history table `udw.<t>__history`,
  so every update and delete counts, not only a key's newest version), those whose
  `_loaded_ts - _source_ts` is within the table's timeliness rule's `max_lag_seconds`
  (the strictest if several; 10 s without one).

Per column: the share of non-null values of every nullable warehouse column (indicator
`completeness`, `column` set). Per rule, when a table has uniqueness or integrity rules: the
rule's value with `column` naming its warehouse column(s).

Notes are matched by the rule name that ends every rule violation ("... (rule <name>)",
streams/quality.py), never by their text otherwise; values never leave ClickHouse.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from model.regulation import Regulation, Rule, RuleKind, Table
from sinks.ddl import QUALITY_ASSESSMENTS_SQL
from model.names import META_DB, QUALITY_ASSESSMENTS_TABLE as TABLE
from model.names import WAREHOUSE_DB

log = logging.getLogger("qoima.quality")

INDICATORS = ("completeness", "accuracy", "consistency", "uniqueness", "integrity", "actuality", "timeliness")
# How old a row may be and still count as current, by the source's declared refresh.
REFRESH_PERIOD_S = {"continuous": 86_400, "hourly": 2 * 3_600, "daily": 2 * 86_400, "monthly": 62 * 86_400}
DEFAULT_MAX_LAG_S = 10
TIMELINESS_WINDOW_S = 3_600
COLUMNS = ["ts", "provider", "table", "indicator", "column", "value", "rows"]

# A rule violation's note ends with "(rule <name>)"; an identifier that fails validation is noted
# "<column>: not a valid <kind>" by the depersonalization step (streams/depersonalize.py).
# Regular expressions as RE2 (ClickHouse) and Python's re read them alike, without backslashes.
RULE_NOTE_PATTERN = "[(]rule ([a-z][a-z0-9_]*)[)]$"
IDENTIFIER_NOTE_PATTERN = "^[a-z][a-z0-9_]*: not a valid [a-z_]+$"
_RULE_OF_NOTE = f"extract(d, '{RULE_NOTE_PATTERN}')"
_IDENTIFIER_NOTE = f"match(d, '{IDENTIFIER_NOTE_PATTERN}')"


@dataclass(frozen=True)
class Indicator:
    indicator: str
    value: float
    rows: int
    column: str = ""


@dataclass
class Assessment:
    provider: str
    table: str
    ts: datetime
    rows: int
    indicators: list[Indicator] = field(default_factory=list)

    def value(self, indicator: str, column: str = "") -> float | None:
        return next((i.value for i in self.indicators if i.indicator == indicator and i.column == column), None)

    def records(self) -> list[list[Any]]:
        return [[self.ts, self.provider, self.table, i.indicator, i.column, i.value, i.rows] for i in self.indicators]


def ratio(part: int | None, whole: int | None) -> float:
    """part/whole clamped to [0, 1]; 1.0 over nothing measured."""
    part, whole = int(part or 0), int(whole or 0)
    return 1.0 if whole <= 0 else min(1.0, max(0.0, part / whole))


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _rules(table: Table, kind: RuleKind) -> list[Rule]:
    return [r for r in table.rules if r.kind is kind]


def _noted(rules: list[Rule], *extra: str) -> str:
    """SQL: the row's `_defects` hold a note of one of `rules` (or matching an `extra` condition on d)."""
    conditions = []
    if rules:
        conditions.append(f"{_RULE_OF_NOTE} IN ({', '.join(_literal(r.name) for r in rules)})")
    conditions.extend(extra)
    if not conditions:
        return "0"
    return f"arrayExists(d -> {' OR '.join(conditions)}, _defects)"


def incomplete_sql(table: Table) -> str:
    parts = []
    if _rules(table, RuleKind.completeness):
        parts.append(_noted(_rules(table, RuleKind.completeness)))
    parts += [f"isNull({_quoted(c.output_name)})" for c in table.columns
              if not c.nullable and c.output_name is not None]
    return " OR ".join(parts) if parts else "0"


def inaccurate_sql(table: Table) -> str:
    return _noted(_rules(table, RuleKind.accuracy), _IDENTIFIER_NOTE)


def inconsistent_sql(table: Table) -> str:
    return _noted(_rules(table, RuleKind.consistency))


def _output_columns(table: Table, names: list[str]) -> list[str] | None:
    """Warehouse names of source columns; None when one is dropped (not in the warehouse)."""
    outputs = [table.column(n).output_name for n in names]
    return None if any(o is None for o in outputs) else outputs


def distinct_sql(table: Table, names: list[str]) -> str:
    """SQL: distinct values of the columns, a row with an empty one counting as distinct."""
    outputs = [_quoted(table.column(n).output_name) for n in names]
    nullable = [o for n, o in zip(names, outputs) if table.column(n).nullable]
    tuple_sql = f"tuple({', '.join(outputs)})"
    if not nullable:
        return f"uniqExact({tuple_sql})"
    some_null = " OR ".join(f"isNull({o})" for o in nullable)
    return f"(uniqExactIf({tuple_sql}, NOT ({some_null})) + countIf({some_null}))"


def uniqueness_sets(table: Table) -> list[tuple[str, list[str]]]:
    """(label: its warehouse columns, source columns) per measurable uniqueness rule; with none,
    ("", the primary key)."""
    sets = []
    for rule in _rules(table, RuleKind.uniqueness):
        outputs = _output_columns(table, rule.columns)
        if outputs is None:
            log.warning("%s: uniqueness rule %s names a dropped column; not measurable in the warehouse",
                        table.name, rule.name)
            continue
        sets.append((", ".join(outputs), list(rule.columns)))
    if not sets:
        sets.append(("", list(table.primary_key)))
    return sets


def nullable_columns(table: Table) -> list[str]:
    return [c.output_name for c in table.columns if c.nullable and c.output_name is not None]


def current_sql(regulation: Regulation, table: Table) -> str:
    """One scan of the current rows for every indicator but integrity and timeliness."""
    period = REFRESH_PERIOD_S[regulation.source.refresh]
    select = [
        "count()",
        f"countIf(NOT ({incomplete_sql(table)}))",
        f"countIf(NOT ({inaccurate_sql(table)}))",
        f"countIf(NOT ({inconsistent_sql(table)}))",
        f"countIf(_source_ts >= now64(3) - INTERVAL {int(period)} SECOND)",
    ]
    select += [distinct_sql(table, names) for _, names in uniqueness_sets(table)]
    select += [f"countIf(isNull({_quoted(name)}))" for name in nullable_columns(table)]
    return (f"SELECT {', '.join(select)} FROM {WAREHOUSE_DB}.{_quoted(regulation.warehouse_table(table))} FINAL "
            "WHERE _is_deleted = 0")


def _referenced(regulations: list[Regulation], references: str) -> tuple[Regulation, Table, str] | None:
    """The regulation, table and warehouse column a `references: schema.table.column` names."""
    table_name, column_name = references.rsplit(".", 1)
    for regulation in regulations:
        for table in regulation.tables:
            if table.name == table_name and any(c.name == column_name for c in table.columns):
                output = table.column(column_name).output_name
                return (regulation, table, output) if output else None
    return None


def integrity_sql(regulation: Regulation, table: Table, rule: Rule, regulations: list[Regulation]) -> str | None:
    """count() and rows whose reference exists; None when the rule is not measurable."""
    column = table.column(rule.column).output_name
    target = _referenced(regulations, rule.references)
    if column is None or target is None:
        log.warning("%s: integrity rule %s: %s or %s is not in the warehouse; not measured",
                    table.name, rule.name, rule.column, rule.references)
        return None
    target_regulation, target_table, target_column = target
    column = _quoted(column)
    return (f"SELECT count(), countIf(isNull({column}) OR {column} IN ("
            f"SELECT {_quoted(target_column)} FROM {WAREHOUSE_DB}."
            f"{_quoted(target_regulation.warehouse_table(target_table))} FINAL WHERE _is_deleted = 0)) "
            f"FROM {WAREHOUSE_DB}.{_quoted(regulation.warehouse_table(table))} FINAL "
            f"WHERE _is_deleted = 0 AND _source_ts < now64(3) - INTERVAL {int(rule.grace_seconds or 0)} SECOND")


def max_lag_s(table: Table) -> int:
    lags = [r.max_lag_seconds for r in _rules(table, RuleKind.timeliness) if r.max_lag_seconds]
    return min(lags) if lags else DEFAULT_MAX_LAG_S


def timeliness_sql(regulation: Regulation, table: Table) -> str:
    return (f"SELECT count(), countIf(dateDiff('millisecond', _source_ts, _loaded_ts) <= {max_lag_s(table) * 1000}) "
            f"FROM {WAREHOUSE_DB}.{_quoted(regulation.history_table(table))} "
            f"WHERE _loaded_ts >= now64(3) - INTERVAL {TIMELINESS_WINDOW_S} SECOND")


def _row(client, query: str) -> tuple:
    return tuple(client.query(query).result_rows[0])


def assess(client, regulation: Regulation, table: Table, regulations: list[Regulation] | None = None) -> Assessment:
    """The indicators of one table now (several read-only queries)."""
    regulations = regulations if regulations is not None else [regulation]
    ts = datetime.now(timezone.utc)
    unique_sets = uniqueness_sets(table)
    nullable = nullable_columns(table)
    values = _row(client, current_sql(regulation, table))
    rows, complete, accurate, consistent, current = (int(v or 0) for v in values[:5])
    distinct = [int(v or 0) for v in values[5:5 + len(unique_sets)]]
    nulls = [int(v or 0) for v in values[5 + len(unique_sets):]]
    found = Assessment(regulation.provider, table.name, ts, rows)
    add = found.indicators.append

    add(Indicator("completeness", ratio(complete, rows), rows))
    add(Indicator("accuracy", ratio(accurate, rows), rows))
    add(Indicator("consistency", ratio(consistent, rows), rows))

    per_rule = [(label, ratio(count, rows)) for (label, _), count in zip(unique_sets, distinct)]
    add(Indicator("uniqueness", min((v for _, v in per_rule), default=1.0), rows))
    for label, value in per_rule:
        if label:  # a rule's columns; the primary key's value is the table's only
            add(Indicator("uniqueness", value, rows, label))

    integrity = []
    for rule in _rules(table, RuleKind.integrity):
        query = integrity_sql(regulation, table, rule, regulations)
        if query is None:
            continue
        measured, existing = (int(v or 0) for v in _row(client, query))
        integrity.append(Indicator("integrity", ratio(existing, measured), measured,
                                   table.column(rule.column).output_name))
    worst = min(integrity, key=lambda i: i.value, default=None)
    add(Indicator("integrity", worst.value if worst else 1.0, worst.rows if worst else rows))
    found.indicators.extend(integrity)

    add(Indicator("actuality", ratio(current, rows), rows))
    loaded, timely = (int(v or 0) for v in _row(client, timeliness_sql(regulation, table)))
    add(Indicator("timeliness", ratio(timely, loaded), loaded))

    for name, null_count in zip(nullable, nulls):
        add(Indicator("completeness", ratio(rows - null_count, rows), rows, name))
    return found


def assess_all(client, regulations: list[Regulation]) -> tuple[list[Assessment], list[str]]:
    """Every regulated table; a table that fails is named in the second list (the reason class)."""
    done, failed = [], []
    for regulation in regulations:
        for table in regulation.tables:
            try:
                done.append(assess(client, regulation, table, regulations))
            except Exception as exc:  # the warehouse may be starting, a table not created yet
                log.warning("quality assessment of %s failed (%s)", table.name, type(exc).__name__)
                failed.append(f"{regulation.provider}.{table.name}: {type(exc).__name__}")
    return done, failed


def ensure_table(client) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS {META_DB}")
    client.command(QUALITY_ASSESSMENTS_SQL)


def record(client, assessments: list[Assessment]) -> int:
    rows = [r for a in assessments for r in a.records()]
    if rows:
        client.insert(TABLE, rows, column_names=COLUMNS)
    return len(rows)


def assess_and_record(client, regulations: list[Regulation]) -> tuple[list[dict[str, Any]], list[str]]:
    """`qoima dq assess`: every table now, recorded; the report of what was assessed and the
    tables that could not be (as `assess_all` names them)."""
    assessments, failed = assess_all(client, regulations)
    ensure_table(client)
    record(client, assessments)
    return report_of(assessments), failed


def export(assessment: Assessment) -> None:
    from monitoring import metrics

    for item in assessment.indicators:
        if not item.column:
            metrics.QUALITY_INDICATOR.labels(assessment.table, item.indicator).set(item.value)
        elif item.indicator == "completeness":
            metrics.QUALITY_COLUMN_COMPLETENESS.labels(assessment.table, item.column).set(item.value)
    metrics.QUALITY_ASSESSED.labels(assessment.table).set(assessment.ts.timestamp())


# ---------------------------------------------------------------------------- the report

LATEST_SQL = f"""SELECT provider, `table`, ts, indicator, `column`, value, rows
FROM {TABLE}
WHERE (provider, `table`, ts) IN (SELECT provider, `table`, max(ts) FROM {TABLE} GROUP BY provider, `table`)
ORDER BY provider, `table`, indicator, `column`"""


def latest(client) -> list[dict[str, Any]]:
    """The latest assessment of every table, as recorded: one dict per table."""
    return _report(client.query(LATEST_SQL).result_rows)


def report_of(assessments: list[Assessment]) -> list[dict[str, Any]]:
    """Assessments just made, in the form `latest` gives."""
    return _report([(a.provider, a.table, a.ts, i.indicator, i.column, i.value, i.rows)
                    for a in assessments for i in a.indicators])


def _report(rows) -> list[dict[str, Any]]:
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    for provider, table, ts, indicator, column, value, rows in rows:
        entry = tables.setdefault((provider, table), {
            "provider": provider, "table": table, "ts": _iso(ts), "indicators": {}, "columns": {}})
        if column:
            entry["columns"].setdefault(indicator, {})[column] = {"value": float(value), "rows": int(rows)}
        else:
            entry["indicators"][indicator] = {"value": float(value), "rows": int(rows)}
    for entry in tables.values():
        entry["indicators"] = {name: entry["indicators"][name] for name in INDICATORS if name in entry["indicators"]}
    return list(tables.values())


def _iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=timezone.utc)
    return ts.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def render(report: list[dict[str, Any]]) -> str:
    if not report:
        return "no quality assessment recorded yet: `qoima dq assess` runs one (the assessor does every interval)"
    lines = []
    for entry in report:
        lines.append(f"{entry['provider']}.{entry['table']}  (assessed {entry['ts']})")
        lines.append(f"  {'indicator':<14} {'value':>8} {'rows':>10}")
        for name, item in entry["indicators"].items():
            lines.append(f"  {name:<14} {_percent(item['value']):>8} {item['rows']:>10}")
        for indicator, columns in entry["columns"].items():
            what = "non-null" if indicator == "completeness" else indicator
            for column, item in columns.items():
                lines.append(f"    {what + ' of ' + column:<40} {_percent(item['value']):>8} {item['rows']:>10}")
        lines.append("")
    return "\n".join(lines).rstrip()
