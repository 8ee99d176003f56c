"""Process-wide settings, read once from the environment and validated at start-up.

Every port, path and size an operator may change is here, with a default that runs the local
stack. `QOIMA_PORT_SHIFT` moves every port at once so that a test stack can run beside a
developer's stack; `QOIMA_HOME` moves every data, log, pid and secret file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


class SettingsError(ValueError):
    """A setting has a value Qoima cannot run with; the message says which and how to fix it."""


def _int(env: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer; set it to a number between {low} and {high}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range; set it to a number between {low} and {high}")
    return value


@dataclass(frozen=True)
class Ports:
    postgres: int = 25432
    mariadb: int = 23306
    kafka: int = 29092
    kafka_controller: int = 29093
    connect: int = 28083
    clickhouse_http: int = 28123
    clickhouse_tcp: int = 29000
    prometheus: int = 29090
    processor_metrics: int = 29101
    sink_metrics: int = 29102
    demo_metrics: int = 29103
    assessor_metrics: int = 29104
    poller_metrics: int = 29105
    demo_webhook: int = 29999

    def shifted(self, shift: int) -> "Ports":
        return Ports(**{name: port + shift for name, port in self.__dict__.items()})


@dataclass(frozen=True)
class Settings:
    home: Path
    ports: Ports
    host: str = "127.0.0.1"
    kafka_heap_mb: int = 512
    connect_heap_mb: int = 640
    clickhouse_max_memory_mb: int = 2048
    sink_batch_rows: int = 5000
    sink_batch_ms: int = 500
    regulations_dir: Path = field(default=REPO_ROOT / "connectors" / "regulations")
    key_id: str = "k1"
    assess_interval_s: int = 300
    processor_stall_s: int = 30

    # Derived locations; one place decides the layout of QOIMA_HOME.
    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def log_dir(self) -> Path:
        return self.home / "log"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def conf_dir(self) -> Path:
        return self.home / "conf"

    @property
    def master_key_file(self) -> Path:
        return self.secrets_dir / "master.key"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.ports.kafka}"

    @property
    def connect_url(self) -> str:
        return f"http://{self.host}:{self.ports.connect}"

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.ports.prometheus}"

    @property
    def clickhouse_url(self) -> str:
        return f"http://{self.host}:{self.ports.clickhouse_http}"

    def regulation_env(self) -> dict[str, str]:
        """Variables a regulation file may interpolate: the environment plus the local stack's."""
        return {
            "QOIMA_LOCAL_PG_HOST": self.host,
            "QOIMA_LOCAL_PG_PORT": str(self.ports.postgres),
            "QOIMA_LOCAL_MARIADB_HOST": self.host,
            "QOIMA_LOCAL_MARIADB_PORT": str(self.ports.mariadb),
            "QOIMA_SECRETS_DIR": str(self.secrets_dir),
            "QOIMA_DEMO_WEBHOOK_PORT": str(self.ports.demo_webhook),
            **os.environ,
        }

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        home = Path(env.get("QOIMA_HOME") or REPO_ROOT / "var").resolve()
        shift = _int(env, "QOIMA_PORT_SHIFT", 0, -20000, 2600)  # stays below the ephemeral range
        key_id = env.get("QOIMA_KEY_ID", "k1")
        if not key_id.isalnum() or len(key_id) > 16:
            raise SettingsError(f"QOIMA_KEY_ID={key_id!r} must be 1-16 letters or digits, e.g. k2")
        regulations = Path(env.get("QOIMA_REGULATIONS_DIR") or REPO_ROOT / "connectors" / "regulations")
        return cls(
            home=home,
            ports=Ports().shifted(shift),
            kafka_heap_mb=_int(env, "QOIMA_KAFKA_HEAP_MB", 512, 256, 16384),
            connect_heap_mb=_int(env, "QOIMA_CONNECT_HEAP_MB", 640, 256, 16384),
            clickhouse_max_memory_mb=_int(env, "QOIMA_CLICKHOUSE_MAX_MEMORY_MB", 2048, 512, 1 << 20),
            sink_batch_rows=_int(env, "QOIMA_SINK_BATCH_ROWS", 5000, 1, 1_000_000),
            sink_batch_ms=_int(env, "QOIMA_SINK_BATCH_MS", 500, 10, 600_000),
            regulations_dir=regulations.resolve(),
            key_id=key_id,
            assess_interval_s=_int(env, "QOIMA_ASSESS_INTERVAL_S", 300, 5, 86400),
            processor_stall_s=_int(env, "QOIMA_PROCESSOR_STALL_S", 30, 10, 3600),
        )
