"""The Debezium PostgreSQL connector config derived from a regulation.

Reference: Debezium's PostgreSQL connector documentation (connector properties). Choices:
- `pgoutput` (built into PostgreSQL 10+; no server plugin to install at the provider);
- publication and slot named per provider, the publication created by the data owner
  (`publication.autocreate.mode=disabled`) so the capture account needs only REPLICATION
  and SELECT;
- a heartbeat that writes to no table (`heartbeat.interval.ms`): it lets Debezium confirm
  the slot's LSN while the captured tables are idle, so PostgreSQL does not keep WAL;
- decimals as strings and adaptive microsecond times, decoded losslessly in streams/decode/;
- the password as a DirectoryConfigProvider reference, resolved inside the worker only;
- a signal table at the source (`public.qoima_signal`, created by the data owner with INSERT
  granted to the capture account) for incremental snapshots that run while streaming goes on.
The settings every connector shares are in connectors/debezium/shared.py.
"""
from __future__ import annotations

from connectors.debezium.shared import include_list, shared_settings
from model.names import SIGNAL_TABLE
from model.regulation import Regulation

CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"


def connector_config(regulation: Regulation) -> dict[str, str]:
    source = regulation.source
    return {
        "connector.class": CONNECTOR_CLASS,
        "database.dbname": source.database,
        "plugin.name": "pgoutput",
        "slot.name": regulation.slot_name,
        "publication.name": regulation.publication_name,
        "publication.autocreate.mode": "disabled",
        "table.include.list": include_list(regulation, SIGNAL_TABLE),
        "signal.data.collection": SIGNAL_TABLE,
        "interval.handling.mode": "string",
        **shared_settings(regulation),
    }
