"""Access events to the state service, at least once, through an outbox (PD236 §3, §7.4).

The outbox is `qoima_meta.pd236_access_events` itself: the sink loads each event the processor
committed (version 0), and each delivery attempt writes the row again at a higher version with
its attempts, error class, next attempt time and, once the service accepted it, its receipt
and delivery time. Nothing is lost while the service is down: an event stays due until a 2xx
`accepted` answer, retried with back-off (5 s doubling, capped at 5 min, as webhook
notifications: governance/notifier.py). Nothing is duplicated at the service: the event id is
the request's `Idempotency-Key`, and the service answers a repeat as a duplicate.

A refused token (HTTP 401) is retried like any failure, since a key or clock fixed by the
operator makes the next try succeed; it is counted under `http_401`, logged with the service's
reason word, and QoimaPd236TokenRefused fires. QoimaPd236Undelivered fires when the oldest
undelivered event is older than 15 minutes.

Runs as a thread of the assessor process, beside the notifier.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable, Protocol

from governance.incident_journal import now_ms, utc
from governance.notifier import backoff, target_label
from governance.pd236 import client
from governance.pd236.token import TokenError, TokenIssuer
from model.names import ACCESS_EVENTS_TABLE as TABLE
from model.settings import Settings
from monitoring import metrics
from sinks.ddl import ACCESS_COLUMNS

log = logging.getLogger("qoima.pd236")

INTERVAL_S = 5.0
# Nothing answers, or a gateway (ШЭП) in front of the service says it is unavailable.
_DOWN = (0, 502, 503, 504)
BATCH = 200
COLUMNS = [*ACCESS_COLUMNS, "recorded_ts", "attempts", "delivered_ts", "receipt", "last_error", "next_attempt_ts",
           "_version"]


class Outbox(Protocol):
    def due(self, now: datetime, limit: int) -> list[dict]:
        """Undelivered events whose next attempt is due, oldest first."""

    def save(self, row: dict) -> None:
        """Store the event's new state (a new version of its row)."""

    def backlog(self) -> tuple[int, datetime | None]:
        """(undelivered events, when the oldest of them was recorded)."""


@dataclass
class Backlog:
    undelivered: int
    oldest_s: float


class Reporter:
    def __init__(self, outbox: Outbox, issuer: TokenIssuer, endpoint: str,
                 send: Callable[..., client.Reply] = client.send, clock: Callable[[], datetime] = now_ms) -> None:
        self.outbox, self.issuer, self.endpoint, self.send, self.clock = outbox, issuer, endpoint, send, clock
        self._down = False        # the last attempt found nothing answering
        self._recovered = False   # ... and then one was accepted: the backlog goes at once

    def attempt(self, row: dict) -> tuple[dict, client.Reply]:
        """Send one event; its row as it is to be stored after the attempt, and the answer."""
        token = self.issuer.token(subject=row["information_system"])
        reply = self.send(self.endpoint, client.message(row["event_id"], row), token, row["event_id"])
        now = self.clock()
        updated = {**row, "attempts": int(row["attempts"]) + 1,
                   "_version": max(int(row["_version"]) + 1, time.time_ns())}
        if reply.accepted:
            metrics.PD_DELIVERED.inc()
            log.info("access event %s (%s, %s, %d rows) accepted by %s, receipt %s%s", row["event_id"], row["table"],
                     row["path"], int(row["rows"]), target_label(self.endpoint), reply.receipt,
                     " (a duplicate: delivered before)" if reply.duplicate else "")
            return {**updated, "delivered_ts": now, "receipt": reply.receipt, "last_error": ""}, reply
        metrics.PD_FAILURES.labels(reply.reason).inc()
        delay = backoff(updated["attempts"])
        log.warning("access event %s to %s not delivered: %s; attempt %d, next in %.0f s", row["event_id"],
                    target_label(self.endpoint), reply.error, updated["attempts"], delay)
        return {**updated, "last_error": reply.error, "next_attempt_ts": now + timedelta(seconds=delay)}, reply

    def deliver(self, limit: int = BATCH) -> list[dict]:
        now = self.clock()
        # Once the service answers again, what waited for it goes now, not at each event's back-off
        # (up to 5 minutes after a long outage).
        horizon = now + timedelta(days=3650) if self._recovered else now
        self._recovered = False
        done = []
        for row in self.outbox.due(horizon, limit):
            updated, reply = self.attempt(row)
            self.outbox.save(updated)
            done.append(updated)
            if reply.status in _DOWN:
                # Nothing answers: one try a round (the oldest due event) until something does,
                # rather than each event timing out in turn.
                self._down = True
                break
            if reply.accepted and self._down:
                self._down, self._recovered = False, True
                log.info("the state service answers again; the events that waited for it go now")
        return done

    def backlog(self) -> Backlog:
        count, oldest = self.outbox.backlog()
        age = (self.clock() - utc(oldest)).total_seconds() if count and oldest is not None else 0.0
        metrics.PD_UNDELIVERED.set(count)
        metrics.PD_OLDEST_UNDELIVERED.set(max(age, 0.0))
        return Backlog(count, max(age, 0.0))

    def step(self) -> None:
        self.deliver()
        self.backlog()


class ClickHouseOutbox:
    def __init__(self, client_) -> None:
        self.client = client_

    def due(self, now: datetime, limit: int) -> list[dict]:
        result = self.client.query(
            f"SELECT {', '.join(f'`{c}`' for c in COLUMNS)} FROM {TABLE} FINAL WHERE delivered_ts IS NULL "
            "AND next_attempt_ts <= fromUnixTimestamp64Milli({now_ms:Int64}, 'UTC') "
            "ORDER BY recorded_ts, event_id LIMIT {limit:UInt32}",
            parameters={"now_ms": int(utc(now).timestamp() * 1000), "limit": limit})
        return [dict(zip(result.column_names, row)) for row in result.result_rows]

    def save(self, row: dict) -> None:
        self.client.insert(TABLE, [[row[c] for c in COLUMNS]], column_names=COLUMNS)

    def backlog(self) -> tuple[int, datetime | None]:
        count, oldest = self.client.query(
            f"SELECT count(), min(recorded_ts) FROM {TABLE} FINAL WHERE delivered_ts IS NULL").result_rows[0]
        return int(count), oldest if count else None


def issuer_for(settings: Settings) -> TokenIssuer:
    return TokenIssuer(settings.pd236_signing_key, settings.pd236_issuer, settings.pd236_audience,
                       settings.pd236_token_ttl_s)


def run(settings: Settings, stop: threading.Event, interval: float = INTERVAL_S) -> None:
    """Reporter rounds every `interval` seconds until `stop` is set; failures wait for the next round."""
    from sinks.clickhouse_users import writer_client

    log.info("PD236 reporter: access events to %s, a round every %.0f s", target_label(settings.pd236_endpoint),
             interval)
    reporter = None
    while not stop.is_set():
        try:
            if reporter is None:
                reporter = Reporter(ClickHouseOutbox(writer_client(settings)), issuer_for(settings),
                                    settings.pd236_endpoint)
            reporter.step()
        except TokenError as exc:
            log.error("%s", exc)
        except Exception as exc:  # the warehouse may be starting, or the sink not yet created the table
            log.warning("PD236 reporter round failed (%s: %s); next round in %.0f s", type(exc).__name__,
                        str(exc).splitlines()[0][:200] if str(exc) else "", interval)
        stop.wait(interval)


def start(settings: Settings, stop: threading.Event, interval: float = INTERVAL_S) -> threading.Thread:
    thread = threading.Thread(target=run, args=(settings, stop, interval), name="qoima-pd236", daemon=True)
    thread.start()
    return thread
