"""Usage statistics (DM385 §13): analyst queries per warehouse table and day, from ClickHouse's
own query log, calculated automatically and published in the catalog.

Each assessor round counts the finished queries of the analysts' accounts (QOIMA_USAGE_USERS,
`analyst` by default: `sinks/clickhouse_users.py` ANALYST_USER) by the regulated tables they
read, for today and yesterday, and writes the counts to `qoima_meta.table_usage` (a
ReplacingMergeTree: the latest count of a day wins) and to the gauge
`qoima_table_queries_today{provider, table}`. Qoima's own reads (the sink, the assessor) are not
usage. The query log keeps 30 days (infra/local/clickhouse-config.xml); the catalog keeps them all.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from governance.incident_journal import now_ms
from model.names import TABLE_USAGE_TABLE, WAREHOUSE_DB
from model.regulation import Regulation
from monitoring import metrics


def warehouse_labels(regulations: list[Regulation]) -> dict[str, tuple[str, str]]:
    """`udw.<warehouse table>` -> (provider, the regulated `schema.table`): the metric's labels
    (two providers may each have a table of the same name)."""
    return {f"{WAREHOUSE_DB}.{r.warehouse_table(t)}": (r.provider, t.name) for r in regulations for t in r.tables}


def count(client, analysts: list[str], labels: dict, days: int = 1) -> dict[tuple[date, str], int]:
    """(day, warehouse table) -> the analysts' finished queries that read it, today and `days` before."""
    # No SYSTEM FLUSH LOGS (a privilege the writer does not need): the log flushes every second.
    rows = client.query(
        "SELECT event_date, t, count() FROM system.query_log ARRAY JOIN tables AS t "
        "WHERE type = 'QueryFinish' AND has({users:Array(String)}, user) AND event_date >= today() - {days:UInt8} "
        "AND has({tables:Array(String)}, t) GROUP BY event_date, t",
        parameters={"users": analysts, "days": days, "tables": sorted(labels)}).result_rows
    return {(day, table): int(n) for day, table, n in rows}


def record(client, counts: dict[tuple[date, str], int], labels: dict[str, tuple[str, str]]) -> None:
    if counts:
        updated = now_ms()
        client.insert(TABLE_USAGE_TABLE, [[day, table, n, updated] for (day, table), n in sorted(counts.items())],
                      column_names=["day", "table", "queries", "updated_ts"])
    today = datetime.now(timezone.utc).date()   # the server's today(): the stack runs ClickHouse in UTC
    for warehouse, (provider, table) in labels.items():
        metrics.TABLE_QUERIES.labels(provider, table).set(counts.get((today, warehouse), 0))


def refresh(client, analysts: list[str], regulations: list[Regulation]) -> dict[tuple[date, str], int]:
    labels = warehouse_labels(regulations)
    counts = count(client, analysts, labels)
    record(client, counts, labels)
    return counts
