"""`qoima pd236 status`: what the access protocol recorded and what the state service has."""
from __future__ import annotations

from governance.pd236.reporter import ClickHouseOutbox
from model.names import ACCESS_EVENTS_TABLE as TABLE
from model.personal_data import table_access
from model.regulation import Regulation


def status(client, regulations: list[Regulation]) -> dict:
    """Per table and path: events and rows of the last 24 h, delivered or not; the backlog and its
    errors; the providers that hold personal data and declare no legal basis."""
    tables = client.query(
        f"SELECT provider, `table`, path, count(), sum(`rows`), countIf(delivered_ts IS NOT NULL), "
        f"max(last_read) FROM {TABLE} FINAL WHERE interval_start > now() - INTERVAL 1 DAY "
        "GROUP BY provider, `table`, path ORDER BY provider, `table`, path").result_rows
    count, oldest = ClickHouseOutbox(client).backlog()
    errors = client.query(f"SELECT last_error, count() FROM {TABLE} FINAL WHERE delivered_ts IS NULL "
                          "AND last_error != '' GROUP BY last_error ORDER BY count() DESC").result_rows
    undeclared = sorted({facts.provider for facts in table_access(regulations).values() if not facts.legal_basis})
    return {
        "tables": [{"provider": p, "table": t, "path": path, "events": int(n), "rows": int(rows),
                    "delivered": int(delivered), "last_read": str(last)} for p, t, path, n, rows, delivered, last in tables],
        "undelivered": count, "oldest_undelivered": str(oldest) if count else None,
        "errors": [{"error": e, "events": int(n)} for e, n in errors],
        "providers_without_legal_basis": undeclared,
    }


def render(report: dict) -> str:
    lines = ["access events of the last 24 h (PD236 access protocol):"]
    if not report["tables"]:
        lines.append("  none yet")
    for row in report["tables"]:
        lines.append(f"  {row['provider']}  {row['table']:<36} {row['path']:<9} {row['events']:>6} events "
                     f"{row['rows']:>10} rows  {row['delivered']:>6} delivered  last read {row['last_read']}")
    if report["undelivered"]:
        lines.append(f"undelivered: {report['undelivered']} event(s), the oldest recorded {report['oldest_undelivered']}")
        for error in report["errors"]:
            lines.append(f"  {error['events']} event(s): {error['error']}")
    else:
        lines.append("undelivered: none")
    if report["providers_without_legal_basis"]:
        lines.append("providers reading personal data without a declared legal basis (add `personal_data: "
                     "{legal_basis: ..., purpose: ...}` to their regulation): "
                     + ", ".join(report["providers_without_legal_basis"]))
    return "\n".join(lines)
