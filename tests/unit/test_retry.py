"""The retry policies (schemas/retry.py) and the loops built on them: the sink's ClickHouse writes
and the wait for a Kafka Connect connector. Sleeps are recorded, never slept."""
from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from connectors.connect_client import ConnectClient, ConnectError
from schemas import retry
from sinks.clickhouse_sink import ClickHouseSink


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    return slept


@pytest.mark.parametrize(("policy", "pauses"), [
    (retry.CLICKHOUSE_WRITE, [0.5, 1, 2, 4, 8, 16, 30, 30]),
    (retry.WEBHOOK_DELIVERY, [5, 10, 20, 40, 80, 160, 300, 300]),
    (retry.SUPERVISED_RESTART, [1, 2, 4, 8, 16, 30, 30, 30]),
    (retry.CONNECT_POLL, [1] * 8),
])
def test_policies_keep_their_pauses(policy, pauses) -> None:
    assert [retry.delay_after(policy, n) for n in range(1, 9)] == pauses
    assert retry.delay_after(policy, 0) == pauses[0]


def _sink(stopping: bool = False) -> ClickHouseSink:
    sink = object.__new__(ClickHouseSink)
    sink._stopping = stopping
    return sink


TARGET = SimpleNamespace(label="retry.test", ch_table="retry_test")


def _failures() -> float:
    return REGISTRY.get_sample_value("qoima_sink_insert_failures_total", {"table": TARGET.label}) or 0.0


def test_sink_write_retried_with_back_off_until_it_succeeds(sleeps, caplog) -> None:
    outcomes = iter([ConnectionError("down"), TimeoutError("slow"), None, ConnectionError("never reached")])
    calls = []

    def action() -> None:
        calls.append(1)
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    before = _failures()
    with caplog.at_level(logging.WARNING, logger="qoima.sink"):
        _sink()._retrying(TARGET, "insert into", action)
    assert len(calls) == 3
    assert sleeps == [0.5, 1.0]
    assert _failures() - before == 2
    assert [r.getMessage() for r in caplog.records] == [
        "insert into retry_test failed (ConnectionError), retrying in 0.5s",
        "insert into retry_test failed (TimeoutError), retrying in 1.0s",
    ]


def test_sink_write_failing_while_stopping_is_counted_and_raised(sleeps) -> None:
    def action() -> None:
        raise ConnectionError("down")

    before = _failures()
    with pytest.raises(ConnectionError, match="down"):
        _sink(stopping=True)._retrying(TARGET, "truncate of", action)
    assert sleeps == []
    assert _failures() - before == 1


def _connect(states: list[str], monkeypatch) -> tuple[ConnectClient, list[str]]:
    client = ConnectClient("http://127.0.0.1:9")
    asked: list[str] = []

    def state(name: str) -> str:
        asked.append(name)
        value = states.pop(0) if states else "FAILED"
        if value == "ERROR":
            raise ConnectError("rebalancing")
        return value

    monkeypatch.setattr(client, "state", state)
    monkeypatch.setattr(client, "status", lambda name: {"connector": {"state": "FAILED", "trace": "boom\nat x"},
                                                        "tasks": []})
    return client, asked


def test_connect_wait_polls_each_second_until_running(sleeps, monkeypatch) -> None:
    client, asked = _connect(["ERROR", "UNASSIGNED", "FAILED", "RUNNING"], monkeypatch)
    client.wait_running("c", timeout=60, failed_grace=15)
    assert asked == ["c"] * 4
    assert sleeps == [1.0, 1.0, 1.0]


def test_connect_wait_ends_once_failed_has_lasted_the_grace(sleeps, monkeypatch) -> None:
    client, asked = _connect(["FAILED", "FAILED", "RUNNING"], monkeypatch)
    with pytest.raises(ConnectError, match=r"connector c is FAILED after \d+s.*\nboom\nat x"):
        client.wait_running("c", timeout=60, failed_grace=0)
    assert len(asked) == 2 and sleeps == [1.0]


def test_connect_wait_gives_up_at_the_deadline(sleeps, monkeypatch) -> None:
    client, asked = _connect(["ERROR"] * 10, monkeypatch)
    with pytest.raises(ConnectError, match="connector c is UNKNOWN"):
        client.wait_running("c", timeout=0.5)
    assert len(asked) == 1 and sleeps == []
