"""The local ClickHouse server: infra/clickhouse_server.py (the chdb-core engine) as a supervised
process, with the config and the users (admin, writer, analyst) rendered for this stack."""
from __future__ import annotations

import hashlib
import os
import sys

import requests

from infra.ports import port_open
from infra.processes import Managed, Progress, StackError, wait_until
from infra.qoima_processes import start_supervised
from infra.templates import render
from model.settings import Settings


class LocalClickHouse:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress
        self.managed = Managed("clickhouse", settings.run_dir, settings.log_dir / "clickhouse.log")

    def healthy(self) -> bool:
        return requests.get(f"{self.s.clickhouse_url}/ping", timeout=2).text.strip() == "Ok."

    def start(self) -> None:
        from sinks.clickhouse_users import ADMIN_USER, ANALYST_USER, WRITER_USER, password

        if self.managed.pid() and port_open(self.s.host, self.s.ports.clickhouse_http):
            self.progress("clickhouse: already running")
            return
        for port in (self.s.ports.clickhouse_http, self.s.ports.clickhouse_tcp):
            if port_open(self.s.host, port):
                raise StackError(f"port {port} is taken by another program; stop it or set QOIMA_PORT_SHIFT")
        conf = self.s.conf_dir / "clickhouse"
        sha = {user: hashlib.sha256(password(self.s, user).encode()).hexdigest()
               for user in (ADMIN_USER, WRITER_USER, ANALYST_USER)}
        limit = self.s.clickhouse_max_memory_mb * 1024 * 1024
        render("clickhouse-config.xml", conf / "config.xml", host=self.s.host,
               http_port=self.s.ports.clickhouse_http, tcp_port=self.s.ports.clickhouse_tcp, max_memory_bytes=limit)
        render("clickhouse-users.xml", conf / "users.xml", query_memory_bytes=limit // 2,
               admin_sha256=sha[ADMIN_USER], writer_sha256=sha[WRITER_USER], analyst_sha256=sha[ANALYST_USER])
        os.chmod(conf / "users.xml", 0o600)
        data = self.s.data_dir / "clickhouse"
        data.mkdir(parents=True, exist_ok=True)
        # Supervised like Qoima's own processes: the embedded server has crashed on its own once
        # (a segfault in a background pool); the sink retries meanwhile and loses nothing.
        start_supervised(self.managed, [sys.executable, "-m", "infra.clickhouse_server", str(conf), str(data)],
                         self.s)
        wait_until(self.healthy, 60, "ClickHouse", self.managed)
        self.progress(f"clickhouse: up on {self.s.clickhouse_url}")
