"""Incident notifications: what is enqueued when, payloads without values, and at-least-once
delivery with back-off against a tiny local HTTP server that refuses first, then accepts.
The outbox and the journal are in-memory fakes; the HTTP is real (127.0.0.1, ephemeral port)."""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from model.regulation import Notify
from governance.incident_journal import Incident
from governance.notifier import (BACKOFF_CAP_S, WITHHELD, Notification, Notifier, backoff, notification_id,
                                 payload, post_json, safe_detail, target_label, targets_for)

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)
KEY = "demo/population.persons/e2e_rule"
TABLE = ("demo", "population.persons")


def incident(status="open", **overrides) -> Incident:
    values = dict(incident_key=KEY, provider="demo", table="population.persons", rule="e2e_rule", type="other",
                  severity="warning", count=3, detections=1, first_seen=T0, last_seen=T0,
                  last_detail="3 rows with an empty kato_code_region", status=status, status_by="",
                  status_ts=T0, status_note="", opened_ts=T0 if status in ("open", "acknowledged") else None,
                  resolved_ts=T0 + timedelta(hours=1) if status in ("resolved", "closed") else None, transitions=0)
    values.update(overrides)
    return Incident(**values)


class FakeJournal:
    def __init__(self, *incidents: Incident) -> None:
        self.incidents = list(incidents)

    def list(self) -> list[Incident]:
        return list(self.incidents)


class FakeOutbox:
    """The outbox in memory, with ReplacingMergeTree's rule: the highest version of an id wins."""

    def __init__(self) -> None:
        self.rows: dict[str, Notification] = {}
        self.writes = 0

    def _put(self, n: Notification) -> None:
        self.writes += 1
        current = self.rows.get(n.id)
        if current is None or n.version >= current.version:
            self.rows[n.id] = n

    def existing(self, ids):
        return {i for i in ids if i in self.rows}

    def told(self, keys):
        return {(n.incident_key, n.url) for n in self.rows.values() if n.event == "opened" and n.incident_key in keys}

    def add(self, notifications):
        for n in notifications:
            self._put(n)

    def due(self, now, limit):
        due = [n for n in self.rows.values() if n.delivered_ts is None and n.next_attempt_ts <= now]
        return sorted(due, key=lambda n: (n.next_attempt_ts, n.id))[:limit]

    def save(self, notification):
        self._put(notification)

    def pending(self):
        return sum(n.delivered_ts is None for n in self.rows.values())


class Clock:
    def __init__(self, start: datetime = T0 + timedelta(minutes=1)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Receiver:
    """A webhook on 127.0.0.1: answers with the queued status codes, then 200; records requests."""

    def __init__(self, port: int = 0, codes=(), delay: float = 0.0) -> None:
        self.codes = list(codes)
        self.requests: list[dict] = []
        self.accepted: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if delay:
                    time.sleep(delay)
                code = receiver.codes.pop(0) if receiver.codes else 200
                request = {"path": self.path, "headers": dict(self.headers), "body": body.decode(), "code": code}
                receiver.requests.append(request)
                if 200 <= code < 300:
                    receiver.accepted.append(request)
                self.send_response(code)
                if code in (301, 302):
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers():
    started: list[Receiver] = []

    def start(**kwargs) -> Receiver:
        started.append(Receiver(**kwargs))
        return started[-1]

    yield start
    for receiver in started:
        receiver.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def counter(name: str, **labels) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- payloads ----------------------------------------------------------------------------------

@pytest.mark.parametrize("detail", [
    "held 3 rows; first value 900101300123",                # an IIN (valid check digit or not)
    "customer +7 701 234 56 78 complained",                 # a phone
    "write to aigerim.n@mail.kz about it",                  # an e-mail
    "account 87012345678",                                  # a long digit run
])
def test_a_detail_that_looks_like_it_holds_a_value_is_withheld(detail):
    body = json.loads(payload(incident(last_detail=detail), "opened", T0))
    assert body["detail"] == WITHHELD
    for fragment in ("900101300123", "234 56 78", "aigerim", "87012345678"):
        assert fragment not in json.dumps(body, ensure_ascii=False)


def test_the_payload_names_the_incident_and_nothing_else():
    item = incident(last_detail="k=2 is below 5 over (birth_date_year, sex): 3 of 40 classes, 5 of 2000 rows",
                    status_note="operator's note: never sent", status_by="aigerim")
    body = json.loads(payload(item, "opened", T0))
    assert set(body) == {"event", "incident_key", "provider", "table", "rule", "type", "severity", "count",
                         "status", "since", "first_seen", "last_seen", "detail"}
    assert body["incident_key"] == KEY and body["table"] == "population.persons" and body["count"] == 3
    assert body["status"] == "open" and body["event"] == "opened" and body["since"] == "2025-03-01T08:00:00.000Z"
    assert body["detail"] == item.last_detail
    assert "never sent" not in json.dumps(body) and "aigerim" not in json.dumps(body)
    assert len(safe_detail("x" * 2000)) == 500


def test_ids_are_deterministic_per_episode_event_and_target():
    a = notification_id(KEY, "opened", T0, "http://a/h")
    assert a == notification_id(KEY, "opened", T0, "http://a/h") and len(a) == 32
    assert len({a, notification_id(KEY, "resolved", T0, "http://a/h"), notification_id(KEY, "opened", T0, "http://b/h"),
                notification_id(KEY, "opened", T0 + timedelta(milliseconds=1), "http://a/h")}) == 4


def test_backoff_doubles_and_is_capped_at_five_minutes():
    assert [backoff(n) for n in range(1, 9)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff(50) == BACKOFF_CAP_S == 300


def test_logs_name_the_target_without_its_path_or_query():
    assert target_label("https://hooks.example.kz:8443/T0/secret-token?sig=abc") == "https://hooks.example.kz:8443"


def test_targets_come_from_the_regulation(demo):
    table = demo.tables[0].model_copy(update={"notify": [
        Notify(url="http://a/h"), Notify(url="http://b/h", name="ops"), Notify(url="http://a/h")]})
    untouched = demo.tables[1].model_copy(update={"notify": []})
    regulation = demo.model_copy(update={"tables": [table, untouched]})
    assert targets_for([regulation]) == {(demo.provider, table.name): ["http://a/h", "http://b/h"]}


# --- what is enqueued ---------------------------------------------------------------------------

def test_an_open_incident_queues_one_opened_notification_per_target_once():
    outbox, journal = FakeOutbox(), FakeJournal(incident("open"), incident("open", incident_key="demo/other/r",
                                                                            table="other.table"))
    n = Notifier(journal, outbox, {TABLE: ["http://a/h", "http://b/h"]}, post=_never, clock=Clock())
    queued = n.enqueue()
    assert sorted(x.url for x in queued) == ["http://a/h", "http://b/h"] and {x.event for x in queued} == {"opened"}
    assert n.enqueue() == [] and len(outbox.rows) == 2                 # idempotent
    journal.incidents[0] = replace(journal.incidents[0], status="acknowledged")   # same episode, same ids
    assert n.enqueue() == []


def test_resolution_is_announced_to_targets_that_were_told_of_the_incident():
    outbox, journal = FakeOutbox(), FakeJournal(incident("open"))
    n = Notifier(journal, outbox, {TABLE: ["http://a/h"]}, post=_never, clock=Clock())
    n.enqueue()
    journal.incidents[0] = incident("resolved", transitions=2, status_by="tester")
    [resolved] = n.enqueue()
    assert resolved.event == "resolved" and json.loads(resolved.payload)["status"] == "resolved"
    journal.incidents[0] = incident("closed", transitions=3, status_by="tester")   # same resolution: nothing new
    assert n.enqueue() == []
    # reopened by a new detection: a new episode, a new 'opened'
    journal.incidents[0] = incident("open", status_by="qoima", opened_ts=T0 + timedelta(hours=2), transitions=3)
    [again] = n.enqueue()
    assert again.event == "opened" and again.id != resolved.id


def test_old_resolutions_do_not_flood_a_new_target():
    outbox = FakeOutbox()
    n = Notifier(FakeJournal(incident("closed", transitions=2)), outbox, {TABLE: ["http://a/h"]}, post=_never,
                 clock=Clock())
    assert n.enqueue() == [] and outbox.rows == {}


def _never(*args, **kwargs):
    raise AssertionError("no delivery expected")


# --- delivery ------------------------------------------------------------------------------------

def test_a_refusing_target_gets_the_notification_exactly_once_when_it_accepts(receivers):
    receiver = receivers(codes=[503, 503])
    clock, outbox = Clock(), FakeOutbox()
    n = Notifier(FakeJournal(incident("open")), outbox, {TABLE: [receiver.url]}, clock=clock)
    delivered_before = counter("qoima_notifications_delivered_total", event="opened")
    failed_before = counter("qoima_notification_failures_total", event="opened", reason="http_5xx")

    n.step()                                        # 503: attempt 1, retry in 5 s
    [pending] = outbox.rows.values()
    assert (pending.attempts, pending.last_error, pending.delivered_ts) == (1, "HTTP 503", None)
    assert pending.next_attempt_ts == clock.now + timedelta(seconds=5)
    assert counter("qoima_notifications_pending") == 1
    n.step()                                        # not due yet: nothing sent
    assert len(receiver.requests) == 1
    clock.advance(5)
    n.step()                                        # 503 again: retry in 10 s
    assert outbox.rows[pending.id].attempts == 2 and len(receiver.requests) == 2
    clock.advance(9)
    n.step()
    assert len(receiver.requests) == 2
    clock.advance(1)
    n.step()                                        # the target is back: 200
    done = outbox.rows[pending.id]
    assert done.delivered_ts == clock.now and done.attempts == 3 and done.last_error == ""
    for _ in range(3):
        clock.advance(600)
        n.step()
    assert len(receiver.accepted) == 1 and len(receiver.requests) == 3
    request = receiver.accepted[0]
    assert request["path"] == "/hook" and request["headers"]["Idempotency-Key"] == pending.id
    assert request["headers"]["Content-Type"].startswith("application/json")
    assert json.loads(request["body"]) == json.loads(pending.payload)
    assert counter("qoima_notifications_delivered_total", event="opened") == delivered_before + 1
    assert counter("qoima_notification_failures_total", event="opened", reason="http_5xx") == failed_before + 2
    assert counter("qoima_notifications_pending") == 0


def test_a_target_that_is_not_listening_is_retried_until_it_is(receivers):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook"
    clock, outbox = Clock(), FakeOutbox()
    n = Notifier(FakeJournal(incident("open")), outbox, {TABLE: [url]}, clock=clock)
    n.step()
    n.step()
    [pending] = outbox.rows.values()
    assert (pending.attempts, pending.last_error) == (1, "ConnectionError")
    clock.advance(5)
    n.step()
    assert outbox.rows[pending.id].attempts == 2
    receiver = receivers(port=port)
    clock.advance(10)
    n.step()
    clock.advance(600)
    n.step()
    assert outbox.rows[pending.id].delivered_ts is not None
    assert [r["headers"]["Idempotency-Key"] for r in receiver.requests] == [pending.id]


def test_a_redirect_is_not_followed_and_a_slow_target_times_out(receivers):
    redirecting, slow = receivers(codes=[302]), receivers(delay=0.5)
    clock, outbox = Clock(), FakeOutbox()
    quick = lambda url, body, headers: post_json(url, body, headers, timeout=0.1)  # noqa: E731
    n = Notifier(FakeJournal(incident("open")), outbox, {TABLE: [redirecting.url, slow.url]}, post=quick, clock=clock)
    n.step()
    errors = {row.url: row.last_error for row in outbox.rows.values()}
    assert errors == {redirecting.url: "HTTP 302", slow.url: "Timeout"}
    assert all(row.delivered_ts is None for row in outbox.rows.values())


def test_a_delivered_notification_is_not_undone_by_enqueueing_again(receivers):
    receiver = receivers()
    clock, outbox = Clock(), FakeOutbox()
    n = Notifier(FakeJournal(incident("open")), outbox, {TABLE: [receiver.url]}, clock=clock)
    n.step()
    [delivered] = outbox.rows.values()
    outbox.add([replace(delivered, attempts=0, delivered_ts=None, version=1)])   # a duplicate enqueue
    clock.advance(60)
    n.step()
    assert outbox.rows[delivered.id].delivered_ts is not None and len(receiver.requests) == 1


def test_metrics_have_no_values_in_their_labels():
    from prometheus_client import REGISTRY

    names = {m.name for m in REGISTRY.collect()}
    assert {"qoima_notifications_pending", "qoima_notifications_delivered", "qoima_notification_failures"} <= names
    samples = [s for m in REGISTRY.collect() if m.name.startswith("qoima_notification") for s in m.samples]
    for sample in samples:
        assert set(sample.labels) <= {"event", "reason"}
        assert set(sample.labels.values()) <= {"opened", "resolved", "http_3xx", "http_4xx", "http_5xx",
                                               "connection", "timeout", "other"}
