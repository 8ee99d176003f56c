"""One poll of a marker regulation: check the source once, read each table's new pages, produce
their events, then the watermark they allow; reconcile hard deletes every `reconcile_every` polls
and send a heartbeat. The loop that repeats it is connectors/marker/scheduler.py."""
from __future__ import annotations

import json
import logging
import time
from typing import Any, Callable

from connectors.marker.envelope import EnvelopeEncoder
from connectors.source_reader import relation
from connectors.marker.errors import PollerConfigError
from connectors.marker.producer import Output
from connectors.marker.source import MarkerSource
from connectors.marker.state import TableState, restored, state_key, watermark_record
from connectors.marker.table import MarkerTable, epoch_ms
from model.names import MARKER_STATE_TOPIC, heartbeat_topic
from model.regulation import Regulation
from monitoring import metrics

log = logging.getLogger("qoima.poller")


class MarkerPoller:
    """Polls every table of the marker regulations and produces their raw events.

    `readers` maps a provider to its MarkerSource, `output` produces and flushes, `saved` is
    what `load_states` returned. One thread: a slow source delays the others, never corrupts them.
    """

    def __init__(self, regulations: list[Regulation], readers: dict[str, MarkerSource], output: Output,
                 saved: dict[str, dict[str, Any]] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.regulations = [r for r in regulations if r.polled]
        self.readers, self.output, self._clock = readers, output, clock
        self.tables = {r.provider: [MarkerTable(r, t) for t in r.tables] for r in self.regulations}
        self.envelopes: dict[str, EnvelopeEncoder] = {}
        self.states: dict[str, TableState] = {}
        self._checked: set[str] = set()
        for tables in self.tables.values():
            for table in tables:
                self.envelopes[table.topic] = EnvelopeEncoder(table)
                self.states[table.topic] = restored(table, (saved or {}).get(state_key(table)))

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
                                        f"GRANT SELECT ON {relation('postgresql', table.table.schema_name, table.table.table_name)} "
                                        f"TO {regulation.source.user}")
            absent = [c.source_column for c in table.table.columns if c.source_column not in columns]
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
    def _baseline(reader: MarkerSource, table: MarkerTable) -> dict[tuple, int]:
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

    def poll_table(self, reader: MarkerSource, table: MarkerTable) -> int:
        state = self.states[table.topic]
        now, local_now = reader.clock()
        now_ms = epoch_ms(now)
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
            self._remember(state, sent)
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
        envelope = self.envelopes[table.topic]
        sent = []
        for row in rows:
            key, position = table.key_of(row), table.position(row[table.marker])
            if state.seen.get(key) == position:
                continue  # produced by an earlier poll; the lookback read it again
            deleted = table.is_deleted(row)
            op = "d" if deleted else "r" if snapshot else "u"
            version = table.version(position)
            self.output.produce(table.topic, *envelope.event(
                op, row, version=version, ts_ms=envelope.source_ts_ms(position, now_ms, snapshot), now_ms=now_ms,
                source_columns=state.columns))
            metrics.POLLER_EVENTS.labels(table.name, op).inc()
            sent.append((key, position, version, deleted))
        if sent:
            self.output.flush()
        return sent

    @staticmethod
    def _remember(state: TableState, sent: list[tuple[tuple, int, int, bool]]) -> None:
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
            self.output.produce(MARKER_STATE_TOPIC, *watermark_record(table, position, snapshot_done,
                                                                      int(self._clock() * 1000)))
            self.output.flush()
        state.position, state.snapshot_done = position, snapshot_done

    @staticmethod
    def _forget_old(table: MarkerTable, state: TableState) -> None:
        if state.position is None:
            return
        floor = state.position - table.lookback
        for key in [k for k, p in state.seen.items() if p < floor]:
            del state.seen[key]

    def reconcile(self, reader: MarkerSource, table: MarkerTable) -> int:
        """A delete for every key produced and not deleted that the source no longer has."""
        state = self.states[table.topic]
        if state.live is None:
            return 0
        now, _ = reader.clock()
        now_ms = epoch_ms(now)
        present = {key for key, _, _ in reader.keys(table)}
        gone = [key for key in state.live if key not in present]
        envelope = self.envelopes[table.topic]
        for key in gone:
            # One above the row's last version: the delete wins over it, a later re-insert wins over the delete.
            row = dict(zip(table.key, key))
            self.output.produce(table.topic, *envelope.event("d", row, version=state.live[key] + 1, ts_ms=now_ms,
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
