"""What every Qoima connector sets, whatever the source's dbms (connectors/debezium/postgresql.py,
connectors/debezium/mariadb.py): value encodings, heartbeats, signals, converters, the password
reference and the include-list spelling.
"""
from __future__ import annotations

import re
from pathlib import Path

from model.names import HEARTBEAT_PREFIX
from model.regulation import Regulation


def password_reference(regulation: Regulation) -> str:
    """The source password as a DirectoryConfigProvider reference, resolved inside the worker only."""
    ref = regulation.source.password
    if ref.file is None:
        raise ValueError(f"provider {regulation.provider}: Kafka Connect reads secrets from files; "
                         "give source.password as 'file: /path' (the env form is for Qoima's own processes)")
    path = Path(ref.file)
    return f"${{dir:{path.parent}:{path.name}}}"


def shared_settings(regulation: Regulation) -> dict[str, str]:
    """What every Qoima connector sets, whatever the source's dbms."""
    source = regulation.source
    return {
        # One task: a slot (PostgreSQL) or binlog reader (MariaDB) is read by one task only.
        "tasks.max": "1",
        "database.hostname": source.host,
        "database.port": str(source.port),
        "database.user": source.user,
        "database.password": password_reference(regulation),
        "topic.prefix": regulation.raw_topic_prefix,
        # Debezium waits this long when a poll finds nothing new (default 500 ms): at the
        # warehouse's second-scale freshness, half a second of it is most of the budget.
        "poll.interval.ms": "100",
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


def table_regex(schema: str, table: str) -> str:
    """One table in an include list or a snapshot signal, by its names at the source: Debezium
    matches each as an anchored Java regular expression against `schema.table` written without
    quotes. re.escape only puts a backslash before punctuation and spaces, which Java reads as
    the literal character too."""
    return rf"{re.escape(schema)}\.{re.escape(table)}"


_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def snapshot_collection(schema: str, table: str) -> str:
    """One table in an incremental-snapshot signal's data-collections. Debezium matches each
    entry as a regular expression against `schema.table` and then parses the matched name back
    into a table id, which fails for a name that needs quoting ("Unable to parse table
    identifier", and the table is skipped). Such a table goes as a double-quoted identifier
    instead: as a regular expression it matches nothing (no captured name holds the quotes),
    and Debezium then parses the entry itself, quotes and all."""
    if _PLAIN.match(schema) and _PLAIN.match(table):
        return table_regex(schema, table)
    quoted = ".".join('"' + part.replace('"', '""') + '"' for part in (schema, table))
    try:
        re.compile(quoted)
    except re.error:
        raise ValueError(f"{schema}.{table}: Debezium reads a snapshot signal's table names as regular expressions, "
                         "and this one is not a valid one; rename the table at the source to snapshot it") from None
    return quoted


def include_list(regulation: Regulation, signal: str) -> str:
    """table.include.list: every regulated table, then the signal table (`schema.table`)."""
    return ",".join([*(table_regex(t.schema_name, t.table_name) for t in regulation.tables),
                     table_regex(*signal.split(".", 1))])
