"""Where a requested load stands in `qoima status` (governance/status.py `load_progress`), and
the records `qoima snapshot` leaves for it (connectors/snapshot.py)."""
from __future__ import annotations

import fcntl
import json
import threading

from connectors import snapshot
from connectors.snapshot import LOAD_RECORD_MAX_AGE_S, mark_loads, pause_loads, record_load, recorded_loads
from governance.status import _render_load, load_progress, next_requests

T0 = 1_800_000_000_000   # the request, in ms


def test_no_row_yet_is_waiting() -> None:
    assert load_progress(T0, T0 + 5_000, 1000, 0, None, None)["state"] == "waiting"


def test_a_load_under_way_has_a_rate_and_the_time_left() -> None:
    # 2,000 rows in the 4 s to the last loaded row: 500 rows/s, 8,000 more take 16 s.
    progress = load_progress(T0, T0 + 5_000, 10_000, 2_000, T0 + 4_000, 2_100.4)
    assert progress == {"state": "loading", "read": 2100, "loaded": 2000, "estimate": 10_000, "rate": 500,
                        "remaining_s": 16}
    line = _render_load({"provider": "demo", "table": "population.persons", **progress})
    assert line == ("Load of population.persons (demo): loading, read 2,100, loaded 2,000 of about 10,000 (20%), "
                    "500 rows/s, about 16 s left")


def test_quiet_with_about_the_estimate_is_done_and_short_of_it_stalled() -> None:
    later = T0 + 10 * 60_000
    assert load_progress(T0, later, 10_000, 9_500, T0 + 60_000, None)["state"] == "done"   # estimates are rough
    assert load_progress(T0, later, None, 42, T0 + 60_000, None)["state"] == "done"      # no statistics
    stalled = load_progress(T0, later, 10_000, 3_000, T0 + 60_000, None)
    assert stalled["state"] == "stalled" and stalled["remaining_s"] is None
    assert "no snapshot row for over 60 s" in _render_load({"provider": "demo", "table": "t", **stalled})


def test_loads_are_kept_for_a_day_then_forgotten(tmp_path) -> None:
    loads = tmp_path / "loads"
    old = record_load(loads, "demo", "a", T0, {"population.persons": 100})
    record_load(loads, "demo", "b", T0 + 1000, {"social.payments": None})
    (loads / "broken.json").write_text("{not json")
    assert [load["signal_id"] for load in recorded_loads(loads, T0 + 2000)] == ["a", "b"]
    assert json.loads(old.read_text())["tables"] == {"population.persons": 100}
    day_later = T0 + LOAD_RECORD_MAX_AGE_S * 1000 + 500
    assert [load["signal_id"] for load in recorded_loads(loads, day_later)] == ["b"]
    assert not old.exists()
    # A paused load's record stays past the day: its pause is still someone's to lift.
    paused = record_load(loads, "demo", "c", T0, {"population.persons": 100})
    paused.write_text(json.dumps({**json.loads(paused.read_text()), "throttled_ms": T0 + 5}))
    assert "c" in [load["signal_id"] for load in recorded_loads(loads, day_later)] and paused.exists()


def test_a_pause_is_noted_only_while_no_one_else_changes_the_records(tmp_path) -> None:
    # The operator's CLI and the load governor both read, change and write the records: each
    # does it under the records' lock, or one's write undoes the other's change.
    loads = tmp_path / "loads"
    record = record_load(loads, "demo", "a", T0, {"population.persons": 100})
    mark_loads(loads, "demo", resume=False, by="throttled_ms")
    with open(loads / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # someone else is changing them
        operator = threading.Thread(target=mark_loads, args=(loads, "demo", False, "paused_ms"))
        operator.start()
        operator.join(timeout=0.5)
        assert operator.is_alive() and "paused_ms" not in json.loads(record.read_text())
        fcntl.flock(lock, fcntl.LOCK_UN)
    operator.join(timeout=10)
    assert not operator.is_alive()
    assert {"paused_ms", "throttled_ms"} <= set(json.loads(record.read_text()))
    mark_loads(loads, "demo", resume=True, by="throttled_ms")   # the governor's resume leaves the operator's pause
    assert "paused_ms" in json.loads(record.read_text()) and "throttled_ms" not in json.loads(record.read_text())
    mark_loads(loads, "demo", resume=True, by="paused_ms")      # the operator's clears both
    assert not {"paused_ms", "throttled_ms"} & set(json.loads(record.read_text()))


def test_the_governors_resume_is_not_sent_over_the_operators_pause(tmp_path, monkeypatch, demo) -> None:
    # The governor decides from records it read a moment ago; if the operator paused the load
    # since, its resume must not reach Debezium (it would undo the operator's pause).
    sent = []
    monkeypatch.setattr(snapshot, "_signal", lambda regulation, environ, kind, data: sent.append(kind) or kind)
    loads = tmp_path / "loads"
    record = record_load(loads, "demo", "a", T0, {"population.persons": 100})
    assert pause_loads(demo, {}, loads, resume=False, by="throttled_ms") == "pause-snapshot"
    assert pause_loads(demo, {}, loads, resume=False) == "pause-snapshot"          # the operator's
    assert pause_loads(demo, {}, loads, resume=True, by="throttled_ms") is None
    assert sent == ["pause-snapshot", "pause-snapshot"]
    assert {"paused_ms", "throttled_ms"} <= set(json.loads(record.read_text()))
    assert pause_loads(demo, {}, loads, resume=True) == "resume-snapshot"          # the operator's resume
    assert not {"paused_ms", "throttled_ms"} & set(json.loads(record.read_text()))


def test_nothing_loaded_long_after_the_request_is_stalled() -> None:
    assert load_progress(T0, T0 + 9 * 60_000, 100, 0, None, None)["state"] == "waiting"
    assert load_progress(T0, T0 + 11 * 60_000, 100, 0, None, None)["state"] == "stalled"


def test_a_table_loaded_twice_counts_each_load_up_to_the_next_request() -> None:
    loads = [{"provider": "demo", "signal_id": "a", "requested_ms": T0, "tables": {"t1": 1, "t2": 1}},
             {"provider": "demo", "signal_id": "b", "requested_ms": T0 + 500, "tables": {"t1": 1}},
             {"provider": "shop", "signal_id": "c", "requested_ms": T0 + 900, "tables": {"t2": 1}}]
    assert next_requests(loads) == {("demo", "t1", "a"): T0 + 500}


def test_a_paused_load_is_paused_not_stalled_until_it_finishes() -> None:
    later = T0 + 10 * 60_000
    paused = load_progress(T0, later, 10_000, 3_000, T0 + 60_000, None, paused=True)
    assert paused["state"] == "paused"
    assert "`qoima snapshot demo --resume` reads on" in _render_load({"provider": "demo", "table": "t", **paused})
    assert load_progress(T0, later, 100, 0, None, None, paused=True)["state"] == "paused"
    # Paused a moment ago, its last rows just in: paused, not loading.
    assert load_progress(T0, T0 + 5_000, 10_000, 2_048, T0 + 4_000, None, paused=True)["state"] == "paused"
    # Paused after its last row: it is done all the same.
    assert load_progress(T0, later, 10_000, 9_900, T0 + 60_000, None, paused=True)["state"] == "done"


def test_the_latest_load_of_each_table_is_exported_as_gauges(tmp_path) -> None:
    from governance.source_health import export_loads
    from monitoring import metrics

    loads = tmp_path / "loads"
    record_load(loads, "demo", "a", T0, {"population.persons": 100, "social.payments": None})
    later = record_load(loads, "demo", "b", T0 + 1000, {"population.persons": 250})
    paused = json.loads(later.read_text())
    later.write_text(json.dumps({**paused, "paused_ms": T0 + 2000}))
    export_loads(loads, T0 + 3000)
    assert metrics.LOAD_ESTIMATE.labels("demo", "population.persons")._value.get() == 250
    assert metrics.LOAD_REQUESTED.labels("demo", "population.persons")._value.get() == (T0 + 1000) / 1000
    assert metrics.LOAD_PAUSED.labels("demo", "population.persons")._value.get() == 1
    assert metrics.LOAD_PAUSED.labels("demo", "social.payments")._value.get() == 0
