"""Process-wide settings, read once from the environment and validated at start-up.

Every port, path and size an operator may change is here, with a default that runs the local
stack. `QOIMA_PORT_SHIFT` moves every port at once so that a test stack can run beside a
developer's stack; `QOIMA_HOME` moves every data, log, pid and secret file.

Each field is read from the variable `QOIMA_<FIELD NAME IN CAPITALS>` (pydantic-settings does
the reading and the type checks); an empty variable means the default. `Settings.from_env()`
turns a validation failure into a `SettingsError` whose message names the variable and the fix.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError, PydanticUseDefault
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


_MAPPING_ONLY: ContextVar[bool] = ContextVar("qoima_settings_mapping_only", default=False)


class SettingsError(ValueError):
    """A setting has a value Qoima cannot run with; the message says which and how to fix it."""


def _env_name(field: str) -> str:
    return f"QOIMA_{field.upper()}"


def _empty_means_default(raw: Any) -> Any:
    if raw is None or raw == "":
        raise PydanticUseDefault()
    return raw


def _integer(raw: Any) -> Any:
    # Python's int() grammar, not pydantic's (which would take "1.0"): the same values as ever.
    raw = _empty_means_default(raw)
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            raise PydanticCustomError("not_an_integer", "is not an integer") from None
    return raw


# An integer setting; its Field(ge=, le=) bounds also make its error message.
_Integer = Annotated[int, BeforeValidator(_integer)]


# Relative paths are taken from the directory Qoima was started in, once, at start-up.
_Directory = Annotated[Path, BeforeValidator(_empty_means_default), AfterValidator(Path.resolve)]


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
    alertmanager: int = 29094
    processor_metrics: int = 29101
    sink_metrics: int = 29102
    demo_metrics: int = 29103
    assessor_metrics: int = 29104
    poller_metrics: int = 29105
    pd236_standin: int = 29106
    demo_webhook: int = 29999

    def shifted(self, shift: int) -> "Ports":
        return Ports(**{name: port + shift for name, port in self.__dict__.items()})

    def processor_worker(self, worker: int) -> int:
        """Worker 0's metrics on `processor_metrics`; worker n's 10 + n above it, clear of the others'."""
        return self.processor_metrics + (10 + worker if worker else 0)


class Settings(BaseSettings):
    # Exact variable names (QOIMA_HOME, not qoima_home) as before; `validate_default` resolves
    # the default paths the same way as given ones.
    model_config = SettingsConfigDict(alias_generator=_env_name, case_sensitive=True, frozen=True,
                                      extra="ignore", validate_default=True)

    # The local stack listens on loopback only: not a setting.
    host: ClassVar[str] = "127.0.0.1"

    home: _Directory = REPO_ROOT / "var"
    port_shift: _Integer = Field(0, ge=-20000, le=2600)  # stays below the ephemeral range
    key_id: str = "k1"
    regulations_dir: _Directory = REPO_ROOT / "connectors" / "regulations"
    kafka_heap_mb: _Integer = Field(512, ge=256, le=16384)
    connect_heap_mb: _Integer = Field(640, ge=256, le=16384)
    clickhouse_max_memory_mb: _Integer = Field(2048, ge=512, le=1 << 20)
    # Large inserts are what ClickHouse is fast at; a quiet stream closes batches by time first
    # (200 ms: freshness, docs/benchmarks.md; five inserts a second per table is still few parts).
    sink_batch_rows: _Integer = Field(50_000, ge=1, le=1_000_000)
    sink_batch_ms: _Integer = Field(200, ge=10, le=600_000)
    # `qoima up` refuses to start with less free on QOIMA_HOME's disk (infra/disk.py): the test
    # suite's stack reaches about 5.2 GB, and Kafka and ClickHouse need room to work; 0: no check.
    min_free_gb: _Integer = Field(8, ge=0, le=1 << 20)
    assess_interval_s: _Integer = Field(300, ge=5, le=86400)
    # The processor's work and rules topics get this many partitions when `qoima up` creates
    # them: the most workers that can share the load. Fixed afterwards (docs/design.md, "Scale-out").
    processor_partitions: _Integer = Field(4, ge=1, le=64)
    processor_workers: _Integer = Field(1, ge=1, le=8)
    # A table's load pauses while the processor has more events than this still to consume, so
    # that routine changes never wait behind more (governance/load_governor.py); 0: never paused.
    load_backlog_max: _Integer = Field(20_000, ge=0, le=10_000_000)
    # PD236 access protocol (docs/pd236.md). Access events are counted per table, path and this
    # interval, so their number stays sane whatever the row rate.
    pd236_interval_s: _Integer = Field(60, ge=1, le=86400)
    # The state service's endpoints: empty means the local stand-in (infra/pd236_standin.py).
    pd236_url: str = ""
    pd236_test_url: str = ""
    # What the security token (JWT) says: the operator's id as issuer, the service as audience.
    pd236_issuer: str = "qoima-operator"
    pd236_audience: str = "pd-access-control"
    pd236_token_ttl_s: _Integer = Field(300, ge=10, le=3600)
    # The operator's signing key (PEM, RS256), by reference: a file path. Empty: the local
    # stack's generated key under QOIMA_HOME/secrets.
    pd236_private_key_file: str = ""
    # Where OpenLineage events go (governance/passport/lineage.py): `file` (QOIMA_HOME/lineage/
    # openlineage.jsonl), `file:<path>`, `kafka:<topic>` on the stack's broker, an http(s) URL, or `none`.
    lineage_transport: Annotated[str, BeforeValidator(_empty_means_default)] = "file"
    # Whose queries are usage (DM385 §13, governance/passport/usage.py): the ClickHouse accounts
    # analysts read the warehouse with, comma-separated. Qoima's own accounts are never usage.
    usage_users: Annotated[str, BeforeValidator(_empty_means_default)] = "analyst"

    @field_validator("pd236_url", "pd236_test_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if url and not url.startswith(("http://", "https://")):
            raise PydanticCustomError("http_url", "must be an http:// or https:// URL (empty: the local stand-in)")
        return url

    @field_validator("lineage_transport")
    @classmethod
    def _lineage_transport(cls, spec: str) -> str:
        if spec in ("file", "none") or spec.startswith(("http://", "https://")) or (
                spec.startswith(("file:", "kafka:")) and len(spec.split(":", 1)[1]) > 0):
            return spec
        raise PydanticCustomError("lineage_transport", "must be file, file:<path>, kafka:<topic>, an http(s) URL or none")

    @field_validator("load_backlog_max")
    @classmethod
    def _load_backlog_max(cls, limit: int) -> int:
        # Every transactional partition keeps a commit marker past the committed offset: a limit
        # of a few events could never be got under, and the load would never resume.
        if 0 < limit < 1000:
            raise PydanticCustomError("load_backlog_max", "must be 0 (off) or at least 1000 events")
        return limit

    @field_validator("usage_users")
    @classmethod
    def _usage_users(cls, spec: str) -> str:
        users = [u.strip() for u in spec.split(",")]
        if not all(users) or any(not u.replace("_", "").replace("-", "").isalnum() for u in users):
            raise PydanticCustomError("usage_users", "must be ClickHouse account names separated by commas, "
                                                     "e.g. analyst,analyst_ministry")
        return ",".join(users)

    @property
    def usage_accounts(self) -> list[str]:
        return self.usage_users.split(",")

    @model_validator(mode="after")
    def _workers_have_partitions(self) -> "Settings":
        if self.processor_workers > self.processor_partitions:
            raise ValueError(f"QOIMA_PROCESSOR_WORKERS={self.processor_workers} but QOIMA_PROCESSOR_PARTITIONS="
                             f"{self.processor_partitions}: a worker beyond the partition count would idle; "
                             "lower the workers or raise the partitions (before the first `qoima up`)")
        return self

    @field_validator("key_id")
    @classmethod
    def _key_id_is_a_file_name_part(cls, key_id: str) -> str:
        # Every clean record carries it (`_key_id`) to name its pseudonym key: short and plain.
        if not key_id.isalnum() or len(key_id) > 16:
            raise PydanticCustomError("key_id", "must be 1-16 letters or digits, e.g. k2")
        return key_id

    @property
    def ports(self) -> Ports:
        return Ports().shifted(self.port_shift)

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
    def pd236_standin_url(self) -> str:
        return f"http://{self.host}:{self.ports.pd236_standin}"

    @property
    def pd236_endpoint(self) -> str:
        """Where access events go: QOIMA_PD236_URL, else the local stand-in."""
        return self.pd236_url or f"{self.pd236_standin_url}/api/v1/access-events"

    @property
    def pd236_test_endpoint(self) -> str:
        """Where `qoima pd236 test-act` sends its ten requests: QOIMA_PD236_TEST_URL, else the stand-in."""
        return self.pd236_test_url or f"{self.pd236_standin_url}/api/v1/access-events"

    @property
    def pd236_signing_key(self) -> Path:
        return Path(self.pd236_private_key_file) if self.pd236_private_key_file else \
            self.secrets_dir / "pd236-signing-key.pem"

    @property
    def pd236_verifying_key(self) -> Path:
        """The public half the stand-in verifies with (the real service gets it at integration, PD236 §10.2)."""
        return self.secrets_dir / "pd236-signing-key.pub.pem"

    @property
    def lineage_file(self) -> Path:
        spec = self.lineage_transport
        return Path(spec.split(":", 1)[1]) if spec.startswith("file:") else self.home / "lineage" / "openlineage.jsonl"

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
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        # The process environment, unless `from_env` was given a mapping to read instead: a test
        # or bench must not pick up the QOIMA_* variables of the process it runs in.
        return (init_settings,) if _MAPPING_ONLY.get() else (init_settings, env_settings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """The settings from the process environment, or from `env` alone when given (tests, benches)."""
        token = _MAPPING_ONLY.set(env is not None)
        try:
            return cls() if env is None else cls.model_validate(dict(env))
        except ValidationError as exc:
            raise SettingsError("\n".join(_explain(error) for error in exc.errors())) from None
        finally:
            _MAPPING_ONLY.reset(token)


def _explain(error: Any) -> str:
    """One validation error as the operator should read it: the variable, its value, the fix."""
    if not error["loc"]:  # a check across settings: its message names them and the fix
        return str(error["ctx"]["error"]) if "error" in error.get("ctx", {}) else error["msg"]
    name = str(error["loc"][0])
    value = error["input"]
    field = next((f for f in Settings.model_fields.values() if f.alias == name), None)
    bounds = {}
    for constraint in field.metadata if field is not None else ():
        bounds.update({key: getattr(constraint, key) for key in ("ge", "le") if hasattr(constraint, key)})
    if "ge" in bounds and "le" in bounds:
        fix = f"set it to a number between {bounds['ge']} and {bounds['le']}"
        if error["type"] == "not_an_integer":
            return f"{name}={value!r} is not an integer; {fix}"
        if error["type"] in ("greater_than_equal", "less_than_equal"):
            return f"{name}={value} is out of range; {fix}"
    return f"{name}={value!r} {error['msg']}"
