"""Coverage (DM385 §49, incident type 'coverage': objects missing from the warehouse).

Each round of the assessor counts every regulated table at the source, through the regulation's
capture account, and in the warehouse (current rows: FINAL, not deleted). A table whose counts
differ by more than its tolerance, |source - warehouse| / max(source, 1) > tolerance (its coverage
rule's `tolerance`, else DEFAULT_TOLERANCE), on ROUNDS consecutive rounds opens a warning
incident: one round apart is ignored, since changes in flight (committed at the source, not yet
loaded) make the counts differ for a moment. The incident is published once per episode; the
table must come back within tolerance before another can be.

Counts only, never values. The source count is an exact `count(*)`, bounded by a statement
timeout, on the assessor's schedule (`QOIMA_ASSESS_INTERVAL_S`): a sequential scan of each
table, which a very large source may prefer to see less often.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from model.regulation import Regulation, RuleKind, Table
from connectors.source_reader import SourceReader
from model.names import WAREHOUSE_DB
from schemas.incidents import Detection

log = logging.getLogger("qoima.coverage")

DEFAULT_TOLERANCE = 0.01
ROUNDS = 2
RULE = "coverage"
SOURCE_TIMEOUT_MS = 60_000


def tolerance(table: Table) -> float:
    """The table's coverage rule's tolerance (the strictest if several), else DEFAULT_TOLERANCE."""
    declared = [r.tolerance for r in table.rules if r.kind is RuleKind.coverage and r.tolerance is not None]
    return min(declared) if declared else DEFAULT_TOLERANCE


def rule_name(table: Table) -> str:
    """The incident's rule: the table's coverage rule when it declares one (its name names the
    incident, docs/regulation.md), else 'coverage'."""
    return next((r.name for r in table.rules if r.kind is RuleKind.coverage), RULE)


@dataclass(frozen=True)
class Coverage:
    provider: str
    table: str
    source_rows: int
    warehouse_rows: int
    tolerance: float
    rule: str = RULE

    @property
    def gap(self) -> float:
        return abs(self.source_rows - self.warehouse_rows) / max(self.source_rows, 1)

    @property
    def diverged(self) -> bool:
        return self.gap > self.tolerance

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.table}"


def warehouse_sql(regulation: Regulation, table: Table) -> str:
    return f"SELECT count() FROM {WAREHOUSE_DB}.`{regulation.warehouse_table(table)}` FINAL WHERE _is_deleted = 0"


def warehouse_rows(client, regulation: Regulation, table: Table) -> int:
    return int(client.command(warehouse_sql(regulation, table)) or 0)


def _connect(regulation: Regulation, environ: dict[str, str]) -> SourceReader:
    return SourceReader(regulation, environ, timeout_ms=SOURCE_TIMEOUT_MS, application="qoima-coverage")


def source_rows(regulation: Regulation, environ: dict[str, str],
                connect: Callable | None = None) -> dict[str, int]:
    """Rows per table at the source (`schema.table` -> count), read with the capture account."""
    with (connect or _connect)(regulation, environ) as reader:
        return {table.name: reader.count_rows(table) for table in regulation.tables}


def measure(client, regulations: list[Regulation], environ: dict[str, str],
            connect: Callable | None = None) -> list[Coverage]:
    """Both counts of every table whose source and warehouse answered."""
    found = []
    for regulation in regulations:
        try:
            at_source = source_rows(regulation, environ, connect)
        except Exception as exc:  # the source may be down or refuse; say which, never the password
            log.warning("coverage: source of %s not counted (%s)", regulation.provider, type(exc).__name__)
            continue
        for table in regulation.tables:
            try:
                in_warehouse = warehouse_rows(client, regulation, table)
            except Exception as exc:
                log.warning("coverage: warehouse rows of %s not counted (%s)", table.name, type(exc).__name__)
                continue
            found.append(Coverage(regulation.provider, table.name, at_source[table.name], in_warehouse,
                                  tolerance(table), rule_name(table)))
    return found


def detection(coverage: Coverage, rounds: int = ROUNDS) -> Detection:
    missing = coverage.source_rows - coverage.warehouse_rows
    what = (f"{missing} source row(s) missing from the warehouse" if missing > 0
            else f"{-missing} more row(s) in the warehouse than at the source")
    return Detection(
        coverage.provider, coverage.table, coverage.rule, "coverage", "warning", abs(missing),
        f"source has {coverage.source_rows} rows, the warehouse {coverage.warehouse_rows}: {what} "
        f"(gap {coverage.gap:.2%} above the tolerance {coverage.tolerance:.2%} on {rounds} consecutive rounds)",
        "coverage")


class CoverageWatch:
    """Turns rounds of measures into detections: one per episode of ROUNDS diverged rounds."""

    def __init__(self, rounds: int = ROUNDS) -> None:
        self.rounds = rounds
        self.streak: dict[str, int] = {}
        self.reported: set[str] = set()

    def observe(self, coverage: Coverage) -> Detection | None:
        key = coverage.key
        if not coverage.diverged:
            self.streak.pop(key, None)
            self.reported.discard(key)
            return None
        self.streak[key] = self.streak.get(key, 0) + 1
        if self.streak[key] < self.rounds or key in self.reported:
            return None
        self.reported.add(key)
        return detection(coverage, self.rounds)

    def forget(self, coverage: Coverage) -> None:
        """Its detection could not be published: publish it again next round if still diverged."""
        self.reported.discard(coverage.key)


def export(coverage: Coverage) -> None:
    from monitoring import metrics

    metrics.COVERAGE_SOURCE_ROWS.labels(coverage.table).set(coverage.source_rows)
    metrics.COVERAGE_WAREHOUSE_ROWS.labels(coverage.table).set(coverage.warehouse_rows)
    metrics.COVERAGE_TOLERANCE.labels(coverage.table).set(coverage.tolerance)
