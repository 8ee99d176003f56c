"""The incident life cycle (DM385 §49) on the real stack: a detection opens an incident in the
journal, `qoima incidents` moves it through acknowledged, resolved and closed (refusing what
the life cycle does not allow), and the table's webhook target hears of the opening (though it
was down at first) and of the resolution; a new detection after the close reopens it.

Needs the demo regulation's `notify` target on population.persons, the stack's demo webhook
port (`QOIMA_DEMO_WEBHOOK_PORT`, which the test stack leaves free for this test)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from model.regulation import load_all
from sinks.clickhouse_users import writer_client
from schemas.incidents import Detection, IncidentPublisher
from tests.e2e.warehouse import poll_until

REPO = Path(__file__).resolve().parents[2]
TABLE = "population.persons"
DETAIL = "3 rows with an empty kato_code_region (e2e life cycle)"
PAYLOAD_FIELDS = {"event", "incident_key", "provider", "table", "rule", "type", "severity", "count", "status",
                  "since", "first_seen", "last_seen", "detail"}


@pytest.fixture(scope="module")
def writer(stack):
    return writer_client(stack.s)


@pytest.fixture(scope="module")
def webhook_port(stack):
    return stack.s.ports.demo_webhook


@pytest.fixture(scope="module")
def provider(stack, webhook_port):
    regulation = next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env())
                      if any(t.name == TABLE for t in r.tables))
    urls = [n.url for n in regulation.table(TABLE).notify]
    expected = f"http://127.0.0.1:{webhook_port}/hook"
    if expected not in urls:
        pytest.fail(f"{TABLE} in the demo regulation must notify {expected} (has {urls})")
    return regulation.provider


class Webhook:
    """The table's notification target on 127.0.0.1, started only when the test says so."""

    def __init__(self, port: int) -> None:
        self.received: list[tuple[dict, dict]] = []   # (headers, JSON body)
        self.lock = threading.Lock()
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with webhook.lock:
                    webhook.received.append((dict(self.headers), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, key: str, event: str) -> list[tuple[dict, dict]]:
        with self.lock:
            return [(h, b) for h, b in self.received if b.get("incident_key") == key and b.get("event") == event]

    def ids(self, key: str, event: str) -> set[str]:
        return {headers["Idempotency-Key"] for headers, _ in self.find(key, event)}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()




def journal(writer, key: str) -> tuple[str, str, str] | None:
    rows = writer.query("SELECT status, status_by, status_note FROM qoima_meta.incidents "
                        "WHERE incident_key = {key:String}", parameters={"key": key}).result_rows
    return tuple(rows[0]) if rows else None


def outbox(writer, key: str, event: str) -> list[tuple]:
    return writer.query("SELECT id, attempts, last_error, delivered_ts FROM qoima_meta.notifications FINAL "
                        "WHERE incident_key = {key:String} AND event = {event:String} ORDER BY created_ts",
                        parameters={"key": key, "event": event}).result_rows


def qoima(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qoima", "incidents", *args], capture_output=True, text=True,
                          timeout=120, cwd=REPO, env={**os.environ, "QOIMA_HOME": str(stack.s.home)})


def move(stack, writer, verb: str, key: str, expected_status: str, note: str = "") -> None:
    done = qoima(stack, verb, key, "--by", "tester", *(["--note", note] if note else []))
    assert done.returncode == 0, f"qoima incidents {verb} failed: {done.stderr[-2000:]}"
    assert f"{key}: {expected_status} by tester" in done.stdout
    assert journal(writer, key) == (expected_status, "tester", note)


def test_incident_life_cycle_with_webhook_notifications(stack, ch, writer, provider, webhook_port):
    rule = f"e2e_lifecycle_{uuid.uuid4().hex[:8]}"
    key = f"{provider}/{TABLE}/{rule}"
    publisher = IncidentPublisher(stack.s.kafka_bootstrap)
    publisher.publish(Detection(provider, TABLE, rule, "completeness", "warning", 3, DETAIL, "e2e"))

    # Open from its first detection, in qoima_meta, which the analyst cannot read.
    assert poll_until(lambda: journal(writer, key), 60, "the detection in the journal") == ("open", "", "")
    for relation in ("incidents", "incident_transitions", "notifications"):
        with pytest.raises(Exception, match=r"(?i)privileges|ACCESS_DENIED|497"):
            ch.query(f"SELECT count() FROM qoima_meta.{relation}")

    # The target is down: the notifier's first attempt fails and is scheduled again.
    failed = poll_until(lambda: [r for r in outbox(writer, key, "opened") if r[1] >= 1], 60,
                      "a failed first attempt of the 'opened' notification")
    assert failed[0][2] == "ConnectionError" and failed[0][3] is None

    webhook = Webhook(webhook_port)
    try:
        headers, body = poll_until(lambda: webhook.find(key, "opened"), 60, "the 'opened' notification")[0]
        [(opened_id, attempts, _, _delivered)] = poll_until(
            lambda: [r for r in outbox(writer, key, "opened") if r[3] is not None], 15, "the delivery mark")
        assert headers["Idempotency-Key"] == opened_id and attempts >= 2
        assert set(body) == PAYLOAD_FIELDS
        assert (body["incident_key"], body["table"], body["rule"], body["status"], body["detail"]) == \
            (key, TABLE, rule, "open", DETAIL)

        # A closed incident must have been resolved first.
        refused = qoima(stack, "close", key, "--by", "tester")
        assert refused.returncode != 0
        assert f"incident {key} is open" in refused.stderr and "ack (-> acknowledged)" in refused.stderr
        assert journal(writer, key) == ("open", "", "")

        move(stack, writer, "ack", key, "acknowledged", "e2e: looking at it")
        shown = qoima(stack, "show", key)
        assert shown.returncode == 0 and "acknowledged (by tester" in shown.stdout and DETAIL in shown.stdout
        listed = qoima(stack, "list", "--status", "acknowledged", "--table", TABLE)
        assert listed.returncode == 0 and key in listed.stdout

        move(stack, writer, "resolve", key, "resolved", "e2e: fixed at the source")
        headers, body = poll_until(lambda: webhook.find(key, "resolved"), 60, "the 'resolved' notification")[0]
        assert body["status"] == "resolved" and set(body) == PAYLOAD_FIELDS
        assert headers["Idempotency-Key"] != opened_id

        move(stack, writer, "close", key, "closed")
        refused = qoima(stack, "ack", key, "--by", "tester")
        assert refused.returncode != 0 and "is closed" in refused.stderr
        history = qoima(stack, "show", key).stdout
        for status in ("acknowledged", "resolved", "closed"):
            assert re.search(rf"Z  {status}\s+by tester", history), f"no {status} transition in:\n{history}"

        # Seen again after the fix: the view reopens it, and the target hears of it again.
        publisher.publish(Detection(provider, TABLE, rule, "completeness", "warning", 1, DETAIL, "e2e"))
        reopened = poll_until(lambda: (row := journal(writer, key)) and row[0] == "open" and row, 60, "the reopening")
        assert reopened == ("open", "qoima", "detected again after its resolution")
        poll_until(lambda: webhook.ids(key, "opened") - {opened_id}, 60, "the reopened episode's 'opened' notification")
        assert len(webhook.ids(key, "resolved")) == 1     # duplicates of one delivery share their key
        move(stack, writer, "resolve", key, "resolved")
        poll_until(lambda: len(webhook.ids(key, "resolved")) == 2, 60, "the second 'resolved' notification")
    finally:
        webhook.close()
