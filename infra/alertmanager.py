"""The local Alertmanager (Debian's prometheus-alertmanager): receives what Prometheus fires from
monitoring/alerts.yml and routes it to the demo webhook (infra/local/alertmanager.yml)."""
from __future__ import annotations

from pathlib import Path

import requests

from infra.ports import port_open, wait_port_free
from infra.processes import Managed, Progress, StackError, wait_until
from infra.templates import render
from model.settings import Settings

ALERTMANAGER_BIN = Path("/usr/bin/prometheus-alertmanager")


class LocalAlertmanager:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress
        self.managed = Managed("alertmanager", settings.run_dir, settings.log_dir / "alertmanager.log")

    @property
    def url(self) -> str:
        return f"http://{self.s.host}:{self.s.ports.alertmanager}"

    def healthy(self) -> bool:
        return requests.get(f"{self.url}/-/ready", timeout=2).ok

    def start(self) -> None:
        if self.managed.pid() and port_open(self.s.host, self.s.ports.alertmanager):
            self.progress("alertmanager: already running")
            return
        if not ALERTMANAGER_BIN.exists():
            raise StackError(f"{ALERTMANAGER_BIN} is missing: run `make setup` (installs Debian's "
                             "prometheus-alertmanager)")
        wait_port_free(self.s.host, self.s.ports.alertmanager, "alertmanager")
        config = render("alertmanager.yml", self.s.conf_dir / "alertmanager.yml", host=self.s.host,
                        webhook_port=self.s.ports.demo_webhook)
        # One instance, no cluster: an empty cluster address turns gossip off.
        self.managed.start([str(ALERTMANAGER_BIN), f"--config.file={config}",
                            f"--storage.path={self.s.data_dir / 'alertmanager'}",
                            f"--web.listen-address={self.s.host}:{self.s.ports.alertmanager}",
                            "--cluster.listen-address="])
        wait_until(self.healthy, 60, "Alertmanager", self.managed)
        self.progress(f"alertmanager: up on {self.url}, routing to the demo webhook")
