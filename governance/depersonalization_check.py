"""`qoima scan`: the depersonalization check on demand (R394 §20.5), over the warehouse and
the clean topics, with the source's own names and phones as known values.

The known values are read from the source through the regulation's capture account, held in
memory only, and compared after normalization; a report says which table, column or topic
holds which kind of identifier, and how often, never the value. Every finding is recorded as
a critical incident.
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from model.regulation import IdentifierKind, Regulation
from connectors.source_reader import SourceReader
from model.settings import Settings
from model.names import WAREHOUSE_DB
from schemas.avro_codec import codec_for
from model.names import ACCESS_TOPIC, DEAD_LETTER_TOPIC, PROCESSOR_STATE_TOPIC, QUARANTINE_TOPIC, RULES_TOPIC
from schemas.schema_history import SchemaHistory
from model.leak_scan import KnownValues, scan_text
from schemas.incidents import Detection, IncidentPublisher
from schemas.topic_reader import read_topic, throwaway_consumer
from sinks.clickhouse_users import writer_client

_KNOWN_KINDS = {IdentifierKind.name, IdentifierKind.phone}

log = logging.getLogger("qoima.scan")


@dataclass
class ScanReport:
    rows: int = 0
    seconds: float = 0.0
    findings: Counter = field(default_factory=Counter)   # (where, kind) -> count

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def render(self, what: str) -> str:
        lines = [f"{what}: {self.rows} rows/messages scanned in {self.seconds:.1f}s "
                 f"({self.rows_per_second:,.0f}/s), {sum(self.findings.values())} finding(s)"]
        for (where, kind), count in sorted(self.findings.items()):
            lines.append(f"  LEAK {kind:<6} {count:>8}  {where}")
        return "\n".join(lines)


def known_values(regulations: list[Regulation], environ: dict[str, str], limit: int = 2_000_000) -> KnownValues:
    """Names and phones from the sources' columns the regulation marks as such."""
    known = KnownValues()
    for regulation in regulations:
        # A full read of large columns: a generous bound, not the coverage one.
        with SourceReader(regulation, environ, timeout_ms=600_000, application="qoima-scan") as reader:
            for table in regulation.tables:
                for column in table.columns:
                    if column.kind not in _KNOWN_KINDS:
                        continue
                    add = known.add_name if column.kind is IdentifierKind.name else known.add_phone
                    for value in reader.distinct_values(table, column.source_column, limit):
                        add(value)
    return known


def scan_warehouse(client, regulations: list[Regulation], known: KnownValues, block_rows: int = 50_000) -> ScanReport:
    report = ScanReport()
    started = time.perf_counter()
    for regulation in regulations:
        for table, name in ((t, n) for t in regulation.tables
                            # The corrections history keeps every version: a leak fixed by an
                            # update is gone from the table but not from its history.
                            for n in (regulation.warehouse_table(t), f"{regulation.warehouse_table(t)}__history")):
            personal_bins = {c.output_name for c in table.columns if c.kind is IdentifierKind.bin}
            columns = [c for (c,) in client.query(
                "SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String} "
                "AND type LIKE '%String%'", parameters={"db": WAREHOUSE_DB, "t": name}).result_rows]
            if not columns:
                continue
            select = ", ".join(f"toString(`{c}`)" for c in columns)
            with client.query_rows_stream(f"SELECT {select} FROM {WAREHOUSE_DB}.`{name}`",
                                          settings={"max_block_size": block_rows}) as stream:
                for row in stream:
                    report.rows += 1
                    for column, value in zip(columns, row):
                        if value:
                            for finding in scan_text(value, f"{WAREHOUSE_DB}.{name}.{column}", known,
                                                     personal=column in personal_bins):
                                report.findings[(finding.where, finding.kind)] += 1
    report.seconds = time.perf_counter() - started
    return report


def _strings(record: dict) -> list[tuple[str, str]]:
    """(field, value) for every string in a decoded record, arrays of strings included."""
    found = []
    for name, value in record.items():
        if isinstance(value, str):
            found.append((name, value))
        elif isinstance(value, list):
            found.extend((name, item) for item in value if isinstance(item, str))
    return found


def scan_topics(settings: Settings, regulations: list[Regulation], known: KnownValues) -> ScanReport:
    """Every message now in the clean, held, quarantine, dead-letter and PD236 access topics and
    the processor's rules topic and state changelog, read with a throw-away group.

    Avro messages are decoded and their string fields scanned one by one: Avro's binary
    numbers, read as text, would otherwise spell out short words by chance. A message that does
    not decode, and the changelog's JSON, are scanned as text, so nothing escapes the check.
    """
    report = ScanReport()
    started = time.perf_counter()
    codec = codec_for(regulations, SchemaHistory(settings.kafka_bootstrap).lookup)  # older messages too
    topics = [name for r in regulations for t in r.tables for name in (r.clean_topic(t), r.held_topic(t))]
    topics += [QUARANTINE_TOPIC, DEAD_LETTER_TOPIC, ACCESS_TOPIC, RULES_TOPIC, PROCESSOR_STATE_TOPIC]
    consumer = throwaway_consumer(settings.kafka_bootstrap, "scan")
    try:
        for topic in topics:
            for partition, message in read_topic(consumer, topic):
                report.rows += 1
                text = (message.value() or b"").decode("utf-8", "replace")
                try:
                    if topic in (RULES_TOPIC, PROCESSOR_STATE_TOPIC):
                        fields = [("(value)", text)]   # JSON of digests and clean keys, not Avro
                    else:
                        _, record = codec.decode(message.value() or b"")
                        fields = _strings(record)
                except ValueError:
                    fields = [("(undecodable)", text)]
                fields.append(("(key)", (message.key() or b"").decode("utf-8", "replace")))
                for name, value in fields:
                    for finding in scan_text(value, f"{topic}[{partition}].{name}", known):
                        report.findings[(finding.where, finding.kind)] += 1
    finally:
        consumer.close()
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class CheckResult:
    reports: list[tuple[str, ScanReport]]   # ("warehouse" or "topics", its report), in scan order

    @property
    def findings(self) -> int:
        return sum(sum(report.findings.values()) for _, report in self.reports)


def leak_detection(where: str, kind: str, count: int) -> Detection:
    """A finding as a critical incident: where, which kind and how often, never the value."""
    return Detection("qoima", where, "depersonalization_check", "other", "critical", count,
                     f"`qoima scan` found {count} clear {kind} value(s) in {where}", "scan")


def check(settings: Settings, regulations: list[Regulation], environ: dict[str, str], *,
          warehouse: bool = True, topics: bool = True,
          progress: Callable[[str], None] = log.info) -> CheckResult:
    """The whole check: known values from the sources, the scans, and a critical incident per
    finding. `progress` hears how many known values were read before the (long) scans start."""
    known = known_values(regulations, environ)
    progress(f"known values from the sources: {len(known.names)} name words, {len(known.phones)} phones")
    result = CheckResult([])
    if warehouse:
        result.reports.append(("warehouse", scan_warehouse(writer_client(settings), regulations, known)))
    if topics:
        result.reports.append(("topics", scan_topics(settings, regulations, known)))
    if result.findings:
        publisher = IncidentPublisher(settings.kafka_bootstrap)
        for _, report in result.reports:
            for (where, kind), count in report.findings.items():
                publisher.publish(leak_detection(where, kind, count))
    return result
