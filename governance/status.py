"""`qoima status`: connector state, warehouse rows and freshness per table, from the live stack."""
from __future__ import annotations

from typing import Any

import requests

from connectors.connect_client import ConnectClient, ConnectError
from connectors.snapshot import waiting
from model.regulation import Regulation
from model.settings import Settings


def _prometheus(settings: Settings, query: str) -> dict[str, float]:
    response = requests.get(f"{settings.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    return {r["metric"].get("table", ""): float(r["value"][1]) for r in response.json()["data"]["result"]}


def _warehouse_rows(settings: Settings, regulations: list[Regulation], problems: list[str]) -> dict[str, int]:
    """Current rows per warehouse table (FINAL: what an analyst sees)."""
    from sinks.clickhouse_users import writer_client
    from model.names import WAREHOUSE_DB

    try:
        client = writer_client(settings)
        existing = {name for (name,) in client.query(
            "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": WAREHOUSE_DB}).result_rows}
        return {name: client.command(f"SELECT count() FROM {WAREHOUSE_DB}.`{name}` FINAL")
                for r in regulations for name in (r.warehouse_table(t) for t in r.tables) if name in existing}
    except Exception as exc:  # status must report, not crash, when ClickHouse is down
        problems.append(f"ClickHouse at {settings.clickhouse_url} did not answer ({type(exc).__name__})")
        return {}


def _poller_state(settings: Settings, problems: list[str]) -> str:
    url = f"http://{settings.host}:{settings.ports.poller_metrics}/metrics"
    try:
        requests.get(url, timeout=3).raise_for_status()
        return "RUNNING"
    except requests.RequestException as exc:
        problems.append(f"the marker poller at {url} did not answer ({type(exc).__name__}); `qoima up` starts it")
        return "DOWN"


def _catalog(settings: Settings, problems: list[str]) -> tuple[dict[str, Any], dict[str, int]]:
    """The PD236 backlog and each provider's latest passport version."""
    from governance.pd236.reporter import ClickHouseOutbox
    from model.names import PASSPORTS_TABLE
    from sinks.clickhouse_users import writer_client

    try:
        client = writer_client(settings)
        count, oldest = ClickHouseOutbox(client).backlog()
        versions = dict(client.query(f"SELECT provider, max(version) FROM {PASSPORTS_TABLE} "
                                     "GROUP BY provider ORDER BY provider").result_rows)
    except Exception as exc:  # status must report, not crash; tables of a stack older than them
        problems.append(f"the catalog in ClickHouse could not be read ({type(exc).__name__})")
        return {}, {}
    return {"undelivered": count, "oldest_undelivered": str(oldest) if count else None}, \
        {provider: int(version) for provider, version in versions.items()}


def collect(settings: Settings, regulations: list[Regulation]) -> dict[str, Any]:
    report: dict[str, Any] = {"connectors": {}, "pollers": {}, "tables": {}, "problems": []}
    client = ConnectClient(settings.connect_url, timeout=5)
    for regulation in regulations:
        if regulation.polled:  # marker mode: no connector, the poller process reads the source
            report["pollers"][regulation.provider] = _poller_state(settings, report["problems"])
            continue
        try:
            report["connectors"][regulation.connector_name] = client.state(regulation.connector_name)
        except ConnectError as exc:
            report["connectors"][regulation.connector_name] = "UNKNOWN"
            report["problems"].append(str(exc))
    quantiles: dict[str, dict[str, float]] = {}
    try:
        for q in ("0.5", "0.99"):
            quantiles[q] = _prometheus(settings, f"histogram_quantile({q}, sum by (table, le) "
                                                 f"(rate(qoima_freshness_seconds_bucket[1m])))")
    except requests.RequestException as exc:
        report["problems"].append(f"Prometheus at {settings.prometheus_url} did not answer ({type(exc).__name__})")
    report["waiting_snapshots"] = waiting(settings.run_dir / "snapshot-waits")
    report["pd236"], report["passports"] = _catalog(settings, report["problems"])
    rows = _warehouse_rows(settings, regulations, report["problems"])
    for regulation in regulations:
        for table in regulation.tables:
            report["tables"][f"{regulation.provider}.{table.name}"] = {
                "rows_in_warehouse": rows.get(regulation.warehouse_table(table)),
                "freshness_p50_s": quantiles.get("0.5", {}).get(table.name),
                "freshness_p99_s": quantiles.get("0.99", {}).get(table.name),
            }
    return report


def render(report: dict[str, Any]) -> str:
    lines = ["Connectors:"]
    for name, state in report["connectors"].items():
        lines.append(f"  {name:<28} {state}")
    for name, state in report.get("pollers", {}).items():
        lines.append(f"  {name + ' (marker poller)':<28} {state}")
    lines.append("Tables (rows as analysts see them; freshness over the last minute):")
    lines.append(f"  {'table':<32} {'rows':>10} {'p50 s':>8} {'p99 s':>8}")

    def fmt(value, width: int, spec: str) -> str:
        text = "-" if value is None or value != value else format(value, spec)  # NaN: no recent writes
        return text.rjust(width)

    for name, info in report["tables"].items():
        lines.append(f"  {name:<32} {fmt(info['rows_in_warehouse'], 10, 'd')} "
                     f"{fmt(info['freshness_p50_s'], 8, '.2f')} {fmt(info['freshness_p99_s'], 8, '.2f')}")
    for wait in report.get("waiting_snapshots", []):
        lines.append(f"Snapshot of {', '.join(wait['tables'])} ({wait['provider']}) waits for the minimum-load window "
                     f"{wait['window']}, opening {wait['opens_at']}")
    pd236 = report.get("pd236") or {}
    if pd236:
        lines.append("PD236 access events: " + (f"{pd236['undelivered']} undelivered, the oldest recorded "
                                                f"{pd236['oldest_undelivered']} (`qoima pd236 status`)"
                                                if pd236["undelivered"] else "all delivered"))
    if report.get("passports"):
        lines.append("Data passports: " + ", ".join(f"{p} version {v}" for p, v in report["passports"].items()))
    for problem in report["problems"]:
        lines.append(f"! {problem}")
    return "\n".join(lines)
