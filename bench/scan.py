"""Speed of the depersonalization check over the warehouse, against a plain read of the same
columns in the same run (the baseline: what reading alone costs).

Needs a running stack (`make run`):

    .venv/bin/python bench/scan.py
"""
from __future__ import annotations

import os
import time

from model.regulation import load_all
from governance.depersonalization_check import known_values, scan_warehouse
from model.settings import Settings
from sinks.clickhouse_users import writer_client
from model.names import WAREHOUSE_DB


def plain_read(client, regulations) -> tuple[int, float]:
    rows, started = 0, time.perf_counter()
    for regulation in regulations:
        for table in regulation.tables:
            name = regulation.warehouse_table(table)
            columns = [c for (c,) in client.query(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                "AND type LIKE '%String%'", parameters={"db": WAREHOUSE_DB, "t": name}).result_rows]
            select = ", ".join(f"toString(`{c}`)" for c in columns)
            with client.query_rows_stream(f"SELECT {select} FROM {WAREHOUSE_DB}.`{name}`") as stream:
                for _ in stream:
                    rows += 1
    return rows, time.perf_counter() - started


def main() -> None:
    settings = Settings.from_env()
    regulations = load_all(settings.regulations_dir, settings.regulation_env())
    client = writer_client(settings)
    started = time.perf_counter()
    known = known_values(regulations, dict(os.environ))
    print(f"known values: {len(known.names)} name words, {len(known.phones)} phones "
          f"({time.perf_counter() - started:.2f}s from the source)")
    rows, seconds = plain_read(client, regulations)
    print(f"plain read (baseline)      {rows:>9} rows  {rows / seconds:>10,.0f} rows/s")
    report = scan_warehouse(client, regulations, known)
    print(f"read + scan                {report.rows:>9} rows  {report.rows_per_second:>10,.0f} rows/s  "
          f"({sum(report.findings.values())} findings)")


if __name__ == "__main__":
    main()
