"""The minimum-load window (model/load_window.py) and a snapshot waiting for it (connectors/snapshot.py)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone

import pytest

from connectors.snapshot import wait_for_window, waiting
from model.load_window import LoadWindow

UTC = timezone.utc


def _at(hour: int, minute: int = 0) -> datetime:
    """An instant given in Almaty's time (UTC+5)."""
    return datetime(2026, 12, 5, hour, minute, tzinfo=UTC) - timedelta(hours=5)


def test_a_window_is_local_time_and_may_run_over_midnight() -> None:
    night = LoadWindow.parse("02:00-05:00", "Asia/Almaty")
    assert str(night) == "02:00-05:00 (Asia/Almaty)"
    assert [night.contains(_at(h)) for h in (1, 2, 4, 5, 12)] == [False, True, True, False, False]
    assert night.opens_in(_at(1, 30)) == timedelta(minutes=30)
    assert night.opens_in(_at(5)) == timedelta(hours=21)
    assert night.opens_in(_at(3)) == timedelta(0)
    over = LoadWindow.parse("22:00-05:00", "Asia/Almaty")
    assert [over.contains(_at(h)) for h in (21, 22, 23, 0, 4, 5)] == [False, True, True, True, True, False]


@pytest.mark.parametrize("text, message", [("25:00-05:00", "is not HH:MM-HH:MM with valid times"),
                                           ("02:00-02:00", "is empty")])
def test_a_wrong_window_says_what_is_wrong(text, message) -> None:
    with pytest.raises(ValueError, match=message):
        LoadWindow.parse(text, "Asia/Almaty")


def test_the_regulation_refuses_an_unknown_time_zone(demo) -> None:
    from model.regulation import Source

    source = demo.source.model_dump()
    with pytest.raises(ValueError, match="timezone 'Asia/Nowhere' is not a known time zone"):
        Source.model_validate({**source, "timezone": "Asia/Nowhere"})
    assert demo.source.load_window == LoadWindow.parse("02:00-05:00", "Asia/Almaty")


def test_a_snapshot_waits_for_the_window_and_is_shown_while_it_waits(demo, tmp_path) -> None:
    now = [_at(1)]
    seen, lines = [], []

    def sleep(seconds: float) -> None:
        seen.append(waiting(tmp_path))   # what `qoima status` shows meanwhile
        now[0] += timedelta(seconds=seconds)

    wait_for_window(demo, ["population.persons"], tmp_path, lines.append, clock=lambda: now[0], sleep=sleep)
    assert demo.source.load_window.contains(now[0])
    assert seen and seen[0] == [{"provider": "demo", "tables": ["population.persons"],
                                 "window": "02:00-05:00 (Asia/Almaty)", "opens_at": "2026-12-04T21:00:00+00:00"}]
    assert lines[0] == "demo: waiting for the minimum-load window 02:00-05:00 (Asia/Almaty); it opens in 1 h 0 min"
    assert waiting(tmp_path) == []   # done: no longer shown


def test_inside_the_window_a_snapshot_does_not_wait(demo, tmp_path) -> None:
    def sleep(seconds: float) -> None:
        raise AssertionError("waited inside the window")

    wait_for_window(demo, ["population.persons"], tmp_path, print, clock=lambda: _at(3), sleep=sleep)


def test_a_wait_whose_process_is_gone_is_not_shown(tmp_path) -> None:
    (tmp_path / "demo-999999999.json").write_text(json.dumps({"provider": "demo"}))
    (tmp_path / f"demo-{os.getpid()}.json").write_text(json.dumps({"provider": "demo", "tables": []}))
    assert waiting(tmp_path) == [{"provider": "demo", "tables": []}]
