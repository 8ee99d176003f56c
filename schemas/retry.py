"""How Qoima tries again: every back-off in one place, built on tenacity.

A policy is a tenacity wait strategy, the pause after the n-th failure in a row. A loop that
retries a call gets a `tenacity.Retrying` made from one (`until_it_succeeds`, `poll`); a
schedule kept outside a loop (a notification's row in the outbox, the supervisor's restarts)
asks `delay_after` for the pause its count of failures calls for.
"""
from __future__ import annotations

from typing import Any, Callable

from tenacity import (RetryCallState, Retrying, retry_if_exception_type, retry_if_not_result, stop_before_delay,
                      wait_exponential, wait_fixed)
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT

# A ClickHouse insert or truncate: 0.5 s doubling to 30 s, for as long as it takes (the sink
# stalls visibly rather than skip data).
CLICKHOUSE_WRITE = wait_exponential(multiplier=0.5, max=30.0)
# A webhook delivery from the notifier's outbox: 5 s doubling to 5 min.
WEBHOOK_DELIVERY = wait_exponential(multiplier=5.0, max=300.0)
# Asking Kafka Connect for a connector's state: once a second until the caller's deadline.
CONNECT_POLL = wait_fixed(1.0)
# A marker-mode source (or Kafka) that fails a poll: 1 s doubling to 60 s, per provider.
SOURCE_POLL = wait_exponential(multiplier=1.0, max=60.0)
# A supervised process that keeps failing (infra/supervise.py): 1 s doubling to 30 s.
SUPERVISED_RESTART = wait_exponential(multiplier=1.0, max=30.0)


def delay_after(policy: WaitBaseT, failures: int) -> float:
    """Seconds `policy` waits after `failures` failed tries in a row (at least one)."""
    state = RetryCallState(Retrying(wait=policy), fn=None, args=(), kwargs={})
    state.attempt_number = max(failures, 1)
    return policy(state)


def until_it_succeeds(policy: WaitBaseT, *, on_failure: Callable[[BaseException, float], None],
                      give_up: Callable[[], bool]) -> Retrying:
    """Call again after every Exception, pausing as `policy` says, until the call succeeds.

    `on_failure(error, pause)` hears of every failed try, the last one too. Once `give_up()` is
    true (the process is stopping) the next failure is raised instead of retried.
    """
    def failed(state: RetryCallState) -> None:
        on_failure(state.outcome.exception(), policy(state))

    return Retrying(wait=policy, stop=lambda _state: give_up(), retry=retry_if_exception_type(Exception),
                    after=failed, reraise=True)


def poll(policy: WaitBaseT, *, within: float, until: Callable[[Any], bool],
         give_up: StopBaseT | None = None) -> Retrying:
    """Call again, pausing as `policy` says, until the result satisfies `until`.

    Never starts a call after `within` seconds, and stops early once `give_up(state)` is true;
    either way the last result is returned, for the caller to judge. An exception ends the poll.
    """
    stop = stop_before_delay(within)
    if give_up is not None:
        stop = stop | give_up
    return Retrying(wait=policy, stop=stop, retry=retry_if_not_result(until),
                    retry_error_callback=lambda state: state.outcome.result())
