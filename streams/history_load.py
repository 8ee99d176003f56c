"""`qoima load-history`: a historical file into a regulated table, by the CDC events' own path.

Each row of the file (connectors/history.py) goes through `Router.route_row`: the mandatory
columns, depersonalization, Avro and the quarantine are those of a Debezium event, so a
history row and a CDC event of the same source row become the same clean record. Records are
produced to the table's clean topic or to `qoima.quarantine`, and the sink loads them like any
other. History rows carry `_version` 0: every CDC change's version is above 2^62, so the
warehouse's ReplacingMergeTree keeps a CDC version of a key over a history one, and a history
file loaded twice leaves one row per key (the same version: the last inserted wins). Their
`_source_ts` is the time of the load, which starts their retention period and keeps the freshness metrics
honest (a 2015 timestamp would read as ten years of lag).

Reading the file is an access to the personal data it holds (PD236, docs/pd236.md): its rows
are counted like the processor's (streams/access_log.py), under the path `history` and a scope
of their own per run, and the access events go to the access topic with the rows.

The summary holds counts, error kinds, reasons and defect notes: column names and problems,
never a value from the file.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from connectors.history import HistoryError, HistoryFile, open_history
from connectors.pg_text import text_parser
from model.names import ACCESS_TOPIC
from model.personal_data import AccessPath
from model.regulation import Regulation, Table, load_all
from model.settings import Settings
from schemas.avro_codec import codec_for
from schemas.kafka_clients import produce, producer_config
from streams.access_log import AccessLog
from streams.keys import load_schedule
from streams.router import QUARANTINE_TOPIC, Output, Router

log = logging.getLogger("qoima.history")

HISTORY_VERSION = 0
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_DELIVERY_TIMEOUT_MS = 120_000
_PROGRESS_EVERY = 256


@dataclass
class HistorySummary:
    file: str
    provider: str
    table: str
    format: str
    encoding: str | None = None
    delimiter: str | None = None
    rows_read: int = 0
    loaded: int = 0
    quarantined: Counter = field(default_factory=Counter)   # error_kind -> rows
    reasons: Counter = field(default_factory=Counter)       # (error_kind, reason) -> rows
    defects: Counter = field(default_factory=Counter)       # defect note of a clean row -> rows
    warnings: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def quarantined_rows(self) -> int:
        return sum(self.quarantined.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def count(self, out: Output) -> None:
        if out.outcome == "clean":
            self.loaded += 1
            self.defects.update(out.defects)
        else:
            self.quarantined[out.reason_kind] += 1
            self.reasons[(out.reason_kind, out.reason)] += 1

    def render(self) -> str:
        source = self.format.upper()
        if self.format == "csv":
            source += f", {self.encoding}, delimiter {'TAB' if self.delimiter == chr(9) else repr(self.delimiter)}"
        lines = [f"{self.file} ({source}) -> {self.provider} {self.table}",
                 f"  {'rows read':<28}{self.rows_read:>10}",
                 f"  {'loaded (clean)':<28}{self.loaded:>10}",
                 f"  {'quarantined':<28}{self.quarantined_rows:>10}"]
        for kind, rows in self.quarantined.most_common():
            lines.append(f"    {kind:<26}{rows:>10}")
            reasons = [(reason, n) for (k, reason), n in self.reasons.most_common() if k == kind]
            for reason, n in reasons[:5]:
                lines.append(f"      {n:>8}  {reason}")
            if len(reasons) > 5:
                lines.append(f"      {'':>8}  ... {len(reasons) - 5} more reason(s)")
        if self.defects:
            lines.append(f"  {'clean rows with defects':<28}{sum(self.defects.values()):>10} notes")
            for note, n in self.defects.most_common(10):
                lines.append(f"      {n:>8}  {note}")
        lines.append(f"  {'elapsed':<28}{self.elapsed_s:>9.1f}s  ({self.rows_per_second:,.0f} rows/s)")
        return "\n".join(lines)


def check_header(table: Table, history: HistoryFile) -> list[str]:
    """Refuse a header without the primary key; warn about undeclared and absent mandatory columns.

    A file without a header would offer its first row as column names; only names that look
    like identifiers are ever quoted, so such a row's values stay out of messages and logs.
    """
    name, columns = history.path.name, history.columns
    declared = {c.name for c in table.columns}
    missing_key = [k for k in table.primary_key if k not in columns]
    if missing_key:
        hint = "" if declared & set(columns) else " (none of its names is a declared column: the first line must be a header naming the columns)"
        raise HistoryError(f"{name}: the header lacks the primary key column(s) {', '.join(missing_key)} of "
                           f"{table.name}{hint}; add them, every row needs its key")
    warnings = []
    unknown = [c for c in columns if c not in declared]
    if unknown:
        named = [c for c in unknown if _IDENTIFIER.match(c)]
        others = len(unknown) - len(named)
        listed = ", ".join(named) + (f"{' and ' if named else ''}{others} unnamed or oddly named" if others else "")
        warnings.append(f"{name}: column(s) {listed} not declared in the regulation of {table.name}: ignored "
                        "(not loaded; each row notes them in _defects)")
    mandatory = [c.name for c in table.columns if not c.nullable and c.name not in columns]
    if mandatory:
        warnings.append(f"{name}: mandatory column(s) {', '.join(mandatory)} absent from the header: every row "
                        "will be quarantined (missing_value)")
    return warnings


def _regulation(settings: Settings, provider: str, table_name: str) -> tuple[Regulation, Table]:
    regulations = {r.provider: r for r in load_all(settings.regulations_dir, settings.regulation_env())}
    regulation = regulations.get(provider)
    if regulation is None:
        raise HistoryError(f"no regulation for provider {provider!r}; known: {', '.join(sorted(regulations))}")
    try:
        table = regulation.table(table_name)
    except KeyError as exc:
        raise HistoryError(exc.args[0]) from None
    for column in table.columns:
        try:
            text_parser(column.type, column.dbms)
        except NotImplementedError as exc:
            raise HistoryError(f"{table.name}.{column.name}: {exc}") from None
    return regulation, table


class _OncePerKind(logging.Filter):
    """librdkafka repeats a failed connection every few hundred milliseconds; say it once."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        kind = str(record.args[0]) if isinstance(record.args, tuple) and record.args else str(record.msg)
        if kind in self._seen:
            return False
        self._seen.add(kind)
        return True


def _producer(settings: Settings, topics: list[str]):
    from confluent_kafka import KafkaException, Producer

    kafka_log = logging.getLogger("qoima.history.kafka")
    for old in [f for f in kafka_log.filters if isinstance(f, _OncePerKind)]:
        kafka_log.removeFilter(old)
    kafka_log.addFilter(_OncePerKind())  # once per load
    producer = Producer(producer_config(settings.kafka_bootstrap, client_id="qoima-load-history", extra={
        "linger.ms": 20,              # batches of rows rather than one request per row
        "message.timeout.ms": _DELIVERY_TIMEOUT_MS,
    }), logger=kafka_log)
    try:
        existing = producer.list_topics(timeout=10).topics
    except KafkaException as exc:
        raise HistoryError(f"cannot reach Kafka at {settings.kafka_bootstrap} ({exc.args[0]}); "
                           "is the stack up (`qoima up`)?") from None
    absent = [t for t in topics if t not in existing]
    if absent:
        raise HistoryError(f"topic(s) {', '.join(absent)} do not exist; `qoima up` creates them")
    return producer


def load_history(settings: Settings, provider: str, table_name: str, path: Path | str, *,
                 progress: bool = True, producer: Any = None) -> HistorySummary:
    """Load one CSV or Parquet file into `provider`'s table `table_name` (schema.table).

    Raises HistoryError (or RegulationError, MasterKeyError) with a message for the operator.
    `producer` is for tests: anything with confluent_kafka.Producer's produce/poll/flush.
    """
    path = Path(path)
    regulation, table = _regulation(settings, provider, table_name)
    history = open_history(path)
    summary = HistorySummary(path.name, regulation.provider, table.name, history.format,
                             history.encoding, history.delimiter, warnings=check_header(table, history))
    for warning in summary.warnings:
        log.warning("%s", warning)
    keys = load_schedule(settings.key_id, dict(os.environ), settings.master_key_file)
    codec = codec_for([regulation])
    router = Router([regulation], keys, codec)
    if producer is None:
        producer = _producer(settings, [regulation.clean_topic(table), QUARANTINE_TOPIC, ACCESS_TOPIC])
    access = AccessLog([regulation], keys, {}, settings.pd236_interval_s)
    scope = f"history-{uuid.uuid4().hex[:12]}"

    failures: list[str] = []

    def delivered(error, message) -> None:
        if error is not None:
            failures.append(str(error))

    def report_access(everything: bool = False) -> int:
        events = list(access.closed(int(time.time() * 1000), everything))
        for event in events:
            produce(producer, ACCESS_TOPIC, codec.encode(ACCESS_TOPIC, event.record()), event.event_id.encode(),
                    delivered)
        return len(events)

    origin = f"history:{path.name}"
    source_ts_ms = int(time.time() * 1000)
    started = time.monotonic()
    sent = 0
    bar = tqdm(total=history.total, unit=history.unit, unit_scale=True,
               unit_divisor=1024 if history.unit == "B" else 1000, desc=path.name, file=sys.stderr,
               disable=not progress or not sys.stderr.isatty(), dynamic_ncols=True)
    with bar:
        try:
            for number, row, problem in history.records():
                summary.rows_read += 1
                if problem is not None:
                    out = router.quarantine_row(regulation, table, kind="undecodable", reason=problem,
                                                origin=origin, offset=number)
                else:
                    out = router.route_row(regulation, table, row, version=HISTORY_VERSION,
                                           source_ts_ms=source_ts_ms, origin=origin, offset=number)
                summary.count(out)
                produce(producer, out.topic, out.value, out.key, delivered)
                access.note(scope, regulation.provider, table.name, "r",
                            out.subject if out.outcome != "quarantined" else None, None, int(time.time() * 1000),
                            path=AccessPath.history.value)
                sent += 1
                if number % _PROGRESS_EVERY == 0:
                    sent += report_access()
                    producer.poll(0)
                    bar.update(history.position - bar.n)
                    bar.set_postfix(quarantined=summary.quarantined_rows, refresh=False)
        except BaseException:
            # A file that breaks part-way (or Ctrl-C): the rows read so far were an access all the same.
            try:
                report_access(everything=True)
                producer.flush(10)
            except Exception:  # noqa: BLE001 - the load's own error is the one to show
                log.error("the access events of the rows read before the failure were not sent")
            raise
        bar.update(history.position - bar.n)
        sent += report_access(everything=True)
        deadline = time.monotonic() + _DELIVERY_TIMEOUT_MS / 1000 + 60
        remaining = producer.flush(5)
        while remaining and time.monotonic() < deadline:
            remaining = producer.flush(5)
    summary.elapsed_s = time.monotonic() - started
    if remaining:
        raise HistoryError(f"{remaining} of {sent} message(s) still undelivered after the timeout; nothing is "
                           "duplicated by loading the file again (same keys, version 0)")
    if failures:
        raise HistoryError(f"{len(failures)} of {sent} message(s) were not delivered (first: {failures[0]}); "
                           "loading the file again is safe (same keys, version 0)")
    return summary
