"""The local stack: every real component as a process on 127.0.0.1, started in order.

PostgreSQL and, for `dbms: mariadb` regulations, MariaDB (sources; infra/mariadb.py)
-> Kafka (KRaft) -> Kafka Connect with Debezium -> ClickHouse (chdb-core) -> Prometheus, then
Qoima's own processor and sink. Each start is idempotent: a component that is already healthy
is left alone, so `qoima up` may be run again at any time.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from string import Template
from typing import Callable

import requests

from model.names import (DEAD_LETTER_TOPIC, INCIDENT_TOPIC, MARKER_STATE_TOPIC, QUARANTINE_TOPIC, SCHEMA_TOPIC, SIGNAL_TABLE,
                         SIGNAL_TABLE_DDL, heartbeat_topic)
from infra.mariadb import LocalMariaDb
from infra.processes import Managed, StackError, log_tail, wait_until
from model.settings import REPO_ROOT, Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
JVM_TARGET = REPO_ROOT / "infra" / "jvm" / "target"
LOCAL_TEMPLATES = REPO_ROOT / "infra" / "local"
ALERT_RULES = REPO_ROOT / "monitoring" / "alerts.yml"
PROMETHEUS_BIN = Path("/usr/bin/prometheus")
SOURCE_DB = "gosdata"
CAPTURE_USER = "qoima_capture"
ORDER = ["postgres", "mariadb", "kafka", "connect", "clickhouse", "prometheus", "processor", "sink", "assessor",
         "poller", "demo-webhook", "demo-load"]

Progress = Callable[[str], None]


def _port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _render(template: str, target: Path, **values) -> Path:
    text = Template((LOCAL_TEMPLATES / template).read_text(encoding="utf-8")).substitute(**values)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def _secret_file(path: Path) -> str:
    """A random secret in a 0600 file, without a trailing newline: Kafka Connect's
    DirectoryConfigProvider passes the file's bytes on verbatim, newline included."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24))
    return path.read_text().strip()


class LocalStack:
    def __init__(self, settings: Settings, progress: Progress = print) -> None:
        self.s = settings
        self.progress = progress
        self.python = sys.executable
        self.mariadb = LocalMariaDb(settings, progress)

    def managed(self, name: str) -> Managed:
        return Managed(name, self.s.run_dir, self.s.log_dir / f"{name}.log")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["QOIMA_HOME"] = str(self.s.home)
        return env

    # ---------------------------------------------------------------- secrets
    def ensure_secrets(self) -> None:
        from sinks.clickhouse_users import ADMIN_USER, ANALYST_USER, WRITER_USER, password_file
        from streams.keys import create_master_key_file

        self.s.secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.s.secrets_dir, 0o700)
        create_master_key_file(self.s.master_key_file)
        _secret_file(self.s.secrets_dir / "demo-source-password")
        _secret_file(self.s.secrets_dir / "shop-source-password")
        _secret_file(self.s.secrets_dir / "mariadb-owner-password")
        for user in (ADMIN_USER, WRITER_USER, ANALYST_USER):
            _secret_file(password_file(self.s, user))

    # ---------------------------------------------------------------- postgres
    def _pg_as_owner(self) -> str | None:
        return "postgres" if os.geteuid() == 0 else None

    def pg_admin_conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.s.run_dir} port={self.s.ports.postgres} user=postgres dbname={dbname}"

    def start_postgres(self) -> None:
        managed = self.managed("postgres")
        data = self.s.data_dir / "postgres"
        owner = self._pg_as_owner()
        if managed.pid() and _port_open(self.s.host, self.s.ports.postgres):
            self.progress("postgres: already running")
            return
        for path in (self.s.data_dir, self.s.run_dir, self.s.log_dir):
            path.mkdir(parents=True, exist_ok=True)
        if owner:
            # The server refuses to run as root; its directories belong to the postgres user.
            shutil.chown(self.s.run_dir, owner)
            os.chmod(self.s.run_dir, 0o755)
        if not (data / "PG_VERSION").exists():
            self.progress("postgres: initdb")
            data.mkdir(parents=True, exist_ok=True)
            if owner:
                shutil.chown(data, owner)
            result = subprocess.run(
                (["runuser", "-u", owner, "--"] if owner else []) +
                [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"],
                capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"initdb failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
            with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(
                    "\n# Qoima local stack\n"
                    "wal_level = logical\nmax_wal_senders = 10\nmax_replication_slots = 10\n"
                    f"listen_addresses = '{self.s.host}'\n"
                    "shared_buffers = 128MB\nmax_connections = 50\n"
                    # A slot whose consumer is gone must not fill the disk with WAL.
                    "max_slot_wal_keep_size = 2GB\n"
                )
        log = self.s.log_dir / "postgres.log"
        if owner:
            log.touch()
            shutil.chown(log, owner)
        result = subprocess.run(
            (["runuser", "-u", owner, "--"] if owner else []) +
            [str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o",
             f"-p {self.s.ports.postgres} -k {self.s.run_dir}", "start"],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise StackError(f"PostgreSQL did not start: {result.stdout.strip()} {result.stderr.strip()}\n"
                             f"Last lines of {log}:\n{log_tail(log)}")
        managed.adopt(int((data / "postmaster.pid").read_text().split()[0]))
        self.progress(f"postgres: up on {self.s.host}:{self.s.ports.postgres}")

    def prepare_source(self) -> None:
        """The demo provider's side: database, schema, a least-privilege capture account."""
        import psycopg
        from psycopg import sql

        from infra.demo import source

        password = (self.s.secrets_dir / "demo-source-password").read_text().strip()
        with psycopg.connect(self.pg_admin_conninfo(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SOURCE_DB,)).fetchone():
                conn.execute(f"CREATE DATABASE {SOURCE_DB}")
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (CAPTURE_USER,)).fetchone()
            statement = "ALTER ROLE {} WITH LOGIN REPLICATION PASSWORD {}" if exists else \
                "CREATE ROLE {} WITH LOGIN REPLICATION PASSWORD {}"
            conn.execute(sql.SQL(statement).format(sql.Identifier(CAPTURE_USER), sql.Literal(password)))
        source.apply_schema(self.pg_admin_conninfo(SOURCE_DB))
        with psycopg.connect(self.pg_admin_conninfo(SOURCE_DB), autocommit=True) as conn:
            # Every schema a regulation captures from this database (registry: the marker-mode demo,
            # SELECT only; catalog: the type samples), so a new demo table needs no edit here.
            from model.regulation import load_all

            regulations = load_all(self.s.regulations_dir, self.s.regulation_env())
            schemas = sorted({table.schema_name for regulation in regulations
                              if regulation.source.database == SOURCE_DB for table in regulation.tables})
            for schema in schemas:
                conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {CAPTURE_USER}")
                conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {CAPTURE_USER}")
            # Incremental snapshots: the capture account writes signals (and Debezium its
            # watermarks) here, and nowhere else.
            conn.execute(SIGNAL_TABLE_DDL)
            conn.execute(f"GRANT SELECT, INSERT, DELETE ON {SIGNAL_TABLE} TO {CAPTURE_USER}")

    def ensure_publication(self, regulation) -> None:
        """Created by the data owner, so the capture account needs no ownership of the tables."""
        import psycopg

        tables = ", ".join([*(t.name for t in regulation.tables), SIGNAL_TABLE])
        with psycopg.connect(self.pg_admin_conninfo(regulation.source.database), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (regulation.publication_name,)).fetchone():
                conn.execute(f"ALTER PUBLICATION {regulation.publication_name} SET TABLE {tables}")
            else:
                conn.execute(f"CREATE PUBLICATION {regulation.publication_name} FOR TABLE {tables}")

    # ---------------------------------------------------------------- kafka
    def _java(self, heap_mb: int, main_class: str, *args: str) -> list[str]:
        libs = JVM_TARGET / "kafka-libs"
        if not libs.is_dir():
            raise StackError(f"{libs} is missing: run `make setup` (it runs mvn -f infra/jvm/pom.xml package)")
        return [
            "java", f"-Xms{min(256, heap_mb)}m", f"-Xmx{heap_mb}m", "-XX:+UseSerialGC",
            "-XX:MaxMetaspaceSize=256m", "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.s.conf_dir / 'log4j.properties'}",
            f"-Dkafka.logs.dir={self.s.log_dir}",
            "-cp", f"{libs}/*", main_class, *args,
        ]

    def kafka_healthy(self) -> bool:
        from confluent_kafka.admin import AdminClient

        if not _port_open(self.s.host, self.s.ports.kafka):
            return False
        admin = AdminClient({"bootstrap.servers": self.s.kafka_bootstrap, "socket.timeout.ms": 3000})
        admin.list_topics(timeout=3)
        return True

    def start_kafka(self) -> None:
        managed = self.managed("kafka")
        if managed.pid() and self.kafka_healthy():
            self.progress("kafka: already running")
            return
        data = self.s.data_dir / "kafka"
        shutil.copy(LOCAL_TEMPLATES / "log4j.properties", self.s.conf_dir / "log4j.properties")
        config = _render("kafka-server.properties", self.s.conf_dir / "kafka-server.properties",
                         host=self.s.host, port=self.s.ports.kafka, controller_port=self.s.ports.kafka_controller,
                         data_dir=data)
        if not (data / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            self.progress("kafka: formatting KRaft storage")
            # `--cluster-id=`: one id in 64 starts with '-', which a separate argument would make an option.
            result = subprocess.run(self._java(256, "kafka.tools.StorageTool", "format",
                                               f"--cluster-id={cluster_id}", "-c", str(config)),
                                    capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"kafka storage format failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        managed.start(self._java(self.s.kafka_heap_mb, "kafka.Kafka", str(config)))
        wait_until(self.kafka_healthy, 90, "Kafka", managed)
        self.progress(f"kafka: up on {self.s.kafka_bootstrap}")

    def create_topics(self, regulations) -> None:
        """Raw, clean and quarantine topics exist before anyone reads or writes them.

        Raw topics hold clear identifiers, so they keep data for one day only; clean and
        quarantine topics keep a week, enough to rebuild the warehouse after an incident.
        """
        from confluent_kafka.admin import AdminClient, NewTopic


        day, week = str(24 * 3600 * 1000), str(7 * 24 * 3600 * 1000)
        wanted = {QUARANTINE_TOPIC: week, DEAD_LETTER_TOPIC: week, INCIDENT_TOPIC: week}
        for regulation in regulations:
            for table in regulation.tables:
                wanted[regulation.raw_topic(table)] = day
                wanted[regulation.clean_topic(table)] = week
                wanted[regulation.held_topic(table)] = week
            wanted[heartbeat_topic(regulation.provider)] = day
        admin = AdminClient({"bootstrap.servers": self.s.kafka_bootstrap})
        existing = set(admin.list_topics(timeout=10).topics)
        new = [NewTopic(name, num_partitions=1, replication_factor=1, config={"retention.ms": retention})
               for name, retention in wanted.items() if name not in existing]
        if SCHEMA_TOPIC not in existing:
            # Every Avro schema written with, by fingerprint: compacted, kept forever.
            new.append(NewTopic(SCHEMA_TOPIC, num_partitions=1, replication_factor=1,
                                config={"cleanup.policy": "compact"}))
        if any(r.polled for r in regulations) and MARKER_STATE_TOPIC not in existing:
            # The marker poller's watermarks: one small record per table, the latest kept forever.
            new.append(NewTopic(MARKER_STATE_TOPIC, num_partitions=1, replication_factor=1,
                                config={"cleanup.policy": "compact"}))
        for name, future in admin.create_topics(new).items() if new else []:
            try:
                future.result()
            except Exception as exc:
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise StackError(f"cannot create topic {name}: {exc}") from None

    # ---------------------------------------------------------------- connect
    def connect_healthy(self) -> bool:
        response = requests.get(f"{self.s.connect_url}/connector-plugins", timeout=3)
        return response.ok and any("PostgresConnector" in p.get("class", "") for p in response.json())

    def start_connect(self) -> None:
        managed = self.managed("connect")
        if managed.pid() and _port_open(self.s.host, self.s.ports.connect):
            self.progress("connect: already running")
            return
        plugins = JVM_TARGET / "plugins"
        config = _render("connect-distributed.properties", self.s.conf_dir / "connect-distributed.properties",
                         host=self.s.host, port=self.s.ports.connect, bootstrap=self.s.kafka_bootstrap,
                         plugin_path=plugins, secrets_dir=self.s.secrets_dir)
        managed.start(self._java(self.s.connect_heap_mb, "org.apache.kafka.connect.cli.ConnectDistributed",
                                 str(config)))
        wait_until(self.connect_healthy, 180, "Kafka Connect", managed, interval=1.0)
        self.progress(f"connect: up on {self.s.connect_url}")

    # ---------------------------------------------------------------- clickhouse
    def clickhouse_healthy(self) -> bool:
        return requests.get(f"{self.s.clickhouse_url}/ping", timeout=2).text.strip() == "Ok."

    def start_clickhouse(self) -> None:
        from sinks.clickhouse_users import ADMIN_USER, ANALYST_USER, WRITER_USER, password

        managed = self.managed("clickhouse")
        if managed.pid() and _port_open(self.s.host, self.s.ports.clickhouse_http):
            self.progress("clickhouse: already running")
            return
        for port in (self.s.ports.clickhouse_http, self.s.ports.clickhouse_tcp):
            if _port_open(self.s.host, port):
                raise StackError(f"port {port} is taken by another program; stop it or set QOIMA_PORT_SHIFT")
        conf = self.s.conf_dir / "clickhouse"
        sha = {user: hashlib.sha256(password(self.s, user).encode()).hexdigest()
               for user in (ADMIN_USER, WRITER_USER, ANALYST_USER)}
        limit = self.s.clickhouse_max_memory_mb * 1024 * 1024
        _render("clickhouse-config.xml", conf / "config.xml", host=self.s.host,
                http_port=self.s.ports.clickhouse_http, tcp_port=self.s.ports.clickhouse_tcp, max_memory_bytes=limit)
        _render("clickhouse-users.xml", conf / "users.xml", query_memory_bytes=limit // 2,
                admin_sha256=sha[ADMIN_USER], writer_sha256=sha[WRITER_USER], analyst_sha256=sha[ANALYST_USER])
        os.chmod(conf / "users.xml", 0o600)
        data = self.s.data_dir / "clickhouse"
        data.mkdir(parents=True, exist_ok=True)
        # Supervised like Qoima's own processes: the embedded server has crashed on its own once
        # (a segfault in a background pool); the sink retries meanwhile and loses nothing.
        managed.start([self.python, "-m", "infra.supervise", "clickhouse", "--",
                       self.python, "-m", "infra.clickhouse_server", str(conf), str(data)],
                      env=self._env(), cwd=REPO_ROOT)
        wait_until(self.clickhouse_healthy, 60, "ClickHouse", managed)
        self.progress(f"clickhouse: up on {self.s.clickhouse_url}")

    # ---------------------------------------------------------------- prometheus
    def prometheus_healthy(self) -> bool:
        return requests.get(f"{self.s.prometheus_url}/-/ready", timeout=2).ok

    def start_prometheus(self) -> None:
        managed = self.managed("prometheus")
        if managed.pid() and _port_open(self.s.host, self.s.ports.prometheus):
            self.progress("prometheus: already running")
            return
        if not PROMETHEUS_BIN.exists():
            raise StackError(f"{PROMETHEUS_BIN} is missing: run `make setup` (installs Debian's prometheus)")
        self._wait_port_free(self.s.ports.prometheus, "prometheus")
        p = self.s.ports
        config = _render("prometheus.yml", self.s.conf_dir / "prometheus.yml", host=self.s.host,
                         rules_file=ALERT_RULES, processor_port=p.processor_metrics, sink_port=p.sink_metrics,
                         demo_port=p.demo_metrics, assessor_port=p.assessor_metrics, poller_port=p.poller_metrics,
                         prometheus_port=p.prometheus)
        managed.start([str(PROMETHEUS_BIN), f"--config.file={config}",
                       f"--storage.tsdb.path={self.s.data_dir / 'prometheus'}",
                       f"--web.listen-address={self.s.host}:{p.prometheus}",
                       "--storage.tsdb.retention.time=3d", "--web.enable-lifecycle"])
        wait_until(self.prometheus_healthy, 60, "Prometheus", managed)
        self.progress(f"prometheus: up on {self.s.prometheus_url}")

    def _wait_port_free(self, port: int, name: str, timeout: float = 15.0) -> None:
        """A previous stack's process may still be letting go of the port; past that, say who to stop."""
        deadline = time.monotonic() + timeout
        while _port_open(self.s.host, port):
            if time.monotonic() > deadline:
                raise StackError(f"{name}: port {port} is taken by another program; stop it (`ss -ltnp "
                                 f"sport = :{port}` shows which) or set QOIMA_PORT_SHIFT")
            time.sleep(0.5)

    # ---------------------------------------------------------------- qoima processes
    def _metrics_healthy(self, port: int) -> Callable[[], bool]:
        return lambda: requests.get(f"http://{self.s.host}:{port}/metrics", timeout=2).ok

    def start_qoima(self, name: str, argv: list[str], metrics_port: int) -> None:
        """A Qoima process, healthy once its /metrics answers."""
        self._start_qoima(name, argv, self._metrics_healthy(metrics_port),
                          f"metrics on http://{self.s.host}:{metrics_port}/metrics")

    def start_processor(self) -> None:
        """The Faust processor, healthy once its worker has recovered and sought its offsets."""
        port = self.s.ports.processor_metrics

        def ready() -> bool:
            text = requests.get(f"http://{self.s.host}:{port}/metrics", timeout=2).text
            return "\nqoima_processor_ready 1.0" in text

        self._start_qoima("processor", ["processor"], ready, f"ready, metrics on http://{self.s.host}:{port}/metrics")

    def start_process(self, name: str, argv: list[str], port: int) -> None:
        """A Qoima process without metrics, healthy once its port answers."""
        self._start_qoima(name, argv, lambda: _port_open(self.s.host, port), f"on {self.s.host}:{port}")

    def _start_qoima(self, name: str, argv: list[str], healthy: Callable[[], bool], where: str) -> None:
        managed = self.managed(name)
        if managed.pid():
            self.progress(f"{name}: already running")
            return
        # Supervised: a crash or the processor's watchdog exit restarts it (infra/supervise.py).
        managed.start([self.python, "-m", "infra.supervise", name, "--", self.python, "-m", "qoima", *argv],
                      env=self._env(), cwd=REPO_ROOT)
        wait_until(healthy, 60, name, managed)
        self.progress(f"{name}: up, {where}")

    # ---------------------------------------------------------------- all
    def up(self, demo_rate: float | None) -> None:
        from connectors.connect_client import ConnectClient
        from connectors.debezium_config import connector_config
        from model.regulation import load_all
        from infra.demo import source

        started = time.monotonic()
        for path in (self.s.data_dir, self.s.log_dir, self.s.run_dir, self.s.conf_dir):
            path.mkdir(parents=True, exist_ok=True)
        self.ensure_secrets()
        regulations = load_all(self.s.regulations_dir, self.s.regulation_env())
        self.start_postgres()
        self.prepare_source()
        source.seed(self.pg_admin_conninfo(SOURCE_DB))
        source.seed_licenses(self.pg_admin_conninfo(SOURCE_DB))  # the marker-mode demo table
        for regulation in regulations:
            if regulation.polled or regulation.source.dbms != "postgresql":
                continue  # publications are PostgreSQL's; marker sources need no replication at all
            self.ensure_publication(regulation)
        mariadb_regulations = [r for r in regulations if r.source.dbms == "mariadb"]
        if mariadb_regulations:
            self.mariadb.start()
            for regulation in mariadb_regulations:
                # The capture password is the one the regulation points Connect at (created above).
                self.mariadb.prepare(regulation, regulation.source.password.read(self.s.regulation_env()),
                                     _secret_file(self.s.secrets_dir / "mariadb-owner-password"))
        self.start_kafka()
        self.create_topics(regulations)
        self.start_clickhouse()
        self.start_connect()
        self.start_prometheus()
        self.start_qoima("sink", ["sink"], self.s.ports.sink_metrics)
        self.start_processor()
        self.start_qoima("assessor", ["assessor"], self.s.ports.assessor_metrics)
        if any(r.polled for r in regulations):
            self.start_qoima("poller", ["poller"], self.s.ports.poller_metrics)
        client = ConnectClient(self.s.connect_url)
        for regulation in regulations:
            if regulation.polled:
                self.progress(f"provider {regulation.provider}: capture 'marker', polled by `qoima poller` "
                              "(no connector)")
                continue
            outcome = client.upsert(regulation.connector_name, connector_config(regulation, self.s.kafka_bootstrap))
            client.wait_running(regulation.connector_name, timeout=120)
            self.progress(f"connector {regulation.connector_name}: {outcome}, RUNNING")
        if demo_rate:
            self.start_process("demo-webhook", ["demo", "webhook"], self.s.ports.demo_webhook)
            self.start_qoima("demo-load", ["demo", "load", "--rate", str(demo_rate), "--metrics"],
                             self.s.ports.demo_metrics)
        self.progress(f"stack ready in {time.monotonic() - started:.0f}s")

    def down(self, wipe: bool) -> None:
        for name in reversed(ORDER):
            managed = self.managed(name)
            if name == "postgres":
                stopped = managed.stop(signal.SIGINT)  # fast shutdown: roll back clients, checkpoint
            else:
                stopped = managed.stop()
            self.progress(f"{name}: {'stopped' if stopped else 'not running'}")
        if wipe:
            for path in (self.s.data_dir, self.s.conf_dir, self.s.run_dir):
                shutil.rmtree(path, ignore_errors=True)
            self.progress(f"data wiped under {self.s.home} (secrets and logs kept)")
