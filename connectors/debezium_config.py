"""The Debezium PostgreSQL connector config derived from a regulation (MariaDB: connectors/mariadb_config.py).

Reference: Debezium's PostgreSQL connector documentation (connector properties). Choices:
- `pgoutput` (built into PostgreSQL 10+; no server plugin to install at the provider);
- publication and slot named per provider, the publication created by the data owner
  (`publication.autocreate.mode=disabled`) so the capture account needs only REPLICATION
  and SELECT;
- a heartbeat that writes to no table (`heartbeat.interval.ms`): it lets Debezium confirm
  the slot's LSN while the captured tables are idle, so PostgreSQL does not keep WAL;
- decimals as strings and adaptive microsecond times, decoded losslessly in streams/pg_types;
- the password as a DirectoryConfigProvider reference, resolved inside the worker only;
- a signal table at the source (`public.qoima_signal`, created by the data owner with INSERT
  granted to the capture account) for incremental snapshots that run while streaming goes on.
"""
from __future__ import annotations

from pathlib import Path

from model.names import HEARTBEAT_PREFIX, SIGNAL_TABLE
from model.regulation import Regulation



def password_reference(regulation: Regulation) -> str:
    ref = regulation.source.password
    if ref.file is None:
        raise ValueError(f"provider {regulation.provider}: Kafka Connect reads secrets from files; "
                         "give source.password as 'file: /path' (the env form is for Qoima's own processes)")
    path = Path(ref.file)
    return f"${{dir:{path.parent}:{path.name}}}"


def connector_config(regulation: Regulation, bootstrap: str | None = None) -> dict[str, str]:
    """The connector config for the regulation's source, whichever its dbms. `bootstrap` (Kafka,
    host:port) is only read for MariaDB, whose schema history lives in Kafka; left out, it is the
    local stack's (QOIMA_PORT_SHIFT and all), so callers need not know the source's dbms."""
    if regulation.source.dbms == "mariadb":
        from connectors.mariadb_config import connector_config as mariadb_config  # it imports this module
        if bootstrap is None:
            from model.settings import Settings
            bootstrap = Settings.from_env().kafka_bootstrap
        return mariadb_config(regulation, bootstrap)
    return _postgres_config(regulation)


def _postgres_config(regulation: Regulation) -> dict[str, str]:
    source = regulation.source
    return {
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "tasks.max": "1",
        "database.hostname": source.host,
        "database.port": str(source.port),
        "database.user": source.user,
        "database.password": password_reference(regulation),
        "database.dbname": source.database,
        "topic.prefix": regulation.raw_topic_prefix,
        "plugin.name": "pgoutput",
        "slot.name": regulation.slot_name,
        "publication.name": regulation.publication_name,
        "publication.autocreate.mode": "disabled",
        "table.include.list": ",".join(table_regex(t) for t in [*(t.name for t in regulation.tables), SIGNAL_TABLE]),
        "signal.data.collection": SIGNAL_TABLE,
        "interval.handling.mode": "string",
        **shared_settings(regulation),
    }


def shared_settings(regulation: Regulation) -> dict[str, str]:
    """What every Qoima connector sets, whatever the source's dbms."""
    source = regulation.source
    return {
        "signal.enabled.channels": "source",
        "incremental.snapshot.chunk.size": "2048",
        "snapshot.mode": source.snapshot,
        "heartbeat.interval.ms": str(source.heartbeat_seconds * 1000),
        "topic.heartbeat.prefix": HEARTBEAT_PREFIX + regulation.provider,
        "decimal.handling.mode": "string",
        "time.precision.mode": "adaptive_time_microseconds",
        "binary.handling.mode": "base64",
        "tombstones.on.delete": "true",
        # Debezium skips truncates by default; Qoima wants them, to quarantine with an incident
        # rather than let the warehouse silently keep rows the source emptied.
        "skipped.operations": "none",
        "errors.max.retries": "-1",
        "key.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "key.converter.schemas.enable": "false",
        "value.converter.schemas.enable": "false",
        # Raw topics are made by `qoima up` with short retention; these apply to any other.
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": "1",
        "topic.creation.default.retention.ms": str(24 * 3600 * 1000),
    }


def table_regex(table: str) -> str:
    # Debezium matches the include list as anchored regular expressions.
    return table.replace(".", r"\.")
