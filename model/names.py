"""Every name Qoima gives to something outside its own processes, spelled in one place.

Kafka topics and consumer groups, the Debezium connector, its replication slot and publication,
the signal table at the source, the warehouse and metadata databases and their tables. A name
here is a contract with running systems: renaming one orphans a topic, a consumer group's
offsets, a slot (which keeps WAL at the provider) or a warehouse table, so a change needs a
migration, not an edit. Names derived from a provider take its `provider` key and a table's
`schema.table` name from the regulation.
"""
from __future__ import annotations

import hashlib
import re
import uuid
from collections import Counter

from anyascii import anyascii

# --- Kafka topics Qoima owns (per-provider topics are the functions further down) ---------------
QUARANTINE_TOPIC = "qoima.quarantine"          # events the processor could not route, with the reason
INCIDENT_TOPIC = "qoima.incidents"             # incident detections (DM385 §49), read by the sink
ACCESS_TOPIC = "qoima.pd-access"               # PD236 access events (counts, never values), read by the sink
DEAD_LETTER_TOPIC = "qoima.deadletter.sink"    # clean records ClickHouse refused for good
SCHEMA_TOPIC = "qoima.schemas"                 # compacted: every Avro schema a clean record was written with
MARKER_STATE_TOPIC = "qoima.marker-state"      # compacted: the marker poller's watermarks
PROCESSOR_STATE_TOPIC = "qoima.processor-state"  # compacted: the cross-row rules' stores (digests only)
# The processor's own partitioned topics (streams/batch.py). The work topic is raw events spread
# over the workers by primary key: it holds clear values, so it is a raw topic by name (the
# `qoima.raw.` prefix: a provider key cannot hold '-') and by retention. The rules topic holds
# the cross-row rules' claims: digests and depersonalized keys only.
WORK_TOPIC = "qoima.raw.processor-work"
RULES_TOPIC = "qoima.processor-rules"
HEARTBEAT_PREFIX = "qoima.heartbeat."          # Debezium's topic.heartbeat.prefix
SCHEMA_HISTORY_PREFIX = "qoima.schema-history."  # Debezium MariaDB's schema history, one topic per provider

# --- consumer groups ------------------------------------------------------------------------------
PROCESSOR_GROUP = "qoima-processor"
SINK_GROUP = "qoima-sink"
MARKER_STATE_GROUP = "qoima-poller-state"
SCHEMA_HISTORY_GROUP = "qoima-schema-history"


def processor_instance(worker: int) -> str:
    """A worker's static group member id and transactional id: the same across its restarts, so a
    restarted worker takes its partitions back at once and fences the transaction its previous
    life left open."""
    return f"{PROCESSOR_GROUP}-{worker}"


def throwaway_group(purpose: str) -> str:
    """A group used once (a scan, a replay): unique, so it never shares offsets with anyone."""
    return f"qoima-{purpose}-{uuid.uuid4()}"


# --- the source -----------------------------------------------------------------------------------
SIGNAL_TABLE_NAME = "qoima_signal"             # Debezium's signalling table (incremental snapshots)
SIGNAL_TABLE = f"public.{SIGNAL_TABLE_NAME}"   # PostgreSQL: in the public schema
SIGNAL_TABLE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {SIGNAL_TABLE} "
    "(id varchar(64) PRIMARY KEY, type varchar(32) NOT NULL, data varchar(2048))"
)


def mariadb_signal_table(database: str) -> str:
    """MariaDB has no schemas: the signal table lives in the provider's database."""
    return f"{database}.{SIGNAL_TABLE_NAME}"


# --- the warehouse --------------------------------------------------------------------------------
WAREHOUSE_DB = "udw"                           # analysts' tables, one per regulated table
META_DB = "qoima_meta"                         # Qoima's own records: incidents, assessments, notifications
HISTORY_SUFFIX = "__history"                   # every version of every row (DM385 §49)
HISTORY_VIEW_SUFFIX = "__history_mv"           # the materialized view that feeds it
HELD_PREFIX = "held__"                         # rows a 'hold' rule keeps out of the analysts' table
QUALITY_ASSESSMENTS_TABLE = f"{META_DB}.quality_assessments"
INCIDENT_TRANSITIONS_TABLE = f"{META_DB}.incident_transitions"
INCIDENT_EVENTS_TABLE = f"{META_DB}.incident_events"
INCIDENTS_VIEW = f"{META_DB}.incidents"
NOTIFICATIONS_TABLE = f"{META_DB}.notifications"
ACCESS_EVENTS_TABLE = f"{META_DB}.pd236_access_events"   # PD236 access events and their delivery (outbox)
PASSPORTS_TABLE = f"{META_DB}.passports"                     # data passports, one row per version (DM385 App. 1)
PASSPORT_STRUCTURE_TABLE = f"{META_DB}.passport_structure"   # their structure descriptions, per version
PASSPORT_WAREHOUSE_TABLE = f"{META_DB}.passport_warehouse"   # what Qoima does to each column, per version
TABLE_USAGE_TABLE = f"{META_DB}.table_usage"                 # analyst queries per warehouse table and day (DM385 §13)


# --- per provider and table -----------------------------------------------------------------------
def connector_name(provider: str) -> str:
    return f"qoima-{provider}"


def raw_topic_prefix(provider: str) -> str:
    """Debezium's topic.prefix: a table's raw topic is <prefix>.<schema>.<table>."""
    return f"qoima.raw.{provider}"


def raw_topic(provider: str, table: str) -> str:
    """As Debezium's default topic naming writes it for the source's `schema.table`: every UTF-16
    unit outside [A-Za-z0-9._-] becomes '_' (a name that needs no quoting is unchanged)."""
    topic = f"{raw_topic_prefix(provider)}.{table}"
    return "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" * (len(c.encode("utf-16-le")) // 2)
                   for c in topic)


def clean_topic(provider: str, table: str) -> str:
    return f"qoima.clean.{provider}.{table}"


def held_topic(provider: str, table: str) -> str:
    """Records a 'hold' quality rule keeps out of the analysts' table (DM385 §49)."""
    return f"qoima.held.{provider}.{table}"


def heartbeat_topic(provider: str) -> str:
    """Debezium names it <topic.heartbeat.prefix><topic.prefix>."""
    return f"{HEARTBEAT_PREFIX}{provider}.{raw_topic_prefix(provider)}"


def schema_history_topic(provider: str) -> str:
    return f"{SCHEMA_HISTORY_PREFIX}{provider}"


def warehouse_table(provider: str, table: str) -> str:
    """`udw.<provider>__<schema>__<table>`, without the database."""
    schema_name, table_name = table.split(".", 1)
    return f"{provider}__{schema_name}__{table_name}"


def history_table(provider: str, table: str) -> str:
    return f"{warehouse_table(provider, table)}{HISTORY_SUFFIX}"


def held_table(provider: str, table: str) -> str:
    return f"{HELD_PREFIX}{warehouse_table(provider, table)}"


def incident_key(provider: str, table: str, rule: str) -> str:
    return f"{provider}/{table}/{rule}"


def slot_name(provider: str) -> str:
    return f"qoima_{provider}"


def publication_name(provider: str) -> str:
    return f"qoima_{provider}_pub"


# --- warehouse names for source names that need quoting -------------------------------------------
WAREHOUSE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def warehouse_name(source: str) -> str:
    """The warehouse's spelling of one source identifier: itself when it needs no quoting, else
    transliterated to ASCII (anyascii: Cyrillic and Kazakh letters as their Latin readings), lower
    case, every run of other characters one '_', never starting with a digit, at most 63 characters.
    Not injective on its own ('Name' and 'name', 'a.b' and 'a b'): `warehouse_names` settles that."""
    if WAREHOUSE_NAME.match(source):
        return source
    slug = re.sub(r"[^a-z0-9]+", "_", anyascii(source).lower()).strip("_")
    if not slug:
        return f"n_{_name_digest(source)}"
    return (slug if slug[0].isalpha() else f"n_{slug}")[:63]


def warehouse_names(sources: list[str]) -> dict[str, str]:
    """Warehouse names for the identifiers of one scope (a table's columns, a schema's tables),
    collision-free: a derived name that two sources share, or that a source's own name already
    is, takes '_' and 6 hex digits of the source name's BLAKE2b digest. A name that needs no
    quoting is always kept. The result is written into the regulation (`qoima regulation draft`),
    so a table or column added later never renames one that exists."""
    derived = {source: warehouse_name(source) for source in sources}
    taken = Counter(derived.values())
    kept = {source for source in sources if derived[source] == source}
    for source, name in derived.items():
        if source not in kept and (taken[name] > 1 or name in kept):
            derived[source] = f"{name[:56]}_{_name_digest(source)}"
    return derived


def _name_digest(source: str) -> str:
    return hashlib.blake2b(source.encode(), digest_size=3).hexdigest()
