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


def test_binlog_lag_counts_what_the_server_wrote_past_the_connectors_position() -> None:
    files = [("mariadb-bin.000001", 1_000), ("mariadb-bin.000002", 5_000), ("mariadb-bin.000003", 300)]
    assert source_health.binlog_lag(files, "mariadb-bin.000003", 300) == 0
    assert source_health.binlog_lag(files, "mariadb-bin.000002", 4_000) == 1_000 + 300
    assert source_health.binlog_lag(files, "mariadb-bin.000001", 0) == 6_300
    # Purged already: at least everything the server still has.
    assert source_health.binlog_lag(files[1:], "mariadb-bin.000001", 10) == 5_300


class _MariaDbConnect(_Connect):
    def __init__(self, offsets) -> None:
        super().__init__({})
        self._offsets = offsets

    def status(self, name: str) -> dict:
        return _running("RUNNING")

    def offsets(self, name: str) -> list:
        return self._offsets


class _BinlogReader(_Reader):
    def __init__(self, files) -> None:
        super().__init__(None)
        self._files = files

    def binlog_files(self):
        return self._files


def test_a_round_exports_a_mariadb_providers_binlog_lag() -> None:
    from tests.unit.test_mariadb_regulation import doc
    from model.regulation import Regulation

    shop = Regulation.model_validate(doc())
    files = [("mariadb-bin.000001", 9_000)]
    committed = [{"partition": {"server": "qoima.raw.shop"}, "offset": {"file": "mariadb-bin.000001", "pos": 4_682}}]
    source_health.check([shop], {"shop": _BinlogReader(files)}, _MariaDbConnect(committed))
    assert _gauge("qoima_source_binlog_lag_bytes", "shop") == 9_000 - 4_682
    assert _gauge("qoima_source_slot_active", "shop") is None   # no slot in MariaDB
    # Nothing committed yet (a connector that just started): no series.
    source_health.check([shop], {"shop": _BinlogReader(files)}, _MariaDbConnect([]))
    assert _gauge("qoima_source_binlog_lag_bytes", "shop") is None


def test_a_cluster_that_does_not_answer_is_kafka_down(monkeypatch) -> None:
    """A real client against a port nothing listens on (the e2e test kills the real broker)."""
    import socket

    from confluent_kafka.admin import AdminClient

    with socket.socket() as probe:   # a port just free; nothing listens on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(source_health, "KAFKA_TIMEOUT_S", 0.5)
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
    assert source_health.kafka_answers(admin) is False
