"""`qoima snapshot`: re-read tables through Debezium's incremental snapshot, while streaming
goes on (used to re-key the warehouse after a key rotation, or to repair a table).

The signal is a row in the source's signal table written with the capture account; Debezium
reads it from the WAL (the binlog, for MariaDB), snapshots the tables in chunks and resolves collisions with changes
made meanwhile, so the result equals the source.

A snapshot reads whole tables from a production database, so it waits for the provider's
minimum-load window (`source.min_load_window`, model/load_window.py) when one is declared:
`wait_for_window` blocks until it opens, recorded in `<QOIMA_HOME>/run/snapshot-waits/` for
`qoima status` to show; `qoima snapshot --now` overrides it, with a warning.
"""
from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from connectors.debezium.mariadb import signal_table
from connectors.debezium.shared import snapshot_collection
from connectors.source_reader import connect_source
from model.names import SIGNAL_TABLE
from model.regulation import Regulation


def request_snapshot(regulation: Regulation, tables: list[str], environ: dict[str, str]) -> str:
    """Ask the provider's connector to re-snapshot `tables` (schema.table); returns the signal id."""
    chosen = [regulation.table(name) for name in tables]  # raises with the list of declared tables
    source = regulation.source
    signal_id = str(uuid.uuid4())
    data = json.dumps({"data-collections": [snapshot_collection(t.schema_name, t.table_name) for t in chosen],
                       "type": "incremental"}, ensure_ascii=False)
    table = signal_table(regulation) if source.dbms == "mariadb" else SIGNAL_TABLE
    conn = connect_source(regulation, environ, application="qoima-snapshot", autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(f"INSERT INTO {table} (id, type, data) VALUES (%s, 'execute-snapshot', %s)", (signal_id, data))
        cursor.close()
    finally:
        conn.close()
    return signal_id


def wait_for_window(regulation: Regulation, tables: list[str], waits_dir: Path, progress: Callable[[str], None],
                    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                    sleep: Callable[[float], None] = time.sleep) -> None:
    """Block until the provider's load window is open (at once without one), saying how long it
    waits; while it waits, a file in `waits_dir` names the provider, the tables and the window."""
    window = regulation.source.load_window
    if window is None or window.contains(clock()):
        return
    waits_dir.mkdir(parents=True, exist_ok=True)
    record = waits_dir / f"{regulation.provider}-{os.getpid()}.json"
    opens_at = clock() + window.opens_in(clock())
    record.write_text(json.dumps({"provider": regulation.provider, "tables": tables, "window": str(window),
                                  "opens_at": opens_at.isoformat(timespec="seconds")}))
    try:
        while not window.contains(clock()):
            remaining = window.opens_in(clock())
            progress(f"{regulation.provider}: waiting for the minimum-load window {window}; it opens in "
                     f"{int(remaining.total_seconds() // 3600)} h {int(remaining.total_seconds() % 3600 // 60)} min")
            sleep(min(300.0, max(remaining.total_seconds(), 1.0)))
    finally:
        record.unlink(missing_ok=True)


def waiting(waits_dir: Path) -> list[dict]:
    """The snapshots now waiting for their window (`qoima status`), oldest first; files of
    processes that are gone are left out."""
    found = []
    for path in sorted(waits_dir.glob("*.json")) if waits_dir.is_dir() else ():
        try:
            pid = int(path.stem.rsplit("-", 1)[1])
            os.kill(pid, 0)
            found.append(json.loads(path.read_text()))
        except (ValueError, IndexError, ProcessLookupError, PermissionError, OSError):
            continue
    return found
