"""Marker mode (DM385 §63): a source where logical replication cannot be enabled, polled.

A regulation with `capture: marker` names, per table, a `marker` column that increases with
every change of a row (an `updated_at timestamptz`, or a bigint fed by a sequence on every
write) and optionally a `deleted_flag` boolean column. The poller reads each table in
keyset order `(marker, primary key)` and produces to the table's raw topic the very JSON
envelope Debezium would have produced for the row (values put into Debezium's form by
`PgType.to_debezium`, the path historical loads use), so the processor, the sink and the
warehouse cannot tell the two apart except by `_version`, `_op` and `_source_ts`.

Decisions (docs/design.md, "Marker mode", has the reasoning):
- The envelope's `source.lsn` is the marker itself: microseconds since 1970 for a timestamp
  marker, the value for an integer one (0 below zero). It only names the version the poller
  read; the warehouse's `_version` is the raw event's offset (streams/versions.py), so a later
  read of a row wins whatever its marker says.
- `op` is `r` during the first full pass of a table, `u` afterwards (an insert cannot be told
  from an update by a marker), `d` for a row whose `deleted_flag` is true and for a key the
  optional reconciliation no longer finds at the source. The processor treats r/c/u alike.
- Resume needs no local state: after the events of a page are flushed, the table's watermark
  goes to the compacted topic `qoima.marker-state`. A crash in between re-produces rows with
  the versions they had (deduplicated downstream), it never skips one.
- Late commits: a transaction may commit after rows with newer markers were read. Each poll
  re-reads from `watermark - lookback` (rows already produced with the same marker are skipped
  in memory), and a timestamp marker is read only up to the source's `now() - safety lag`, so
  a future-dated row cannot push the watermark past rows still to come.
- Hard deletes are invisible to polling; `reconcile_every` compares the source's keys with
  the keys produced and not deleted since the poller started (kept in memory: only primary
  keys, rebuilt from the source at start), and produces a delete for each one gone.

Nothing here logs a row value: messages name providers, tables, columns and exception types.
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Protocol

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row

from model.regulation import Regulation, RegulationError, Table, marker_kind
from monitoring import metrics
from model.types.postgresql import ValueRefused, parse_pg_type
from model.names import MARKER_STATE_GROUP, MARKER_STATE_TOPIC, heartbeat_topic

log = logging.getLogger("qoima.poller")


def _lossy_in_python(declared: str) -> bool:
    text = " ".join(declared.lower().split())
    if text.endswith("[]") or text.startswith("_"):
        return True
    return text.startswith(("interval", "money", "timetz")) or (text.startswith("time") and
                                                                not text.startswith("timestamp"))

CONNECTOR = "qoima-marker"   # `source.connector` of the events, where Debezium writes "postgresql"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)
_STATEMENT_TIMEOUT_MS = 300_000
_MAX_BACKOFF_S = 60.0
_DELIVERY_TIMEOUT_S = 60.0


class PollerError(RuntimeError):
    """A poll failed and is retried; `kind` is the metric label, the message names no value."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class PollerConfigError(ValueError):
    """The regulation and the source disagree; the poller stops and says what to fix."""


# --------------------------------------------------------------------------- one table


class MarkerTable:
    """A marker table's fixed facts: its SQL, how a row becomes an event, marker arithmetic."""

    def __init__(self, regulation: Regulation, table: Table) -> None:
        if table.marker is None:
            raise PollerConfigError(f"{regulation.provider} {table.name}: no 'marker' column declared")
        self.regulation, self.table = regulation, table
        self.topic = regulation.raw_topic(table)
        self.marker = table.marker
        self.key = tuple(table.primary_key)
        self.deleted_flag = table.deleted_flag
        declared = table.column(self.marker).type
        self.kind = marker_kind(declared)
        # timestamptz markers compare as instants, `timestamp` ones as the source's wall clock.
        spelled = " ".join(declared.lower().split())
        self.zoned = spelled.startswith("timestamptz") or spelled.endswith("with time zone")
        source = regulation.source
        self.lookback = (source.lookback_seconds * 1_000_000 if self.kind == "timestamp"
                         else source.lookback_values)
        self.safety_lag = source.safety_lag_seconds * 1_000_000 if self.kind == "timestamp" else 0
        self._encoders = {}
        # psycopg's Python values lose what these types hold (an interval's months, 24:00:00,
        # money's text): read their text form and parse it as a historical load does.
        self._read_as_text = {c.name for c in table.columns if _lossy_in_python(c.type)}
        for column in table.columns:
            try:
                pg = parse_pg_type(column.type)
                self._encoders[column.name] = ((lambda v, pg=pg: pg.to_debezium(pg.from_text(v)))
                                               if column.name in self._read_as_text else pg.to_debezium)
            except NotImplementedError:
                raise PollerConfigError(f"{regulation.provider} {table.name}.{column.name}: type {column.type!r} "
                                        "cannot be polled yet (it has no Debezium form in streams/pg_types)") from None

    @property
    def name(self) -> str:
        return self.table.name

    # -- marker arithmetic: positions are integers (microseconds or values) ----------------
    def position(self, value: Any) -> int:
        if self.kind == "integer":
            return int(value)
        if value.tzinfo is None:  # a `timestamp` marker: its wall clock, read as if UTC
            value = value.replace(tzinfo=timezone.utc)
        return (value - _EPOCH) // _MICRO

    def parameter(self, position: int) -> Any:
        """A position as the value to compare the marker column with."""
        if self.kind == "integer":
            return position
        instant = _EPOCH + timedelta(microseconds=position)
        return instant if self.zoned else instant.replace(tzinfo=None)

    @staticmethod
    def version(position: int) -> int:
        return max(0, position)  # `_version` is UInt64

    def upper_bound(self, now: datetime, local_now: datetime) -> int | None:
        """The newest marker a poll reads: the source's clock minus the safety lag (timestamps);
        a row stamped in the future waits for its time instead of moving the watermark past
        rows still to commit. Integer markers have no clock."""
        if self.kind != "timestamp":
            return None
        return self.position(now if self.zoned else local_now) - self.safety_lag

    # -- rows ----------------------------------------------------------------------------
    def key_of(self, row: dict[str, Any]) -> tuple:
        return tuple(row[k] for k in self.key)

    def cursor(self, row: dict[str, Any]) -> tuple:
        return (row[self.marker], *self.key_of(row))

    def is_deleted(self, row: dict[str, Any]) -> bool:
        return self.deleted_flag is not None and row.get(self.deleted_flag) is True

    def _encode(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self._encoders[name](value)
        except ValueRefused:
            # Not what the regulation declares (say a numeric wider than numeric(p,s)): sent as
            # Debezium would send it, so the processor quarantines the row as `bad_value`.
            log.warning("%s.%s: a value does not fit the declared type; the processor will quarantine the row",
                        self.name, name)
            return value if isinstance(value, (str, int, float)) else str(value)

    def _image(self, row: dict[str, Any], source_columns: Iterable[str]) -> dict[str, Any]:
        image = {name: self._encode(name, row.get(name)) for name in self._encoders}
        # Undeclared source columns travel by name only, as null: the processor notes them in
        # `_defects` exactly as for CDC, and their values are never read.
        image.update({name: None for name in source_columns if name not in self._encoders})
        return image

    def event(self, op: str, row: dict[str, Any], *, version: int, ts_ms: int, now_ms: int,
              source_columns: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """(key, value) of the Debezium envelope (JSON converter, schemas disabled) for a row.

        A delete carries the key columns only, like Debezium's with the default replica identity.
        """
        if op == "d":
            before, after = {k: self._encode(k, row[k]) for k in self.key}, None
        else:
            before, after = None, self._image(row, source_columns)
        image = before if after is None else after
        source = {
            "version": CONNECTOR, "connector": CONNECTOR, "name": self.regulation.raw_topic_prefix,
            "ts_ms": ts_ms, "snapshot": "true" if op == "r" else "false", "db": self.regulation.source.database,
            "sequence": None, "schema": self.table.schema_name, "table": self.table.table_name,
            "txId": None, "lsn": version, "xmin": None,
        }
        value = {"before": before, "after": after, "source": source, "op": op, "ts_ms": now_ms, "transaction": None}
        key = {k: image[k] for k in self.key}
        return (json.dumps(key, ensure_ascii=False, separators=(",", ":")).encode(),
                json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    def source_ts_ms(self, position: int, now_ms: int, snapshot: bool) -> int:
        """Commit time of a change: a timestamptz marker's time (never later than the source's
        clock); the poll time for a first full pass (as a Debezium snapshot does, so retention
        counts from capture) and for markers that are not instants."""
        if snapshot or not self.zoned:
            return now_ms
        return min(position // 1000, now_ms)

    # -- SQL -------------------------------------------------------------------------------
    def _select_list(self):
        # json/jsonb as their text: Debezium sends the text PostgreSQL prints.
        items = []
        for column in self.table.columns:
            ident = sql.Identifier(column.name)
            if column.type.strip().lower() in ("json", "jsonb") or column.name in self._read_as_text:
                items.append(sql.SQL("{}::text AS {}").format(ident, ident))
            else:
                items.append(ident)
        return sql.SQL(", ").join(items)

    def _relation(self):
        return sql.Identifier(self.table.schema_name, self.table.table_name)

    def page_sql(self, *, after: tuple | None, lower: int | None, upper: int | None, limit: int):
        """One keyset page: rows after `after` (marker, key...) or from `lower` (inclusive), up to
        `upper`, in (marker, key) order. Ties on the marker are split by the key, never skipped."""
        order = sql.SQL(", ").join(sql.Identifier(c) for c in (self.marker, *self.key))
        marker = sql.Identifier(self.marker)
        where, params = [], []
        if after is not None:
            where.append(sql.SQL("({}) > ({})").format(order, sql.SQL(", ").join(sql.Placeholder() * len(after))))
            params.extend([self.parameter(self.position(after[0])), *after[1:]])
        elif lower is not None:
            where.append(sql.SQL("{} >= %s").format(marker))
            params.append(self.parameter(lower))
        if upper is not None:
            where.append(sql.SQL("{} <= %s").format(marker))
            params.append(self.parameter(upper))
        condition = sql.SQL(" AND ").join(where) if where else sql.SQL("TRUE")
        query = sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT %s").format(
            self._select_list(), self._relation(), condition, order)
        return query, [*params, limit]

    def keys_sql(self):
        """Every key with its marker and deleted flag: the reconciliation's view of the source."""
        flag = (sql.SQL("{} IS TRUE").format(sql.Identifier(self.deleted_flag)) if self.deleted_flag
                else sql.SQL("FALSE"))
        keys = sql.SQL(", ").join(sql.Identifier(k) for k in self.key)
        return sql.SQL("SELECT {}, {}, {} FROM {}").format(keys, sql.Identifier(self.marker), flag, self._relation())


# --------------------------------------------------------------------------- the source


class SourceReader(Protocol):
    """What the poller needs from a source database (PgReader; fakes in the unit tests)."""

    def catalog(self, table: MarkerTable) -> tuple[list[str] | None, bool, bool]:
        """(source column names or None when the table is absent, SELECT allowed, marker indexed)."""

    def clock(self) -> tuple[datetime, datetime]:
        """The source's now() (an instant) and localtimestamp (its wall clock)."""

    def page(self, table: MarkerTable, *, after: tuple | None, lower: int | None, upper: int | None,
             limit: int) -> list[dict[str, Any]]: ...

    def keys(self, table: MarkerTable) -> list[tuple[tuple, Any, bool]]:
        """(key, marker value, flagged deleted) of every row."""

    def close(self) -> None: ...


class PgReader:
    """One autocommit connection to a marker source, opened on first use, dropped on error."""

    def __init__(self, regulation: Regulation, environ: dict[str, str]) -> None:
        self.regulation, self._environ = regulation, environ
        self._conn = None

    def _connection(self):
        if self._conn is None or self._conn.closed:
            source = self.regulation.source
            try:
                password = source.password.read(self._environ)
            except RegulationError as exc:  # names the file or variable, never the secret
                raise PollerConfigError(f"provider {self.regulation.provider}: {exc}") from None
            self._conn = psycopg.connect(make_conninfo(
                host=source.host, port=source.port, dbname=source.database, user=source.user,
                password=password, connect_timeout=10, application_name="qoima-poller",
                options=f"-c statement_timeout={_STATEMENT_TIMEOUT_MS}"), autocommit=True)
        return self._conn

    def catalog(self, table: MarkerTable) -> tuple[list[str] | None, bool, bool]:
        conn = self._connection()
        relation = f"{table.table.schema_name}.{table.table.table_name}"
        try:
            found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()[0]
        except psycopg.errors.InsufficientPrivilege:  # no USAGE on the schema
            found = False
        if not found:
            return None, False, False
        columns = [name for (name,) in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum", (relation,))]
        allowed = conn.execute("SELECT has_table_privilege(to_regclass(%s), 'SELECT')", (relation,)).fetchone()[0]
        indexed = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass(%s) AND a.attname = %s)",
            (relation, table.marker)).fetchone()[0]
        return columns, bool(allowed), bool(indexed)

    def clock(self) -> tuple[datetime, datetime]:
        return tuple(self._connection().execute("SELECT now(), localtimestamp").fetchone())

    def page(self, table: MarkerTable, *, after, lower, upper, limit) -> list[dict[str, Any]]:
        query, params = table.page_sql(after=after, lower=lower, upper=upper, limit=limit)
        with self._connection().cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def keys(self, table: MarkerTable) -> list[tuple[tuple, Any, bool]]:
        width = len(table.key)
        return [(tuple(row[:width]), row[width], row[width + 1])
                for row in self._connection().execute(table.keys_sql())]

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None


# --------------------------------------------------------------------------- Kafka


class Output(Protocol):
    def produce(self, topic: str, key: bytes | None, value: bytes | None) -> None: ...

    def flush(self) -> None:
        """Return once everything produced is acknowledged; raise PollerError otherwise."""


class KafkaOutput:
    """An idempotent acks=all producer whose flush fails loudly instead of dropping events."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Producer

        self._failures: list[str] = []
        self._producer = Producer({
            "bootstrap.servers": bootstrap, "client.id": "qoima-poller", "acks": "all",
            "enable.idempotence": True, "linger.ms": 20,
            "message.timeout.ms": int(_DELIVERY_TIMEOUT_S * 1000),
        }, logger=logging.getLogger("qoima.poller.kafka"))

    def _delivered(self, error, message) -> None:
        if error is not None:
            self._failures.append(str(error))

    def produce(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(topic, value, key=key, on_delivery=self._delivered)
                return
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.5)

    def flush(self) -> None:
        remaining = self._producer.flush(_DELIVERY_TIMEOUT_S + 5)
        failures, self._failures = self._failures, []
        if remaining or failures:
            raise PollerError("kafka", f"{remaining} message(s) undelivered, {len(failures)} failed"
                              + (f" (first: {failures[0]})" if failures else "") + "; the poll is repeated")


def load_states(bootstrap: str, timeout: float = 10.0) -> dict[str, dict[str, Any]]:
    """The latest watermark of every marker table, read from the compacted state topic."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": MARKER_STATE_GROUP,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        try:
            topics = consumer.list_topics(timeout=timeout).topics
        except KafkaException as exc:
            raise PollerError("kafka", f"cannot reach Kafka at {bootstrap} ({exc.args[0]})") from None
        if MARKER_STATE_TOPIC not in topics:
            raise PollerConfigError(f"topic {MARKER_STATE_TOPIC} does not exist; `qoima up` creates it (compacted, "
                                    "one partition)")
        low, high = consumer.get_watermark_offsets(TopicPartition(MARKER_STATE_TOPIC, 0), timeout=timeout)
        states: dict[str, dict[str, Any]] = {}
        if high <= low:
            return states
        consumer.assign([TopicPartition(MARKER_STATE_TOPIC, 0, low)])
        deadline = time.monotonic() + 6 * timeout
        seen = low
        while seen < high:
            if time.monotonic() > deadline:
                raise PollerError("kafka", f"{MARKER_STATE_TOPIC} not read to its end in time")
            for message in consumer.consume(num_messages=500, timeout=1.0):
                if message.error():
                    continue
                seen = message.offset() + 1
                key = (message.key() or b"").decode("utf-8", "replace")
                if message.value() is None:
                    states.pop(key, None)
                    continue
                try:
                    states[key] = json.loads(message.value())
                except ValueError:  # not ours or damaged: that table is read from the start
                    log.warning("%s offset %d: not a watermark record; ignored", MARKER_STATE_TOPIC, message.offset())
                    states.pop(key, None)
        return states
    finally:
        consumer.close()


# --------------------------------------------------------------------------- the poller


@dataclass
class TableState:
    position: int | None = None      # watermark: every row with a lower marker has been produced
    snapshot_done: bool = False      # the first full pass reached the end of the table
    # key -> marker position produced, for rows a lookback may read again
    seen: dict[tuple, int] = field(default_factory=dict)
    # key -> version of rows produced and not deleted; None while reconciliation is off
    live: dict[tuple, int] | None = None
    polls: int = 0
    columns: tuple[str, ...] = ()    # the source's columns, for undeclared-column notes


def state_key(table: MarkerTable) -> str:
    return f"{table.regulation.provider}/{table.name}"


class MarkerPoller:
    """Polls every table of the marker regulations and produces their raw events.

    `readers` maps a provider to its SourceReader, `output` produces and flushes, `saved` is
    what `load_states` returned. One thread: a slow source delays the others, never corrupts them.
    """

    def __init__(self, regulations: list[Regulation], readers: dict[str, SourceReader], output: Output,
                 saved: dict[str, dict[str, Any]] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.regulations = [r for r in regulations if r.polled]
        self.readers, self.output, self._clock = readers, output, clock
        self.tables = {r.provider: [MarkerTable(r, t) for t in r.tables] for r in self.regulations}
        self.states: dict[str, TableState] = {}
        self._checked: set[str] = set()
        for tables in self.tables.values():
            for table in tables:
                self.states[table.topic] = self._restored(table, (saved or {}).get(state_key(table)))

    @staticmethod
    def _restored(table: MarkerTable, saved: dict[str, Any] | None) -> TableState:
        if not saved:
            return TableState()
        if not isinstance(saved, dict) or saved.get("marker") != table.marker or saved.get("kind") != table.kind:
            log.warning("%s %s: the stored watermark is for another marker column; reading the table from the start",
                        table.regulation.provider, table.name)
            return TableState()
        position = saved.get("position")
        if isinstance(position, bool) or not isinstance(position, int):
            log.warning("%s %s: the stored watermark is damaged; reading the table from the start",
                        table.regulation.provider, table.name)
            return TableState()
        return TableState(position=position, snapshot_done=bool(saved.get("snapshot_done")))

    # -- start-up checks -------------------------------------------------------------------
    def check(self, regulation: Regulation) -> None:
        """The source has every declared column and lets the account read it; else PollerConfigError."""
        if regulation.provider in self._checked:
            return
        reader = self.readers[regulation.provider]
        for table in self.tables[regulation.provider]:
            columns, allowed, indexed = reader.catalog(table)
            where = f"provider {regulation.provider}: table {table.name}"
            if columns is None:
                raise PollerConfigError(f"{where} does not exist at {regulation.source.host}:"
                                        f"{regulation.source.port}/{regulation.source.database} (or the account "
                                        f"{regulation.source.user} cannot see it); fix the name or grant USAGE on "
                                        "its schema")
            if not allowed:
                raise PollerConfigError(f"{where}: the account {regulation.source.user} may not read it; "
                                        f"GRANT SELECT ON {table.name} TO {regulation.source.user}")
            absent = [c.name for c in table.table.columns if c.name not in columns]
            if absent:
                raise PollerConfigError(f"{where}: declared column(s) {', '.join(absent)} not in the source table; "
                                        "fix the regulation or the source")
            if not indexed:
                log.warning("%s: no index starts with the marker column %s; every poll scans the table "
                            "(CREATE INDEX ON %s (%s, %s))", where, table.marker, table.name, table.marker,
                            ", ".join(table.key))
            state = self.states[table.topic]
            state.columns = tuple(columns)
            if regulation.source.reconcile_every and state.live is None:
                state.live = self._baseline(reader, table)
        self._checked.add(regulation.provider)

    @staticmethod
    def _baseline(reader: SourceReader, table: MarkerTable) -> dict[tuple, int]:
        # Rows deleted while no poller ran were never produced by this process: its key set
        # starts from the source as it is now (docs: what reconciliation cannot see).
        return {key: table.version(table.position(marker)) for key, marker, flagged in reader.keys(table)
                if not flagged}

    # -- one poll --------------------------------------------------------------------------
    def poll(self, regulation: Regulation) -> int:
        """Poll every table of one regulation once; the number of events produced."""
        regulation = self.tables[regulation.provider][0].regulation  # the one the tables were built from
        self.check(regulation)
        reader = self.readers[regulation.provider]
        produced = 0
        for table in self.tables[regulation.provider]:
            produced += self.poll_table(reader, table)
            state = self.states[table.topic]
            state.polls += 1
            every = regulation.source.reconcile_every
            if every and state.polls % every == 0:
                produced += self.reconcile(reader, table)
        self._heartbeat(regulation)
        return produced

    def poll_table(self, reader: SourceReader, table: MarkerTable) -> int:
        state = self.states[table.topic]
        now, local_now = reader.clock()
        now_ms = (now - _EPOCH) // timedelta(milliseconds=1)
        upper = table.upper_bound(now, local_now)
        lower = None if state.position is None else state.position - table.lookback
        batch = table.regulation.source.poll_batch_rows
        after, produced = None, 0
        while True:
            snapshot = not state.snapshot_done
            rows = reader.page(table, after=after, lower=lower, upper=upper, limit=batch)
            metrics.POLLER_ROWS.labels(table.name).inc(len(rows))
            sent = self._produce_page(table, state, rows, now_ms, snapshot)
            produced += len(sent)
            complete = len(rows) < batch
            position = state.position
            if rows:
                last = table.position(rows[-1][table.marker])
                position = last if position is None else max(position, last)
            self._remember(table, state, sent)
            self._advance(table, state, position, state.snapshot_done or complete)
            self._forget_old(table, state)  # per page: a first pass over a large table stays small
            if complete:
                break
            after = table.cursor(rows[-1])
        metrics.POLLER_LAST_SUCCESS.labels(table.name).set(self._clock())
        if table.kind == "timestamp" and state.position is not None:
            clock = table.position(now if table.zoned else local_now)
            metrics.POLLER_WATERMARK_LAG.labels(table.name).set(max(0, clock - state.position) / 1_000_000)
        return produced

    def _produce_page(self, table: MarkerTable, state: TableState, rows: list[dict[str, Any]], now_ms: int,
                      snapshot: bool) -> list[tuple[tuple, int, int, bool]]:
        """Produce the page's new changes and flush; (key, position, version, deleted) of each."""
        sent = []
        for row in rows:
            key, position = table.key_of(row), table.position(row[table.marker])
            if state.seen.get(key) == position:
                continue  # produced by an earlier poll; the lookback read it again
            deleted = table.is_deleted(row)
            op = "d" if deleted else "r" if snapshot else "u"
            version = table.version(position)
            self.output.produce(table.topic, *table.event(
                op, row, version=version, ts_ms=table.source_ts_ms(position, now_ms, snapshot), now_ms=now_ms,
                source_columns=state.columns))
            metrics.POLLER_EVENTS.labels(table.name, op).inc()
            sent.append((key, position, version, deleted))
        if sent:
            self.output.flush()
        return sent

    @staticmethod
    def _remember(table: MarkerTable, state: TableState, sent: list[tuple[tuple, int, int, bool]]) -> None:
        # Only after the flush: a row remembered but not delivered would never be produced.
        for key, position, version, deleted in sent:
            state.seen[key] = position
            if state.live is not None:
                if deleted:
                    state.live.pop(key, None)
                else:
                    state.live[key] = version

    def _advance(self, table: MarkerTable, state: TableState, position: int | None, snapshot_done: bool) -> None:
        """Store the watermark after the events below it were flushed, then keep it in memory."""
        if position == state.position and snapshot_done == state.snapshot_done:
            return
        if position is not None:
            value = {"marker": table.marker, "kind": table.kind, "position": position,
                     "snapshot_done": snapshot_done, "saved_ms": int(self._clock() * 1000)}
            self.output.produce(MARKER_STATE_TOPIC, state_key(table).encode(), json.dumps(value).encode())
            self.output.flush()
        state.position, state.snapshot_done = position, snapshot_done

    @staticmethod
    def _forget_old(table: MarkerTable, state: TableState) -> None:
        if state.position is None:
            return
        floor = state.position - table.lookback
        for key in [k for k, p in state.seen.items() if p < floor]:
            del state.seen[key]

    def reconcile(self, reader: SourceReader, table: MarkerTable) -> int:
        """A delete for every key produced and not deleted that the source no longer has."""
        state = self.states[table.topic]
        if state.live is None:
            return 0
        now, _ = reader.clock()
        now_ms = (now - _EPOCH) // timedelta(milliseconds=1)
        present = {key for key, _, _ in reader.keys(table)}
        gone = [key for key in state.live if key not in present]
        for key in gone:
            # One above the row's last version: the delete wins over it, a later re-insert wins over the delete.
            row = dict(zip(table.key, key))
            self.output.produce(table.topic, *table.event("d", row, version=state.live[key] + 1, ts_ms=now_ms,
                                                          now_ms=now_ms))
            metrics.POLLER_EVENTS.labels(table.name, "d").inc()
        if gone:
            self.output.flush()
            log.info("%s: %d row(s) deleted at the source found by reconciliation", table.name, len(gone))
        for key in gone:
            state.live.pop(key, None)
            state.seen.pop(key, None)
        return len(gone)

    def _heartbeat(self, regulation: Regulation) -> None:
        # The processor judges expired integrity references when any event arrives; Debezium's
        # heartbeats keep that going for CDC sources, these for polled ones.
        now_ms = int(self._clock() * 1000)
        key = json.dumps({"serverName": regulation.raw_topic_prefix}).encode()
        self.output.produce(heartbeat_topic(regulation.provider), key, json.dumps({"ts_ms": now_ms}).encode())
        self.output.flush()

    # -- the loop --------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Poll each regulation every `poll_seconds` until `stop`; errors back off and retry.

        PollerConfigError stops the poller: the regulation or the source must be fixed.
        """
        due = {r.provider: 0.0 for r in self.regulations}
        failures = {r.provider: 0 for r in self.regulations}
        while not stop.is_set():
            for regulation in self.regulations:
                if stop.is_set() or due[regulation.provider] > time.monotonic():
                    continue
                try:
                    self.poll(regulation)
                except PollerConfigError:
                    raise
                except Exception as exc:
                    failures[regulation.provider] += 1
                    delay = min(_MAX_BACKOFF_S, 2.0 ** (failures[regulation.provider] - 1))
                    self._failed(regulation, exc, delay)
                    due[regulation.provider] = time.monotonic() + delay
                    continue
                if failures[regulation.provider]:
                    log.info("provider %s: polling again after %d failed attempt(s)", regulation.provider,
                             failures[regulation.provider])
                failures[regulation.provider] = 0
                due[regulation.provider] = time.monotonic() + regulation.source.poll_seconds
            stop.wait(max(0.05, min(due.values(), default=1.0) - time.monotonic()))

    def _failed(self, regulation: Regulation, exc: Exception, delay: float) -> None:
        kind, what = _classify(exc)
        source = regulation.source
        for table in self.tables[regulation.provider]:
            metrics.POLLER_ERRORS.labels(table.name, kind).inc()
        log.warning("provider %s (%s:%s/%s): poll failed, %s; retrying in %.0f s", regulation.provider, source.host,
                    source.port, source.database, what, delay)
        if kind != "kafka":
            self.readers[regulation.provider].close()  # a fresh connection next time


def _classify(exc: Exception) -> tuple[str, str]:
    """(metric kind, log text) of a failure; psycopg and library messages may quote values, so
    only our own PollerError messages and exception class names are ever shown."""
    if isinstance(exc, PollerError):
        return exc.kind, str(exc)
    state = getattr(exc, "sqlstate", None) if isinstance(exc, psycopg.Error) else None
    if state and state.startswith("28"):  # invalid authorization: the password file or the role
        return "source_login", f"the source refused the login (SQLSTATE {state}); check the account and its password"
    if isinstance(exc, psycopg.OperationalError):
        return "source_unreachable", f"source unreachable ({type(exc).__name__})"
    if isinstance(exc, psycopg.Error):
        return "source_error", f"the source refused a query ({type(exc).__name__}, SQLSTATE {state or '?'})"
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f" at {frame.tb_frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.tb_lineno}" if frame else ""
    return "internal", f"internal error {type(exc).__name__}{where}"


def run(settings) -> None:
    """`qoima poller`: poll every marker regulation in the foreground until SIGTERM or Ctrl-C."""
    from model.regulation import load_all

    metrics.serve(settings.ports.poller_metrics, settings.host)
    regulations = [r for r in load_all(settings.regulations_dir, settings.regulation_env()) if r.polled]
    if not regulations:
        raise SystemExit("qoima poller: no regulation declares 'capture: marker'; nothing to poll")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    saved = _wait_for_states(settings.kafka_bootstrap, stop)
    if saved is None:
        return
    environ = settings.regulation_env()
    readers = {r.provider: PgReader(r, environ) for r in regulations}
    for regulation in regulations:
        tables = ", ".join(f"{t.name} (marker {t.marker})" for t in regulation.tables)
        log.info("provider %s: polling %s every %d s", regulation.provider, tables, regulation.source.poll_seconds)
    try:
        MarkerPoller(regulations, readers, KafkaOutput(settings.kafka_bootstrap), saved).run(stop)
    except PollerConfigError as exc:
        raise SystemExit(f"qoima poller: {exc}") from None
    finally:
        for reader in readers.values():
            reader.close()


def _wait_for_states(bootstrap: str, stop: threading.Event) -> dict[str, dict[str, Any]] | None:
    """Saved watermarks; Kafka may still be starting, so unreachable is retried, not fatal."""
    delay = 1.0
    while not stop.is_set():
        try:
            return load_states(bootstrap)
        except PollerConfigError as exc:
            raise SystemExit(f"qoima poller: {exc}") from None
        except PollerError as exc:
            log.warning("%s; retrying in %.0f s", exc, delay)
            stop.wait(delay)
            delay = min(_MAX_BACKOFF_S, delay * 2)
    return None
