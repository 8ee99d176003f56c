"""The local stack: every real component as a process on 127.0.0.1, started in order.

PostgreSQL (infra/postgres.py) and, for `dbms: mariadb` regulations, MariaDB (infra/mariadb.py),
the sources, seeded with the demo -> Kafka and its topics (infra/kafka.py) -> ClickHouse
(infra/clickhouse.py) -> Kafka Connect with Debezium (infra/connect.py) -> Prometheus
(infra/prometheus.py) -> Qoima's own sink, processor, assessor and poller
(infra/qoima_processes.py), then each regulation's connector. Each start is idempotent: a
component that is already healthy is left alone, so `qoima up` may be run again at any time.
"""
from __future__ import annotations

import shutil
import signal
import time

from infra.clickhouse import LocalClickHouse
from infra.connect import LocalConnect
from infra.disk import ensure_room
from infra.kafka import LocalKafka
from infra.local_secrets import ensure_secrets, secret_file
from infra.mariadb import LocalMariaDb
from infra.postgres import CAPTURE_USER, SOURCE_DB, LocalPostgres
from infra.processes import Managed, Progress
from infra.alertmanager import LocalAlertmanager
from infra.prometheus import LocalPrometheus
from infra.qoima_processes import QoimaProcesses, processor_process
from model.settings import Settings

__all__ = ["CAPTURE_USER", "ORDER", "QOIMA_PROCESSES", "SOURCE_DB", "LocalStack"]

# Qoima's own processes, in the order `qoima up` starts them (the poller only for marker mode).
QOIMA_PROCESSES = ("sink", "processor", "assessor", "poller")
ORDER = ["postgres", "mariadb", "kafka", "connect", "clickhouse", "alertmanager", "prometheus", "pd236-standin",
         "processor", "sink", "assessor", "poller", "demo-webhook", "demo-load"]


class LocalStack:
    def __init__(self, settings: Settings, progress: Progress = print) -> None:
        self.s = settings
        self.progress = progress
        self.postgres = LocalPostgres(settings, progress)
        self.mariadb = LocalMariaDb(settings, progress)
        self.kafka = LocalKafka(settings, progress)
        self.connect = LocalConnect(settings, progress)
        self.clickhouse = LocalClickHouse(settings, progress)
        self.alertmanager = LocalAlertmanager(settings, progress)
        self.prometheus = LocalPrometheus(settings, progress)
        self.qoima = QoimaProcesses(settings, progress)

    def managed(self, name: str) -> Managed:
        return Managed(name, self.s.run_dir, self.s.log_dir / f"{name}.log")

    def pg_admin_conninfo(self, dbname: str = "postgres") -> str:
        return self.postgres.admin_conninfo(dbname)

    # ---------------------------------------------------------------- one component again
    # What the e2e tests call to bring back a component they stopped or killed.
    def start_kafka(self) -> None:
        self.kafka.start()

    def start_connect(self) -> None:
        self.connect.start()

    def start_clickhouse(self) -> None:
        self.clickhouse.start()

    def start_processor(self) -> None:
        self.qoima.start_processor()

    def start_pd236_standin(self) -> None:
        """The local stand-in of the PD236 state service (infra/pd236_standin.py)."""
        self.qoima.start_without_metrics("pd236-standin", ["pd236", "standin"], self.s.ports.pd236_standin)

    def start_qoima(self, name: str, argv: list[str], metrics_port: int) -> None:
        self.qoima.start(name, argv, metrics_port)

    def start_qoima_process(self, name: str, worker: int | None = None) -> None:
        """One of QOIMA_PROCESSES as `qoima up` starts it (the processor: every worker, or `worker`)."""
        if name == "processor":
            self.qoima.start_processor(worker)
        else:
            ports = self.s.ports
            metrics = {"sink": ports.sink_metrics, "assessor": ports.assessor_metrics, "poller": ports.poller_metrics}
            self.qoima.start(name, [name], metrics[name])

    # ---------------------------------------------------------------- all
    def up(self, demo_rate: float | None) -> None:
        from model.regulation import load_all
        from infra.demo import source

        started = time.monotonic()
        ensure_room(self.s, self.progress)   # before anything is made: a new stack is told by its data_dir
        for path in (self.s.data_dir, self.s.log_dir, self.s.run_dir, self.s.conf_dir):
            path.mkdir(parents=True, exist_ok=True)
        ensure_secrets(self.s)
        regulations = load_all(self.s.regulations_dir, self.s.regulation_env())
        self.postgres.start()
        self.postgres.prepare_source()
        source.seed(self.pg_admin_conninfo(SOURCE_DB))
        source.seed_licenses(self.pg_admin_conninfo(SOURCE_DB))  # the marker-mode demo table
        for regulation in regulations:
            if regulation.polled or regulation.source.dbms != "postgresql" or not self.owns(regulation):
                continue  # publications are PostgreSQL's, and other sources' owners make theirs
            self.postgres.ensure_publication(regulation)
        mariadb_regulations = [r for r in regulations if r.source.dbms == "mariadb" and self.owns(r)]
        if mariadb_regulations:
            self.mariadb.start()
            for regulation in mariadb_regulations:
                # The capture password is the one the regulation points Connect at (created above).
                self.mariadb.prepare(regulation, regulation.source.password.read(self.s.regulation_env()),
                                     secret_file(self.s.secrets_dir / "mariadb-owner-password"))
        self.kafka.start()
        self.kafka.create_topics(regulations)
        self.clickhouse.start()
        self.connect.start()
        self.alertmanager.start()
        self.prometheus.start()
        self.start_pd236_standin()
        for name in QOIMA_PROCESSES:
            if name != "poller" or any(r.polled for r in regulations):
                self.start_qoima_process(name)
        self.connect.register([r for r in regulations if r.polled or self._source_ready(r)])
        # Lineage of every regulation, and the passports' first (or next) versions (docs/passport.md).
        from governance.passport.rounds import on_apply

        on_apply(self.s, regulations)
        if demo_rate:
            self.qoima.start_without_metrics("demo-webhook", ["demo", "webhook"], self.s.ports.demo_webhook)
            self.qoima.start("demo-load", ["demo", "load", "--rate", str(demo_rate), "--metrics"],
                             self.s.ports.demo_metrics)
        self.progress(f"stack ready in {time.monotonic() - started:.0f}s")

    def owns(self, regulation) -> bool:
        """The regulation's source is one of this stack's own servers (the demo PostgreSQL or
        MariaDB), whose data owner the stack is: it makes their publications, grants and accounts.
        Any other source's owner runs `qoima provider sql` instead."""
        source, ports = regulation.source, self.s.ports
        port = ports.postgres if source.dbms == "postgresql" else ports.mariadb
        return source.host in (self.s.host, "127.0.0.1", "localhost") and source.port == port

    def _source_ready(self, regulation) -> bool:
        """The source check (connectors/source_check.py) before a connector is registered: a
        provider whose source capture would break, or cannot reach, is left out with the reason
        and the fix, and the others start."""
        from connectors.source_check import ERROR, check_source

        failures = [f for f in check_source(regulation, self.s.regulation_env()) if f.status == ERROR]
        for finding in failures:
            self.progress(f"provider {regulation.provider}: {finding.subject}: {finding.what}"
                          + (f" (fix: {finding.fix})" if finding.fix else ""))
        if failures:
            self.progress(f"provider {regulation.provider}: connector not registered: the source is not ready for "
                          f"capture; fix it, then `qoima provider apply {regulation.provider}`")
        return not failures

    def running_order(self) -> list[str]:
        """ORDER, with every processor worker running in place of `processor` (workers 1 and
        up may have been started with another QOIMA_PROCESSOR_WORKERS than now)."""
        extra = [name for name in (processor_process(n) for n in range(1, 8)) if self.managed(name).pid()]
        at = ORDER.index("processor") + 1
        return [*ORDER[:at], *extra, *ORDER[at:]]

    def down(self, wipe: bool) -> None:
        for name in reversed(self.running_order()):
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
