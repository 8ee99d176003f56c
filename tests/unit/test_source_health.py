"""governance/source_health.py's round over the providers, with Connect and the source stood in
for by fakes (the e2e test reads the real slot and connector)."""
from __future__ import annotations

from prometheus_client import REGISTRY

from connectors.connect_client import ConnectError
from governance import source_health


class _Connect:
    def __init__(self, statuses: dict) -> None:
        self.statuses = statuses

    def status(self, name: str) -> dict:
        status = self.statuses[name]
        if isinstance(status, Exception):
            raise status
        return status


class _Reader:
    def __init__(self, slot) -> None:
        self._slot, self.closed = slot, False

    def slot(self, name: str):
        if isinstance(self._slot, Exception):
            raise self._slot
        return self._slot

    def close(self) -> None:
        self.closed = True


def _gauge(name: str, provider: str) -> float | None:
    return REGISTRY.get_sample_value(name, {"provider": provider})


def _running(*tasks: str) -> dict:
    return {"connector": {"state": "RUNNING"}, "tasks": [{"id": n, "state": s} for n, s in enumerate(tasks)]}


def test_a_failed_task_a_missing_connector_or_connect_down_is_a_failed_connector() -> None:
    client = _Connect({"ok": _running("RUNNING"), "paused": {"connector": {"state": "PAUSED"}, "tasks": []},
                       "task": _running("RUNNING", "FAILED"), "gone": ConnectError("connector gone not found"),
                       "down": ConnectError("Kafka Connect is not reachable")})
    assert [source_health.connector_failed(client, n) for n in ("ok", "paused", "task", "gone", "down")] == \
        [False, False, True, True, True]


def test_a_round_exports_the_slot_and_the_connector_per_provider(demo) -> None:
    client = _Connect({demo.connector_name: _running("RUNNING")})
    source_health.check([demo], {"demo": _Reader((True, 123_456))}, client)
    assert _gauge("qoima_source_slot_active", "demo") == 1
    assert _gauge("qoima_source_slot_retained_bytes", "demo") == 123_456
    assert _gauge("qoima_connector_failed", "demo") == 0
    source_health.check([demo], {"demo": _Reader((False, 9_999_999_999))}, client)
    assert (_gauge("qoima_source_slot_active", "demo"), _gauge("qoima_source_slot_retained_bytes", "demo")) == \
        (0, 9_999_999_999)
    # No slot at all keeps no WAL: no series, so no slot alert claims it does.
    source_health.check([demo], {"demo": _Reader(None)}, client)
    assert (_gauge("qoima_source_slot_active", "demo"), _gauge("qoima_source_slot_retained_bytes", "demo")) == \
        (None, None)
    source_health.check([demo], {"demo": _Reader(None)}, client)   # and again: nothing to remove


def test_a_source_that_does_not_answer_keeps_its_last_figures_and_is_asked_again(demo) -> None:
    client = _Connect({demo.connector_name: _running("RUNNING")})
    source_health.check([demo], {"demo": _Reader((True, 42))}, client)
    broken = _Reader(OSError("connection refused"))
    source_health.check([demo], {"demo": broken}, client)
    assert broken.closed   # reconnects next round
    assert _gauge("qoima_source_slot_retained_bytes", "demo") == 42
