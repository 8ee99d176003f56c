"""PD236 on the real stack: access events recorded for every capture path, delivered to the local
stand-in of the state service through the outbox, nothing lost or duplicated while it is down,
bad tokens refused visibly, and the testing act produced from the stand-in.

The stack runs with QOIMA_PD236_INTERVAL_S=5 (tests/conftest.py): events close every 5 s.
"""
from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import date

import pytest
import requests

from governance.pd236 import client
from governance.pd236.reporter import Reporter, issuer_for
from governance.pd236.token import TokenIssuer, generate_key
from infra.demo.generator import make_iin
from model.names import ACCESS_EVENTS_TABLE
from monitoring import metrics
from sinks.clickhouse_users import writer_client
from tests.e2e.cli import qoima
from tests.e2e.warehouse import poll_until

STANDIN = "pd236-standin"


def _person(pg, iin: str) -> int:
    # Names no log line spells: test_privacy.py looks for every source name in the logs ("Тест"
    # folds to "test", which every path under var/test-stack holds).
    return pg.execute(
        "INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
        "VALUES (%s, 'Журналова', 'Сауле', '1990-01-01', 'M', 'active', '751110000') RETURNING person_id",
        (iin,)).fetchone()[0]


def _iin(seed: int) -> str:
    return make_iin(random.Random(seed), date(1990, 1, 1), "M")


def _received(stack) -> list[dict]:
    return requests.get(f"{stack.s.pd236_standin_url}/api/v1/received", timeout=5).json()


def _events(writer, where: str = "1") -> list[dict]:
    result = writer.query(f"SELECT * FROM {ACCESS_EVENTS_TABLE} FINAL WHERE {where} ORDER BY recorded_ts")
    return [dict(zip(result.column_names, row)) for row in result.result_rows]


def test_access_events_are_recorded_for_cdc_snapshot_and_marker_reads(stack, pg):
    writer = writer_client(stack.s)
    started = time.time()
    iin = _iin(2361)
    _person(pg, iin)
    # The initial snapshot of the demo provider, the registry's marker polls and this insert.
    for provider, table, path in (("demo", "population.persons", "snapshot"), ("demo", "population.persons", "cdc"),
                                  ("registry", "registry.licenses", "marker")):
        where = f"provider = '{provider}' AND `table` = '{table}' AND path = '{path}'"
        if path == "cdc":
            where += f" AND last_read >= fromUnixTimestamp64Milli({int(started * 1000)})"
        poll_until(lambda: _events(writer, where), 60, f"an access event for {provider} {table} ({path})")
    for event in _events(writer):
        assert iin not in " ".join(str(value) for value in event.values()), "a clear IIN in an access event"
        assert event["rows"] >= 1 and event["categories"] and event["legal_basis"] and event["key_id"]
        assert event["interval_end"] > event["interval_start"]
    persons = _events(writer, "`table` = 'population.persons' AND path = 'cdc'")[-1]
    assert persons["categories"] == ["identifiers", "names", "contacts", "quasi_identifiers", "sensitive"]
    # A table without personal data (organizations: a BIN only) is no access to personal data.
    assert not _events(writer, "`table` = 'social.organizations'")


def test_events_reach_the_stand_in_once_even_when_it_was_down(stack, pg):
    writer = writer_client(stack.s)
    stack.managed(STANDIN).stop()
    try:
        stopped_ms = int(time.time() * 1000)
        _person(pg, _iin(2362))
        # The reporter tried while the service was down, and kept what it could not deliver,
        # the access event of this insert among it.
        poll_until(lambda: _events(writer, "delivered_ts IS NULL AND attempts > 0 AND "
                                           "last_error LIKE '%does not answer%'"), 60,
                   "an access event the reporter failed to deliver while the stand-in was down")
        kept = poll_until(lambda: _events(writer, "delivered_ts IS NULL AND `table` = 'population.persons' AND "
                                                  f"path = 'cdc' AND first_read >= fromUnixTimestamp64Milli({stopped_ms})"),
                          60, "the access event of the insert made while the stand-in was down")
    finally:
        stack.start_pd236_standin()
    restarted_ms = int(time.time() * 1000)
    waiting = {e["event_id"] for e in _events(writer, "delivered_ts IS NULL AND "
                                                      f"recorded_ts < fromUnixTimestamp64Milli({restarted_ms})")}
    assert {e["event_id"] for e in kept} <= waiting
    # Back, the stand-in gets everything that waited for it within a round or two, not at each
    # event's back-off.
    poll_until(lambda: not waiting & {e["event_id"] for e in _events(writer, "delivered_ts IS NULL")}, 30,
               "the events kept while the stand-in was down delivered")
    delivered = {e["event_id"]: e["receipt"] for e in _events(writer, "delivered_ts IS NOT NULL")}
    received = _received(stack)
    accepted = Counter(r["request_id"] for r in received if r["outcome"] == "accepted")
    receipts = {r["request_id"]: r["receipt"] for r in received if r["outcome"] == "accepted"}
    for event_id, receipt in delivered.items():
        assert accepted[event_id] == 1, f"access event {event_id} accepted {accepted[event_id]} times"
        assert receipts[event_id] == receipt
    # Nothing the stand-in accepted from the reporter is unknown to the outbox.
    assert {i for i in accepted if not i.startswith("test-act-")} <= set(_events_ids(writer))
    # What the operator sees.
    status = qoima(stack, "pd236", "status", "--json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert any(r["table"] == "population.persons" and r["path"] == "cdc" and r["delivered"] >= 1
               for r in report["tables"])
    assert report["providers_without_legal_basis"] == []


def _events_ids(writer) -> list[str]:
    return [row[0] for row in writer.query(f"SELECT event_id FROM {ACCESS_EVENTS_TABLE} FINAL").result_rows]


def test_a_bad_or_expired_token_is_refused_and_the_refusal_is_visible(stack, tmp_path):
    endpoint = stack.s.pd236_endpoint
    row = {"event_id": f"refused-{time.time_ns()}", "provider": "demo", "organization": "O", "information_system": "IS",
           "table": "population.persons", "path": "cdc", "categories": ["identifiers"], "rows": 1, "subjects": 1,
           "subjects_exact": True, "legal_basis": "b", "purpose": "p", "key_id": "k1",
           "interval_start": "2026-12-05T00:00:00Z", "interval_end": "2026-12-05T00:01:00Z",
           "first_read": "2026-12-05T00:00:00Z", "last_read": "2026-12-05T00:00:00Z", "attempts": 0,
           "delivered_ts": None, "receipt": "", "last_error": "", "_version": 0}
    # Another operator's key: the signature does not verify with the registered public key.
    generate_key(tmp_path / "other.pem", tmp_path / "other.pub.pem")
    stranger = TokenIssuer(tmp_path / "other.pem", stack.s.pd236_issuer, stack.s.pd236_audience, 300)
    reply = client.send(endpoint, client.message(row["event_id"], row), stranger.token("IS"), row["event_id"])
    assert (reply.status, reply.accepted, reply.reason) == (401, False, "http_401") and "signature" in reply.error

    # An expired token, through the reporter: the event stays due, the refusal is counted and kept.
    class Outbox:
        def __init__(self) -> None:
            self.saved: list[dict] = []

        def due(self, now, limit):
            return [row] if not self.saved else []

        def save(self, updated):
            self.saved.append(updated)

        def backlog(self):
            return 1, None

    expired = issuer_for(stack.s)
    expired.ttl_s = -60
    before = metrics.PD_FAILURES.labels("http_401")._value.get()
    outbox = Outbox()
    Reporter(outbox, expired, endpoint).step()
    (updated,) = outbox.saved
    assert updated["delivered_ts"] is None and updated["last_error"] == "token refused by the service: expired (HTTP 401)"
    assert metrics.PD_FAILURES.labels("http_401")._value.get() == before + 1
    refusals = [r for r in _received(stack) if r["outcome"] == "refused"]
    assert {"signature", "expired"} <= {r["reason"] for r in refusals}


def test_the_testing_act_is_produced_from_the_stand_in(stack, tmp_path):
    pypdf = pytest.importorskip("pypdf")
    path = tmp_path / "act.pdf"
    result = qoima(stack, "pd236", "test-act", "--out", str(path))
    assert result.returncode == 0, result.stderr
    assert "10 of 10 successful responses" in result.stdout and path.is_file()
    text = "".join(page.extract_text() for page in pypdf.PdfReader(path).pages).replace("\n", "")
    jtis = [line.split("token ")[1].split()[0] for line in result.stdout.splitlines() if " token " in line]
    assert len(jtis) == 10 and all(jti in text for jti in jtis)
    # The stand-in accepted exactly those ten tokens' requests.
    accepted = {r["jti"] for r in _received(stack) if r["outcome"] == "accepted" and r["request_id"].startswith("test-act-")}
    assert set(jtis) <= accepted

    # Against a service that refuses, there is no act, and the command says why.
    refused = qoima(stack, "pd236", "test-act", "--out", str(tmp_path / "none.pdf"),
                    "--url", f"{stack.s.pd236_standin_url}/nowhere")
    assert refused.returncode != 0 and "0 of 10 requests succeeded" in refused.stderr
    assert not (tmp_path / "none.pdf").exists()
