"""The local Kafka Connect worker (distributed mode, one worker, Debezium's plugins) and the
registration of each regulation's connector on it."""
from __future__ import annotations

import requests

from infra.java import JVM_TARGET, java_command
from infra.ports import port_open
from infra.processes import Managed, Progress, wait_until
from infra.templates import render
from model.settings import Settings


class LocalConnect:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress
        self.managed = Managed("connect", settings.run_dir, settings.log_dir / "connect.log")

    # ---------------------------------------------------------------- worker
    def healthy(self) -> bool:
        response = requests.get(f"{self.s.connect_url}/connector-plugins", timeout=3)
        return response.ok and any("PostgresConnector" in p.get("class", "") for p in response.json())

    def start(self) -> None:
        if self.managed.pid() and port_open(self.s.host, self.s.ports.connect):
            self.progress("connect: already running")
            return
        plugins = JVM_TARGET / "plugins"
        config = render("connect-distributed.properties", self.s.conf_dir / "connect-distributed.properties",
                        host=self.s.host, port=self.s.ports.connect, bootstrap=self.s.kafka_bootstrap,
                        plugin_path=plugins, secrets_dir=self.s.secrets_dir)
        self.managed.start(java_command(self.s, self.s.connect_heap_mb,
                                        "org.apache.kafka.connect.cli.ConnectDistributed", str(config)))
        wait_until(self.healthy, 180, "Kafka Connect", self.managed, interval=1.0)
        self.progress(f"connect: up on {self.s.connect_url}")

    # ---------------------------------------------------------------- connectors
    def register(self, regulations) -> None:
        """Each change-data-capture regulation's connector, created or updated, then RUNNING."""
        from connectors.connect_client import ConnectClient
        from connectors.debezium import connector_config

        client = ConnectClient(self.s.connect_url)
        for regulation in regulations:
            if regulation.polled:
                self.progress(f"provider {regulation.provider}: capture 'marker', polled by `qoima poller` "
                              "(no connector)")
                continue
            outcome = client.upsert(regulation.connector_name, connector_config(regulation, self.s.kafka_bootstrap))
            client.wait_running(regulation.connector_name, timeout=120)
            self.progress(f"connector {regulation.connector_name}: {outcome}, RUNNING")
