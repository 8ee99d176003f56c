"""The incident journal's life cycle (DM385 §49): open -> acknowledged -> resolved -> closed.

An incident is every detection with one `incident_key` (`provider/table/rule`); it is `open`
from its first detection. People move it on with `qoima incidents ack|resolve|close|reopen`;
each move is one appended row of `qoima_meta.incident_transitions` (who, when, an optional
note), never an update, so the journal keeps its whole history.

The view `qoima_meta.incidents` derives the current status: the latest transition, else
`open`. One rule is applied there and only there, so the CLI, the notifier and anyone reading
the view agree: a detection newer than the latest transition of a `resolved` or `closed`
incident reopens it (status `open`, by `qoima`, since that detection). The problem was seen
again after it was declared fixed; the next `ack`/`resolve` is recorded against it as usual.

People's transitions go through `move`: a resolution also releases the records a 'hold' rule
kept back for the incident (sinks/release.py), so every way of resolving lifts the hold.

Writes go through Qoima's writer user; the `analyst` user cannot read or write `qoima_meta`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from model.names import INCIDENT_EVENTS_TABLE as EVENTS_TABLE
from model.names import INCIDENT_TRANSITIONS_TABLE as TRANSITIONS_TABLE
from model.names import INCIDENTS_VIEW as VIEW
from model.regulation import load_all
from model.settings import Settings
from sinks.release import release

OPEN, ACKNOWLEDGED, RESOLVED, CLOSED = "open", "acknowledged", "resolved", "closed"
STATUSES = (OPEN, ACKNOWLEDGED, RESOLVED, CLOSED)
# The transitions a person may record. Reopening also happens by itself (see the module doc).
ALLOWED: dict[str, tuple[str, ...]] = {
    OPEN: (ACKNOWLEDGED, RESOLVED),
    ACKNOWLEDGED: (RESOLVED,),
    RESOLVED: (CLOSED, OPEN),
    CLOSED: (),
}
# CLI verb -> the status it records.
ACTIONS = {"ack": ACKNOWLEDGED, "resolve": RESOLVED, "close": CLOSED, "reopen": OPEN}
VERBS = {status: verb for verb, status in ACTIONS.items()}
AUTO_ACTOR = "qoima"   # who reopened an incident that was detected again after its resolution

TRANSITION_COLUMNS = ["incident_key", "status", "actor", "note", "ts"]
INCIDENT_COLUMNS = ["incident_key", "provider", "table", "rule", "type", "severity", "count", "detections",
                    "first_seen", "last_seen", "last_detail", "status", "status_by", "status_ts", "status_note",
                    "opened_ts", "resolved_ts", "transitions"]


class TransitionError(ValueError):
    """A transition the life cycle does not allow, or for an incident the journal does not hold."""


def utc(value: datetime | None) -> datetime | None:
    """ClickHouse DateTime64(3, 'UTC') as an aware datetime (drivers differ on naive vs aware)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def now_ms() -> datetime:
    """Now, at the journal's millisecond precision, so what is stored equals what is returned."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value: datetime | None) -> str:
    """A timestamp as the journal shows it: UTC, milliseconds."""
    if value is None:
        return "-"
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def next_steps(status: str) -> str:
    steps = ALLOWED.get(status, ())
    if not steps:
        return "none (closed is final; a new detection reopens the incident)"
    return ", ".join(f"{VERBS[s]} (-> {s})" for s in steps)


def check_transition(key: str, current: str, target: str) -> None:
    """Refuse a transition the life cycle does not allow, naming where the incident stands."""
    if target not in STATUSES:
        raise TransitionError(f"unknown status {target!r}; one of: {', '.join(STATUSES)}")
    if target not in ALLOWED.get(current, ()):
        raise TransitionError(f"incident {key} is {current}: it cannot become {target}. "
                              f"Allowed next steps: {next_steps(current)}")


@dataclass(frozen=True)
class Incident:
    """One row of `qoima_meta.incidents`."""

    incident_key: str
    provider: str
    table: str | None
    rule: str
    type: str
    severity: str
    count: int
    detections: int
    first_seen: datetime
    last_seen: datetime
    last_detail: str
    status: str
    status_by: str            # who made the last transition ('' while never moved, 'qoima' when reopened)
    status_ts: datetime       # when the current status began
    status_note: str
    opened_ts: datetime | None    # start of the current open episode; None once resolved or closed
    resolved_ts: datetime | None  # the latest resolution, while resolved or closed
    transitions: int

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "Incident":
        values = dict(row)
        for name in ("first_seen", "last_seen", "status_ts", "opened_ts", "resolved_ts"):
            values[name] = utc(values.get(name))
        return cls(**{name: values.get(name) for name in INCIDENT_COLUMNS})

    @property
    def reopened(self) -> bool:
        return self.status == OPEN and self.status_by == AUTO_ACTOR

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        for name, value in out.items():
            if isinstance(value, datetime):
                out[name] = iso(value)
        return out


@dataclass(frozen=True)
class Transition:
    incident_key: str
    status: str
    actor: str
    note: str
    ts: datetime


@dataclass(frozen=True)
class DetectionRow:
    detected_ts: datetime
    severity: str
    count: int
    origin: str
    detail: str
    samples: tuple[str, ...] = ()   # depersonalized keys of affected records


def _rows(result) -> list[dict[str, Any]]:
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


class IncidentJournal:
    """Reads the journal and records transitions through a clickhouse-connect client
    (the writer's: sinks.clickhouse_users.writer_client)."""

    def __init__(self, client) -> None:
        self.client = client

    def list(self, status: str | None = None, table: str | None = None) -> list[Incident]:
        where, parameters = [], {}
        if status:
            if status not in STATUSES:
                raise TransitionError(f"unknown status {status!r}; one of: {', '.join(STATUSES)}")
            where.append("status = {status:String}")
            parameters["status"] = status
        if table:
            where.append("`table` = {table:String}")
            parameters["table"] = table
        sql = (f"SELECT {', '.join(f'`{c}`' for c in INCIDENT_COLUMNS)} FROM {VIEW}"
               + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY last_seen DESC, incident_key")
        return [Incident.from_row(row) for row in _rows(self.client.query(sql, parameters=parameters))]

    def get(self, key: str) -> Incident | None:
        result = self.client.query(f"SELECT {', '.join(f'`{c}`' for c in INCIDENT_COLUMNS)} FROM {VIEW} "
                                   "WHERE incident_key = {key:String}", parameters={"key": key})
        rows = _rows(result)
        return Incident.from_row(rows[0]) if rows else None

    def transitions(self, key: str) -> list[Transition]:
        result = self.client.query(f"SELECT {', '.join(TRANSITION_COLUMNS)} FROM {TRANSITIONS_TABLE} "
                                   "WHERE incident_key = {key:String} ORDER BY ts", parameters={"key": key})
        return [Transition(r["incident_key"], r["status"], r["actor"], r["note"], utc(r["ts"]))
                for r in _rows(result)]

    def detections(self, key: str, limit: int = 20) -> list[DetectionRow]:
        result = self.client.query(f"SELECT detected_ts, severity, count, origin, detail, samples FROM {EVENTS_TABLE} "
                                   "WHERE incident_key = {key:String} ORDER BY detected_ts DESC "
                                   "LIMIT {limit:UInt32}", parameters={"key": key, "limit": limit})
        return [DetectionRow(utc(r["detected_ts"]), r["severity"], int(r["count"]), r["origin"], r["detail"],
                             tuple(r.get("samples") or ())) for r in _rows(result)]

    def resolved_keys(self) -> set[str]:
        """Incidents that are resolved or closed now (what releases records a rule holds back)."""
        result = self.client.query(f"SELECT incident_key FROM {VIEW} WHERE status IN ('resolved', 'closed')")
        return {row[0] for row in result.result_rows}

    def record(self, key: str, target: str, actor: str, note: str = "") -> Transition:
        """Append a transition after checking it against the incident's current status.

        Two people moving one incident at the same moment can both pass the check; the later
        row wins in the view and both stay in the history.
        """
        actor = (actor or "").strip()
        if not actor:
            raise TransitionError("a transition needs who made it: give --by NAME")
        incident = self.get(key)
        if incident is None:
            raise TransitionError(f"no incident {key!r} in the journal; `qoima incidents list` shows the keys")
        check_transition(key, incident.status, target)
        transition = Transition(key, target, actor, note or "", now_ms())
        self.client.insert(TRANSITIONS_TABLE, [[transition.incident_key, transition.status, transition.actor,
                                                transition.note, transition.ts]],
                           column_names=TRANSITION_COLUMNS)
        return transition


@dataclass(frozen=True)
class Move:
    transition: Transition
    released: dict[str, int]   # held rows moved into the analysts' tables, per table (resolutions only)


def move(settings: Settings, journal: IncidentJournal, key: str, target: str, actor: str, note: str = "", *,
         recorded: Callable[[Transition], None] = lambda transition: None) -> Move:
    """Record a person's transition. A resolution lifts the hold (DM385 §49: once the error is
    fixed): every held record whose incidents are now all resolved reaches its analysts' table.

    `recorded` hears of the transition before the release, which may take a while or fail: the
    transition stands either way. The regulations are read only for a release, so a broken
    regulation file does not block an `ack`.
    """
    done = journal.record(key, target, actor, note)
    recorded(done)
    released: dict[str, int] = {}
    if done.status == RESOLVED:
        regulations = load_all(settings.regulations_dir, settings.regulation_env())
        released = release(journal.client, regulations, journal.resolved_keys())
    return Move(done, released)


def render_list(incidents: list[Incident]) -> str:
    if not incidents:
        return "no incidents"
    header = ("STATUS", "SEVERITY", "TYPE", "COUNT", "LAST SEEN", "BY", "KEY")
    rows = [(i.status, i.severity, i.type, str(i.count), iso(i.last_seen), i.status_by or "-", i.incident_key)
            for i in incidents]
    widths = [max(len(r[n]) for r in [header, *rows]) for n in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        lines.append("  ".join(value.ljust(width) for value, width in zip(row, widths)) + "  " + row[-1])
    return "\n".join(lines)


def render_show(incident: Incident, transitions: list[Transition], detections: list[DetectionRow]) -> str:
    status = incident.status
    if incident.transitions == 0:
        status += f" (since its first detection, {iso(incident.status_ts)})"
    elif incident.reopened:
        status += f" (reopened by {AUTO_ACTOR}: detected again at {iso(incident.status_ts)} after its resolution)"
    else:
        status += f" (by {incident.status_by} at {iso(incident.status_ts)}" + \
            (f": {incident.status_note})" if incident.status_note else ")")
    lines = [
        f"incident   {incident.incident_key}",
        f"status     {status}",
        f"next       {next_steps(incident.status)}",
        f"provider   {incident.provider}",
        f"table      {incident.table or '-'}",
        f"rule       {incident.rule}",
        f"type       {incident.type}",
        f"severity   {incident.severity}",
        f"detected   {incident.detections} time(s), count {incident.count}, "
        f"first {iso(incident.first_seen)}, last {iso(incident.last_seen)}",
        "",
        "transitions:" if transitions else "transitions: none",
    ]
    for t in transitions:
        lines.append(f"  {iso(t.ts)}  {t.status:<12}  by {t.actor}" + (f": {t.note}" if t.note else ""))
    lines += ["", f"recent detections (latest {len(detections)}):" if detections else "detections: none"]
    for d in detections:
        lines.append(f"  {iso(d.detected_ts)}  {d.severity:<8}  count {d.count}  ({d.origin})  {d.detail}")
        if d.samples:
            lines.append(f"      samples: {', '.join(d.samples)}")
    return "\n".join(lines)
