"""Process settings (model/settings.py): defaults, port shift, validation messages."""
from __future__ import annotations

from dataclasses import fields

import pytest

from model.settings import REPO_ROOT, Ports, Settings, SettingsError

DEFAULT_PORTS = {
    "postgres": 25432, "mariadb": 23306, "kafka": 29092, "kafka_controller": 29093, "connect": 28083,
    "clickhouse_http": 28123, "clickhouse_tcp": 29000, "prometheus": 29090, "alertmanager": 29094,
    "processor_metrics": 29101, "sink_metrics": 29102, "demo_metrics": 29103, "assessor_metrics": 29104, "poller_metrics": 29105,
    "pd236_standin": 29106,
    "demo_webhook": 29999,
}


def test_defaults() -> None:
    s = Settings.from_env({})
    assert s.home == (REPO_ROOT / "var").resolve()
    assert {f.name: getattr(s.ports, f.name) for f in fields(Ports)} == DEFAULT_PORTS
    assert s.host == "127.0.0.1"
    assert (s.kafka_heap_mb, s.connect_heap_mb, s.clickhouse_max_memory_mb) == (512, 640, 2048)
    assert (s.sink_batch_rows, s.sink_batch_ms) == (50_000, 200)
    assert s.key_id == "k1"
    assert s.regulations_dir == (REPO_ROOT / "connectors" / "regulations").resolve()
    assert s.kafka_bootstrap == "127.0.0.1:29092"
    assert s.connect_url == "http://127.0.0.1:28083"
    assert s.clickhouse_url == "http://127.0.0.1:28123"
    assert s.prometheus_url == "http://127.0.0.1:29090"


def test_empty_values_mean_default() -> None:
    s = Settings.from_env({"QOIMA_PORT_SHIFT": "", "QOIMA_SINK_BATCH_ROWS": "", "QOIMA_HOME": ""})
    assert s.ports.kafka == 29092 and s.sink_batch_rows == 50_000
    assert s.home == (REPO_ROOT / "var").resolve()


def test_home_moves_every_file(tmp_path) -> None:
    s = Settings.from_env({"QOIMA_HOME": str(tmp_path)})
    assert s.home == tmp_path.resolve()
    for path in (s.data_dir, s.log_dir, s.run_dir, s.secrets_dir, s.conf_dir, s.master_key_file):
        assert path.is_relative_to(tmp_path.resolve())
    assert s.master_key_file == tmp_path.resolve() / "secrets" / "master.key"
    env = s.regulation_env()
    assert env["QOIMA_SECRETS_DIR"] == str(s.secrets_dir)
    assert env["QOIMA_LOCAL_PG_PORT"] == "25432"


@pytest.mark.parametrize("shift", [1000, -20000, 2600, -1])
def test_port_shift_moves_every_port(shift: int) -> None:
    s = Settings.from_env({"QOIMA_PORT_SHIFT": str(shift)})
    for name, port in DEFAULT_PORTS.items():
        assert getattr(s.ports, name) == port + shift, name
    assert s.kafka_bootstrap == f"127.0.0.1:{29092 + shift}"
    assert s.regulation_env()["QOIMA_LOCAL_PG_PORT"] == str(25432 + shift)


def test_every_port_field_is_covered() -> None:
    assert {f.name for f in fields(Ports)} == set(DEFAULT_PORTS)


@pytest.mark.parametrize("raw", ["abc", "1.5", "10k", "0x10"])
def test_port_shift_not_an_integer(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"QOIMA_PORT_SHIFT": raw})
    message = str(info.value)
    assert "QOIMA_PORT_SHIFT" in message
    assert "not an integer" in message
    assert "between -20000 and 2600" in message


@pytest.mark.parametrize("raw", ["2601", "-20001", "70000"])
def test_port_shift_out_of_range(raw: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"QOIMA_PORT_SHIFT": raw})
    message = str(info.value)
    assert f"QOIMA_PORT_SHIFT={int(raw)} is out of range" in message
    assert "between -20000 and 2600" in message


@pytest.mark.parametrize(("name", "raw", "low", "high"), [
    ("QOIMA_KAFKA_HEAP_MB", "128", 256, 16384),
    ("QOIMA_CONNECT_HEAP_MB", "99999", 256, 16384),
    ("QOIMA_CLICKHOUSE_MAX_MEMORY_MB", "100", 512, 1 << 20),
    ("QOIMA_SINK_BATCH_ROWS", "0", 1, 1_000_000),
    ("QOIMA_SINK_BATCH_MS", "5", 10, 600_000),
])
def test_other_integers_range_checked(name: str, raw: str, low: int, high: int) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({name: raw})
    assert name in str(info.value)
    assert f"between {low} and {high}" in str(info.value)


def test_valid_integers_used() -> None:
    s = Settings.from_env({"QOIMA_SINK_BATCH_ROWS": "100", "QOIMA_SINK_BATCH_MS": "200", "QOIMA_KAFKA_HEAP_MB": "1024"})
    assert (s.sink_batch_rows, s.sink_batch_ms, s.kafka_heap_mb) == (100, 200, 1024)


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


@pytest.mark.parametrize("key_id", ["", "k-1", "k 1", "k1/iin", "k" * 17, "../k"])
def test_bad_key_id_refused(key_id: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"QOIMA_KEY_ID": key_id})
    assert "QOIMA_KEY_ID" in str(info.value)
    assert "1-16 letters or digits" in str(info.value)


@pytest.mark.parametrize("key_id", ["k2", "K7", "2026", "a" * 16])
def test_good_key_id_accepted(key_id: str) -> None:
    assert Settings.from_env({"QOIMA_KEY_ID": key_id}).key_id == key_id


def test_regulations_dir_override(tmp_path) -> None:
    assert Settings.from_env({"QOIMA_REGULATIONS_DIR": str(tmp_path)}).regulations_dir == tmp_path.resolve()


def test_a_given_mapping_ignores_the_process_environment(monkeypatch) -> None:
    # The e2e session exports its stack's QOIMA_* variables; unit tests that build their own
    # settings from a mapping must not pick them up.
    monkeypatch.setenv("QOIMA_PORT_SHIFT", "1000")
    monkeypatch.setenv("QOIMA_HOME", "/tmp/somewhere-else")
    s = Settings.from_env({})
    assert s.ports.kafka == DEFAULT_PORTS["kafka"]
    assert s.home == (REPO_ROOT / "var").resolve()
    assert Settings.from_env().ports.kafka == DEFAULT_PORTS["kafka"] + 1000


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("QOIMA_PD236_URL", "ftp://service/x", "must be an http:// or https:// URL"),
    ("QOIMA_PD236_TEST_URL", "service:8080", "must be an http:// or https:// URL"),
    ("QOIMA_LINEAGE_TRANSPORT", "kafka:", r"must be file, file:<path>, kafka:<topic>, an http\(s\) URL or none"),
])
def test_pd236_and_lineage_endpoints_are_checked_at_start(name, raw, message) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({name: raw})
    assert Settings.from_env({name: ""}).pd236_endpoint.endswith("/api/v1/access-events")


def test_usage_users_are_a_list_of_account_names() -> None:
    assert Settings.from_env({}).usage_accounts == ["analyst"]
    assert Settings.from_env({"QOIMA_USAGE_USERS": "analyst, analyst_ministry"}).usage_accounts == [
        "analyst", "analyst_ministry"]
    with pytest.raises(SettingsError, match="QOIMA_USAGE_USERS"):
        Settings.from_env({"QOIMA_USAGE_USERS": "analyst,,x'; DROP"})


def test_the_load_backlog_limit_is_off_or_large_enough_to_get_under() -> None:
    assert Settings.from_env({}).load_backlog_max == 20_000
    assert Settings.from_env({"QOIMA_LOAD_BACKLOG_MAX": "0"}).load_backlog_max == 0
    with pytest.raises(SettingsError, match="QOIMA_LOAD_BACKLOG_MAX"):
        Settings.from_env({"QOIMA_LOAD_BACKLOG_MAX": "10"})
