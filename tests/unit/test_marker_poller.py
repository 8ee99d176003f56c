"""One poll of a marker regulation (connectors/marker/poller.py, DM385 §63) against a fake source
and a fake Kafka (tests/unit/marker_fakes.py): paging, watermarks, lookback, deletes,
reconciliation and the start-up checks."""
from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from connectors.marker.errors import PollerConfigError, PollerError
from connectors.marker.state import state_key
from connectors.marker.table import MarkerTable
from model.names import MARKER_STATE_TOPIC as STATE_TOPIC
from schemas.avro_codec import codec_for
from streams.router import Router
from tests.unit.marker_fakes import (LICENSES_RAW, MICROS, NOW, UTC, FakeKafka, FakeSource, clean_record, license_row,
                                     marker_regulation, micros, poller_for)


@pytest.fixture(scope="module")
def registry(unit_settings, regulation_env, demo_password_file):
    return marker_regulation(unit_settings, regulation_env)


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
    record = clean_record(Router([registry], ring, codec), codec, LICENSES_RAW, json.dumps(event).encode())
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
    with pytest.raises(PollerConfigError, match="GRANT SELECT ON \"registry\".\"licenses\" TO qoima_capture"):
        poller_for(registry, source, FakeKafka()).poll(registry)


def test_heartbeat_each_poll(registry) -> None:
    kafka = FakeKafka()
    poller_for(registry, FakeSource(), kafka).poll(registry)
    beats = kafka.events("qoima.heartbeat.registry.qoima.raw.registry")
    assert beats == [{"ts_ms": NOW.timestamp() * 1000}]
