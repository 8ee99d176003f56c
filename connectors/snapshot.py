"""`qoima snapshot`: re-read tables through Debezium's incremental snapshot, while streaming
goes on (used to re-key the warehouse after a key rotation, or to repair a table).

The signal is a row in the source's signal table written with the capture account; Debezium
reads it from the WAL (the binlog, for MariaDB), snapshots the tables in chunks and resolves collisions with changes
made meanwhile, so the result equals the source.

A snapshot reads whole tables from a production database, so it waits for the provider's
minimum-load window (`source.min_load_window`, model/load_window.py) when one is declared:
`wait_for_window` blocks until it opens, recorded in `<QOIMA_HOME>/run/snapshot-waits/` for
`qoima status` to show; `qoima snapshot --now` overrides it, with a warning.

A running snapshot can be paused and resumed (`qoima snapshot PROVIDER --pause` / `--resume`,
Debezium's pause-snapshot and resume-snapshot signals): it reads on from its last chunk.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from connectors.debezium.mariadb import signal_table
from connectors.debezium.shared import snapshot_collection
from connectors.source_reader import connect_source
from model.names import SIGNAL_TABLE
from model.regulation import Regulation

log = logging.getLogger("qoima.snapshot")


def _signal(regulation: Regulation, environ: dict[str, str], kind: str, data: dict) -> str:
    """Write one signal row for the provider's connector; the signal id."""
    signal_id = str(uuid.uuid4())
    table = signal_table(regulation) if regulation.source.dbms == "mariadb" else SIGNAL_TABLE
    conn = connect_source(regulation, environ, application="qoima-snapshot", autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(f"INSERT INTO {table} (id, type, data) VALUES (%s, %s, %s)",
                       (signal_id, kind, json.dumps(data, ensure_ascii=False)))
        cursor.close()
    finally:
        conn.close()
    return signal_id


def request_snapshot(regulation: Regulation, tables: list[str], environ: dict[str, str]) -> str:
    """Ask the provider's connector to re-snapshot `tables` (schema.table); returns the signal id."""
    chosen = [regulation.table(name) for name in tables]  # raises with the list of declared tables
    return _signal(regulation, environ, "execute-snapshot",
                   {"data-collections": [snapshot_collection(t.schema_name, t.table_name) for t in chosen],
                    "type": "incremental"})


def pause_loads(regulation: Regulation, environ: dict[str, str], loads_dir: Path, resume: bool = False,
                by: str = "paused_ms") -> str | None:
    """Pause (or resume) the provider's running incremental snapshot: Debezium stops reading
    chunks and keeps its place (the last key read, in the connector's offsets), so a resumed
    load reads on from there instead of from the start; streaming goes on throughout. Without a
    running snapshot, Debezium ignores both signals. The pause is noted in the provider's load
    records for `qoima status` under `by`: `paused_ms` for the operator's, `throttled_ms` for
    the load governor's (governance/load_governor.py); the operator's resume clears both, and
    the governor's resume is not sent while the operator's pause is noted (None is returned).
    A pause lasts until `resume`, or until Connect restarts the connector: Debezium keeps it in
    memory only. The signal and the note are made under the records' lock, so the operator's
    and the governor's signals reach Debezium in the order their notes say."""
    with _records_locked(loads_dir):
        if resume and by == "throttled_ms" and any("paused_ms" in load for _, load in _records(loads_dir, regulation.provider)):
            return None
        signal_id = _signal(regulation, environ, "resume-snapshot" if resume else "pause-snapshot",
                            {"type": "incremental"})
        _mark(loads_dir, regulation.provider, resume, by)
    return signal_id


def mark_loads(loads_dir: Path, provider: str, resume: bool, by: str) -> None:
    """Note a pause (or clear it, on `resume`) in the provider's load records, under `by`."""
    with _records_locked(loads_dir):
        _mark(loads_dir, provider, resume, by)


def _records(loads_dir: Path, provider: str) -> Iterator[tuple[Path, dict]]:
    """(path, record) of each of the provider's load records that can be read."""
    for path in sorted(loads_dir.glob(f"{provider}-*.json")) if loads_dir.is_dir() else ():
        try:
            load = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("%s: load record %s not read (%s); qoima status may show the load as stalled",
                        provider, path.name, type(exc).__name__)
            continue
        if load.get("provider") == provider:
            yield path, load


def _mark(loads_dir: Path, provider: str, resume: bool, by: str) -> None:
    """`mark_loads` without the lock (its caller holds it)."""
    now_ms = int(time.time() * 1000)
    for path, load in _records(loads_dir, provider):
        if resume:
            for mark in ("paused_ms", "throttled_ms") if by == "paused_ms" else (by,):
                load.pop(mark, None)
        else:
            load.setdefault(by, now_ms)
        try:
            _write_record(path, load)
        except OSError as exc:
            log.warning("%s: load record %s not updated (%s); qoima status may show the load as stalled",
                        provider, path.name, type(exc).__name__)


@contextmanager
def _records_locked(loads_dir: Path) -> Iterator[None]:
    """The load records to oneself, across processes, until the block ends: the operator's CLI
    and the load governor both read, change and write them, and a change read before the
    other's write would undo it. Without a lock to take (a read-only directory), the block runs
    anyway, with a warning: a pause must not fail on its bookkeeping."""
    try:
        loads_dir.mkdir(parents=True, exist_ok=True)
        # Read-only and created if missing: flock needs no write access, so any user may lock.
        fd: int | None = os.open(loads_dir / ".lock", os.O_RDONLY | os.O_CREAT, 0o644)
    except OSError as exc:
        log.warning("load records in %s changed without their lock (%s)", loads_dir, exc.strerror or type(exc).__name__)
        fd = None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        if fd is not None:
            os.close(fd)   # and with it the lock


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


# --- progress of a requested load (`qoima status`, docs/operations.md) -------------------------

LOAD_RECORD_MAX_AGE_S = 24 * 3600


def estimate_rows(regulation: Regulation, tables: list[str], environ: dict[str, str]) -> dict[str, int | None]:
    """Each table's row count as the source's statistics estimate it (PostgreSQL `reltuples`,
    MariaDB `information_schema.TABLES.TABLE_ROWS`): no count(*), which would read the whole
    table of a production database once more. None where the statistics have none yet."""
    conn = connect_source(regulation, environ, application="qoima-snapshot", autocommit=True)
    estimates: dict[str, int | None] = {}
    try:
        cursor = conn.cursor()
        for name in tables:
            table = regulation.table(name)
            if regulation.source.dbms == "mariadb":
                cursor.execute("SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                               "AND TABLE_NAME = %s", (table.schema_name, table.table_name))
            else:
                cursor.execute("SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = "
                               "c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                               (table.schema_name, table.table_name))
            row = cursor.fetchone()
            # PostgreSQL says -1 for a table never analysed or vacuumed.
            estimates[name] = int(row[0]) if row and row[0] is not None and int(row[0]) >= 0 else None
        cursor.close()
    finally:
        conn.close()
    return estimates


def start_load(regulation: Regulation, tables: list[str], environ: dict[str, str], loads_dir: Path) -> str:
    """Request the snapshot of `tables` and record it, with the source's estimate of each
    table's rows, for `qoima status` to follow; returns the signal id.

    The estimate and the record only inform: a source whose statistics cannot be read, or a
    record that cannot be written, costs the progress display (with a warning), never the
    snapshot, and a request once made is never reported as failed (a retry would read the
    provider's table twice)."""
    for name in tables:
        regulation.table(name)   # raises, naming the declared tables, before the source is asked anything
    try:
        estimates = estimate_rows(regulation, tables, environ)
    except Exception as exc:  # noqa: BLE001 - any driver error: the load goes on without an estimate
        log.warning("%s: the source's row estimates could not be read (%s); qoima status shows the load "
                    "without them", regulation.provider, type(exc).__name__)
        estimates = {name: None for name in tables}
    requested_ms = int(time.time() * 1000)
    signal_id = request_snapshot(regulation, tables, environ)
    try:
        record_load(loads_dir, regulation.provider, signal_id, requested_ms, estimates)
    except OSError as exc:
        log.warning("%s: snapshot %s requested, but its record for qoima status could not be written to %s (%s)",
                    regulation.provider, signal_id, loads_dir, exc.strerror or type(exc).__name__)
    return signal_id


def record_load(loads_dir: Path, provider: str, signal_id: str, requested_ms: int,
                estimates: dict[str, int | None]) -> Path:
    """Remember a requested snapshot for `qoima status`, which follows its rows into the warehouse."""
    loads_dir.mkdir(parents=True, exist_ok=True)
    path = loads_dir / f"{provider}-{signal_id}.json"
    _write_record(path, {"provider": provider, "signal_id": signal_id, "requested_ms": requested_ms,
                         "tables": estimates})
    return path


def _write_record(path: Path, load: dict) -> None:
    """Whole or not at all: `qoima status`, the CLI and the load governor read and write these."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(load))
    os.replace(partial, path)


def _paused(load: dict) -> bool:
    """Kept past its day while paused: the pause is someone's to lift (the load governor's, the operator's)."""
    return "paused_ms" in load or "throttled_ms" in load


def recorded_loads(loads_dir: Path, now_ms: int) -> list[dict]:
    """The loads requested in the last day, and older ones still paused, oldest first; other
    older records are deleted."""
    found = []
    for path in sorted(loads_dir.glob("*.json")) if loads_dir.is_dir() else ():
        try:
            load = json.loads(path.read_text())
            if now_ms - int(load["requested_ms"]) > LOAD_RECORD_MAX_AGE_S * 1000 and not _paused(load):
                with _records_locked(loads_dir):   # not while a pause is being noted in it
                    load = json.loads(path.read_text())
                    if not _paused(load):
                        path.unlink(missing_ok=True)
                        continue
            found.append(load)
        except (OSError, ValueError, KeyError, TypeError):
            continue   # half-written or foreign: not a load record
    return sorted(found, key=lambda load: load["requested_ms"])
