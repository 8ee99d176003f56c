"""The Prometheus metrics of Qoima's processes, defined once.

Labels are table names, operations and reason kinds: never a value from a row, so no
identifier can reach Prometheus through a label.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

# Freshness spans sub-second to minutes: the buckets resolve the seconds an analyst cares about.
_FRESHNESS_BUCKETS = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 30, 60, 120, 300, 900)

EVENTS_IN = Counter("qoima_processor_events_in_total", "Raw change events consumed", ["table", "op"])
EVENTS_OUT = Counter("qoima_processor_events_out_total", "Clean records produced", ["table"])
QUARANTINED = Counter("qoima_quarantined_total", "Events sent to quarantine", ["table", "reason"])
DEFECTS = Counter("qoima_processor_defects_total", "Values that failed validation (loaded with a marker)", ["table", "column"])
QUALITY_VIOLATIONS = Counter("qoima_quality_violations_total", "Rows that broke a quality rule",
                             ["table", "rule", "action"])
TOMBSTONES = Counter("qoima_processor_tombstones_total", "Debezium tombstones consumed (nothing to load)", ["table"])
# The catalog (DM385 §13): analyst queries of each warehouse table today, from ClickHouse's query log.
TABLE_QUERIES = Gauge("qoima_table_queries_today", "Analyst queries that read the table today (UTC), from "
                      "ClickHouse's query log", ["provider", "table"])
PASSPORT_VERSION = Gauge("qoima_passport_version", "The latest version of the provider's data passport", ["provider"])
# PD236 access protocol (docs/pd236.md): what Qoima read of personal data, and its reporting.
PD_ACCESS_ROWS = Counter("qoima_pd236_access_rows_total",
                         "Rows of tables holding personal data read from a source (PD236 access protocol)",
                         ["table", "path"])
PD_ACCESS_EVENTS = Counter("qoima_pd236_access_events_total",
                           "PD236 access events emitted (one per table, path and interval)", ["path"])
PD_UNDELIVERED = Gauge("qoima_pd236_undelivered_events", "PD236 access events the state service has not accepted yet")
PD_OLDEST_UNDELIVERED = Gauge("qoima_pd236_oldest_undelivered_seconds",
                              "Age of the oldest PD236 access event not yet accepted by the state service (0: none)")
PD_DELIVERED = Counter("qoima_pd236_delivered_total", "PD236 access events the state service accepted")
PD_FAILURES = Counter("qoima_pd236_delivery_failures_total",
                      "Failed PD236 deliveries (retried with back-off), by reason: http_401 is a refused token",
                      ["reason"])
PROCESSOR_READY = Gauge("qoima_processor_ready",
                        "1 once the worker has restored its state and joined its consumer group")
PROCESS_SECONDS = Histogram("qoima_processor_event_seconds", "Time to decode, check, depersonalize and encode one "
                            "event: each batch's mean, observed once per batch",
                            buckets=(0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05))
BATCH_EVENTS = Histogram("qoima_processor_batch_events", "Raw events per processor batch (one Kafka transaction)",
                         buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000))
BATCH_SECONDS = Histogram("qoima_processor_batch_seconds", "From a batch's first event consumed to its transaction "
                          "committed", buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
ABORTED_BATCHES = Counter("qoima_processor_aborted_batches_total", "Batches whose Kafka transaction was aborted "
                          "(the worker restarts from its committed offsets and state)")
STATE_KEYS = Gauge("qoima_processor_state_keys", "Keys in the stateful rules' stores, after the last restore")
CLAIMS_UNJUDGED = Counter("qoima_processor_claims_unjudged_total",
                          "Cross-row claims the processor could not judge (logged); their verdicts are lost")
RESTORE_SECONDS = Gauge("qoima_processor_restore_seconds", "Time the last restore of the state stores took")

SINK_ROWS = Counter("qoima_sink_rows_total", "Rows written to ClickHouse", ["table"])
SINK_SNAPSHOT_ROWS = Counter("qoima_sink_snapshot_rows_total",
                             "Snapshot rows (op r: initial or incremental snapshot, `qoima snapshot`) loaded into the warehouse",
                             ["table"])
# A requested load (`qoima snapshot`, connectors/snapshot.py), exported by the assessor from its record:
# with the rows loaded since the request (above) it gives the rows remaining.
LOAD_ESTIMATE = Gauge("qoima_load_rows_estimated", "The source's estimate of a loading table's rows "
                      "(the latest load requested in the last day)", ["provider", "table"])
LOAD_REQUESTED = Gauge("qoima_load_requested_timestamp_seconds", "When the table's latest load was requested",
                       ["provider", "table"])
LOAD_PAUSED = Gauge("qoima_load_paused", "1 while the provider's snapshot is paused (`qoima snapshot --pause`)",
                    ["provider", "table"])
PROCESSOR_BACKLOG = Gauge("qoima_processor_backlog_events", "Events the processor's group has yet to consume "
                          "(raw, work and rules topics), as the load governor last read it while a load was recorded")
LOAD_THROTTLED = Gauge("qoima_load_throttled", "1 while the load governor holds the provider's snapshot paused "
                       "for the processor's backlog", ["provider"])
LOAD_THROTTLES = Counter("qoima_load_throttles_total", "Times the load governor paused the provider's snapshot",
                         ["provider"])
SINK_BATCH_ROWS = Histogram("qoima_sink_batch_rows", "Rows per ClickHouse insert", ["table"],
                            buckets=(1, 10, 50, 100, 500, 1000, 5000, 10000, 50000))
SINK_BATCH_SECONDS = Histogram("qoima_sink_batch_seconds", "Duration of one ClickHouse insert", ["table"],
                               buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
SINK_FAILURES = Counter("qoima_sink_insert_failures_total", "ClickHouse inserts that failed and will be retried", ["table"])
SINK_HELD = Gauge("qoima_sink_held", "1 while a table's clean topic is paused: a batch failed the depersonalization check",
                  ["table"])
SINK_ALREADY_LOADED = Counter("qoima_sink_already_loaded_total",
                              "Rows left out because the table already held their key and version "
                              "(a batch read again after a restart, a quarantine replay)", ["table"])
SINK_UNCHANGED_FILLED = Counter("qoima_sink_unchanged_filled_total",
                                "Large values an UPDATE left unchanged, filled from the row's latest loaded version",
                                ["table"])
SINK_UNCHANGED_LOST = Counter("qoima_sink_unchanged_lost_total",
                              "Unchanged large values found in no earlier version: loaded empty with a defect", ["table"])
SINK_UNDECODABLE = Counter("qoima_sink_undecodable_total", "Clean-topic messages the sink could not decode", ["topic"])
FRESHNESS = Histogram("qoima_freshness_seconds", "Warehouse write time minus source commit time", ["table"],
                      buckets=_FRESHNESS_BUCKETS)
LAST_WRITE = Gauge("qoima_sink_last_write_timestamp_seconds", "Unix time of the last ClickHouse write", ["table"])
LAST_SOURCE_COMMIT = Gauge("qoima_sink_last_source_commit_timestamp_seconds",
                           "Source commit time of the newest row written", ["table"])

K_ANONYMITY = Gauge("qoima_k_anonymity", "Smallest equivalence class over the table's quasi-identifiers", ["table"])
L_DIVERSITY = Gauge("qoima_l_diversity", "Fewest distinct sensitive values within one equivalence class", ["table"])
K_THRESHOLD = Gauge("qoima_k_anonymity_threshold", "The table's declared min_k", ["table"])
ROWS_AT_RISK = Gauge("qoima_reidentification_rows_at_risk", "Rows in classes smaller than the table's min_k", ["table"])

QUALITY_INDICATOR = Gauge("qoima_quality_indicator", "Latest quality assessment: the share of rows meeting the "
                          "indicator (completeness, accuracy, consistency, uniqueness, integrity, actuality, "
                          "timeliness), 0-1", ["table", "indicator"])
QUALITY_COLUMN_COMPLETENESS = Gauge("qoima_quality_column_completeness",
                                    "Latest quality assessment: the share of non-null values of a nullable column",
                                    ["table", "column"])
QUALITY_ASSESSED = Gauge("qoima_quality_assessment_timestamp_seconds", "Unix time of the table's latest quality "
                         "assessment", ["table"])
COVERAGE_SOURCE_ROWS = Gauge("qoima_coverage_source_rows", "Rows of the source table, counted through the capture "
                             "account", ["table"])
COVERAGE_WAREHOUSE_ROWS = Gauge("qoima_coverage_warehouse_rows", "Current rows of the warehouse table (FINAL, not "
                                "deleted)", ["table"])
COVERAGE_TOLERANCE = Gauge("qoima_coverage_tolerance", "The table's accepted coverage gap |source - warehouse| / "
                           "source (its coverage rule's tolerance, else 0.01)", ["table"])

SOURCE_LAST_COMMIT = Gauge("qoima_source_last_commit_timestamp_seconds",
                           "Newest source commit time in the warehouse, per provider", ["provider"])
INCIDENTS = Gauge("qoima_incidents", "Incidents in the journal by status, DM385 type and severity",
                  ["status", "type", "severity"])

# Marker mode (connectors/marker/): sources polled instead of captured by Debezium.
POLLER_ROWS = Counter("qoima_poller_rows_total", "Rows the marker poller read from a source table", ["table"])
POLLER_EVENTS = Counter("qoima_poller_events_total", "Debezium-shaped events the marker poller produced to raw "
                        "topics", ["table", "op"])
POLLER_ERRORS = Counter("qoima_poller_errors_total", "Failed polls, retried with back-off", ["table", "kind"])
POLLER_WATERMARK_LAG = Gauge("qoima_poller_watermark_lag_seconds", "Source clock minus the table's marker watermark "
                             "(timestamp markers only)", ["table"])
POLLER_LAST_SUCCESS = Gauge("qoima_poller_last_success_timestamp_seconds", "Unix time of the table's last complete "
                            "poll", ["table"])

DEMO_CHANGES = Counter("qoima_demo_changes_total", "Changes the demo load made at the source", ["kind"])


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Expose /metrics; a taken port is a configuration error worth stopping for."""
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise SystemExit(f"cannot serve metrics on {host}:{port}: {exc.strerror}; stop what holds the port "
                         f"or set QOIMA_PORT_SHIFT") from None
SINK_COMMIT_FAILURES = Counter("qoima_sink_commit_failures_total",
                               "Offset commits the broker refused after the rows were loaded (read again, deduplicated)")
SINK_TRUNCATES = Counter("qoima_sink_truncates_total",
                         "TRUNCATEs at the source applied to the warehouse (sinks/truncate.py)", ["table"])

# Source safety (governance/source_health.py): what capture costs a provider's database.
SLOT_RETAINED_BYTES = Gauge("qoima_source_slot_retained_bytes",
                            "WAL the provider's replication slot keeps at the source (PostgreSQL), bytes",
                            ["provider"])
SLOT_ACTIVE = Gauge("qoima_source_slot_active", "1 while a connector reads the provider's replication slot",
                    ["provider"])
BINLOG_LAG_BYTES = Gauge("qoima_source_binlog_lag_bytes",
                         "MariaDB: binary log the provider's server has written past the position its connector last "
                         "committed; the server purges logs by its own retention, so a lag that outgrows it loses changes",
                         ["provider"])
KAFKA_UP = Gauge("qoima_kafka_up", "1 while the Kafka cluster answers the assessor's metadata request (every 15 s), "
                 "0 after one it left unanswered for 5 s")
CONNECTOR_FAILED = Gauge("qoima_connector_failed",
                         "1 when the provider's connector or one of its tasks has failed, or Connect does not have it",
                         ["provider"])
