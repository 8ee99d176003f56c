"""`qoima snapshot`: re-read tables through Debezium's incremental snapshot, while streaming
goes on (used to re-key the warehouse after a key rotation, or to repair a table).

The signal is a row in the source's signal table written with the capture account; Debezium
reads it from the WAL (the binlog, for MariaDB), snapshots the tables in chunks and resolves collisions with changes
made meanwhile, so the result equals the source.
"""
from __future__ import annotations

import json
import uuid

from connectors.debezium.mariadb import signal_table
from connectors.source_reader import connect_source
from model.names import SIGNAL_TABLE
from model.regulation import Regulation


def request_snapshot(regulation: Regulation, tables: list[str], environ: dict[str, str]) -> str:
    """Ask the provider's connector to re-snapshot `tables` (schema.table); returns the signal id."""
    for name in tables:
        regulation.table(name)  # raises with the list of declared tables
    source = regulation.source
    signal_id = str(uuid.uuid4())
    data = json.dumps({"data-collections": tables, "type": "incremental"})
    table = signal_table(regulation) if source.dbms == "mariadb" else SIGNAL_TABLE
    conn = connect_source(regulation, environ, application="qoima-snapshot", autocommit=True)
    try:
        cursor = conn.cursor()
        cursor.execute(f"INSERT INTO {table} (id, type, data) VALUES (%s, 'execute-snapshot', %s)", (signal_id, data))
        cursor.close()
    finally:
        conn.close()
    return signal_id
