"""The Debezium connector config of a regulation's source, whichever its dbms.

`connector_config` picks the connector by `source.dbms`: connectors/debezium/postgresql.py or
connectors/debezium/mariadb.py, both built on connectors/debezium/shared.py.
"""
from __future__ import annotations

from connectors.debezium import mariadb, postgresql
from model.regulation import Regulation


def connector_config(regulation: Regulation, bootstrap: str | None = None) -> dict[str, str]:
    """The connector config for the regulation's source. `bootstrap` (Kafka, host:port) is where a
    MariaDB connector keeps its schema history, so it is required for MariaDB and ignored for
    PostgreSQL; callers that serve any source pass it always (the stack's is
    `Settings.kafka_bootstrap`)."""
    if regulation.source.dbms == "mariadb":
        return mariadb.connector_config(regulation, bootstrap)
    return postgresql.connector_config(regulation)
