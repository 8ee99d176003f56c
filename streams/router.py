"""From one raw Debezium event to the clean record or the quarantine record it becomes.

Pure logic, no Kafka: the processor (streams/batch.py) feeds it events and sends what it returns, so the
whole decision (decode, depersonalize, validate, route) is testable without a broker.
Historical rows (`qoima load-history`, R394 §21) enter through `route_row`, which turns them
into Debezium's form and takes the same path from the decoded change on.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Callable

from model.regulation import Regulation, Table
from schemas import envelope
from schemas.avro_codec import AvroCodec, zero_value
from model.names import QUARANTINE_TOPIC
from model.personal_data import subject_column
from streams.depersonalize import TablePlan
from streams.keys import KeyRing, KeySchedule, pseudonym
from connectors.debezium_encode import encoder
from connectors.pg_text import text_parser
from model.types import ColumnType, ValueRefused
from streams.cross_row.claims import Claim, Claims
from streams.quality import RuleSet, Violation
from streams.unchanged import UnchangedColumns
from streams.versions import raw_event_version


@dataclass(slots=True)
class Output:
    topic: str
    key: bytes | None
    value: bytes
    table: str
    outcome: str                # clean | held | quarantined | truncated
    op: str = ""
    reason_kind: str = ""
    defects: tuple[str, ...] = field(default_factory=tuple)
    source_ts_ms: int | None = None
    reason: str = ""            # a quarantine's reason: column names and problems, never values
    violations: tuple[Violation, ...] = ()   # quality rules broken (all actions)
    provider: str = ""
    claims: list[Claim] | tuple = ()         # a loaded row's cross-row claims (streams/cross_row)
    unchanged: frozenset[str] = frozenset()  # source columns Debezium sent as unchanged (streams/unchanged.py)
    # Who the row is about, for the PD236 access log: the pseudonym in the table's subject
    # column (model/personal_data.py), else the row's key; None when a delete does not say.
    subject: bytes | None = None


def _json_default(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


DRIFT_ADDED, DRIFT_ABSENT = "schema_drift_added", "schema_drift_absent"
# The processor's depersonalization check: its quarantine kind, rule and incident (critical).
LEAK_CHECK = "depersonalization_check"
# A quarantined event opens an incident of the DM385 type its reason belongs to; a rule's own
# violation (reject) or a schema drift replaces this one with its own rule.
_QUARANTINE_TYPES = {"missing_value": "completeness", "bad_value": "accuracy_contradiction"}


def quarantine_violation(kind: str, reason: str) -> Violation:
    return Violation(f"quarantine_{kind}", "quarantine", _QUARANTINE_TYPES.get(kind, "other"), "reject", (),
                     f"quarantined ({kind}): {reason}")


def schema_drift(table: Table, row: dict[str, Any]) -> tuple[Violation, ...]:
    """What a full row image says about the source's columns against the regulation's.

    Debezium's `after` holds every column of the table, null or not, so a column the
    regulation declares and the image lacks was dropped or renamed at the source, and one it
    has that the regulation does not declare was added there. Either opens an incident of
    type `other` (DM385 §49): only an operator can say what a new column is (its action is a
    privacy decision) or what a vanished one became. docs/schema-evolution.md has the cases.
    """
    declared = [c.name for c in table.columns]
    added = sorted(set(row) - set(declared))
    absent = [name for name in declared if name not in row]
    drift = []
    if added:
        drift.append(Violation(DRIFT_ADDED, "schema", "other", "flag", tuple(added),
                               f"the source sends column(s) the regulation does not declare: {', '.join(added)}; "
                               "they are not loaded until the regulation declares each with its action"))
    if absent:
        drift.append(Violation(DRIFT_ABSENT, "schema", "other", "flag", tuple(absent),
                               f"declared column(s) the source no longer sends: {', '.join(absent)}; "
                               "dropped or renamed at the source? update the regulation"))
    return tuple(drift)


def _missing(table: Table, row: dict[str, Any]) -> list[str]:
    return [c.name for c in table.columns if not c.nullable and row.get(c.name) is None]


@dataclass(frozen=True, slots=True)
class _TableFacts:
    """What `_decide` needs of a table for every row, computed once."""
    declared: frozenset[str]                 # its declared source columns
    key_outputs: tuple[str, ...]             # the primary key's output columns, in key order
    outputs: dict[str, str | None]           # source column -> output column
    mandatory: tuple[str, ...]               # the columns that may not be null
    subject: str | None                      # the output column naming the row's person, if any

    @classmethod
    def of(cls, table: Table) -> "_TableFacts":
        outputs = {c.name: c.output_name for c in table.columns}
        return cls(frozenset(outputs), tuple(outputs[k] for k in table.primary_key), outputs,
                   tuple(c.name for c in table.columns if not c.nullable), subject_column(table))

    def subject_of(self, record: dict[str, Any], key: bytes) -> bytes | None:
        if self.subject is None:
            return key
        value = record.get(self.subject)
        return value.encode() if isinstance(value, str) else None


class Router:
    def __init__(self, regulations: list[Regulation], keys: KeyRing | KeySchedule, codec: AvroCodec,
                 claims: Claims | None = None) -> None:
        """`claims`: step 1 of the cross-row rules (streams/cross_row), which also judges
        timeliness. Without it (replays, historical loads) those rules are off."""
        self._codec = codec
        self._keys = keys if isinstance(keys, KeySchedule) else KeySchedule.single(keys)
        self.claims = claims
        # Raw topic -> the tables Debezium writes to it: one, unless their source names differ
        # only in characters a topic cannot hold (model/names.py raw_topic); then the event's
        # own source schema and table say which.
        self._tables: dict[str, list[tuple[Regulation, Table]]] = {}
        # Per table, by (provider, schema.table):
        self._plans: dict[tuple[str, str, str], TablePlan] = {}   # (+ key id) -> plan, built on first use
        self._types: dict[tuple[str, str], dict[str, ColumnType]] = {}
        self._rules: dict[tuple[str, str], RuleSet] = {}
        self._unchanged: dict[tuple[str, str], UnchangedColumns] = {}
        self._renamed: dict[tuple[str, str], dict[str, str]] = {}   # source column -> warehouse column
        self._facts: dict[tuple[str, str], _TableFacts] = {}
        for regulation in regulations:
            for table in regulation.tables:
                key = (regulation.provider, table.name)
                self._tables.setdefault(regulation.raw_topic(table), []).append((regulation, table))
                self._rules[key] = RuleSet.for_table(table)
                self._unchanged[key] = UnchangedColumns(table)
                self._renamed[key] = table.renamed
                self._facts[key] = _TableFacts.of(table)
                # Dropped columns are never decoded, here as in `route`: only their presence counts.
                self._types[key] = {c.name: c.source_type for c in table.columns if c.output_name is not None}

    def _plan(self, regulation: Regulation, table: Table, ts_ms: int) -> TablePlan:
        ring = self._keys.for_time(ts_ms)
        plan = self._plans.get((regulation.provider, table.name, ring.key_id))
        if plan is None:
            plan = self._plans[(regulation.provider, table.name, ring.key_id)] = TablePlan(table, ring)
        return plan

    @property
    def raw_topics(self) -> list[str]:
        return sorted(self._tables)

    @property
    def tables(self) -> list[str]:
        """The `schema.table` names of every regulated table (metric labels)."""
        return sorted({table.name for entries in self._tables.values() for _, table in entries})

    def topic_label(self, topic: str) -> str:
        """The regulated table(s) a raw topic carries, for a metric label."""
        entries = self._tables.get(topic)
        return "|".join(sorted(table.name for _, table in entries)) if entries else topic

    def _by_warehouse_name(self, regulation: Regulation, table: Table, row: dict[str, Any]) -> dict[str, Any]:
        """`row` with each column under its warehouse name (a source name that needs quoting is
        mapped by the regulation's source_name)."""
        renamed = self._renamed[(regulation.provider, table.name)]
        return {renamed.get(name, name): value for name, value in row.items()} if renamed else row

    def route(self, topic: str, partition: int, offset: int, value: bytes | None, shard: int = 0) -> Output | None:
        """The record to send for one raw event; None for a tombstone (nothing to load).
        `shard`: the work partition the event came through (streams/cross_row/claims.py)."""
        entry = self._tables.get(topic)
        if entry is None:
            return self._quarantine(topic, partition, offset, value, None, None, "unknown_table",
                                    "no regulation declares this raw topic")
        regulation, table = entry[0]
        try:
            change = envelope.decode(value)
        except envelope.EnvelopeError as exc:
            return self._quarantine(topic, partition, offset, value, regulation, table, exc.kind, str(exc))
        if change is None:
            return None
        if len(entry) > 1:  # several tables on this topic: the event's own source says which
            found = next(((r, t) for r, t in entry if (t.schema_name, t.table_name) == (change.schema, change.table)),
                         None)
            if found is None:
                return self._quarantine(topic, partition, offset, value, None, None, "unknown_table",
                                        "no regulation declares the source table this event names")
            regulation, table = found
        if self._renamed[(regulation.provider, table.name)]:  # from here on a column goes by its warehouse name
            change = replace(change, row=self._by_warehouse_name(regulation, table, change.row))
        if change.op == "t":
            return self._truncate(regulation, table, change, raw_event_version(offset), shard)
        out = self._decide(topic, partition, offset, lambda: value, regulation, table,
                           self._plan(regulation, table, change.source_ts_ms), change, raw_event_version(offset),
                           check_drift=True)
        if self.claims is not None and out.outcome != "quarantined":
            # Only a loaded row claims anything: a quarantined one never brought its values in.
            out.claims = self.claims.of(table, change, shard, out.key.decode() if out.key else None,
                                        int(time.time() * 1000), unchanged=out.unchanged)
        return out

    def route_row(self, regulation: Regulation, table: Table, row: dict[str, Any], *, version: int,
                  source_ts_ms: int, origin: str, offset: int = 0) -> Output:
        """The record for one historical row: the same checks and depersonalization as `route`.

        `row` maps source column names to Python values as streams/decode gives them; a `str`
        is a value's text form and is read with its column's connectors/pg_text parser first (for
        a text column that only checks its declared length). Each value is then put into the JSON
        form Debezium would have sent (connectors/debezium_encode), and the row goes down
        `route`'s own path as a snapshot read (`_op` 'r') with `_version` = `version`.
        Undeclared columns are noted in `_defects` by name. Quarantine records name `origin` (e.g. 'history:persons.csv') as
        their source topic, partition 0 and `offset` (the row's number in the file).
        """
        types = self._types.get((regulation.provider, table.name))
        if types is None:
            raise ValueError(f"this router was not built with the regulation of {regulation.provider} {table.name}")
        plan = self._plan(regulation, table, source_ts_ms)
        row = self._by_warehouse_name(regulation, table, row)
        debezium: dict[str, Any] = {}
        refused: list[tuple[str, str]] = []
        for name, value in row.items():
            column_type = types.get(name)
            if column_type is None or value is None:
                debezium[name] = value  # undeclared or dropped: never decoded, never forwarded
                continue
            declared, dbms = column_type.declared, column_type.dbms
            try:
                encode = encoder(declared, dbms)
                debezium[name] = encode(text_parser(declared, dbms)(value) if isinstance(value, str) else value)
            except ValueRefused as exc:  # its message never quotes the value
                refused.append((name, f"column {name} ({declared}): {exc}"))

        def payload() -> bytes:  # only a quarantine record needs it, for its size and keyed digest
            return json.dumps(row, default=_json_default, ensure_ascii=False, sort_keys=True).encode()

        if refused:
            failed = {name for name, _ in refused}
            missing = [name for name in _missing(table, debezium) if name not in failed]
            salvaged = plan.salvage(debezium)
            for name in failed:
                salvaged.pop(table.column(name).output_name, None)
            if missing:
                return self._quarantine(origin, 0, offset, payload(), regulation, table, "missing_value",
                                        f"mandatory column(s) empty: {', '.join(missing)}", salvaged)
            return self._quarantine(origin, 0, offset, payload(), regulation, table, "bad_value",
                                    "; ".join(reason for _, reason in refused), salvaged)
        change = envelope.Change(op="r", row=debezium, source_ts_ms=source_ts_ms,
                                 schema=table.schema_name, table=table.table_name)
        return self._decide(origin, 0, offset, payload, regulation, table, plan, change, version)

    def quarantine_row(self, regulation: Regulation, table: Table, *, kind: str, reason: str, origin: str,
                       offset: int = 0) -> Output:
        """A quarantine record for a historical row that cannot even be read as columns
        (a CSV line with the wrong number of fields); it carries no payload at all."""
        return self._quarantine(origin, 0, offset, None, regulation, table, kind, reason)

    def _decide(self, topic: str, partition: int, offset: int, payload: Callable[[], bytes | None],
                regulation: Regulation, table: Table, plan: TablePlan, change: envelope.Change,
                version: int, check_drift: bool = False) -> Output:
        """From a decoded change on: mandatory columns, depersonalization, Avro. `payload` gives
        the raw bytes, needed only for a quarantine record's size and digest. `check_drift`:
        the row is a full image from the source (CDC), so a declared column it lacks was
        dropped or renamed there."""
        row = change.row
        facts = self._facts[(regulation.provider, table.name)]
        # A row with exactly the declared columns has drifted in neither direction.
        drift = (schema_drift(table, row) if check_drift and not change.is_delete and row.keys() != facts.declared
                 else ())
        # Columns whose value the update left as it was and Debezium did not send: never read
        # below, loaded by the sink from the row's latest version (streams/unchanged.py).
        unchanged = self._unchanged[(regulation.provider, table.name)].of(change.op, row) if check_drift else frozenset()
        absent_mandatory = [n for n in (drift[0].columns if drift and drift[0].rule == DRIFT_ABSENT else ())
                            if not table.column(n).nullable]
        if absent_mandatory:
            # Quarantined, not dropped: once the regulation says what the column became,
            # `qoima quarantine replay` loads these changes.
            out = self._quarantine(topic, partition, offset, payload(), regulation, table, "schema_drift",
                                   f"mandatory column(s) not sent by the source: {', '.join(absent_mandatory)}; "
                                   "dropped or renamed there? update the regulation, then replay the quarantine",
                                   plan.salvage(row))
            return replace(out, violations=drift)
        if not change.is_delete:
            missing = [name for name in facts.mandatory if row.get(name) is None]
            if missing:
                return self._quarantine(topic, partition, offset, payload(), regulation, table, "missing_value",
                                        f"mandatory column(s) empty: {', '.join(missing)}", plan.salvage(row))
        # Age bands and rules are relative to the change's own commit date, so a replay gives
        # the same band and the same verdict.
        commit_date = datetime.fromtimestamp(change.source_ts_ms / 1000, timezone.utc).date()
        rules = self._rules.get((regulation.provider, table.name))
        violations: list[Violation] = []
        if rules and not change.is_delete:
            try:
                violations = rules.evaluate(rules.decode(row, skip=unchanged), commit_date, skip=unchanged)
            except ValueError as exc:
                return self._quarantine(topic, partition, offset, payload(), regulation, table, "bad_value",
                                        str(exc), plan.salvage(row))
        if self.claims is not None:
            violations += self.claims.late(table, change, int(time.time() * 1000))
        if violations:
            rejected = RuleSet.rejects(violations)
            if rejected:
                out = self._quarantine(topic, partition, offset, payload(), regulation, table, "rule_violation",
                                       "; ".join(v.problem for v in rejected),
                                       plan.salvage(row))
                return replace(out, violations=tuple(violations))
        try:
            record, defects = (plan.key_only(row), []) if change.is_delete else plan.apply(
                {name: value for name, value in row.items() if name not in unchanged} if unchanged else row,
                today=commit_date)
        except ValueError as exc:
            return self._quarantine(topic, partition, offset, payload(), regulation, table, "bad_value", str(exc),
                                    plan.salvage(row))
        if change.is_delete:
            absent = [k for k in table.primary_key if record.get(table.column(k).output_name) is None]
            if absent:
                return self._quarantine(topic, partition, offset, payload(), regulation, table, "missing_value",
                                        f"delete without its key column(s) {', '.join(absent)}: check the "
                                        "table's REPLICA IDENTITY against the regulation's primary_key")
        notes = [f"{d.column}: {d.problem}" for d in defects]
        notes += [f"{name}: not declared in the regulation, not loaded" for name in sorted(row.keys() - facts.declared)]
        notes += [f"{name}: not sent by the source, loaded empty" for d in drift if d.rule == DRIFT_ABSENT
                  for name in d.columns]
        notes += [v.problem for v in violations]  # each names its columns and its rule
        held_by = [regulation.incident_key(table, v.rule) for v in RuleSet.holds(violations)]
        record.update(
            _op=change.op,
            _version=version,
            _is_deleted=1 if change.is_delete else 0,
            # Milliseconds as Avro's timestamp-millis holds them: no datetime made here to be
            # taken apart again by the encoder.
            _source_ts_ms=change.source_ts_ms,
            _processed_ts_ms=int(time.time() * 1000),
            _key_id=plan.key_id,
            _defects=notes,
            _held_by=held_by,
            _unchanged=sorted(facts.outputs[name] for name in unchanged),
        )
        leaks = plan.clear_identifiers(record)
        if leaks:
            # The depersonalization check, before anything reaches a clean topic: a value the
            # regulation keeps (or a redaction or generalization missed) holds an identifier.
            found = "; ".join(f"{name}: {', '.join(kinds)}" for name, kinds in sorted(leaks.items()))
            out = self._quarantine(topic, partition, offset, payload(), regulation, table, LEAK_CHECK,
                                   f"clear identifiers in output column(s) ({found}); fix the column's action "
                                   "in the regulation, then replay the quarantine", plan.salvage(row))
            return replace(out, violations=(Violation(LEAK_CHECK, "privacy", "other", "reject", tuple(sorted(leaks)),
                                                      f"clear identifiers in {found}"), *violations))
        # A held record waits in qoima_meta until its incidents are resolved (DM385 §49).
        clean_topic = regulation.held_topic(table) if held_by else regulation.clean_topic(table)
        key = envelope.key_json([record[name] for name in facts.key_outputs], _json_default).encode()
        try:
            encoded = self._codec.encode(clean_topic, record)
        except (ValueError, TypeError, OverflowError) as exc:
            return self._quarantine(topic, partition, offset, payload(), regulation, table, "bad_value",
                                    f"a value does not fit the clean schema ({type(exc).__name__})",
                                    plan.salvage(row))
        return Output(clean_topic, key, encoded, table.name, "held" if held_by else "clean",
                      op=change.op, defects=tuple(notes), source_ts_ms=change.source_ts_ms,
                      violations=(*violations, *drift), provider=regulation.provider, unchanged=unchanged,
                      subject=facts.subject_of(record, key))

    def _truncate(self, regulation: Regulation, table: Table, change: envelope.Change, version: int,
                  shard: int) -> Output:
        """A TRUNCATE at the source becomes a marker on the table's clean topic, in its place
        among the table's records. The sink does not load it as a row: it deletes, as of
        `version`, every row of the table loaded before it (sinks/truncate.py). The key fields
        hold zero values only because the schema does not let them be null. The stateful
        rules forget the table's rows of this shard (every shard sees the TRUNCATE:
        streams/batch.py), so rows inserted again are not taken for duplicates."""
        if self.claims is not None:
            self.claims.forget(table.name, shard)
        record: dict[str, Any] = {}
        for column in table.columns:
            if column.output_name is not None:
                record[column.output_name] = (zero_value(column.output_types[0])
                                              if column.name in table.primary_key else None)
        record.update(_op="t", _version=version, _is_deleted=1,
                      _source_ts_ms=datetime.fromtimestamp(change.source_ts_ms / 1000, timezone.utc),
                      _processed_ts_ms=datetime.now(timezone.utc), _key_id="", _defects=[], _held_by=[],
                      _unchanged=[])
        clean_topic = regulation.clean_topic(table)
        return Output(clean_topic, b"truncate", self._codec.encode(clean_topic, record), table.name, "truncated",
                      op="t", source_ts_ms=change.source_ts_ms, provider=regulation.provider)

    def internal_error(self, topic: str, partition: int, offset: int, value: bytes | None, error: str) -> Output:
        entry = self._tables.get(topic)
        # Several tables on one topic: the event is not decoded again to say which.
        regulation, table = entry[0] if entry and len(entry) == 1 else (None, None)
        return self._quarantine(topic, partition, offset, value, regulation, table, "internal_error",
                                f"processor error {error}; report it with the source offset")

    def _quarantine(self, topic: str, partition: int, offset: int, value: bytes | None,
                    regulation: Regulation | None, table: Table | None, kind: str, reason: str,
                    salvaged: dict[str, Any] | None = None) -> Output:
        raw = value or b""
        ring = self._keys.for_time(int(time.time() * 1000))
        record = {
            "provider": regulation.provider if regulation else topic.split(".")[2] if topic.count(".") >= 2 else "",
            "table": table.name if table else None,
            "source_topic": topic,
            "source_partition": partition,
            "source_offset": offset,
            "reason": reason,
            "error_kind": kind,
            "payload_depersonalized": json.dumps(salvaged, default=_json_default, ensure_ascii=False) if salvaged else None,
            "payload_bytes": len(raw),
            "payload_digest": pseudonym(ring.subkey("quarantine-digest"), raw),
            "quarantined_ts_ms": datetime.fromtimestamp(time.time(), timezone.utc),
            "key_id": ring.key_id,
        }
        return Output(QUARANTINE_TOPIC, f"{topic}:{partition}:{offset}".encode(),
                      self._codec.encode(QUARANTINE_TOPIC, record), table.name if table else "",
                      "quarantined", reason_kind=kind, reason=reason,
                      provider=regulation.provider if regulation else "",
                      violations=(quarantine_violation(kind, reason),))
