"""streams/commit_watchdog.py: a call that outlasts its limit is reported once, on the watchdog's
thread; one that returns in time is not. (The default reaction, leaving the process for the
supervisor to restart, is the kill -9 path the crash tests cover.)"""
from __future__ import annotations

import threading
import time

from streams.commit_watchdog import CommitWatchdog


def test_a_call_stuck_past_the_limit_is_reported_with_how_long():
    reported: list[float] = []
    fired = threading.Event()
    watchdog = CommitWatchdog(0.2, on_stuck=lambda s: (reported.append(s), fired.set()), check_every_s=0.02)
    try:
        with watchdog.watching():
            assert fired.wait(5), "the watchdog reports a call stuck past its limit"
    finally:
        watchdog.close()
    assert len(reported) == 1 and reported[0] > 0.2


def test_calls_that_return_in_time_are_never_reported():
    fired = threading.Event()
    watchdog = CommitWatchdog(1.0, on_stuck=lambda s: fired.set(), check_every_s=0.02)
    deadline = time.monotonic() + 3.0
    try:
        while time.monotonic() < deadline:   # many short calls, together far longer than the limit
            with watchdog.watching():
                time.sleep(0.05)
            time.sleep(0.01)
    finally:
        watchdog.close()
    assert not fired.is_set()
