"""Comparing the real stack's source and warehouse: per-row checksums and convergence."""
from __future__ import annotations

import hashlib
import time
from datetime import datetime, timezone
from decimal import Decimal

import requests
from prometheus_client.parser import text_string_to_metric_families


# Non-personal columns per table, as the source holds them and as the warehouse holds them
# (after generalization). The checksum of each row must match between the two.
COMPARED = {
    "population.persons": (
        "SELECT person_id, extract(year FROM birth_date)::int, sex, status, "
        "CASE WHEN kato_code ~ '^[0-9]{9}$' THEN left(kato_code, 2) END, updated_at FROM population.persons",
        "SELECT person_id, birth_date_year, sex, status, kato_code_region, updated_at "
        "FROM udw.demo__population__persons FINAL",
    ),
    "social.organizations": (
        "SELECT org_id, name, kato_code, updated_at FROM social.organizations",
        "SELECT org_id, name, kato_code, updated_at FROM udw.demo__social__organizations FINAL",
    ),
    "social.payments": (
        "SELECT payment_id, payment_type, amount, period, status, paid_at, "
        "CASE WHEN kato_code ~ '^[0-9]{9}$' THEN left(kato_code, 2) END, updated_at FROM social.payments",
        "SELECT payment_id, payment_type, amount, period, status, paid_at, kato_code_region, updated_at "
        "FROM udw.demo__social__payments FINAL",
    ),
    # Names that need quoting at the source (infra/demo/schema.sql), warehouse names in ClickHouse.
    "registry_office.persons_main": (
        'SELECT "ID", extract(year FROM "Birth Date")::int, "Status.Code", "say ""hi""", "Name", updated_at '
        'FROM "Registry Office"."Persons Main"',
        "SELECT id, birth_date_year, status_code, say_hi, name, updated_at "
        "FROM udw.demo__registry_office__persons_main FINAL",
    ),
    "registry_office.person_addresses": (
        'SELECT "ID", "Person ID", updated_at FROM "Registry Office"."Persons/Main"',
        "SELECT id, person_id, updated_at FROM udw.demo__registry_office__person_addresses FINAL",
    ),
    # Named in Russian, polled in marker mode by the registry provider.
    "reestr.zhiteli": (
        'SELECT "ИД", extract(year FROM "Дата рождения")::int, updated_at FROM "Реестр"."Жители"',
        "SELECT id, data_rozhdeniya_year, updated_at FROM udw.registry__reestr__zhiteli FINAL",
    ),
}


def _canonical(value) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return "" if value is None else str(value).strip()


def checksums(rows) -> dict:
    return {row[0]: hashlib.sha256("|".join(_canonical(v) for v in row).encode()).hexdigest() for row in rows}


class Mismatch(AssertionError):
    pass


def compare(pg, ch, table: str) -> tuple[int, int, list]:
    source_sql, warehouse_sql = COMPARED[table]
    source = checksums(pg.execute(source_sql).fetchall())
    warehouse = checksums(ch.query(warehouse_sql).result_rows)
    differing = sorted(k for k in source.keys() | warehouse.keys() if source.get(k) != warehouse.get(k))
    return len(source), len(warehouse), differing


def wait_converged(pg, ch, tables=tuple(COMPARED), timeout: float = 60.0) -> float:
    """Seconds until the warehouse equals the source for `tables`; fails with the differences."""
    started = time.monotonic()
    while True:
        results = {t: compare(pg, ch, t) for t in tables}
        if all(not diff for _, _, diff in results.values()):
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            detail = {t: f"source {s} rows, warehouse {w} rows, {len(d)} keys differ (first: {d[:5]})"
                      for t, (s, w, d) in results.items() if d}
            raise Mismatch(f"warehouse did not converge in {timeout:.0f}s: {detail}")
        time.sleep(0.25)


def incident_events(writer, where: str, timeout: float, what: str) -> list[tuple[str, str]]:
    """(severity, detail) of the journal's detections matching `where`, once there are any."""
    deadline = time.monotonic() + timeout
    while True:
        rows = writer.query(f"SELECT severity, detail FROM qoima_meta.incident_events WHERE {where} "
                            "ORDER BY detected_ts").result_rows
        if rows:
            return rows
        assert time.monotonic() < deadline, f"no incident: {what}"
        time.sleep(0.5)


def poll_until(probe, timeout: float, what: str):
    """The first truthy value `probe` returns within `timeout` seconds; fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.5)


def loaded_twice(ch, table: str, key: str, since: int = 0) -> list[tuple]:
    """(key, _version, copies) of every version above `since` loaded more than once into `udw.<table>`,
    read from its history: a plain MergeTree that merges nothing away (sinks/ddl.py), so a row inserted
    twice stays two rows there, where FINAL on the current table would collapse them and hide it."""
    return ch.query(f"SELECT {key}, _version, count() FROM udw.{table}__history WHERE _version > {int(since)} "
                    f"GROUP BY {key}, _version HAVING count() > 1 ORDER BY {key} LIMIT 5").result_rows


def highest_version(ch, table: str) -> int:
    """The highest `_version` loaded into `udw.<table>` so far (a test's own versions lie above it)."""
    return ch.query(f"SELECT max(_version) FROM udw.{table}__history").result_rows[0][0] or 0


def sink_metric(stack, name: str, table: str) -> float:
    """One of the sink's per-table counters (monitoring/metrics.py), summed; 0 before its first sample."""
    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.sink_metrics}/metrics", timeout=5).text
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == name and sample.labels.get("table") == table)
