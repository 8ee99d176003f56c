"""Re-identification risk (DM385 §66): k-anonymity and l-diversity per table, in ClickHouse.

Pseudonymized rows are still personal data: a rare combination of quasi-identifiers (birth
year, sex, region) can single a person out without any identifier. For each table whose
regulation declares quasi-identifiers, the equivalence classes are the groups of current rows
(FINAL) sharing all quasi-identifier values; k is the size of the smallest class, l the
smallest number of distinct values of the declared sensitive attribute within a class. A table
below its threshold is an incident (`detection`).
"""
from __future__ import annotations

from dataclasses import dataclass

from model.regulation import Regulation, Table
from model.names import WAREHOUSE_DB
from model.settings import Settings
from schemas.incidents import Detection, IncidentPublisher
from sinks.clickhouse_users import writer_client


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


def detection(risk: Risk) -> Detection:
    return Detection(risk.provider, risk.table, "k_anonymity", "other", "warning", risk.rows_at_risk,
                     f"k={risk.k} is below {risk.k_threshold} over ({', '.join(risk.quasi_identifiers)}): "
                     f"{risk.classes_below_k} of {risk.classes} classes, {risk.rows_at_risk} of {risk.rows} rows",
                     "risk")


def check(settings: Settings, regulations: list[Regulation]) -> list[Risk]:
    """`qoima risk`: every table that declares quasi-identifiers, now; each one below its
    threshold is recorded as an incident."""
    client = writer_client(settings)
    risks = [risk for regulation in regulations for table in regulation.tables
             if (risk := assess(client, regulation, table))]
    below = [risk for risk in risks if risk.below_threshold]
    if below:
        publisher = IncidentPublisher(settings.kafka_bootstrap)
        for risk in below:
            publisher.publish(detection(risk))
    return risks
