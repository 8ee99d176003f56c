"""Clean topics to ClickHouse in batches, committing Kafka offsets only after ClickHouse acked.

A batch closes at `QOIMA_SINK_BATCH_ROWS` rows or `QOIMA_SINK_BATCH_MS` after its first
message, whichever comes first. Each table's part of a batch is one insert carrying a
deduplication token built from the exact offsets it holds, so a retry of the same insert
adds nothing; a replay with other batch boundaries adds rows that FINAL collapses by
`_version`. An insert that fails is retried with back-off and nothing is committed until
it succeeds: the sink stalls visibly (metrics, alert) rather than skipping data.

Before a batch of clean rows is loaded, every string value is scanned for clear identifiers
(R394 §20.5: the operator checks depersonalization before loading). A hit holds the batch
back: nothing is inserted or committed, the topic is paused and a critical incident opens.
"""
from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from model.regulation import Action, Regulation, Table, load_all
from monitoring import metrics
from model.settings import Settings
from sinks.clickhouse_users import writer_client
from sinks import schema_evolution, unchanged
from sinks.truncate import truncate_statements
from sinks.ddl import ACCESS_COLUMNS, HELD_COLUMN, INCIDENT_COLUMNS, META_COLUMNS, META_FIELDS, create_table_sql, history_sql, meta_tables_sql, table_columns, warehouse_columns
from model.names import HISTORY_VIEW_SUFFIX
from model.names import META_DB
from model.names import WAREHOUSE_DB
from schemas.avro_codec import codec_for
from schemas import retry
from schemas.kafka_clients import consumer_config, producer_config
from model.names import ACCESS_EVENTS_TABLE, ACCESS_TOPIC, INCIDENT_TOPIC
from schemas.schema_history import SchemaHistory
from schemas.incidents import Detection, IncidentPublisher, incident_codec
from model.leak_scan import structural_kinds_in, structural_kinds_in_hashed
from model.names import DEAD_LETTER_TOPIC, SINK_GROUP

log = logging.getLogger("qoima.sink")
# The (key, version) pairs of one `_drop_loaded` query, in bytes of SQL: half ClickHouse's
# max_query_size (256 KiB), leaving room for the query around them and the tuples' punctuation.
_SUSPECTS_QUERY_BYTES = 128 * 1024


def _slices(pairs: list[tuple], budget: int) -> list[list[tuple]]:
    """`pairs` cut into runs whose values spell at most about `budget` bytes of SQL (one pair per
    run at least)."""
    runs: list[list[tuple]] = [[]]
    used = 0
    for pair in pairs:
        # Bytes as ClickHouse counts them: a text value's UTF-8, twice for escaped quotes at worst.
        size = sum((2 * len(value.encode()) if isinstance(value, str) else len(str(value))) + 4 for value in pair)
        if runs[-1] and used + size > budget:
            runs.append([])
            used = 0
        runs[-1].append(pair)
        used += size
    return runs if runs[-1] else []


@dataclass
class _Target:
    database: str
    ch_table: str
    label: str                      # metric label: the source table, or the meta table
    column_names: list[str]
    fields: list[str]
    zeros: list[Any]
    provider: str = ""
    guarded: bool = False           # scan for clear identifiers before loading
    hashed: frozenset[str] = frozenset()  # columns whose values are pseudonyms
    held_table: str = ""            # a clean target's twin in qoima_meta, which a truncate empties too
    rows: list[list[Any]] = field(default_factory=list)
    source_ts: list[float] = field(default_factory=list)
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)  # partition -> (first, last)
    truncates: list[tuple[int, int]] = field(default_factory=list)  # (version, source commit ms)
    key_fields: list[str] = field(default_factory=list)              # the table's key, as output fields
    lookups: list[tuple[str, str]] = field(default_factory=list)     # where a row's earlier versions are
    # Where every (key, version) ever loaded is, for _drop_loaded: the history table, which keeps
    # each version. Not the analysts' table: its merges drop older versions, and a redelivered
    # older version was not found there and loaded twice (seen after a sink kill -9 in CI).
    loaded_in: str = ""
    unchanged: dict[int, list[str]] = field(default_factory=dict)    # row index -> fields to fill (sinks/unchanged.py)

    def clear(self) -> None:
        self.truncates.clear()
        self.unchanged.clear()
        self.rows.clear()
        self.source_ts.clear()
        self.offsets.clear()


def _clean_target(regulation: Regulation, table: Table) -> _Target:
    columns = warehouse_columns(table)
    names = [c.name for c in columns]
    return _Target(WAREHOUSE_DB, regulation.warehouse_table(table), table.name,
                   column_names=names + [name for name, _ in META_COLUMNS],
                   fields=names + META_FIELDS,
                   zeros=[c.zero for c in columns] + [None] * len(META_FIELDS),
                   provider=regulation.provider, guarded=True, held_table=regulation.held_table(table),
                   hashed=frozenset(c.output_name for c in table.columns if c.action is Action.hash),
                   key_fields=[table.column(k).output_name for k in table.primary_key],
                   lookups=[(WAREHOUSE_DB, regulation.warehouse_table(table)), (META_DB, regulation.held_table(table))],
                   loaded_in=f"{WAREHOUSE_DB}.`{regulation.history_table(table)}`")


def _held_target(regulation: Regulation, table: Table) -> _Target:
    target = _clean_target(regulation, table)
    target.database, target.ch_table = META_DB, regulation.held_table(table)
    target.loaded_in = f"{META_DB}.`{target.ch_table}`"
    target.label = f"held:{table.name}"
    target.column_names = target.column_names + [HELD_COLUMN[0]]
    target.fields = target.fields + [HELD_COLUMN[0]]
    target.zeros = target.zeros + [None]
    target.held_table = ""
    target.lookups = target.lookups[::-1]
    return target


def _incident_target() -> _Target:
    return _Target(META_DB, "incident_events", "qoima_meta.incident_events", column_names=INCIDENT_COLUMNS,
                   fields=INCIDENT_COLUMNS, zeros=[None] * len(INCIDENT_COLUMNS))


def _access_target() -> _Target:
    database, table = ACCESS_EVENTS_TABLE.split(".")
    return _Target(database, table, ACCESS_EVENTS_TABLE, column_names=ACCESS_COLUMNS, fields=ACCESS_COLUMNS,
                   zeros=[None] * len(ACCESS_COLUMNS))


class ClickHouseSink:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.regulations = load_all(settings.regulations_dir, settings.regulation_env())
        # Messages written under an earlier regulation decode with their own schema.
        self.codec = codec_for(self.regulations, SchemaHistory(settings.kafka_bootstrap).lookup)
        self.client = writer_client(settings)
        self.targets: dict[str, _Target] = {INCIDENT_TOPIC: _incident_target(), ACCESS_TOPIC: _access_target()}
        for regulation in self.regulations:
            for table in regulation.tables:
                self.targets[regulation.clean_topic(table)] = _clean_target(regulation, table)
                self.targets[regulation.held_topic(table)] = _held_target(regulation, table)
                # A series per table from the start (count 0), not from its first row after a
                # restart: a dashboard and a scrape see every table the sink loads.
                metrics.FRESHNESS.labels(table.name)
        self.held: set[str] = set()
        # Exactly once whatever the batch boundaries (a retried batch with the same ones is
        # dropped by its deduplication token): a row a rebalance delivered twice into one batch
        # is kept once, and rows that may already be in the table are looked up by key and
        # version and left out. That is every row of a topic's first batch after
        # a start or a refused commit (`unsure`: a previous life may have inserted it without
        # committing its offsets), and any row whose version is not above the highest the table
        # holds (`high`: a quarantine replay, or another processor worker's later commit).
        self.unsure: set[str] = set(self.targets)
        self.high: dict[str, int] = {}
        self.incidents = IncidentPublisher(settings.kafka_bootstrap, incident_codec())
        self._stopping = False

    def ensure_tables(self) -> None:
        """Create the tables, or bring existing ones in line with the regulation
        (sinks/schema_evolution.py); a change that is not safe stops the sink here."""
        self.client.command(f"CREATE DATABASE IF NOT EXISTS {WAREHOUSE_DB}")
        for regulation in self.regulations:
            for table in regulation.tables:
                wanted = table_columns(table)
                changed = self._evolve(WAREHOUSE_DB, regulation.warehouse_table(table), wanted)
                changed |= self._evolve(WAREHOUSE_DB, regulation.history_table(table), wanted)
                if changed:
                    # The view's SELECT * was expanded when it was made: make it again so
                    # the history receives the new columns too.
                    self.client.command(f"DROP VIEW IF EXISTS {WAREHOUSE_DB}."
                                        f"`{regulation.warehouse_table(table)}{HISTORY_VIEW_SUFFIX}`")
                self.client.command(create_table_sql(regulation, table))
                for statement in history_sql(regulation, table):  # corrections history, DM385 §49
                    self.client.command(statement)
        for statement in meta_tables_sql():
            self.client.command(statement)
        for regulation in self.regulations:
            for table in regulation.tables:
                self._evolve(META_DB, regulation.held_table(table), table_columns(table, held=True))
                self.client.command(create_table_sql(regulation, table, held=True))

    def _evolve(self, database: str, name: str, wanted: list[tuple[str, str]]) -> bool:
        existing = dict(self.client.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} AND table = {t:String}",
            parameters={"db": database, "t": name}).result_rows)
        if not existing:
            return False  # not made yet: CREATE TABLE follows
        alterations = schema_evolution.plan(f"{database}.`{name}`", existing, wanted)
        for alteration in alterations:
            log.warning("schema evolution: %s", alteration.change)
            self.client.command(alteration.statement)
        return bool(alterations)

    def _row(self, target: _Target, record: dict[str, Any]) -> list[Any]:
        deleted = record.get("_is_deleted") == 1
        row = []
        for name, zero in zip(target.fields, target.zeros):
            value = record.get(name)
            # A field the writer's schema lacked (declared since) takes the column's placeholder.
            row.append(zero if value is None and (deleted or name not in record) else value)
        return row

    def _leaks(self, target: _Target) -> dict[str, set[str]]:
        """Column -> kinds of clear identifiers found in this batch (the check before load).

        Each column's distinct texts are scanned once per batch: a batch repeats most values
        (statuses, codes, regions), and a pseudonym column's values are never read twice."""
        found: dict[str, set[str]] = {}
        for index, name in enumerate(target.column_names):
            texts = {text for row in target.rows
                     for text in (row[index] if isinstance(row[index], list) else (row[index],)) if isinstance(text, str)}
            kinds = (structural_kinds_in_hashed if name in target.hashed else structural_kinds_in)(texts)
            if kinds:
                found[name] = kinds
        return found

    def _hold(self, topic: str, target: _Target, consumer: Consumer, leaks: dict[str, set[str]]) -> None:
        """Keep a leaking batch out of the warehouse: no insert, no commit, partition paused."""
        partitions = sorted(target.offsets)
        span = ", ".join(f"partition {p} offsets {a}-{b}" for p, (a, b) in sorted(target.offsets.items()))
        detail = (f"clear identifiers in a clean batch ({'; '.join(f'{c}: {sorted(k)}' for c, k in sorted(leaks.items()))}); "
                  f"{len(target.rows)} rows at {span} held back, topic {topic} paused until an operator acts")
        log.critical("depersonalization check failed for %s: %s", target.label, detail)
        consumer.pause([TopicPartition(topic, p) for p in partitions])
        self.held.add(topic)
        metrics.SINK_HELD.labels(target.label).set(1)
        self.incidents.publish(Detection(target.provider, target.label, "depersonalization_check", "other",
                                         "critical", len(target.rows), detail, "sink"))

    def _retrying(self, target: _Target, what: str, action: Callable[[], None]) -> None:
        """Run `action` until ClickHouse takes it: retried with back-off, never skipped, so the
        sink stalls visibly (metrics, alert) rather than losing data."""
        def failed(exc: BaseException, delay: float) -> None:
            metrics.SINK_FAILURES.labels(target.label).inc()
            log.warning("%s %s failed (%s), retrying in %.1fs", what, target.ch_table, type(exc).__name__, delay)

        # Any Exception: the driver raises several kinds, and all mean "not stored".
        retry.until_it_succeeds(retry.CLICKHOUSE_WRITE, on_failure=failed, give_up=lambda: self._stopping)(action)

    def _insert(self, target: _Target) -> None:
        token = ";".join(f"{target.ch_table}:{p}:{a}-{b}" for p, (a, b) in sorted(target.offsets.items()))
        started = time.perf_counter()

        def insert() -> None:
            nonlocal started
            started = time.perf_counter()  # the attempt that succeeds is the one measured
            self.client.insert(f"{target.database}.`{target.ch_table}`", target.rows,
                               column_names=target.column_names, settings={"insert_deduplication_token": token})

        self._retrying(target, "insert into", insert)
        elapsed = time.perf_counter() - started
        now = time.time()
        metrics.SINK_ROWS.labels(target.label).inc(len(target.rows))
        metrics.SINK_BATCH_ROWS.labels(target.label).observe(len(target.rows))
        metrics.SINK_BATCH_SECONDS.labels(target.label).observe(elapsed)
        if target.database == WAREHOUSE_DB:
            # A load's progress as a metric too (`qoima status` reads the history table).
            op = target.fields.index("_op")
            metrics.SINK_SNAPSHOT_ROWS.labels(target.label).inc(sum(1 for row in target.rows if row[op] == "r"))
            # The analysts' tables only: held rows and incident events are rare by nature, and
            # QoimaTableSilent would take an hour without one for a broken capture.
            metrics.LAST_WRITE.labels(target.label).set(now)
        if target.source_ts and target.database == WAREHOUSE_DB:  # held rows are not in the warehouse yet
            freshness = metrics.FRESHNESS.labels(target.label)
            for ts in target.source_ts:
                freshness.observe(max(0.0, now - ts))
            metrics.LAST_SOURCE_COMMIT.labels(target.label).set(max(target.source_ts))

    def _drop_loaded(self, topic: str, target: _Target) -> None:
        """Leave out the rows whose key and version the table already holds (see `unsure`, `high`)."""
        index = {name: i for i, name in enumerate(target.fields)}
        keys = [index[name] for name in target.key_fields]
        version = index["_version"]
        table = target.loaded_in
        if topic not in self.high:
            found: list[int] = []
            self._retrying(target, "read of the highest version in", lambda: found.append(
                self.client.query(f"SELECT max(_version) FROM {table}").result_rows[0][0] or 0))
            self.high[topic] = found[-1]
        # A rebalance (a broker restarted) delivers again what the batch already holds: one copy each.
        seen: set[tuple] = set()
        once = []
        for row in target.rows:
            pair = (*(row[k] for k in keys), row[version])
            if pair not in seen:
                seen.add(pair)
                once.append(row)
        if len(once) < len(target.rows):
            metrics.SINK_ALREADY_LOADED.labels(target.label).inc(len(target.rows) - len(once))
            log.warning("%s: %d row(s) delivered twice in one batch (a rebalance); one copy kept", target.label,
                        len(target.rows) - len(once))
            target.rows[:] = once
        everything = topic in self.unsure
        suspects = {(*(row[k] for k in keys), row[version]) for row in target.rows
                    if everything or row[version] <= self.high[topic]}
        if not suspects:
            return
        key_list = ", ".join(f"`{k}`" for k in target.key_fields)
        loaded: set[tuple] = set()
        pairs = sorted(suspects)

        def read() -> None:  # by key and version: the table's order, so an index lookup
            loaded.clear()
            # In slices: a batch of 50,000 suspects (a restart, or two workers' records interleaved
            # in one clean partition during a load) spelled in one IN list exceeded ClickHouse's
            # max_query_size (256 KiB), and the sink retried that read forever.
            for part in _slices(pairs, _SUSPECTS_QUERY_BYTES):
                loaded.update(tuple(row) for row in self.client.query(
                    f"SELECT DISTINCT {key_list}, _version FROM {table} WHERE ({key_list}, _version) IN %(pairs)s",
                    parameters={"pairs": tuple(part)}).result_rows)
        self._retrying(target, "read of loaded versions from", read)
        if not loaded:
            return
        kept = [row for row in target.rows if (*(row[k] for k in keys), row[version]) not in loaded]
        metrics.SINK_ALREADY_LOADED.labels(target.label).inc(len(target.rows) - len(kept))
        log.warning("%s: %d row(s) already loaded (a restart or a replay); left out", target.label,
                    len(target.rows) - len(kept))
        target.rows[:] = kept

    def _fill_unchanged(self, target: _Target) -> None:
        """The large values the source did not send take their latest loaded version's (sinks/unchanged.py)."""
        def latest(database: str, table: str, keys: list[str], columns: list[str], wanted: list[tuple],
                   before: int) -> dict[tuple, tuple]:
            key_list = ", ".join(f"`{k}`" for k in keys)
            values = ", ".join(f"`{c}`" for c in columns)
            found: dict[tuple, tuple] = {}

            def read() -> None:
                # A tuple is never NULL, so argMax does not skip a version whose value is NULL.
                result = self.client.query(
                    f"SELECT {key_list}, argMax(tuple({values}), _version) FROM {database}.`{table}` "
                    f"WHERE _version < %(before)s AND ({key_list}) IN %(keys)s GROUP BY {key_list}",
                    parameters={"before": before, "keys": tuple(k if len(keys) > 1 else k[0] for k in wanted)})
                found.clear()
                found.update({tuple(row[:len(keys)]): tuple(row[len(keys)]) for row in result.result_rows})
            self._retrying(target, "read of earlier versions from", read)
            return found

        lost = unchanged.fill(target.rows, target.fields, target.key_fields, target.unchanged, target.lookups, latest)
        metrics.SINK_UNCHANGED_FILLED.labels(target.label).inc(sum(map(len, target.unchanged.values())) - lost)
        if lost:
            metrics.SINK_UNCHANGED_LOST.labels(target.label).inc(lost)
            log.warning("%s: %d unchanged large value(s) found in no earlier version, loaded empty with a defect",
                        target.label, lost)

    def _truncate(self, target: _Target, version: int, source_ts_ms: int) -> None:
        def apply() -> None:  # applying it twice is harmless (sinks/truncate.py)
            for statement, parameters in truncate_statements(target.ch_table, target.held_table, version,
                                                             source_ts_ms):
                self.client.command(statement, parameters=parameters, settings={"mutations_sync": 2})

        self._retrying(target, "truncate of", apply)
        metrics.SINK_TRUNCATES.labels(target.label).inc()
        log.warning("TRUNCATE at the source applied to %s.%s: rows loaded before it deleted", WAREHOUSE_DB,
                    target.ch_table)

    def _flush(self, consumer: Consumer) -> None:
        commits = []
        for topic, target in self.targets.items():
            if not target.offsets:
                continue
            leaks = self._leaks(target) if target.guarded else {}
            if leaks:
                self._hold(topic, target, consumer, leaks)
                target.clear()
                continue
            if target.unchanged:
                self._fill_unchanged(target)
            if target.rows and target.key_fields:
                self._drop_loaded(topic, target)
            if target.rows:
                self._insert(target)
                if target.key_fields:
                    version = target.fields.index("_version")
                    self.high[topic] = max(self.high[topic], max(row[version] for row in target.rows))
            for version, source_ts_ms in target.truncates:  # after the rows before them, before the commit
                self._truncate(target, version, source_ts_ms)
            commits += [TopicPartition(topic, p, last + 1) for p, (_, last) in target.offsets.items()]
            target.clear()
        if commits:
            try:
                consumer.commit(offsets=commits, asynchronous=False)
                self.unsure.difference_update(c.topic for c in commits)
            except KafkaException as exc:
                self.unsure.update(c.topic for c in commits)
                # The broker restarted or the group rebalanced under us: the rows are in
                # ClickHouse, the offsets are not. The batch will be read again and its
                # deduplication token (or FINAL, if the boundaries differ) absorbs it.
                metrics.SINK_COMMIT_FAILURES.inc()
                log.warning("offset commit failed (%s); the batch will be read again, without effect",
                            exc.args[0].name() if exc.args else type(exc).__name__)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self.ensure_tables()
        consumer = Consumer(consumer_config(self.settings.kafka_bootstrap, SINK_GROUP, {
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            # One member per group: a killed sink's partitions wait out its session before a
            # restarted sink gets them, so keep the session short (the default is 45 s).
            "session.timeout.ms": 10000,
        }))
        dead_letters = Producer(producer_config(self.settings.kafka_bootstrap, idempotent=False))
        # At 0 from the start: `increase()` in the alert rule counts nothing on a series' first sample.
        for topic in self.targets:
            metrics.SINK_UNDECODABLE.labels(topic)
        consumer.subscribe(sorted(self.targets))
        log.info("sink consuming %d topics into %s and %s", len(self.targets), WAREHOUSE_DB, META_DB)
        batch_rows, batch_s = self.settings.sink_batch_rows, self.settings.sink_batch_ms / 1000
        try:
            while not self._stopping:
                pending, deadline = 0, None
                while pending < batch_rows and not self._stopping:
                    if deadline is None:
                        # The batch's first message, as soon as it comes: `consume` would wait out
                        # its whole timeout for fewer than `num_messages`, which under a steady
                        # load put a second before every batch's window.
                        first = consumer.poll(1.0)
                        messages = [] if first is None else [first]
                    else:
                        messages = consumer.consume(num_messages=batch_rows - pending,
                                                    timeout=max(0.0, deadline - time.monotonic()))
                    for message in messages:
                        if message.error():
                            log.warning("consumer error: %s", message.error())
                            continue
                        if message.topic() in self.held:
                            continue  # fetched before the pause took effect; it will be re-read
                        pending += 1
                        deadline = deadline or time.monotonic() + batch_s
                        self._accept(message, dead_letters)
                    if deadline is not None and time.monotonic() >= deadline:
                        break
                if pending:
                    dead_letters.flush(30)
                    self._flush(consumer)
        finally:
            consumer.close()

    def _accept(self, message, dead_letters: Producer) -> None:
        target = self.targets[message.topic()]
        partition, offset = message.partition(), message.offset()
        first, _ = target.offsets.get(partition, (offset, offset))
        target.offsets[partition] = (first, offset)
        try:
            _, record = self.codec.decode(message.value())
        except Exception as exc:
            # Clean topics hold no clear identifiers, so the bytes can be kept as they are.
            metrics.SINK_UNDECODABLE.labels(message.topic()).inc()
            log.error("undecodable message %s[%d]@%d (%s); sent to %s", message.topic(), partition, offset,
                      type(exc).__name__, DEAD_LETTER_TOPIC)
            dead_letters.produce(DEAD_LETTER_TOPIC, message.value(), key=message.key(),
                                 headers={"source": f"{message.topic()}:{partition}:{offset}", "error": type(exc).__name__})
            return
        if record.get("_op") == "t" and target.held_table:  # a marker, not a row (sinks/truncate.py)
            target.truncates.append((record["_version"], int(record["_source_ts_ms"].timestamp() * 1000)))
            return
        if record.get("_unchanged"):
            target.unchanged[len(target.rows)] = record["_unchanged"]
        target.rows.append(self._row(target, record))
        if "_source_ts_ms" in record:
            target.source_ts.append(record["_source_ts_ms"].timestamp())

    def _on_signal(self, signum, frame) -> None:
        self._stopping = True


def run(settings: Settings) -> None:
    metrics.serve(settings.ports.sink_metrics, settings.host)
    ClickHouseSink(settings).run()
