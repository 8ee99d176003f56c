"""`qoima status`: connector state, warehouse rows and freshness per table, from the live stack."""
from __future__ import annotations

from typing import Any

import requests

from connectors.connect_client import ConnectClient, ConnectError
from connectors.regulation import Regulation
from qoima.settings import Settings


def _prometheus(settings: Settings, query: str) -> dict[str, float]:
    response = requests.get(f"{settings.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    return {r["metric"].get("table", ""): float(r["value"][1]) for r in response.json()["data"]["result"]}


def collect(settings: Settings, regulations: list[Regulation]) -> dict[str, Any]:
    report: dict[str, Any] = {"connectors": {}, "tables": {}, "problems": []}
    client = ConnectClient(settings.connect_url, timeout=5)
    for regulation in regulations:
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
        rows = _prometheus(settings, "sum by (table) (qoima_sink_rows_total)")
    except requests.RequestException as exc:
        report["problems"].append(f"Prometheus at {settings.prometheus_url} did not answer ({type(exc).__name__})")
        rows = {}
    for regulation in regulations:
        for table in regulation.tables:
            report["tables"][f"{regulation.provider}.{table.name}"] = {
                "rows_loaded": rows.get(table.name),
                "freshness_p50_s": quantiles.get("0.5", {}).get(table.name),
                "freshness_p99_s": quantiles.get("0.99", {}).get(table.name),
            }
    return report


def render(report: dict[str, Any]) -> str:
    lines = ["Connectors:"]
    for name, state in report["connectors"].items():
        lines.append(f"  {name:<28} {state}")
    lines.append("Tables (freshness over the last minute):")
    lines.append(f"  {'table':<36} {'rows loaded':>12} {'p50 s':>8} {'p99 s':>8}")

    def fmt(value, spec):
        return "-" if value is None or value != value else format(value, spec)

    for name, info in report["tables"].items():
        lines.append(f"  {name:<36} {fmt(info['rows_loaded'], '12.0f')} "
                     f"{fmt(info['freshness_p50_s'], '8.2f')} {fmt(info['freshness_p99_s'], '8.2f')}")
    for problem in report["problems"]:
        lines.append(f"! {problem}")
    return "\n".join(lines)
