"""ClickHouse tables derived from the regulation, one per captured source table.

`ReplacingMergeTree(_version, _is_deleted)` ordered by the source primary key makes the
warehouse converge: the highest `_version` of a key (commit order, streams/versions.py) wins,
a delete wins by carrying `_is_deleted=1`, and `SELECT ... FINAL` shows the source's current
state whatever was replayed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from model.names import (ACCESS_EVENTS_TABLE, HISTORY_VIEW_SUFFIX, META_DB, PASSPORT_STRUCTURE_TABLE,
                         PASSPORT_WAREHOUSE_TABLE, PASSPORTS_TABLE, TABLE_USAGE_TABLE, WAREHOUSE_DB)
from model.regulation import Regulation, Table

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
    if ch_type.startswith("Time64"):
        return 0
    if ch_type.startswith("Array("):
        return []
    if ch_type.startswith("Tuple("):  # named, as Avro records arrive: the interval's (months, days, micros)
        return {name: _zero(element) for name, element in
                (part.strip().split(" ", 1) for part in ch_type[len("Tuple("):-1].split(","))}
    return ""


@dataclass(frozen=True)
class WarehouseColumn:
    name: str
    ch_type: str          # without Nullable()
    nullable: bool
    binary: bool = False  # bytea: its String column is fed bytes, so its placeholder is b""

    @property
    def ddl_type(self) -> str:
        if not self.nullable:
            return self.ch_type
        if self.ch_type.startswith("Array("):
            # ClickHouse cannot wrap an Array in Nullable; a one-type Variant keeps NULL apart from [].
            return f"Variant({self.ch_type})"
        if self.ch_type.startswith("LowCardinality("):
            return f"LowCardinality(Nullable({self.ch_type[len('LowCardinality('):-1]}))"
        return f"Nullable({self.ch_type})"

    @property
    def zero(self) -> Any:
        if self.nullable:
            return None
        return b"" if self.binary else _zero(self.ch_type)


def warehouse_columns(table: Table) -> list[WarehouseColumn]:
    columns = []
    for column in table.columns:
        if column.output_name is None:
            continue
        avro, ch_type = column.output_types
        columns.append(WarehouseColumn(column.output_name, ch_type, column.nullable, binary=avro == "bytes"))
    return columns


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


HELD_COLUMN = ("_held_by", "Array(String)")


LOADED_COLUMN = ("_loaded_ts", "DateTime64(3, 'UTC')")


def table_columns(table: Table, held: bool = False) -> list[tuple[str, str]]:
    """(name, ClickHouse type) of the warehouse table's columns, in order; `_loaded_ts` last."""
    return ([(c.name, c.ddl_type) for c in warehouse_columns(table)] + META_COLUMNS
            + ([HELD_COLUMN] if held else []) + [LOADED_COLUMN])


def create_table_sql(regulation: Regulation, table: Table, held: bool = False) -> str:
    """The analysts' table in `udw`, or with `held=True` its twin in `qoima_meta` where records
    a 'hold' rule keeps back wait for their incidents' resolution."""
    lines = [f"    `{name}` {ch_type}" for name, ch_type in table_columns(table, held)]
    lines[-1] += " DEFAULT now64(3)"  # _loaded_ts: when ClickHouse took the row
    order_by = ", ".join(f"`{table.column(k).output_name}`" for k in table.primary_key)
    ttl = (f"\nTTL toDateTime(_source_ts) + INTERVAL {table.retention_days} DAY"
           if table.retention_days else "")
    comment = table.description or f"{regulation.provider}: {table.name}"
    name = f"{META_DB}.`{regulation.held_table(table)}`" if held else \
        f"{WAREHOUSE_DB}.`{regulation.warehouse_table(table)}`"
    return (
        f"CREATE TABLE IF NOT EXISTS {name} (\n"
        + ",\n".join(lines)
        + f"\n)\nENGINE = ReplacingMergeTree(_version, _is_deleted)\nORDER BY ({order_by}){ttl}\n"
        # Deduplication tokens only work on a non-replicated table with a window set.
        f"SETTINGS non_replicated_deduplication_window = 10000\nCOMMENT {_quote(comment)}"
    )


# The history of corrections (DM385 §49): every version of every row, as it was loaded, next to
# the current-state table. The ReplacingMergeTree keeps only a key's newest version once it
# merges; the history table is a plain MergeTree fed by a materialized view, so whatever reaches
# `udw.<t>` (the sink's inserts, released held rows) is appended there too and never replaced.
# (model/names.py: HISTORY_SUFFIX, HISTORY_VIEW_SUFFIX)


def history_sql(regulation: Regulation, table: Table) -> list[str]:
    """The history table of `udw.<t>`, a one-time copy of what `udw.<t>` held before it existed,
    and the materialized view that appends every later insert. Run right after create_table_sql.

    Same columns as `udw.<t>` (`AS`), ordered by the key then `_version`, with the table's
    retention. The deduplication window lets a retried insert (same `insert_deduplication_token`)
    be dropped in the view too: `deduplicate_blocks_in_dependent_materialized_views` (1 by
    default in ClickHouse 26.9) only skips a block whose target table keeps a deduplication log.
    The copy runs only while the history is empty, so on a stack that predates it the versions
    then in `udw.<t>` are kept; on a new stack both are empty and it copies nothing.
    """
    current = f"{WAREHOUSE_DB}.`{regulation.warehouse_table(table)}`"
    history = f"{WAREHOUSE_DB}.`{regulation.history_table(table)}`"
    view = f"{WAREHOUSE_DB}.`{regulation.warehouse_table(table)}{HISTORY_VIEW_SUFFIX}`"
    order_by = ", ".join([f"`{table.column(k).output_name}`" for k in table.primary_key] + ["_version"])
    ttl = (f"\nTTL toDateTime(_source_ts) + INTERVAL {table.retention_days} DAY"
           if table.retention_days else "")
    comment = f"Every loaded version of {regulation.provider}: {table.name} (history of corrections, DM385 §49)"
    return [
        f"CREATE TABLE IF NOT EXISTS {history} AS {current}\nENGINE = MergeTree\nORDER BY ({order_by}){ttl}\n"
        f"SETTINGS non_replicated_deduplication_window = 10000\nCOMMENT {_quote(comment)}",
        f"INSERT INTO {history} SELECT * FROM {current} WHERE (SELECT count() FROM {history}) = 0",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view} TO {history} AS SELECT * FROM {current}",
    ]


# Data-quality assessments (DM385 §53-55): the indicators of every regulated table, measured on
# a schedule by the assessor (governance/quality_assessment.py), one row per indicator (and per
# column for column completeness) per assessment.
QUALITY_ASSESSMENTS_SQL = f"""CREATE TABLE IF NOT EXISTS {META_DB}.quality_assessments (
    ts DateTime64(3, 'UTC'),
    provider LowCardinality(String),
    `table` LowCardinality(String),
    indicator LowCardinality(String),
    `column` String DEFAULT '',
    value Float64,
    rows UInt64
)
ENGINE = MergeTree
ORDER BY (`table`, indicator, ts)
COMMENT 'Quality indicators per table over time (DM385 §53-55): ratios in [0, 1], rows measured'"""


# The incident life cycle (DM385 §49), append-only: who moved which incident to which status.
INCIDENT_TRANSITIONS_SQL = f"""CREATE TABLE IF NOT EXISTS {META_DB}.incident_transitions (
    incident_key String,
    status LowCardinality(String),
    actor String,
    note String,
    ts DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (incident_key, ts)
COMMENT 'Incident life cycle: open -> acknowledged -> resolved -> closed, who and when (append-only)'"""

# The notifier's outbox: one row per (incident episode, event, target); each delivery attempt
# writes a new version, so FINAL shows where every notification stands.
NOTIFICATIONS_SQL = f"""CREATE TABLE IF NOT EXISTS {META_DB}.notifications (
    id String,
    incident_key String,
    event LowCardinality(String),
    url String,
    payload String,
    created_ts DateTime64(3, 'UTC'),
    attempts UInt32,
    delivered_ts Nullable(DateTime64(3, 'UTC')),
    last_error String,
    next_attempt_ts DateTime64(3, 'UTC'),
    _version UInt64
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY id
COMMENT 'Incident notifications to webhook targets (outbox, delivered at least once)'"""

# PD236 access events (streams/access_log.py) and their delivery to the state service: one table
# is the outbox (governance/pd236/reporter.py). The sink writes an event at version 0, the
# reporter each attempt at a higher one, so FINAL shows the latest state and a redelivered
# event (a sink restart) never undoes a delivery.
ACCESS_EVENTS_SQL = f"""CREATE TABLE IF NOT EXISTS {ACCESS_EVENTS_TABLE} (
    event_id String,
    provider LowCardinality(String),
    organization String,
    information_system String,
    `table` LowCardinality(String),
    path LowCardinality(String),
    categories Array(LowCardinality(String)),
    `rows` UInt64,
    subjects UInt64,
    subjects_exact Bool,
    legal_basis String,
    purpose String,
    key_id LowCardinality(String),
    interval_start DateTime64(3, 'UTC'),
    interval_end DateTime64(3, 'UTC'),
    first_read DateTime64(3, 'UTC'),
    last_read DateTime64(3, 'UTC'),
    recorded_ts DateTime64(3, 'UTC') DEFAULT now64(3),
    attempts UInt32 DEFAULT 0,
    delivered_ts Nullable(DateTime64(3, 'UTC')),
    receipt String DEFAULT '',
    last_error String DEFAULT '',
    next_attempt_ts DateTime64(3, 'UTC') DEFAULT now64(3),
    _version UInt64 DEFAULT 0
)
ENGINE = ReplacingMergeTree(_version)
ORDER BY event_id
COMMENT 'PD236 access protocol: reads of personal data (counts, never values) and their delivery'"""

# The data passports' catalog (governance/passport/catalog.py): versions kept, readable by analysts.
PASSPORT_SQL = [
    f"""CREATE TABLE IF NOT EXISTS {PASSPORTS_TABLE} (
    provider LowCardinality(String),
    version UInt32,
    digest String,
    regulation_digest String,
    structure_digest String,
    reason String,
    changes String,
    document String,
    created_ts DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (provider, version)
COMMENT 'Data passports (DM385 Appendix 1), one row per version; document is the whole passport as JSON'""",
    f"""CREATE TABLE IF NOT EXISTS {PASSPORT_STRUCTURE_TABLE} (
    provider LowCardinality(String),
    version UInt32,
    id UInt32,
    information_system_name String,
    bd_name LowCardinality(String),
    schema_name String,
    table_name String,
    table_description String,
    table_type LowCardinality(String),
    column_id UInt32,
    column_name String,
    column_type String,
    column_description String,
    reference_tbl_clmn String,
    flk String,
    clmn_key_type LowCardinality(String),
    teg String
)
ENGINE = ReplacingMergeTree
ORDER BY (provider, version, id)
COMMENT 'Structure descriptions of the data passports (DM385 Appendix 1 columns), per version'""",
    f"""CREATE TABLE IF NOT EXISTS {PASSPORT_WAREHOUSE_TABLE} (
    provider LowCardinality(String),
    version UInt32,
    warehouse_table String,
    warehouse_column String,
    warehouse_type String,
    source_table String,
    source_column String,
    treatment String,
    quality_rules String,
    retention_days UInt32
)
ENGINE = ReplacingMergeTree
ORDER BY (provider, version, source_table, source_column)
COMMENT 'What Qoima does to each column of a passport version: kept, hashed, generalized, redacted, dropped'""",
    f"""CREATE TABLE IF NOT EXISTS {TABLE_USAGE_TABLE} (
    day Date,
    `table` String,
    queries UInt64,
    updated_ts DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_ts)
ORDER BY (day, `table`)
COMMENT 'Analyst queries per warehouse table and day, from system.query_log (DM385 §13)'""",
]

ACCESS_COLUMNS = ["event_id", "provider", "organization", "information_system", "table", "path", "categories",
                  "rows", "subjects", "subjects_exact", "legal_basis", "purpose", "key_id", "interval_start",
                  "interval_end", "first_read", "last_read"]

# Incidents with their current status. Status: the latest transition, else 'open'; a detection
# newer than the latest transition of a resolved or closed incident reopens it (by 'qoima',
# since that detection). opened_ts starts the current open episode (NULL once resolved or
# closed), resolved_ts is the latest resolution (NULL unless resolved or closed): the notifier
# keys its 'opened' and 'resolved' notifications on them. `OR REPLACE`: a stack created before
# the life cycle gets the new columns when the sink starts.
INCIDENTS_VIEW_SQL = f"""CREATE OR REPLACE VIEW {META_DB}.incidents AS
SELECT incident_key, provider, `table`, rule, type, severity, count, detections, first_seen, last_seen, last_detail,
       multiIf(transitions = 0, 'open', reopened, 'open', last_status) AS status,
       multiIf(transitions = 0, '', reopened, 'qoima', last_actor) AS status_by,
       multiIf(transitions = 0, first_seen, reopened, reopened_ts, last_ts) AS status_ts,
       multiIf(transitions = 0, '', reopened, 'detected again after its resolution', last_note) AS status_note,
       if(status IN ('resolved', 'closed'), NULL,
          greatest(first_seen, if(last_open_ts > last_resolution_ts, last_open_ts, reopened_ts))) AS opened_ts,
       if(status IN ('resolved', 'closed'), resolved_ts, NULL) AS resolved_ts,
       transitions
FROM (
    SELECT e.incident_key AS incident_key, any(e.provider) AS provider, any(e.`table`) AS `table`,
           any(e.rule) AS rule, any(e.type) AS type,
           multiIf(has(groupUniqArray(e.severity), 'critical'), 'critical',
                   has(groupUniqArray(e.severity), 'warning'), 'warning', 'info') AS severity,
           sum(e.count) AS count, count() AS detections,
           min(e.detected_ts) AS first_seen, max(e.detected_ts) AS last_seen,
           argMax(e.detail, e.detected_ts) AS last_detail,
           any(t.transitions) AS transitions, any(t.last_status) AS last_status,
           any(t.last_actor) AS last_actor, any(t.last_note) AS last_note, any(t.last_ts) AS last_ts,
           any(t.last_resolution_ts) AS last_resolution_ts, any(t.last_open_ts) AS last_open_ts,
           any(t.resolved_ts) AS resolved_ts,
           minIf(e.detected_ts, e.detected_ts > t.last_resolution_ts) AS reopened_ts,
           transitions > 0 AND last_status IN ('resolved', 'closed') AND last_seen > last_ts AS reopened
    FROM {META_DB}.incident_events AS e
    LEFT JOIN (
        SELECT incident_key, count() AS transitions,
               argMax(status, ts) AS last_status, argMax(actor, ts) AS last_actor,
               argMax(note, ts) AS last_note, max(ts) AS last_ts,
               maxIf(ts, status IN ('resolved', 'closed')) AS last_resolution_ts,
               maxIf(ts, status = 'resolved') AS resolved_ts,
               maxIf(ts, status = 'open') AS last_open_ts
        FROM {META_DB}.incident_transitions
        GROUP BY incident_key) AS t ON e.incident_key = t.incident_key
    GROUP BY e.incident_key
    SETTINGS join_use_nulls = 0
)"""


def meta_tables_sql() -> list[str]:
    """Qoima's own tables: the incident journal's detections, their life cycle, the notification
    outbox, the view that groups detections by incident with its current status, and the
    quality assessments.

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
    samples Array(String) DEFAULT [],
    detected_ts DateTime64(3, 'UTC'),
    _loaded_ts DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (incident_key, detected_ts)
SETTINGS non_replicated_deduplication_window = 10000
COMMENT 'Every detection of a quality or depersonalization problem'""",
        # A journal created before samples existed gains the column.
        f"ALTER TABLE {META_DB}.incident_events ADD COLUMN IF NOT EXISTS samples Array(String) DEFAULT [] "
        "AFTER origin",
        INCIDENT_TRANSITIONS_SQL,
        NOTIFICATIONS_SQL,
        ACCESS_EVENTS_SQL,
        *PASSPORT_SQL,
        INCIDENTS_VIEW_SQL,
        QUALITY_ASSESSMENTS_SQL,
    ]


INCIDENT_COLUMNS = ["incident_key", "provider", "table", "rule", "type", "severity", "count", "detail",
                    "origin", "samples", "detected_ts"]
