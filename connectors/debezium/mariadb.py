"""The Debezium MariaDB connector config derived from a regulation (`source.dbms: mariadb`).

Reference: Debezium's MariaDB connector documentation (connector properties). The choices that
differ from the PostgreSQL connector (connectors/debezium/postgresql.py) and why:
- the binlog is read as a replica: `database.server.id` is the regulation's `server_id`, fixed
  rather than Debezium's random default, so a restarted task does not look like a second replica;
- Debezium keeps the captured tables' DDL in a schema-history topic, `qoima.schema-history.
  <provider>`, created by Debezium itself (one partition, infinite retention): it must never be
  compacted or expire, or the connector cannot read the binlog after a restart. Only the
  regulation's database is recorded (`store.only.captured.databases.ddl`), so that a table
  added to the regulation later still finds its DDL;
- `include.schema.changes=false`: the schema-change topic would be `<topic.prefix>` itself, which
  nothing in Qoima reads;
- `bigint.unsigned.handling.mode=precise`: a BIGINT UNSIGNED above 2^63 arrives whole, not
  wrapped negative (model/types/mariadb.py);
- the heartbeat needs no action query: the binlog is server-wide, so idle captured tables do not
  hold back the position (unlike a PostgreSQL slot in a busy cluster);
- TLS: Debezium's default `database.ssl.mode=preferred` is refused by the MariaDB driver of
  connector 3.0.1 (checked against MariaDB 10.11: "Wrong argument value 'preferred'"), so the
  mode is explicit: `required` for any remote host, `disabled` on the loopback interface only;
- the signal table is `<database>.qoima_signal` (same columns as PostgreSQL's), created by the data
  owner with INSERT granted to the capture account, for incremental snapshots.
Everything about values (decimals as strings, adaptive microsecond times, base64 bytes) is the
PostgreSQL connector's (connectors/debezium/shared.py), so the same decoders apply where the
representation is the same.
"""
from __future__ import annotations

from connectors.debezium.shared import include_list, shared_settings
from model import names
from model.regulation import Regulation

CONNECTOR_CLASS = "io.debezium.connector.mariadb.MariaDbConnector"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def signal_table(regulation: Regulation) -> str:
    return names.mariadb_signal_table(regulation.source.database)


def signal_table_ddl(regulation: Regulation) -> str:
    return (f"CREATE TABLE IF NOT EXISTS `{regulation.source.database}`.`{names.SIGNAL_TABLE_NAME}` "
            "(id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))")


def schema_history_topic(regulation: Regulation) -> str:
    return names.schema_history_topic(regulation.provider)


def connector_config(regulation: Regulation, bootstrap: str | None) -> dict[str, str]:
    """`bootstrap` is the Kafka the schema history lives in (the worker's own, in the local stack)."""
    source = regulation.source
    if source.dbms != "mariadb":
        raise ValueError(f"provider {regulation.provider}: dbms {source.dbms!r} is not MariaDB; "
                         "use connectors.debezium.connector_config")
    if not bootstrap:
        raise ValueError(f"provider {regulation.provider}: the MariaDB connector needs the Kafka bootstrap "
                         "servers for its schema history; pass host:port")
    return {
        "connector.class": CONNECTOR_CLASS,
        "database.ssl.mode": "disabled" if source.host in _LOOPBACK else "required",
        "database.server.id": str(source.server_id),
        "database.include.list": source.database,
        "table.include.list": include_list(regulation, signal_table(regulation)),
        "schema.history.internal.kafka.bootstrap.servers": bootstrap,
        "schema.history.internal.kafka.topic": schema_history_topic(regulation),
        "schema.history.internal.store.only.captured.databases.ddl": "true",
        "include.schema.changes": "false",
        "signal.data.collection": signal_table(regulation),
        "bigint.unsigned.handling.mode": "precise",
        **shared_settings(regulation),
    }
