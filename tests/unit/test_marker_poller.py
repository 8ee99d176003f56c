"""Marker mode (connectors/marker_poller.py, DM385 §63) against a fake source and a fake Kafka.

The fake source answers `page` with the semantics of the poller's keyset SQL (checked on its
own below), so paging, watermarks, lookback, deletes and reconciliation are tested without a
database; the events go through the real router to show they become the records CDC gives.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
import yaml

from connectors.marker_poller import MarkerPoller, MarkerTable, PollerConfigError, PollerError, _classify, state_key
from model.names import MARKER_STATE_TOPIC as STATE_TOPIC
from model.regulation import RegulationError, load_regulation
from schemas import envelope
from schemas.avro_codec import codec_for
from streams.keys import pseudonym
from streams.router import Router

UTC = timezone.utc
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
IIN = "850101300124"
MICROS = 1_000_000


def micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


# --- fakes ------------------------------------------------------------------------------------


class FakeSource:
    """A table in memory, read the way the keyset SQL reads it."""

    def __init__(self, rows=(), extra=(), missing=(), now: datetime = NOW) -> None:
        self.rows = [dict(r) for r in rows]
        self.extra, self.missing = list(extra), set(missing)
        self.now = now
        self.pages: list[dict] = []
        self.allowed = True
        self.fail: Exception | None = None

    def catalog(self, table: MarkerTable):
        columns = [c.name for c in table.table.columns if c.name not in self.missing] + self.extra
        return columns, self.allowed, True

    def clock(self):
        return self.now, self.now.astimezone(UTC).replace(tzinfo=None)

    def page(self, table: MarkerTable, *, after, lower, upper, limit):
        if self.fail is not None:
            raise self.fail
        self.pages.append({"after": after, "lower": lower, "upper": upper, "limit": limit})

        def order(row):
            return (table.position(row[table.marker]), *table.key_of(row))

        # One fake can hold rows of several tables: a row belongs to the table whose key it has.
        rows = sorted((r for r in self.rows if all(k in r for k in table.key)), key=order)
        if after is not None:
            rows = [r for r in rows if order(r) > (table.position(after[0]), *after[1:])]
        elif lower is not None:
            rows = [r for r in rows if table.position(r[table.marker]) >= lower]
        if upper is not None:
            rows = [r for r in rows if table.position(r[table.marker]) <= upper]
        return [dict(r) for r in rows[:limit]]

    def keys(self, table: MarkerTable):
        return [(table.key_of(r), r[table.marker], table.is_deleted(r)) for r in self.rows
                if all(k in r for k in table.key)]

    def close(self) -> None:
        pass

    # changes at the "source"
    def upsert(self, **row) -> None:
        self.rows = [r for r in self.rows if r["license_id"] != row["license_id"]] + [row]

    def delete(self, license_id: int) -> None:
        self.rows = [r for r in self.rows if r["license_id"] != license_id]


class FakeKafka:
    """Produced messages count as delivered only once flushed; a flush can be made to fail."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, bytes | None, bytes | None]] = []
        self.delivered: list[tuple[str, bytes | None, bytes | None]] = []
        self.fail_flush = False

    def produce(self, topic, key, value) -> None:
        self.pending.append((topic, key, value))

    def flush(self) -> None:
        if self.fail_flush:
            self.pending.clear()
            raise PollerError("kafka", "1 message(s) undelivered")
        self.delivered += self.pending
        self.pending.clear()

    def events(self, topic: str) -> list[dict]:
        return [json.loads(v) for t, _, v in self.delivered if t == topic]

    def states(self) -> dict[str, dict]:
        return {k.decode(): json.loads(v) for t, k, v in self.delivered if t == STATE_TOPIC}

    def take(self, topic: str) -> list[dict]:
        events = self.events(topic)
        self.delivered.clear()
        return events


# --- the demo marker regulation ---------------------------------------------------------------


@pytest.fixture(scope="module")
def registry(unit_settings, regulation_env, demo_password_file):
    return load_regulation(unit_settings.regulations_dir / "demo_marker.yaml", regulation_env)


LICENSES_RAW = "qoima.raw.registry.registry.licenses"


def license_row(license_id: int = 7, updated_at: datetime = datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
                **overrides) -> dict:
    row = {"license_id": license_id, "holder_iin": IIN, "license_type": "pharmacy",
           "issued_on": date(2024, 1, 10), "revoked": False, "updated_at": updated_at}
    row.update(overrides)
    return row


def poller_for(regulation, source: FakeSource, kafka: FakeKafka, saved=None, **source_overrides) -> MarkerPoller:
    if source_overrides:
        regulation = regulation.model_copy(update={"source": regulation.source.model_copy(update=source_overrides)})
    return MarkerPoller([regulation], {regulation.provider: source}, kafka, saved or {}, clock=lambda: NOW.timestamp())


def test_demo_marker_regulation(registry) -> None:
    assert registry.provider == "registry" and registry.polled
    table = registry.tables[0]
    assert (table.name, table.marker, table.deleted_flag) == ("registry.licenses", "updated_at", "revoked")
    assert registry.raw_topic(table) == LICENSES_RAW
    assert (registry.source.poll_seconds, registry.source.lookback_seconds) == (5, 60)


def test_cdc_regulations_are_not_polled(demo) -> None:
    assert not demo.polled
    assert MarkerPoller([demo], {}, FakeKafka()).regulations == []


# --- regulation checks ------------------------------------------------------------------------


def _marker_doc(unit_settings) -> dict:
    return yaml.safe_load((unit_settings.regulations_dir / "demo_marker.yaml").read_text(encoding="utf-8"))


def _error(tmp_path: Path, document: dict, regulation_env) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RegulationError) as info:
        load_regulation(path, regulation_env)
    return str(info.value)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["tables"][0].pop("marker"), "needs 'marker: <column>'"),
    (lambda d: d["tables"][0].update(marker="issued_at"), "marker column 'issued_at' is not among its columns"),
    (lambda d: d["tables"][0].update(marker="issued_on"), "a marker must increase with every change"),
    (lambda d: d["tables"][0].update(marker="license_type"), "a marker must increase with every change"),
    (lambda d: d["tables"][0]["columns"][5].update(nullable=True), "must be declared 'nullable: false'"),
    (lambda d: d["tables"][0].update(deleted_flag="license_type"), "must be boolean"),
    (lambda d: d["tables"][0].update(deleted_flag="gone"), "deleted_flag column 'gone' is not among"),
    (lambda d: d["source"].update(snapshot="initial"), "snapshot: applies to capture 'cdc'"),
    (lambda d: d["source"].update(heartbeat_seconds=10), "heartbeat_seconds: applies to capture 'cdc'"),
    (lambda d: d.update(source={k: v for k, v in d["source"].items() if not k.startswith(("poll", "lookback",
                                                                                           "safety", "reconcile"))}
                        | {"capture": "cdc"}),
     "'marker' and 'deleted_flag' apply to capture 'marker' only"),
])
def test_marker_regulation_mistakes_are_named(tmp_path, unit_settings, regulation_env, change, expected) -> None:
    document = _marker_doc(unit_settings)
    change(document)
    assert expected in _error(tmp_path, document, regulation_env)


def test_poll_settings_refused_on_cdc(tmp_path, unit_settings, regulation_env) -> None:
    document = _marker_doc(unit_settings)
    document["source"]["capture"] = "cdc"
    for table in document["tables"]:
        table.pop("marker"), table.pop("deleted_flag")
    message = _error(tmp_path, document, regulation_env)
    assert "applies to capture 'marker' only" in message and "poll_seconds" in message


def test_integer_marker_is_accepted(tmp_path, unit_settings, regulation_env) -> None:
    document = _marker_doc(unit_settings)
    document["tables"][0]["columns"].append({"name": "row_seq", "type": "bigint", "nullable": False})
    document["tables"][0]["marker"] = "row_seq"
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    table = MarkerTable(*(lambda r: (r, r.tables[0]))(load_regulation(path, regulation_env)))
    assert table.kind == "integer" and table.lookback == 1000
    assert table.version(41) == 41 and table.version(-3) == 0
    assert table.upper_bound(NOW, NOW.replace(tzinfo=None)) is None


# --- SQL --------------------------------------------------------------------------------------


def test_keyset_sql(registry) -> None:
    table = MarkerTable(registry, registry.tables[0])
    first, params = table.page_sql(after=None, lower=micros(NOW) - 60 * MICROS, upper=micros(NOW), limit=1000)
    text = first.as_string(None)
    assert text.startswith('SELECT "license_id", "holder_iin", "license_type", "issued_on", "revoked", "updated_at" '
                           'FROM "registry"."licenses" WHERE ')
    assert '"updated_at" >= %s AND "updated_at" <= %s' in text  # lower bound inclusive: ties at it are re-read
    assert text.endswith('ORDER BY "updated_at", "license_id" LIMIT %s')
    assert params == [NOW - timedelta(seconds=60), NOW, 1000]
    moment = datetime(2024, 1, 15, 16, 0, tzinfo=timezone(timedelta(hours=6)))
    nxt, params = table.page_sql(after=(moment, 7), lower=0, upper=None, limit=10)
    assert '("updated_at", "license_id") > (%s, %s)' in nxt.as_string(None)
    assert ">=" not in nxt.as_string(None)  # the cursor replaces the lower bound
    assert params == [datetime(2024, 1, 15, 10, 0, tzinfo=UTC), 7, 10]
    assert table.page_sql(after=None, lower=None, upper=None, limit=5)[0].as_string(None).count("WHERE TRUE") == 1
    keys = table.keys_sql().as_string(None)
    assert keys == 'SELECT "license_id", "updated_at", "revoked" IS TRUE FROM "registry"."licenses"'


def test_timestamp_without_zone_compares_wall_clock(registry) -> None:
    table = MarkerTable(registry, registry.tables[0])
    table.zoned = False  # as for a `timestamp` column
    wall = datetime(2024, 1, 15, 10, 30)
    assert table.parameter(table.position(wall)) == wall
    # The upper bound comes from the source's wall clock (localtimestamp), not from now().
    assert table.upper_bound(NOW, datetime(2024, 1, 15, 17, 0)) == micros(datetime(2024, 1, 15, 17, 0, tzinfo=UTC))


# --- events -----------------------------------------------------------------------------------


def test_event_is_a_debezium_envelope(registry) -> None:
    source, kafka = FakeSource([license_row()]), FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    raw = [(k, v) for t, k, v in kafka.delivered if t == LICENSES_RAW]
    assert len(raw) == 1
    key, value = raw[0]
    assert json.loads(key) == {"license_id": 7}  # Debezium's key: the primary key as JSON
    change = envelope.decode(value)
    assert change.op == "r"  # the first full pass is a snapshot
    assert json.loads(value)["source"]["lsn"] == micros(datetime(2024, 1, 15, 10, 30, tzinfo=UTC))  # the marker
    assert change.source_ts_ms == NOW.timestamp() * 1000  # a snapshot's commit time is the poll's
    assert (change.schema, change.table) == ("registry", "licenses")
    assert change.row == {"license_id": 7, "holder_iin": IIN, "license_type": "pharmacy", "issued_on": 19732,
                          "revoked": False, "updated_at": "2024-01-15T10:30:00+00:00"}


def _marker_copy_of_demo(tmp_path, unit_settings, regulation_env):
    """demo.yaml as a marker regulation: same provider, so the same raw topics and router."""
    document = yaml.safe_load((unit_settings.regulations_dir / "demo.yaml").read_text(encoding="utf-8"))
    for name in ("snapshot", "heartbeat_seconds"):
        document["source"].pop(name, None)
    document["source"]["capture"] = "marker"
    for table in document["tables"]:
        table["marker"] = "updated_at"
    path = tmp_path / "demo_polled.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return load_regulation(path, regulation_env)


PERSON = {"person_id": 42, "iin": IIN, "last_name": "Сейітқалиева", "first_name": "Әйгерім", "middle_name": None,
          "birth_date": date(1985, 1, 1), "sex": "F", "phone": "+7 701 234 56 78",
          "address": "Алматы, Абай даңғылы 10", "kato_code": "751110000", "status": "active",
          "updated_at": datetime(2024, 1, 15, 16, 30, 0, 123456, tzinfo=timezone(timedelta(hours=6)))}
PERSON_DEBEZIUM = {**PERSON, "birth_date": 5479, "updated_at": "2024-01-15T10:30:00.123456Z"}
PAYMENT = {"payment_id": 9001, "person_iin": IIN, "org_bin": "071240500401", "payment_type": "pension",
           "amount": Decimal("48500.50"), "period": date(2024, 1, 1), "status": "paid",
           "paid_at": datetime(2024, 1, 14, 4, 0, tzinfo=UTC), "updated_at": datetime(2024, 1, 14, 4, 0, tzinfo=UTC),
           "kato_code": "751110000"}
PAYMENT_DEBEZIUM = {**PAYMENT, "amount": "48500.50", "period": 19723, "paid_at": "2024-01-14T04:00:00Z",
                    "updated_at": "2024-01-14T04:00:00Z"}


def _cdc(op: str, table: str, row: dict, ts_ms: int, lsn: int = 24_023_128, **extra) -> bytes:
    schema, name = table.split(".")
    return json.dumps({"before": None if op != "d" else row, "after": None if op == "d" else {**row, **extra},
                       "source": {"connector": "postgresql", "ts_ms": ts_ms, "lsn": lsn, "schema": schema,
                                  "table": name},
                       "op": op, "ts_ms": ts_ms + 5}, ensure_ascii=False).encode()


def _clean(router, codec, topic: str, value: bytes) -> dict:
    out = router.route(topic, 0, 1, value)
    assert out.outcome == "clean", out.reason
    record = codec.decode(out.value)[1]
    record.pop("_processed_ts_ms")
    return record


@pytest.mark.parametrize("table, row, debezium", [
    ("population.persons", PERSON, PERSON_DEBEZIUM),
    ("social.payments", PAYMENT, PAYMENT_DEBEZIUM),
])
def test_polled_row_becomes_the_record_cdc_gives(tmp_path, unit_settings, regulation_env, ring, table, row,
                                                 debezium) -> None:
    polled = _marker_copy_of_demo(tmp_path, unit_settings, regulation_env)
    codec = codec_for([polled])
    router = Router([polled], ring, codec)
    topic = polled.raw_topic(polled.table(table))
    source = FakeSource([row], extra=["legacy_note"])  # one column the regulation does not declare
    kafka = FakeKafka()
    poller = poller_for(polled, source, kafka)
    for state in poller.states.values():
        state.snapshot_done, state.position = True, 0  # past the first pass: an ordinary change
    poller.poll(polled)
    [value] = [v for t, _, v in kafka.delivered if t == topic]
    change = envelope.decode(value)
    assert change.op == "u"
    assert json.loads(value)["source"]["lsn"] == micros(row["updated_at"])  # the marker, in microseconds
    assert change.source_ts_ms == micros(row["updated_at"]) // 1000  # a timestamptz marker is the commit time
    from_poller = _clean(router, codec, topic, value)
    from_cdc = _clean(router, codec, topic, _cdc("u", table, debezium, change.source_ts_ms, legacy_note="x"))
    assert from_poller.pop("_version") == from_cdc.pop("_version")  # both the raw offset's (streams/versions.py)
    assert from_poller == from_cdc  # hashes, drops, generalizations, defects, commit time: all the same
    assert "legacy_note: not declared in the regulation, not loaded" in from_poller["_defects"]
    assert b"legacy_note\":null" in value  # named, its value never read


def test_deleted_flag_is_a_delete_with_the_key_only(registry, ring) -> None:
    codec = codec_for([registry])
    router = Router([registry], ring, codec)
    source, kafka = FakeSource([license_row(revoked=True)]), FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    [(key, value)] = [(k, v) for t, k, v in kafka.delivered if t == LICENSES_RAW]
    event = json.loads(value)
    assert event["op"] == "d" and event["after"] is None
    assert event["before"] == {"license_id": 7}  # the key only, as Debezium sends with the default replica identity
    assert json.loads(key) == {"license_id": 7}
    record = _clean(router, codec, LICENSES_RAW, value)
    assert (record["_is_deleted"], record["_op"], record["license_id"]) == (1, "d", 7)
    assert record["holder_iin_hash"] is None


def test_hashed_like_cdc(registry, ring) -> None:
    codec = codec_for([registry])
    source, kafka = FakeSource([license_row()]), FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    [value] = [v for t, _, v in kafka.delivered if t == LICENSES_RAW]
    record = _clean(Router([registry], ring, codec), codec, LICENSES_RAW, value)
    assert record["holder_iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert IIN not in json.dumps(record, default=str)


# --- paging, watermark, lookback --------------------------------------------------------------


def test_keyset_paging_does_not_skip_ties(registry) -> None:
    tie = datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    rows = [license_row(i, tie) for i in (5, 1, 4, 2, 3)] + [license_row(9, tie + timedelta(seconds=1))]
    source, kafka = FakeSource(rows), FakeKafka()
    poller_for(registry, source, kafka, poll_batch_rows=2).poll(registry)
    ids = [e["after"]["license_id"] for e in kafka.events(LICENSES_RAW)]
    assert ids == [1, 2, 3, 4, 5, 9]  # five rows share one marker across three pages
    assert [p["after"] for p in source.pages] == [None, (tie, 2), (tie, 4), (tie + timedelta(seconds=1), 9)]


def test_watermark_is_stored_after_the_events(registry) -> None:
    source, kafka = FakeSource([license_row(1), license_row(2, datetime(2024, 1, 15, 11, 0, tzinfo=UTC))]), FakeKafka()
    poller_for(registry, source, kafka, poll_batch_rows=1).poll(registry)
    topics = [t for t, _, _ in kafka.delivered]
    # Each page: its events, then the watermark they allow; never the other way round.
    assert topics[:4] == [LICENSES_RAW, STATE_TOPIC, LICENSES_RAW, STATE_TOPIC]
    state = kafka.states()["registry/registry.licenses"]
    assert state == {"marker": "updated_at", "kind": "timestamp", "snapshot_done": True,
                     "position": micros(datetime(2024, 1, 15, 11, 0, tzinfo=UTC)), "saved_ms": NOW.timestamp() * 1000}


def test_nothing_new_produces_nothing(registry) -> None:
    source, kafka = FakeSource([license_row(1), license_row(2)]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    poller.poll(registry)
    kafka.delivered.clear()
    poller.poll(registry)
    assert kafka.events(LICENSES_RAW) == [] and kafka.states() == {}  # the lookback read them again, skipped


def test_updates_are_u_with_a_higher_version(registry) -> None:
    source, kafka = FakeSource([license_row(1)]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    poller.poll(registry)
    [first] = kafka.take(LICENSES_RAW)
    source.upsert(**license_row(1, datetime(2024, 1, 15, 10, 30, 0, 1, tzinfo=UTC), license_type="medical"))
    poller.poll(registry)
    [second] = kafka.events(LICENSES_RAW)
    assert (first["op"], second["op"]) == ("r", "u")
    assert second["source"]["lsn"] == first["source"]["lsn"] + 1  # one microsecond later, one version higher
    assert second["after"]["license_type"] == "medical"


def test_lookback_catches_a_late_commit_within_it(registry) -> None:
    source, kafka = FakeSource([license_row(1, datetime(2024, 1, 15, 11, 59, tzinfo=UTC))]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    poller.poll(registry)
    kafka.delivered.clear()
    # Committed now, stamped when its transaction began: behind the watermark.
    source.upsert(**license_row(2, datetime(2024, 1, 15, 11, 58, 30, tzinfo=UTC)))   # 30 s behind: seen
    source.upsert(**license_row(3, datetime(2024, 1, 15, 11, 57, 0, tzinfo=UTC)))    # 2 min behind: not seen
    poller.poll(registry)
    assert [e["after"]["license_id"] for e in kafka.events(LICENSES_RAW)] == [2]
    assert source.pages[-1]["lower"] == micros(datetime(2024, 1, 15, 11, 58, tzinfo=UTC))


def test_future_marker_waits_and_does_not_move_the_watermark(registry) -> None:
    future = NOW + timedelta(minutes=5)
    source, kafka = FakeSource([license_row(1, future)]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    poller.poll(registry)
    assert kafka.events(LICENSES_RAW) == []
    source.upsert(**license_row(2, NOW - timedelta(seconds=1)))
    poller.poll(registry)
    assert [e["after"]["license_id"] for e in kafka.events(LICENSES_RAW)] == [2]
    source.now = future + timedelta(seconds=1)
    kafka.delivered.clear()
    poller.poll(registry)
    assert [e["after"]["license_id"] for e in kafka.events(LICENSES_RAW)] == [1]


def test_safety_lag_lowers_the_upper_bound(registry) -> None:
    source, kafka = FakeSource([license_row(1, NOW - timedelta(seconds=5))]), FakeKafka()
    poller_for(registry, source, kafka, safety_lag_seconds=10).poll(registry)
    assert kafka.events(LICENSES_RAW) == []
    assert source.pages[0]["upper"] == micros(NOW) - 10 * MICROS


def test_restart_resumes_from_the_stored_watermark(registry) -> None:
    old = datetime(2024, 1, 15, 9, 0, tzinfo=UTC)
    source = FakeSource([license_row(1, old), license_row(2, datetime(2024, 1, 15, 11, 0, tzinfo=UTC)),
                         license_row(3, datetime(2024, 1, 15, 11, 0, 30, tzinfo=UTC))])
    kafka = FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    saved = {key: value for key, value in kafka.states().items()}
    # A new process: no memory of what it produced, only the stored watermark.
    kafka2 = FakeKafka()
    source.upsert(**license_row(4, datetime(2024, 1, 15, 11, 5, tzinfo=UTC)))
    poller_for(registry, source, kafka2, saved=saved).poll(registry)
    ids = [e["after"]["license_id"] for e in kafka2.events(LICENSES_RAW)]
    # Rows 2 and 3 are within the lookback of the old watermark: produced again (same versions,
    # harmless downstream); row 1 is far behind it and is not read again; row 4 is new.
    assert ids == [2, 3, 4]
    assert {e["op"] for e in kafka2.events(LICENSES_RAW)} == {"u"}
    assert source.pages[-1]["lower"] == micros(datetime(2024, 1, 15, 10, 59, 30, tzinfo=UTC))


def test_changed_marker_column_starts_over(registry) -> None:
    saved = {state_key(MarkerTable(registry, registry.tables[0])):
             {"marker": "modified_at", "kind": "timestamp", "position": 5, "snapshot_done": True}}
    poller = poller_for(registry, FakeSource(), FakeKafka(), saved=saved)
    state = poller.states[LICENSES_RAW]
    assert state.position is None and not state.snapshot_done


def test_failed_flush_stores_nothing_and_the_rows_come_again(registry) -> None:
    source, kafka = FakeSource([license_row(1)]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    kafka.fail_flush = True
    with pytest.raises(PollerError):
        poller.poll(registry)
    state = poller.states[LICENSES_RAW]
    assert state.position is None and state.seen == {}
    kafka.fail_flush = False
    poller.poll(registry)
    assert [e["after"]["license_id"] for e in kafka.events(LICENSES_RAW)] == [1]


def test_versions_increase_with_every_change(registry) -> None:
    source, kafka = FakeSource([license_row(1)]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    moment = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    for step in range(1, 6):
        moment += timedelta(microseconds=step)
        source.upsert(**license_row(1, moment, revoked=step == 5))
        poller.poll(registry)
    versions = [(e["op"], e["source"]["lsn"]) for e in kafka.events(LICENSES_RAW)]
    assert [op for op, _ in versions] == ["r", "u", "u", "u", "d"]  # the last change revoked it
    assert all(a[1] < b[1] for a, b in zip(versions, versions[1:]))


# --- hard deletes -----------------------------------------------------------------------------


def test_hard_delete_is_invisible_without_reconciliation(registry) -> None:
    source, kafka = FakeSource([license_row(1), license_row(2)]), FakeKafka()
    poller = poller_for(registry, source, kafka, reconcile_every=0)
    poller.poll(registry)
    kafka.delivered.clear()
    source.delete(2)
    for _ in range(10):
        poller.poll(registry)
    assert kafka.events(LICENSES_RAW) == []


def test_reconciliation_finds_hard_deletes(registry, ring) -> None:
    source = FakeSource([license_row(1), license_row(2, datetime(2024, 1, 15, 10, 31, tzinfo=UTC)),
                         license_row(3, revoked=True)])
    kafka = FakeKafka()
    poller = poller_for(registry, source, kafka, reconcile_every=2)
    poller.poll(registry)
    assert set(poller.states[LICENSES_RAW].live) == {(1,), (2,)}  # a soft-deleted row is not live
    kafka.delivered.clear()
    source.delete(2)
    source.delete(3)  # soft-deleted already: nothing more to say
    poller.poll(registry)  # the second poll reconciles
    [event] = kafka.events(LICENSES_RAW)
    assert event["op"] == "d" and event["before"] == {"license_id": 2}
    assert event["source"]["lsn"] == micros(datetime(2024, 1, 15, 10, 31, tzinfo=UTC)) + 1  # above its last version
    codec = codec_for([registry])
    record = _clean(Router([registry], ring, codec), codec, LICENSES_RAW, json.dumps(event).encode())
    assert (record["_is_deleted"], record["license_id"]) == (1, 2)
    kafka.delivered.clear()
    poller.poll(registry), poller.poll(registry)
    assert kafka.events(LICENSES_RAW) == []  # said once


def test_reconciliation_baseline_comes_from_the_source(registry) -> None:
    # After a restart the poller knows rows by the source, not by its own past output.
    source = FakeSource([license_row(1), license_row(2, revoked=True)])
    saved = {"registry/registry.licenses": {"marker": "updated_at", "kind": "timestamp", "snapshot_done": True,
                                            "position": micros(NOW)}}
    kafka = FakeKafka()
    poller = poller_for(registry, source, kafka, saved=saved, reconcile_every=1)
    poller.poll(registry)
    assert poller.states[LICENSES_RAW].live == {(1,): micros(datetime(2024, 1, 15, 10, 30, tzinfo=UTC))}
    source.delete(1)
    poller.poll(registry)
    assert [e["before"] for e in kafka.events(LICENSES_RAW)] == [{"license_id": 1}]


# --- start-up checks and errors ---------------------------------------------------------------


def test_missing_column_stops_with_what_to_fix(registry) -> None:
    source = FakeSource(missing=["revoked"])
    with pytest.raises(PollerConfigError, match="declared column.s. revoked not in the source table"):
        poller_for(registry, source, FakeKafka()).poll(registry)


def test_unreadable_table_says_which_grant(registry) -> None:
    source = FakeSource()
    source.allowed = False
    with pytest.raises(PollerConfigError, match="GRANT SELECT ON registry.licenses TO qoima_capture"):
        poller_for(registry, source, FakeKafka()).poll(registry)


def test_errors_never_quote_what_the_driver_said() -> None:
    kind, text = _classify(psycopg.OperationalError(f"connection failed for {IIN}"))
    assert kind == "source_unreachable" and IIN not in text
    kind, text = _classify(psycopg.DataError(f"invalid input {IIN}"))
    assert kind == "source_error" and IIN not in text
    refused = psycopg.OperationalError("password authentication failed")
    refused.sqlstate = "28P01"
    assert _classify(refused)[0] == "source_login"
    kind, text = _classify(KeyError(IIN))
    assert kind == "internal" and IIN not in text and "KeyError" in text


def test_run_backs_off_on_an_unreachable_source_then_recovers(registry, caplog) -> None:
    import threading

    source, kafka = FakeSource([license_row(1)]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    source.fail = psycopg.OperationalError("server closed the connection")
    stop = threading.Event()
    calls = []
    original = poller.poll

    def poll(regulation):
        calls.append(1)
        if len(calls) == 2:
            source.fail = None
        try:
            return original(regulation)
        finally:
            if len(calls) == 2:
                stop.set()

    poller.poll = poll
    caplog.set_level("WARNING", logger="qoima.poller")
    poller.run(stop)
    assert len(calls) == 2
    assert "source unreachable (OperationalError); retrying in 1 s" in caplog.text
    assert [e["after"]["license_id"] for e in kafka.events(LICENSES_RAW)] == [1]


def test_heartbeat_each_poll(registry) -> None:
    kafka = FakeKafka()
    poller_for(registry, FakeSource(), kafka).poll(registry)
    beats = kafka.events("qoima.heartbeat.registry.qoima.raw.registry")
    assert beats == [{"ts_ms": NOW.timestamp() * 1000}]
