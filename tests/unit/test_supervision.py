"""The processor's stall detector and the local stack's supervisor."""
from __future__ import annotations

import signal
import subprocess
import sys
import time

from tenacity import wait_exponential

from infra import supervise
from schemas import retry
from streams import watchdog
from streams.watchdog import StallDetector

TP = ("raw.demo.population.persons", 0)


def test_no_stall_while_offsets_move_or_nothing_waits():
    detector = StallDetector(30)
    assert detector.observe(0, {TP: 5}, {TP: 10}) is None
    assert detector.observe(20, {TP: 6}, {TP: 10}) is None      # moved
    assert detector.observe(45, {TP: 7}, {TP: 10}) is None      # moved again
    assert detector.observe(100, {TP: 10}, {TP: 10}) is None    # caught up
    assert detector.observe(200, {TP: 10}, {TP: 10}) is None    # idle is not stuck


def test_stall_when_lag_and_offsets_stand_still():
    detector = StallDetector(30)
    assert detector.observe(0, {TP: 5}, {TP: 10}) is None
    assert detector.observe(29, {TP: 5}, {TP: 12}) is None
    assert detector.observe(31, {TP: 5}, {TP: 12}) == 31


def test_a_stuck_partition_is_seen_while_another_moves():
    heartbeat = ("qoima.heartbeat.demo", 0)
    detector = StallDetector(30)
    assert detector.observe(0, {TP: 5, heartbeat: 1}, {TP: 10, heartbeat: 2}) is None
    assert detector.observe(20, {TP: 5, heartbeat: 2}, {TP: 10, heartbeat: 3}) is None
    assert detector.observe(40, {TP: 5, heartbeat: 3}, {TP: 10, heartbeat: 4}) == 40


def test_a_partition_never_committed_counts_from_zero():
    detector = StallDetector(10)
    assert detector.observe(0, {}, {TP: 3}) is None
    assert detector.observe(11, {}, {TP: 3}) == 11


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_supervisor_restarts_a_crashed_child(tmp_path, monkeypatch):
    monkeypatch.setattr(supervise, "FAIL_FAST_S", 0.0)
    monkeypatch.setattr(retry, "SUPERVISED_RESTART", wait_exponential(multiplier=0.05, max=30.0))
    runs = tmp_path / "runs"
    # Crashes twice, then exits cleanly: the supervisor restarts it twice and stops.
    code = (f"import pathlib,sys; p=pathlib.Path({str(runs)!r}); n=len(p.read_text()) if p.exists() else 0; "
            "p.write_text('x'*(n+1)); sys.exit(0 if n >= 2 else 3)")
    assert supervise.supervise("test", _python(code)) == 0
    assert runs.read_text() == "xxx"


def test_supervisor_fails_fast_on_a_start_up_failure(tmp_path):
    started = time.monotonic()
    assert supervise.supervise("test", _python("import sys; sys.exit(4)")) == 4
    assert time.monotonic() - started < 5


def test_sigterm_stops_child_and_supervisor():
    process = subprocess.Popen([sys.executable, "-m", "infra.supervise", "test", "--",
                                *_python("import time; time.sleep(60)")], cwd=supervise.__file__.rsplit("/infra/", 1)[0])
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_usage_error():
    assert supervise.main(["name"]) == 2


def test_watchdog_exits_with_stalled_once_offsets_stand_still_behind_the_end():
    calls = iter([RuntimeError("broker away"), ({TP: 5}, {TP: 9}), ({TP: 5}, {TP: 9}), ({TP: 5}, {TP: 9})])

    def offsets():
        value = next(calls, ({TP: 5}, {TP: 9}))
        if isinstance(value, Exception):
            raise value
        return value

    exited = []
    thread = watchdog.start(offsets, ready=lambda: True, stall_seconds=0.05, interval=0.03, exit=exited.append)
    thread.join(timeout=5)
    assert exited == [watchdog.STALLED]


def test_watchdog_waits_for_the_first_ready():
    exited = []
    thread = watchdog.start(lambda: ({TP: 0}, {TP: 9}), ready=lambda: False, stall_seconds=0.01, interval=0.01,
                            exit=exited.append)
    time.sleep(0.2)
    assert thread.is_alive() and exited == []
