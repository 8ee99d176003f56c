"""Re-identification risk (DM385 §66): k-anonymity and l-diversity per table, in ClickHouse.

Pseudonymized rows are still personal data: a rare combination of quasi-identifiers (birth
year, sex, region) can single a person out without any identifier. For each table whose
regulation declares quasi-identifiers, the equivalence classes are the groups of current rows
(FINAL) sharing all quasi-identifier values; k is the size of the smallest class, l the
smallest number of distinct values of the declared sensitive attribute within a class.
"""
from __future__ import annotations

from dataclasses import dataclass

from model.regulation import Regulation, Table
from model.names import WAREHOUSE_DB


@dataclass(frozen=True)
class Risk:
    provider: str
    table: str
    quasi_identifiers: tuple[str, ...]
    sensitive: str | None
    rows: int
    classes: int
    k: int                   # 0 when the table is empty
    l_diversity: int | None
    classes_below_k: int
    rows_at_risk: int        # rows in classes smaller than the threshold
    k_threshold: int

    @property
    def below_threshold(self) -> bool:
        return self.rows > 0 and self.k < self.k_threshold


def _output(table: Table, name: str) -> str:
    return table.column(name).output_name


def assess(client, regulation: Regulation, table: Table) -> Risk | None:
    """None when the table declares no quasi-identifiers."""
    qis = [c for c in table.columns if c.quasi_identifier]
    if not qis:
        return None
    sensitive = next((c for c in table.columns if c.sensitive), None)
    group_by = ", ".join(f"`{c.output_name}`" for c in qis)
    diversity = f"uniqExact(`{sensitive.output_name}`)" if sensitive else "0"
    query = (
        f"SELECT sum(c), count(), min(c), min(l), countIf(c < {{k:UInt32}}), sumIf(c, c < {{k:UInt32}}) FROM ("
        f"SELECT count() AS c, {diversity} AS l FROM {WAREHOUSE_DB}.`{regulation.warehouse_table(table)}` FINAL "
        f"GROUP BY {group_by})"
    )
    rows, classes, k, l_min, small, at_risk = client.query(query, parameters={"k": table.min_k}).result_rows[0]
    return Risk(regulation.provider, table.name, tuple(c.output_name for c in qis),
                sensitive.output_name if sensitive else None, int(rows or 0), int(classes or 0),
                int(k or 0) if classes else 0, int(l_min) if sensitive and classes else None,
                int(small or 0), int(at_risk or 0), table.min_k)


def render(risks: list[Risk]) -> str:
    lines = [f"{'table':<34} {'rows':>9} {'classes':>8} {'k':>5} {'min k':>6} {'l':>4} {'rows at risk':>13}"]
    for r in risks:
        flag = "  BELOW k" if r.below_threshold else ""
        lines.append(f"{r.provider + '.' + r.table:<34} {r.rows:>9} {r.classes:>8} {r.k:>5} {r.k_threshold:>6} "
                     f"{'-' if r.l_diversity is None else r.l_diversity:>4} {r.rows_at_risk:>13}{flag}")
    return "\n".join(lines)
