"""The processor's watchdog: exit when Faust stops consuming while events wait.

Faust 0.15 can hang for good after the broker restarts: the consumer rejoins, logs nothing
and never fetches again (faust-streaming issue #596, reproduced here by
tests/e2e/test_crash_recovery.py killing the broker). Nothing inside the process notices. So a
thread looks from the outside, as an operator would: if the raw topics hold events past the
processor group's committed offsets and those offsets have not moved for `stall_seconds`, the
processor is stuck. It logs why and exits with STALLED; infra/supervise.py starts it again,
and the new worker resumes from the committed offsets, so nothing is lost.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping

from streams.group_offsets import group_consumer, positions

log = logging.getLogger("qoima.watchdog")

STALLED = 75  # EX_TEMPFAIL: try again


class StallDetector:
    """Pure logic: stalled when a partition has events past its committed offset and that
    offset has stood still too long. Judged per partition: a worker can keep committing the
    heartbeat topic while a data partition is stuck."""

    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self._seen: dict = {}     # partition -> (committed offset, since when)

    def observe(self, now: float, committed: Mapping, highwater: Mapping) -> float | None:
        """Seconds the worst partition has been stuck once past the limit, else None."""
        worst = 0.0
        for tp, end in highwater.items():
            offset = committed.get(tp) or 0
            if end <= offset:
                self._seen.pop(tp, None)
                continue
            previous = self._seen.get(tp)
            if previous is None or previous[0] != offset:
                self._seen[tp] = (offset, now)
                continue
            worst = max(worst, now - previous[1])
        return worst if worst >= self.stall_seconds else None


def kafka_offsets(bootstrap: str, group: str, topics: list[str]) -> Callable[[], tuple[dict, dict]]:
    """The group's committed offsets and the topics' end offsets, read without joining the group."""
    consumer = group_consumer(bootstrap, group)
    return lambda: positions(consumer, topics)


def start(offsets: Callable[[], tuple[dict, dict]], ready: Callable[[], bool], stall_seconds: float,
          interval: float = 5.0, exit: Callable[[int], None] = os._exit) -> threading.Thread:
    """Watch in a daemon thread; the check starts once the worker has been ready once."""

    def watch() -> None:
        detector = StallDetector(stall_seconds)
        while not ready():
            time.sleep(interval)
        while True:
            time.sleep(interval)
            try:
                committed, highwater = offsets()
            except Exception as exc:  # broker away: nothing to judge until it is back
                log.info("watchdog: offsets unavailable (%s); waiting for the broker", type(exc).__name__)
                continue
            stalled = detector.observe(time.monotonic(), committed, highwater)
            if stalled is not None:
                behind = sum(max(0, highwater[tp] - committed.get(tp, 0)) for tp in highwater)
                log.critical("watchdog: %d event(s) wait on the raw topics and the processor's committed offsets "
                             "have not moved for %.0f s; Faust is stuck, exiting so the supervisor restarts it",
                             behind, stalled)
                for handler in logging.getLogger().handlers:  # os._exit skips the usual flush
                    handler.flush()
                exit(STALLED)
                return

    thread = threading.Thread(target=watch, name="qoima-watchdog", daemon=True)
    thread.start()
    return thread
