"""A worker stuck in a Kafka transaction call leaves, and its supervisor starts it again.

librdkafka's transactional calls do not always keep the timeouts they are given. In a test run
that stopped the broker for twenty seconds, the worker's first commit after the broker came
back failed (`COORDINATOR_LOAD_IN_PROGRESS`) and its abort then blocked for twelve minutes,
the worker's group session long gone and every change waiting behind it, until the broker
fenced it. Known upstream: `send_offsets_to_transaction` ignores its timeout (librdkafka issue
5456), and an abort blocked ten minutes in a cluster roll (issue 3779).

A commit that outlasts all the timeouts its calls were given will not finish (240 s: the
offsets 60 s, the commit asked again within a minute 120 s, the abort 5 s). The worker exits; its next
life's `init_transactions` fences and aborts the open transaction and it reads again from the
committed offsets, so nothing is lost or loaded twice (the same path as a kill -9).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("qoima.processor")

EXIT_STUCK = 75   # EX_TEMPFAIL: the supervisor restarts any failure; the log says which


def leave(stuck_s: float) -> None:
    log.critical("a Kafka transaction call has not returned in %.0f s, past all its timeouts together; leaving, "
                 "so that the supervisor starts this worker again (its open transaction is aborted, nothing is lost)",
                 stuck_s)
    for handler in logging.getLogger().handlers:
        handler.flush()
    os._exit(EXIT_STUCK)   # the stuck call holds the main thread: no clean way out of it


class CommitWatchdog:
    """`watching()` around a call that must return within `limit_s`; past it, `on_stuck(seconds)`
    runs on the watchdog's own thread (by default: `leave`)."""

    def __init__(self, limit_s: float, on_stuck: Callable[[float], None] = leave,
                 check_every_s: float | None = None) -> None:
        self.limit_s = limit_s
        self._on_stuck = on_stuck
        self._every = check_every_s if check_every_s is not None else min(5.0, limit_s / 4)
        self._since: float | None = None
        self._closed = threading.Event()
        threading.Thread(target=self._watch, name="qoima-commit-watchdog", daemon=True).start()

    def close(self) -> None:
        self._closed.set()

    @contextmanager
    def watching(self) -> Iterator[None]:
        self._since = time.monotonic()
        try:
            yield
        finally:
            self._since = None

    def _watch(self) -> None:
        while not self._closed.wait(self._every):
            since = self._since
            if since is not None and time.monotonic() - since > self.limit_s:
                self._on_stuck(time.monotonic() - since)
                return
