"""`qoima status`: connector state, warehouse rows and freshness per table, from the live stack."""
from __future__ import annotations

from typing import Any

import requests

from connectors.connect_client import ConnectClient, ConnectError
from connectors.snapshot import recorded_loads, waiting
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


# A load whose last snapshot row reached the warehouse this long ago has stopped: done, when it
# holds about what the source's statistics estimated, stalled otherwise. One that has loaded
# nothing this long after its request is stalled too (connector paused, signal not read).
LOAD_QUIET_MS = 60_000
LOAD_FIRST_ROW_MS = 10 * 60_000
_ESTIMATE_SLACK = 0.9   # statistics are estimates: 90% of one counts as all of it


def load_progress(requested_ms: int, now_ms: int, estimate: int | None, loaded: int,
                  last_loaded_ms: int | None, read: float | None, paused: bool = False) -> dict[str, Any]:
    """Where one table's requested load stands: state (waiting, loading, paused, done, stalled),
    rows read (snapshot events the processor took in), rows loaded, the source's estimate, the
    rate from the request to the last loaded row, and the seconds left at that rate. A paused
    load (`qoima snapshot --pause`) that has not finished is `paused`, never `stalled`."""
    progress: dict[str, Any] = {"read": None if read is None else round(read), "loaded": loaded,
                                "estimate": estimate, "rate": None, "remaining_s": None}
    if loaded == 0 or last_loaded_ms is None:
        if paused:
            return {**progress, "state": "paused"}
        return {**progress, "state": "stalled" if now_ms - requested_ms > LOAD_FIRST_ROW_MS else "waiting"}
    elapsed_s = max(last_loaded_ms - requested_ms, 1) / 1000
    progress["rate"] = round(loaded / elapsed_s)
    if now_ms - last_loaded_ms <= LOAD_QUIET_MS and not paused:
        if estimate is not None and estimate > loaded:
            progress["remaining_s"] = round((estimate - loaded) / (loaded / elapsed_s))
        return {**progress, "state": "loading"}
    done = estimate is None or loaded >= _ESTIMATE_SLACK * estimate
    return {**progress, "state": "done" if done else "paused" if paused else "stalled"}


def next_requests(loads: list[dict[str, Any]]) -> dict[tuple[str, str, str], int]:
    """(provider, table, signal id) -> when the same table's next load was requested: a table
    loaded again the same day counts each load's rows up to the next one's request."""
    until: dict[tuple[str, str, str], int] = {}
    following: dict[tuple[str, str], int] = {}
    for load in sorted(loads, key=lambda entry: entry["requested_ms"], reverse=True):
        for name in load["tables"]:
            key = (load["provider"], name)
            if key in following:
                until[(load["provider"], name, load["signal_id"])] = following[key]
            following[key] = load["requested_ms"]
    return until


def _loads(settings: Settings, regulations: list[Regulation], problems: list[str]) -> list[dict[str, Any]]:
    """The snapshots `qoima snapshot` requested in the last day, each table's progress."""
    import time

    from sinks.clickhouse_users import writer_client
    from model.names import WAREHOUSE_DB

    now_ms = int(time.time() * 1000)
    loads = recorded_loads(settings.run_dir / "loads", now_ms)
    if not loads:
        return []
    by_provider = {r.provider: r for r in regulations}
    until = next_requests(loads)
    found = []
    try:
        client = writer_client(settings)
        for load in loads:
            regulation = by_provider.get(load["provider"])
            if regulation is None:
                continue   # a provider removed since
            try:
                read = _prometheus(settings, 'sum by (table) (increase(qoima_processor_events_in_total{op="r"}'
                                             f'[{max(60, (now_ms - load["requested_ms"]) // 1000)}s]))')
            except requests.RequestException:
                read = {}
            declared = {table.name: table for table in regulation.tables}
            for name, estimate in load["tables"].items():
                if name not in declared:
                    continue   # a table no longer in the regulation
                history = f"{WAREHOUSE_DB}.`{regulation.history_table(declared[name])}`"
                loaded, last = client.query(
                    f"SELECT count(), toUnixTimestamp64Milli(max(_loaded_ts)) FROM {history} WHERE _op = 'r' "
                    "AND _loaded_ts >= fromUnixTimestamp64Milli({since:Int64}) "
                    "AND _loaded_ts < fromUnixTimestamp64Milli({until:Int64})",
                    parameters={"since": load["requested_ms"],
                                "until": until.get((load["provider"], name, load["signal_id"]), now_ms + 86_400_000)}
                ).result_rows[0]
                found.append({"provider": load["provider"], "table": name, "signal_id": load["signal_id"],
                              "requested_ms": load["requested_ms"],
                              **load_progress(load["requested_ms"], now_ms, estimate, int(loaded),
                                              int(last) if loaded else None, read.get(name),
                                              paused="paused_ms" in load),
                              "throttled": "throttled_ms" in load})
    except Exception as exc:  # status must report, not crash, when ClickHouse is down
        problems.append(f"the progress of requested loads could not be read ({type(exc).__name__})")
    return found


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
    report["loads"] = _loads(settings, regulations, report["problems"])
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


def _render_load(load: dict[str, Any]) -> str:
    estimate = load["estimate"]
    of = f" of about {estimate:,}" + (f" ({min(100, 100 * load['loaded'] // estimate)}%)" if estimate else "") \
        if estimate is not None else ""
    parts = [f"Load of {load['table']} ({load['provider']}): {load['state']}",
             *([f"read {load['read']:,}"] if load["read"] is not None else []),
             f"loaded {load['loaded']:,}{of}"]
    if load["rate"]:
        parts.append(f"{load['rate']:,} rows/s")
    if load["state"] == "loading" and load["remaining_s"] is not None:
        minutes, seconds = divmod(load["remaining_s"], 60)
        parts.append(f"about {minutes} min {seconds} s left" if minutes else f"about {seconds} s left")
    if load.get("throttled") and load["state"] in ("loading", "stalled"):
        parts.append("paused by Qoima while the processor catches up (QOIMA_LOAD_BACKLOG_MAX)")
    if load["state"] == "paused":
        parts.append(f"`qoima snapshot {load['provider']} --resume` reads on from where it stopped")
    if load["state"] == "stalled":
        parts.append(f"no snapshot row for over {LOAD_QUIET_MS // 1000} s: see the connector's log and "
                     "`qoima connector status`")
    return ", ".join(parts)


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
    for load in report.get("loads", []):
        lines.append(_render_load(load))
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
