"""ClickHouse tables derived from the regulation, one per captured source table.

`ReplacingMergeTree(_version, _is_deleted)` ordered by the source primary key makes the
warehouse converge: the highest LSN of a key wins, a delete wins by carrying `_is_deleted=1`,
and `SELECT ... FINAL` shows the source's current state whatever was replayed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from connectors.regulation import Regulation, Table

WAREHOUSE_DB = "udw"
META_COLUMNS = [
    ("_op", "LowCardinality(String)"),
    ("_version", "UInt64"),
    ("_is_deleted", "UInt8"),
    ("_source_ts", "DateTime64(3, 'UTC')"),
    ("_processed_ts", "DateTime64(3, 'UTC')"),
    ("_key_id", "LowCardinality(String)"),
    ("_defects", "Array(String)"),
]
# Avro field names of the meta columns, in META_COLUMNS order.
META_FIELDS = ["_op", "_version", "_is_deleted", "_source_ts_ms", "_processed_ts_ms", "_key_id", "_defects"]

_ZERO_UUID = UUID(int=0)


def _zero(ch_type: str) -> Any:
    """A placeholder for a non-nullable column of a delete row, which carries only its key."""
    if ch_type.startswith(("Int", "UInt")):
        return 0
    if ch_type.startswith("Float"):
        return 0.0
    if ch_type.startswith("Decimal"):
        return Decimal(0)
    if ch_type == "Bool":
        return False
    if ch_type.startswith("Date32"):
        return date(1970, 1, 1)
    if ch_type.startswith("DateTime"):
        return datetime(1970, 1, 1, tzinfo=timezone.utc)
    if ch_type == "UUID":
        return _ZERO_UUID
    return ""


@dataclass(frozen=True)
class WarehouseColumn:
    name: str
    ch_type: str          # without Nullable()
    nullable: bool

    @property
    def ddl_type(self) -> str:
        if not self.nullable:
            return self.ch_type
        if self.ch_type.startswith("LowCardinality("):
            return f"LowCardinality(Nullable({self.ch_type[len('LowCardinality('):-1]}))"
        return f"Nullable({self.ch_type})"

    @property
    def zero(self) -> Any:
        return None if self.nullable else _zero(self.ch_type)


def warehouse_columns(table: Table) -> list[WarehouseColumn]:
    columns = []
    for column in table.columns:
        if column.output_name is None:
            continue
        columns.append(WarehouseColumn(column.output_name, column.output_types[1], column.nullable))
    return columns


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def create_table_sql(regulation: Regulation, table: Table) -> str:
    columns = warehouse_columns(table)
    lines = [f"    `{c.name}` {c.ddl_type}" for c in columns]
    lines += [f"    `{name}` {ch_type}" for name, ch_type in META_COLUMNS]
    lines.append("    `_loaded_ts` DateTime64(3, 'UTC') DEFAULT now64(3)")
    order_by = ", ".join(f"`{table.column(k).output_name}`" for k in table.primary_key)
    ttl = (f"\nTTL toDateTime(_source_ts) + INTERVAL {table.retention_days} DAY"
           if table.retention_days else "")
    comment = table.description or f"{regulation.provider}: {table.name}"
    return (
        f"CREATE TABLE IF NOT EXISTS {WAREHOUSE_DB}.`{regulation.warehouse_table(table)}` (\n"
        + ",\n".join(lines)
        + f"\n)\nENGINE = ReplacingMergeTree(_version, _is_deleted)\nORDER BY ({order_by}){ttl}\n"
        # Deduplication tokens only work on a non-replicated table with a window set.
        f"SETTINGS non_replicated_deduplication_window = 10000\nCOMMENT {_quote(comment)}"
    )


META_DB = "qoima_meta"


def meta_tables_sql() -> list[str]:
    """Qoima's own tables: the incident journal's detections and their grouping by incident.

    Analysts cannot write here (and cannot read it either unless granted): the journal is the
    operator's record of what went wrong, DM385 §49.
    """
    return [
        f"CREATE DATABASE IF NOT EXISTS {META_DB}",
        f"""CREATE TABLE IF NOT EXISTS {META_DB}.incident_events (
    incident_key String,
    provider LowCardinality(String),
    `table` Nullable(String),
    rule LowCardinality(String),
    type LowCardinality(String),
    severity LowCardinality(String),
    count Int64,
    detail String,
    origin LowCardinality(String),
    detected_ts DateTime64(3, 'UTC'),
    _loaded_ts DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (incident_key, detected_ts)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Every detection of a quality or depersonalization problem'""",
        f"""CREATE VIEW IF NOT EXISTS {META_DB}.incidents AS
SELECT incident_key, any(provider) AS provider, any(`table`) AS `table`, any(rule) AS rule,
       any(type) AS type,
       multiIf(has(groupUniqArray(severity), 'critical'), 'critical',
               has(groupUniqArray(severity), 'warning'), 'warning', 'info') AS severity,
       sum(count) AS count, count() AS detections,
       min(detected_ts) AS first_seen, max(detected_ts) AS last_seen,
       argMax(detail, detected_ts) AS last_detail
FROM {META_DB}.incident_events
GROUP BY incident_key""",
    ]


INCIDENT_COLUMNS = ["incident_key", "provider", "table", "rule", "type", "severity", "count", "detail",
                    "origin", "detected_ts"]
