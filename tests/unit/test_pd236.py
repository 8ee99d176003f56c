"""PD236 access protocol without servers: categories, the access log's buckets and sketch, the
events a batch emits, the security token, the stand-in's judgement, the reporter's outbox
logic and the testing act."""
from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone

import pytest

from governance.pd236 import client, test_act as act
from governance.pd236.reporter import Reporter
from governance.pd236.token import TokenError, TokenIssuer, TokenRefused, generate_key, verify
from infra.pd236_standin import Journal, judge
from model.names import ACCESS_TOPIC, PROCESSOR_STATE_TOPIC
from model.personal_data import categories, subject_column, table_access
from schemas.avro_codec import codec_for
from streams.access_log import SUBJECTS_K, AccessLog, add_key, estimate
from streams.batch import BatchProcessor
from streams.keys import KeySchedule
from streams.router import Router
from streams.state_store import StateStores

IIN = "900101300126"
OTHER_IIN = "741004386441"
PERSONS = "qoima.raw.demo.population.persons"
AUDIENCE = "pd-access-control"


def _person(person_id: int, op: str = "c", iin: str = IIN) -> bytes:
    return json.dumps({"op": op, "before": None, "source": {"lsn": 5, "ts_ms": 1_705_314_600_000,
                                                             "schema": "population", "table": "persons"},
                       "after": {"person_id": person_id, "iin": iin, "last_name": "A", "first_name": "B",
                                 "middle_name": None, "birth_date": 5479, "sex": "F", "phone": None, "address": None,
                                 "kato_code": "751110000", "status": "active",
                                 "updated_at": "2024-01-15T10:30:00Z"}}).encode()


# --- what a table's reads are --------------------------------------------------------------------


def test_categories_come_from_the_column_roles(demo) -> None:
    assert categories(demo.table("population.persons")) == ("identifiers", "names", "contacts", "quasi_identifiers",
                                                            "sensitive")
    assert categories(demo.table("social.payments")) == ("identifiers",)
    # A BIN names a legal entity, and the type samples are no one's: no access to personal data.
    assert categories(demo.table("social.organizations")) == ()
    assert categories(demo.table("catalog.type_samples")) == ()
    facts = table_access([demo])
    assert ("demo", "social.organizations") not in facts
    # Whom a row is about: the person's IIN pseudonym, in a register and in a payments table alike.
    assert subject_column(demo.table("population.persons")) == "iin_hash"
    assert subject_column(demo.table("social.payments")) == "person_iin_hash"
    assert subject_column(demo.table("social.organizations")) is None
    assert facts[("demo", "population.persons")].legal_basis.startswith("Закон РК")


# --- the access log --------------------------------------------------------------------------------


def test_the_sketch_is_exact_for_few_keys_and_close_for_many() -> None:
    few: list[int] = []
    for n in range(50):
        add_key(few, f"[{n}]".encode())
        add_key(few, f"[{n}]".encode())   # the same key again counts once
    assert estimate(few) == (50, True)
    many: list[int] = []
    for n in range(20_000):
        add_key(many, f"[{n}]".encode())
    count, exact = estimate(many)
    assert not exact and len(many) == SUBJECTS_K
    assert 20_000 * 0.6 < count < 20_000 * 1.4   # about 13% standard error at k = 64


def test_a_bucket_becomes_one_event_when_its_interval_ends(demo, ring) -> None:
    store: dict = {}
    log = AccessLog([demo], KeySchedule.single(ring), store, interval_s=60)
    for person_id in (1, 2, 2):
        assert log.note(3, "demo", "population.persons", "c", f"[{person_id}]".encode(), None, 1_000_500) == "cdc"
    assert log.note(3, "demo", "population.persons", "r", b"[9]", None, 1_000_600) == "snapshot"
    assert log.note(3, "demo", "social.organizations", "c", b"[1]", None, 1_000_700) is None
    assert list(log.closed(1_019_999)) == []          # the interval [960 s, 1020 s) is still open
    events = sorted(log.closed(1_020_000), key=lambda e: e.path)
    assert [(e.path, e.rows, e.subjects, e.subjects_exact) for e in events] == [("cdc", 3, 2, True),
                                                                               ("snapshot", 1, 1, True)]
    cdc = events[0]
    assert (cdc.interval_start_ms, cdc.interval_end_ms, cdc.first_read_ms, cdc.last_read_ms) == \
        (960_000, 1_020_000, 1_000_500, 1_000_500)
    assert cdc.key_id == "k1" and cdc.purpose and cdc.information_system == demo.information_system
    assert store == {}                                 # given once, then gone


class _Worker:
    """A processor worker's batch logic with its access log, over a state of its own."""

    def __init__(self, demo, ring, state: StateStores | None = None) -> None:
        codec = codec_for([demo])
        self.state = state or StateStores()
        keys = KeySchedule.single(ring)
        self.batch = BatchProcessor(Router([demo], keys, codec), codec, state=self.state, partitions=1,
                                    access=AccessLog([demo], keys, self.state["access"], interval_s=60))
        self.codec = codec

    def work(self, events: list[tuple[int, bytes]], now: float, raw: str = PERSONS) -> list:
        """Work events (offset, value) of a table (the persons by default), as spread by the raw step."""
        batch = [("qoima.raw.processor-work", 0, offset, f"[{offset}]".encode(), value,
                  [("qoima-raw", f"{raw}\x1f0\x1f{offset}".encode())]) for offset, value in events]
        return self.batch.process(batch, now=now).records


def test_a_batch_emits_the_access_event_in_its_own_records_and_state(demo, ring) -> None:
    worker = _Worker(demo, ring)
    # Three rows, two of them about the same person (one IIN): two subjects.
    first = worker.work([(1, _person(1)), (2, _person(2)), (3, _person(3, iin=OTHER_IIN))], now=1000.0)
    assert not [r for r in first if r[0] == ACCESS_TOPIC]
    changelog = [(key, value) for topic, key, value, _, _ in first if topic == PROCESSOR_STATE_TOPIC]
    assert any(key.startswith(b"access\x1f0|demo|population.persons|cdc|k1|960000") for key, _ in changelog)
    assert all(IIN.encode() not in (key + (value or b"")) for key, value in changelog)
    later = worker.work([], now=1021.0)
    (access,) = [value for topic, _, value, _, _ in later if topic == ACCESS_TOPIC]
    record = worker.codec.decode(access)[1]
    assert (record["table"], record["path"], record["rows"], record["subjects"]) == ("population.persons", "cdc", 3, 2)
    assert IIN not in json.dumps(record, default=str) and OTHER_IIN not in json.dumps(record, default=str)
    # The bucket leaves the state in the same batch (a tombstone), so it is never emitted twice.
    deleted = [key for topic, key, value, _, _ in later if topic == PROCESSOR_STATE_TOPIC and value is None]
    assert deleted and deleted[0].startswith(b"access\x1f0|")


def _payment(payment_id: int, iin: str) -> bytes:
    return json.dumps({"op": "c", "before": None, "source": {"lsn": 5, "ts_ms": 1_705_314_600_000,
                                                             "schema": "social", "table": "payments"},
                       "after": {"payment_id": payment_id, "person_iin": iin, "org_bin": "990740000683",
                                 "payment_type": "pension", "amount": "123.45", "period": 19000, "status": "paid",
                                 "paid_at": "2024-01-15T10:30:00Z", "kato_code": "751110000",
                                 "updated_at": "2024-01-15T10:30:00Z"}}).encode()


def test_the_subjects_of_a_payments_table_are_the_persons_paid_not_the_payments(demo, ring) -> None:
    worker = _Worker(demo, ring)
    payments = [(1, _payment(1, IIN)), (2, _payment(2, IIN)), (3, _payment(3, OTHER_IIN)), (4, _payment(4, IIN))]
    outcomes = worker.work(payments, now=1000.0, raw="qoima.raw.demo.social.payments")
    assert [topic for topic, *_ in outcomes if "payments" in topic] == ["qoima.clean.demo.social.payments"] * 4
    (access,) = [v for t, _, v, _, _ in worker.work([], now=1021.0) if t == ACCESS_TOPIC]
    record = worker.codec.decode(access)[1]
    assert (record["table"], record["rows"], record["subjects"]) == ("social.payments", 4, 2)


def test_a_worker_restored_from_the_changelog_emits_the_same_event(demo, ring) -> None:
    worker = _Worker(demo, ring)
    changelog = [(key, value) for topic, key, value, _, _ in worker.work([(1, _person(1))], now=1000.0)
                 if topic == PROCESSOR_STATE_TOPIC]
    (original,) = [v for t, _, v, _, _ in worker.work([], now=1021.0) if t == ACCESS_TOPIC]
    restored = StateStores()
    restored.restore(changelog)      # a worker that crashed after the first batch, and came back
    (again,) = [v for t, _, v, _, _ in _Worker(demo, ring, restored).work([], now=1021.0) if t == ACCESS_TOPIC]
    assert worker.codec.decode(again)[1]["event_id"] == worker.codec.decode(original)[1]["event_id"]


# --- the security token ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pd236-keys")
    generate_key(directory / "key.pem", directory / "key.pub.pem")
    generate_key(directory / "other.pem", directory / "other.pub.pem")
    return directory


@pytest.fixture(scope="module")
def issuer(keys) -> TokenIssuer:
    return TokenIssuer(keys / "key.pem", "qoima-operator", AUDIENCE, 300)


def test_a_token_verifies_with_the_public_key_and_names_its_holder(issuer, keys) -> None:
    token = issuer.token(subject="population register")
    claims = verify(token.value, (keys / "key.pub.pem").read_bytes(), AUDIENCE)
    assert (claims["iss"], claims["sub"], claims["jti"], claims["mode"]) == \
        ("qoima-operator", "population register", token.jti, "logging")
    assert (keys / "key.pem").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(("make", "reason"), [
    (lambda i, k: i.token("x", now=time.time() - 1000).value, "expired"),
    (lambda i, k: TokenIssuer(k / "other.pem", "qoima-operator", AUDIENCE, 300).token("x").value, "signature"),
    (lambda i, k: TokenIssuer(k / "key.pem", "qoima-operator", "another-service", 300).token("x").value, "audience"),
    (lambda i, k: "not.a.token", "malformed"),
])
def test_a_bad_token_is_refused_with_its_reason(issuer, keys, make, reason) -> None:
    with pytest.raises(TokenRefused) as refused:
        verify(make(issuer, keys), (keys / "key.pub.pem").read_bytes(), AUDIENCE)
    assert refused.value.reason == reason


def test_a_missing_or_wrong_key_file_says_how_to_fix_it(tmp_path) -> None:
    with pytest.raises(TokenError, match="QOIMA_PD236_PRIVATE_KEY_FILE"):
        TokenIssuer(tmp_path / "absent.pem", "i", AUDIENCE, 300)
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(TokenError, match="not an unencrypted PEM private key"):
        TokenIssuer(tmp_path / "bad.pem", "i", AUDIENCE, 300)


# --- the stand-in ---------------------------------------------------------------------------------


def _row(event_id: str = "e1") -> dict:
    at = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
    return {"event_id": event_id, "provider": "demo", "organization": "O", "information_system": "IS",
            "table": "population.persons", "path": "cdc", "categories": ["identifiers"], "rows": 3, "subjects": 2,
            "subjects_exact": True, "legal_basis": "basis", "purpose": "purpose", "key_id": "k1",
            "interval_start": at, "interval_end": at + timedelta(minutes=1), "first_read": at, "last_read": at,
            "recorded_ts": at, "attempts": 0, "delivered_ts": None, "receipt": "", "last_error": "",
            "next_attempt_ts": at, "_version": 0}


def test_the_stand_in_keeps_the_first_request_of_an_id_and_answers_repeats_as_duplicates(issuer, keys,
                                                                                         tmp_path) -> None:
    journal = Journal(tmp_path / "received.jsonl")
    public = (keys / "key.pub.pem").read_bytes()
    body = client.message("e1", _row()).encode()
    first = judge(journal, f"Bearer {issuer.token('IS').value}", "e1", body, public, AUDIENCE)
    again = judge(journal, f"Bearer {issuer.token('IS').value}", "e1", body, public, AUDIENCE)
    assert first[0] == again[0] == 200 and not first[1]["duplicate"] and again[1]["duplicate"]
    assert again[1]["receipt"] == first[1]["receipt"]
    assert judge(journal, "", "e1", body, public, AUDIENCE)[1]["reason"] == "missing"
    assert judge(journal, f"Bearer {issuer.token('IS').value}", "other", body, public, AUDIENCE)[1]["reason"] == \
        "idempotency_key"
    # Restarted, it still knows what it accepted.
    reloaded = Journal(tmp_path / "received.jsonl")
    assert [r["outcome"] for r in reloaded.records] == ["accepted", "duplicate", "refused", "rejected"]
    assert judge(reloaded, f"Bearer {issuer.token('IS').value}", "e1", body, public, AUDIENCE)[1]["duplicate"]


def test_the_message_carries_counts_and_categories_only() -> None:
    message = json.loads(client.message("e1", _row()))
    assert message["request_id"] == "e1" and message["mode"] == "logging"
    assert set(message["access"]) == set(client.FIELDS)
    assert message["access"]["interval_start"] == "2026-12-05T12:00:00.000Z"


# --- the reporter ---------------------------------------------------------------------------------


class _Outbox:
    def __init__(self, rows: list[dict]) -> None:
        self.rows = {row["event_id"]: row for row in rows}

    def due(self, now, limit):
        return [r for r in self.rows.values() if r["delivered_ts"] is None and r["next_attempt_ts"] <= now][:limit]

    def save(self, row):
        assert row["_version"] > self.rows[row["event_id"]]["_version"]
        self.rows[row["event_id"]] = row

    def backlog(self):
        waiting = [r for r in self.rows.values() if r["delivered_ts"] is None]
        return len(waiting), min((r["recorded_ts"] for r in waiting), default=None)


def test_the_reporter_retries_with_back_off_until_the_service_accepts(issuer) -> None:
    now = datetime(2026, 12, 5, 12, 5, tzinfo=timezone.utc)
    outbox = _Outbox([_row("e1"), _row("e2")])
    answers = [client.Reply(0, False, error="the service does not answer (connection refused or lost)",
                            reason="connection")]
    sent: list[tuple[str, str]] = []

    def send(endpoint, body, token, request_id):
        sent.append((request_id, token.jti))
        return answers[0]

    reporter = Reporter(outbox, issuer, "http://service/api", send=send, clock=lambda: now)
    reporter.step()
    # Down: one try, the rest wait for the next round; the failed one waits its back-off.
    assert [r for r, _ in sent] == ["e1"]
    assert outbox.rows["e1"]["attempts"] == 1 and outbox.rows["e1"]["next_attempt_ts"] == now + timedelta(seconds=5)
    assert reporter.backlog().undelivered == 2
    answers[0] = client.Reply(200, True, receipt="R-1")
    now += timedelta(seconds=5)
    reporter.step()
    assert {r for r, _ in sent[1:]} == {"e1", "e2"} and len({jti for _, jti in sent}) == 3   # a token per request
    assert all(r["delivered_ts"] == now and r["receipt"] == "R-1" for r in outbox.rows.values())
    assert reporter.backlog().undelivered == 0
    reporter.step()
    assert len(sent) == 3                              # delivered: never sent again


# --- the testing act ------------------------------------------------------------------------------


def test_the_act_lists_ten_successful_requests_and_their_tokens(issuer, tmp_path) -> None:
    pypdf = pytest.importorskip("pypdf")
    replies = iter(client.Reply(200, True, receipt=f"R-{n}") for n in range(10))
    exchanges = act.exchange("http://service/api", issuer, send=lambda *args: next(replies))
    path = act.write_pdf(tmp_path / "act.pdf", exchanges, "http://service/api?token=secret", issuer)
    text = "".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
    assert "10 of 10 successful responses" in text and "АКТ ТЕСТИРОВАНИЯ" in text
    assert all(e.jti in text.replace("\n", "") for e in exchanges)
    assert "secret" not in text    # the endpoint without its query


def test_no_act_without_ten_successes(issuer, tmp_path) -> None:
    replies = iter([client.Reply(200, True, receipt="R")] * 9 + [client.Reply(401, False, error="refused",
                                                                             reason="http_401")])
    exchanges, written = act.test_act("http://service/api", issuer, tmp_path / "act.pdf",
                                      send=lambda *args: next(replies))
    assert written is None and not (tmp_path / "act.pdf").exists()
    assert [e.accepted for e in exchanges] == [True] * 9 + [False] and exchanges[-1].error == "refused"


def test_once_the_service_answers_again_the_backlog_goes_without_waiting_its_back_off(issuer) -> None:
    now = datetime(2026, 12, 5, 12, 5, tzinfo=timezone.utc)
    waited = {**_row("e1"), "attempts": 6, "next_attempt_ts": now + timedelta(minutes=5)}
    outbox = _Outbox([waited, _row("e2")])
    answers = [client.Reply(0, False, error="the service does not answer", reason="connection")]
    sent: list[str] = []

    def send(endpoint, body, token, request_id):
        sent.append(request_id)
        return answers[0]

    reporter = Reporter(outbox, issuer, "http://service/api", send=send, clock=lambda: now)
    reporter.step()                                # down: e2 tried, e1 waits its back-off
    answers[0] = client.Reply(200, True, receipt="R")
    now += timedelta(seconds=5)
    reporter.step()                                # e2 again: accepted, the service is back
    reporter.step()                                # e1 at once, not in five minutes
    assert sent == ["e2", "e2", "e1"] and all(r["delivered_ts"] for r in outbox.rows.values())


def test_a_bucket_reports_what_was_read_under_the_regulation_in_force_then(demo, ring) -> None:
    store: dict = {}
    AccessLog([demo], KeySchedule.single(ring), store, interval_s=60).note(0, "demo", "population.persons", "c",
                                                                          b"[1]", None, 1_000_500)
    # Applied since: the table is no longer captured and the interval is shorter; the rows were read.
    later = AccessLog([], KeySchedule.single(ring), store, interval_s=5)
    assert list(later.closed(1_010_000)) == []      # its own interval (to 1,020 s) has not ended
    (event,) = later.closed(1_020_000)
    assert (event.rows, event.interval_end_ms, event.categories[0]) == (1, 1_020_000, "identifiers")
    assert event.legal_basis.startswith("Закон РК") and store == {}


def test_a_truncate_is_no_read_and_a_quarantined_row_names_no_subject(demo, ring) -> None:
    worker = _Worker(demo, ring)
    truncate = json.dumps({"op": "t", "before": None, "after": None,
                           "source": {"ts_ms": 1, "schema": "population", "table": "persons"}}).encode()
    broken = _person(2).replace(b'"status": "active"', b'"status": null')   # a mandatory column empty
    worker.work([(1, truncate), (2, broken), (3, _person(3))], now=1000.0)
    (access,) = [v for t, _, v, _, _ in worker.work([], now=1021.0) if t == ACCESS_TOPIC]
    record = worker.codec.decode(access)[1]
    assert (record["rows"], record["subjects"]) == (2, 1)


def test_a_gateway_saying_the_service_is_unavailable_counts_as_down(issuer) -> None:
    now = datetime(2026, 12, 5, 12, 5, tzinfo=timezone.utc)
    outbox = _Outbox([_row("e1"), _row("e2"), _row("e3")])
    sent: list[str] = []

    def send(endpoint, body, token, request_id):
        sent.append(request_id)
        return client.Reply(503, False, error="HTTP 503", reason="http_503")

    Reporter(outbox, issuer, "http://gateway/api", send=send, clock=lambda: now).step()
    assert sent == ["e1"]      # one try a round, not every due event
