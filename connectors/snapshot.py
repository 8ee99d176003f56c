"""`qoima snapshot`: re-read tables through Debezium's incremental snapshot, while streaming
goes on (used to re-key the warehouse after a key rotation, or to repair a table).

The signal is a row in the source's signal table written with the capture account; Debezium
reads it from the WAL (the binlog, for MariaDB), snapshots the tables in chunks and resolves collisions with changes
made meanwhile, so the result equals the source.
"""
from __future__ import annotations

import json
import uuid

from connectors.debezium_config import SIGNAL_TABLE
from connectors.regulation import Regulation


def request_snapshot(regulation: Regulation, tables: list[str], environ: dict[str, str]) -> str:
    """Ask the provider's connector to re-snapshot `tables` (schema.table); returns the signal id."""
    for name in tables:
        regulation.table(name)  # raises with the list of declared tables
    source = regulation.source
    signal_id = str(uuid.uuid4())
    data = json.dumps({"data-collections": tables, "type": "incremental"})
    password = source.password.read(environ)
    if source.dbms == "mariadb":
        import pymysql

        from connectors.mariadb_config import signal_table

        conn = pymysql.connect(host=source.host, port=source.port, user=source.user, password=password,
                               database=source.database, connect_timeout=10, autocommit=True)
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"INSERT INTO {signal_table(regulation)} (id, type, data) "
                               "VALUES (%s, 'execute-snapshot', %s)", (signal_id, data))
        finally:
            conn.close()
        return signal_id
    import psycopg
    from psycopg.conninfo import make_conninfo

    conninfo = make_conninfo(host=source.host, port=source.port, dbname=source.database, user=source.user,
                             password=password, connect_timeout=10)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {SIGNAL_TABLE} (id, type, data) VALUES (%s, 'execute-snapshot', %s)",
                     (signal_id, data))
    return signal_id
