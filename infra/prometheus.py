"""The local Prometheus server (Debian's package): scrapes Qoima's processes and evaluates
monitoring/alerts.yml."""
from __future__ import annotations

from pathlib import Path

import requests

from infra.ports import port_open, wait_port_free
from infra.processes import Managed, Progress, StackError, wait_until
from infra.templates import render
from model.settings import REPO_ROOT, Settings

ALERT_RULES = REPO_ROOT / "monitoring" / "alerts.yml"
PROMETHEUS_BIN = Path("/usr/bin/prometheus")


class LocalPrometheus:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress
        self.managed = Managed("prometheus", settings.run_dir, settings.log_dir / "prometheus.log")

    def healthy(self) -> bool:
        return requests.get(f"{self.s.prometheus_url}/-/ready", timeout=2).ok

    def start(self) -> None:
        if self.managed.pid() and port_open(self.s.host, self.s.ports.prometheus):
            self.progress("prometheus: already running")
            return
        if not PROMETHEUS_BIN.exists():
            raise StackError(f"{PROMETHEUS_BIN} is missing: run `make setup` (installs Debian's prometheus)")
        wait_port_free(self.s.host, self.s.ports.prometheus, "prometheus")
        p = self.s.ports
        config = render("prometheus.yml", self.s.conf_dir / "prometheus.yml", host=self.s.host,
                        rules_file=ALERT_RULES, sink_port=p.sink_metrics,
                        processor_targets=", ".join(f'"{self.s.host}:{p.processor_worker(n)}"'
                                                    for n in range(self.s.processor_workers)),
                        demo_port=p.demo_metrics, assessor_port=p.assessor_metrics, poller_port=p.poller_metrics,
                        prometheus_port=p.prometheus, alertmanager_port=p.alertmanager)
        self.managed.start([str(PROMETHEUS_BIN), f"--config.file={config}",
                            f"--storage.tsdb.path={self.s.data_dir / 'prometheus'}",
                            f"--web.listen-address={self.s.host}:{p.prometheus}",
                            "--storage.tsdb.retention.time=3d", "--web.enable-lifecycle"])
        wait_until(self.healthy, 60, "Prometheus", self.managed)
        self.progress(f"prometheus: up on {self.s.prometheus_url}")
