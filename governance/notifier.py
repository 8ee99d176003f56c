"""Incident notifications to webhooks (DM385 §49: the users of a data type are told when an
incident on it is confirmed, and again when it is resolved).

Targets are per table in the regulation (`notify: [{url: https://..., name: ...}]`). Delivery
is at least once through an outbox, `qoima_meta.notifications`: each round the notifier

1. enqueues what the journal calls for: an `opened` notification per target for each open
   (or acknowledged) incident episode, and a `resolved` one per target once it is resolved
   (or closed), if that target was told of the incident at all (a target added to a table
   with old, long-resolved incidents is not flooded with their resolutions);
2. POSTs every due notification (JSON, 5 s timeout, no redirects followed). A 2xx marks it
   delivered; anything else counts an attempt, records the error class (never the response
   body) and schedules the next try with exponential back-off (5 s doubling, capped at 5 min).

A notification's id is deterministic (incident key, event, the time its status began, target
URL), so enqueueing twice adds nothing; it is sent as the `Idempotency-Key` header so a
receiver can drop the duplicates at-least-once delivery may bring. A reopened incident is a
new episode with a new id, and notifies again.

The payload names the incident (key, provider, table, rule, type, severity, count, status)
and carries its latest detail only after a check for clear identifiers: details are written
to hold none, and one that looks like it does is withheld from the webhook.

Storage sits behind two small interfaces (an incident source, an `Outbox`) so the logic runs
against in-memory fakes in unit tests; the assessor process runs it against ClickHouse.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections import Counter as Counter_
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable, Protocol
from urllib.parse import urlsplit

import requests
from prometheus_client import Counter, Gauge

from monitoring import metrics
from governance.incident_journal import (ACKNOWLEDGED, CLOSED, OPEN, RESOLVED, Incident, IncidentJournal, iso,
                                         now_ms, utc)
from model.names import NOTIFICATIONS_TABLE as TABLE
from model.leak_scan import scan_text
from schemas import retry

log = logging.getLogger("qoima.notifier")

OPENED, RESOLVED_EVENT = "opened", "resolved"
EVENTS = (OPENED, RESOLVED_EVENT)
INTERVAL_S = 5.0          # one round every few seconds, in its own thread of the assessor
TIMEOUT_S = 5.0
BACKOFF_CAP_S = retry.WEBHOOK_DELIVERY.max
DETAIL_MAX = 500
COLUMNS = ["id", "incident_key", "event", "url", "payload", "created_ts", "attempts", "delivered_ts",
           "last_error", "next_attempt_ts", "_version"]

# Labels are event names and error classes: never a URL (it may carry a token) nor a value.
PENDING = Gauge("qoima_notifications_pending", "Incident notifications not yet delivered to their target")
DELIVERED = Counter("qoima_notifications_delivered_total", "Incident notifications a target accepted (2xx)",
                    ["event"])
FAILURES = Counter("qoima_notification_failures_total",
                   "Failed incident notification attempts (retried with back-off)", ["event", "reason"])

_LONG_DIGITS = re.compile(r"[0-9]{10,}")
WITHHELD = "(withheld: the detail looks like it holds an identifier; see `qoima incidents show`)"


@dataclass(frozen=True)
class Notification:
    id: str
    incident_key: str
    event: str
    url: str
    payload: str
    created_ts: datetime
    attempts: int = 0
    delivered_ts: datetime | None = None
    last_error: str = ""
    next_attempt_ts: datetime | None = None
    version: int = 1          # enqueue writes 1, every attempt a higher one: a re-enqueue never undoes a delivery

    def row(self) -> list:
        return [self.id, self.incident_key, self.event, self.url, self.payload, self.created_ts, self.attempts,
                self.delivered_ts, self.last_error, self.next_attempt_ts or self.created_ts, self.version]

    @classmethod
    def from_row(cls, row: dict) -> "Notification":
        return cls(row["id"], row["incident_key"], row["event"], row["url"], row["payload"], utc(row["created_ts"]),
                   int(row["attempts"]), utc(row["delivered_ts"]), row["last_error"], utc(row["next_attempt_ts"]),
                   int(row["_version"]))


class IncidentSource(Protocol):
    def list(self) -> list[Incident]: ...


class Outbox(Protocol):
    def existing(self, ids: list[str]) -> set[str]:
        """The ids among `ids` already in the outbox, whatever their state."""

    def told(self, keys: set[str]) -> set[tuple[str, str]]:
        """(incident_key, url) pairs that have an 'opened' notification."""

    def add(self, notifications: list[Notification]) -> None: ...

    def due(self, now: datetime, limit: int) -> list[Notification]:
        """Undelivered notifications whose next attempt is at or before `now`, oldest first."""

    def save(self, notification: Notification) -> None:
        """Store the notification's new state (a new version of its row)."""

    def pending(self) -> int: ...


def notification_id(key: str, event: str, since: datetime, url: str) -> str:
    return hashlib.sha256(f"{key}\n{event}\n{iso(since)}\n{url}".encode()).hexdigest()[:32]


def safe_detail(detail: str) -> str:
    """The detail as a webhook may see it: withheld if it looks like it holds an identifier."""
    detail = detail or ""
    if _LONG_DIGITS.search(detail) or scan_text(detail, "incident detail", personal=True):
        return WITHHELD
    return detail if len(detail) <= DETAIL_MAX else detail[:DETAIL_MAX - 1] + "…"


def payload(incident: Incident, event: str, since: datetime) -> str:
    """The JSON body: what happened to which table, never a value from a record."""
    return json.dumps({
        "event": event,
        "incident_key": incident.incident_key,
        "provider": incident.provider,
        "table": incident.table,
        "rule": incident.rule,
        "type": incident.type,
        "severity": incident.severity,
        "count": int(incident.count),
        "status": incident.status,
        "since": iso(since),
        "first_seen": iso(incident.first_seen),
        "last_seen": iso(incident.last_seen),
        "detail": safe_detail(incident.last_detail),
    }, ensure_ascii=False, sort_keys=True)


def backoff(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones: 5, 10, 20, ... capped at 300.

    The count lives in the outbox row, not in a loop, so the policy is asked for the pause."""
    return retry.delay_after(retry.WEBHOOK_DELIVERY, attempts)


def target_label(url: str) -> str:
    """What logs may say about a target: scheme, host and port (a path or query may hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def post_json(url: str, body: str, headers: dict[str, str], timeout: float = TIMEOUT_S) -> int:
    response = requests.post(url, data=body.encode("utf-8"), headers=headers, timeout=timeout,
                             allow_redirects=False)
    response.close()
    return response.status_code


def _error_class(exc: Exception) -> tuple[str, str]:
    """(last_error, metric reason) for a failed attempt: the class of error, never a body."""
    if isinstance(exc, requests.Timeout):
        return "Timeout", "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "ConnectionError", "connection"
    return type(exc).__name__, "other"


def targets_for(regulations) -> dict[tuple[str, str], list[str]]:
    """(provider, table) -> webhook URLs, from the regulations' `notify:` lists."""
    targets: dict[tuple[str, str], list[str]] = {}
    for regulation in regulations:
        for table in regulation.tables:
            urls = [n.url for n in getattr(table, "notify", None) or []]
            if urls:
                targets[(regulation.provider, table.name)] = list(dict.fromkeys(urls))
    return targets


def export_journal(incidents: list[Incident]) -> None:
    """The journal as a metric: incidents by status, DM385 type and severity."""
    counts = Counter_((i.status, i.type, i.severity) for i in incidents)
    metrics.INCIDENTS.clear()
    for (status, kind, severity), count in counts.items():
        metrics.INCIDENTS.labels(status, kind, severity).set(count)


def _utcnow() -> datetime:
    return now_ms()


class Notifier:
    def __init__(self, incidents: IncidentSource, outbox: Outbox, targets: dict[tuple[str, str], list[str]],
                 post: Callable[..., int] = post_json, clock: Callable[[], datetime] = _utcnow) -> None:
        self.incidents = incidents
        self.outbox = outbox
        self.targets = targets
        self.post = post
        self.clock = clock

    def wanted(self, incident: Incident) -> tuple[str, datetime] | None:
        """The notification an incident's current state calls for: (event, when that state began)."""
        if incident.status in (OPEN, ACKNOWLEDGED) and incident.opened_ts is not None:
            return OPENED, incident.opened_ts
        if incident.status in (RESOLVED, CLOSED) and incident.resolved_ts is not None:
            return RESOLVED_EVENT, incident.resolved_ts
        return None

    def enqueue(self) -> list[Notification]:
        now = self.clock()
        candidates: list[Notification] = []
        incidents = self.incidents.list()
        export_journal(incidents)
        for incident in incidents:
            urls = self.targets.get((incident.provider, incident.table or ""), [])
            wanted = self.wanted(incident) if urls else None
            if wanted is None:
                continue
            event, since = wanted
            body = payload(incident, event, since)
            for url in urls:
                candidates.append(Notification(notification_id(incident.incident_key, event, since, url),
                                               incident.incident_key, event, url, body, now, next_attempt_ts=now))
        if not candidates:
            return []
        existing = self.outbox.existing([n.id for n in candidates])
        new = [n for n in candidates if n.id not in existing]
        resolutions = {n.incident_key for n in new if n.event == RESOLVED_EVENT}
        if resolutions:
            told = self.outbox.told(resolutions)
            new = [n for n in new if n.event != RESOLVED_EVENT or (n.incident_key, n.url) in told]
        if new:
            self.outbox.add(new)
            for n in new:
                log.info("notification %s (%s of %s) queued for %s", n.id, n.event, n.incident_key,
                         target_label(n.url))
        return new

    def attempt(self, notification: Notification) -> Notification:
        headers = {"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": notification.id,
                   "User-Agent": "qoima-notifier"}
        error, reason = "", ""
        try:
            status = self.post(notification.url, notification.payload, headers)
            if not 200 <= status < 300:
                error, reason = f"HTTP {status}", f"http_{status // 100}xx"
        except Exception as exc:  # any failure to deliver is retried; its class is what we keep
            error, reason = _error_class(exc)
        now = self.clock()
        attempts = notification.attempts + 1
        version = max(notification.version + 1, time.time_ns())
        if not error:
            DELIVERED.labels(notification.event).inc()
            log.info("notification %s (%s of %s) delivered to %s", notification.id, notification.event,
                     notification.incident_key, target_label(notification.url))
            return replace(notification, attempts=attempts, delivered_ts=now, last_error="", version=version)
        FAILURES.labels(notification.event, reason).inc()
        delay = backoff(attempts)
        log.warning("notification %s to %s failed (%s), attempt %d; next in %.0fs", notification.id,
                    target_label(notification.url), error, attempts, delay)
        return replace(notification, attempts=attempts, last_error=error,
                       next_attempt_ts=now + timedelta(seconds=delay), version=version)

    def deliver(self, limit: int = 100) -> list[Notification]:
        done = []
        for notification in self.outbox.due(self.clock(), limit):
            updated = self.attempt(notification)
            self.outbox.save(updated)
            done.append(updated)
        return done

    def step(self) -> None:
        self.enqueue()
        self.deliver()
        PENDING.set(self.outbox.pending())


class ClickHouseOutbox:
    """The outbox in `qoima_meta.notifications` (ReplacingMergeTree by `_version`, read FINAL)."""

    _CHUNK = 1000

    def __init__(self, client) -> None:
        self.client = client

    def existing(self, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), self._CHUNK):
            chunk = ids[start:start + self._CHUNK]
            result = self.client.query(f"SELECT DISTINCT id FROM {TABLE} WHERE has({{ids:Array(String)}}, id)",
                                       parameters={"ids": chunk})
            found.update(row[0] for row in result.result_rows)
        return found

    def told(self, keys: set[str]) -> set[tuple[str, str]]:
        result = self.client.query(f"SELECT DISTINCT incident_key, url FROM {TABLE} "
                                   f"WHERE event = '{OPENED}' AND has({{keys:Array(String)}}, incident_key)",
                                   parameters={"keys": sorted(keys)})
        return {(row[0], row[1]) for row in result.result_rows}

    def add(self, notifications: list[Notification]) -> None:
        if notifications:
            self.client.insert(TABLE, [n.row() for n in notifications], column_names=COLUMNS)

    def due(self, now: datetime, limit: int) -> list[Notification]:
        result = self.client.query(
            f"SELECT {', '.join(COLUMNS)} FROM {TABLE} FINAL WHERE delivered_ts IS NULL "
            "AND next_attempt_ts <= fromUnixTimestamp64Milli({now_ms:Int64}, 'UTC') "
            "ORDER BY next_attempt_ts, id LIMIT {limit:UInt32}",
            parameters={"now_ms": int(utc(now).timestamp() * 1000), "limit": limit})
        return [Notification.from_row(dict(zip(result.column_names, row))) for row in result.result_rows]

    def save(self, notification: Notification) -> None:
        self.client.insert(TABLE, [notification.row()], column_names=COLUMNS)

    def pending(self) -> int:
        return int(self.client.command(f"SELECT count() FROM {TABLE} FINAL WHERE delivered_ts IS NULL"))


def run(settings, regulations, stop: threading.Event, interval: float = INTERVAL_S) -> None:
    """Notifier rounds every `interval` seconds until `stop` is set; failures wait for the next round."""
    from sinks.clickhouse_users import writer_client

    targets = targets_for(regulations)
    if not targets:
        log.info("no table of the regulations declares notify targets; the notifier is idle")
        return
    log.info("notifier: %d table(s) with webhook targets, a round every %.0fs", len(targets), interval)
    notifier = None
    while not stop.is_set():
        try:
            if notifier is None:
                client = writer_client(settings)   # its own client: clickhouse-connect sessions are per thread
                notifier = Notifier(IncidentJournal(client), ClickHouseOutbox(client), targets)
            notifier.step()
        except Exception as exc:  # the warehouse may be starting, or the sink not yet created the tables
            log.warning("notifier round failed (%s: %s); next round in %.0fs", type(exc).__name__,
                        str(exc).splitlines()[0][:200] if str(exc) else "", interval)
        stop.wait(interval)


def start(settings, regulations, stop: threading.Event, interval: float = INTERVAL_S) -> threading.Thread:
    thread = threading.Thread(target=run, args=(settings, regulations, stop, interval), name="qoima-notifier",
                              daemon=True)
    thread.start()
    return thread

