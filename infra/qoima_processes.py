"""Qoima's own processes on the local stack: the processor, the sink, the assessor, the poller
and the demo's, each started by `python -m qoima` under infra/supervise.py."""
from __future__ import annotations

import os
import sys
from typing import Callable

import requests

from infra.ports import port_open
from infra.processes import Managed, Progress, wait_until
from model.settings import REPO_ROOT, Settings


def processor_process(worker: int) -> str:
    """The managed process name of a processor worker: `processor` for worker 0, as before."""
    return "processor" if worker == 0 else f"processor-{worker}"


def start_supervised(managed: Managed, argv: list[str], settings: Settings,
                     extra_env: dict[str, str] | None = None) -> None:
    """`argv` under infra/supervise.py, from the repository root, with the stack's QOIMA_HOME."""
    env = {**os.environ, **(extra_env or {})}
    env["QOIMA_HOME"] = str(settings.home)
    managed.start([sys.executable, "-m", "infra.supervise", managed.name, "--", *argv], env=env, cwd=REPO_ROOT)


class QoimaProcesses:
    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.s = settings
        self.progress = progress

    def managed(self, name: str) -> Managed:
        return Managed(name, self.s.run_dir, self.s.log_dir / f"{name}.log")

    def _metrics_healthy(self, port: int) -> Callable[[], bool]:
        return lambda: requests.get(f"http://{self.s.host}:{port}/metrics", timeout=2).ok

    def start(self, name: str, argv: list[str], metrics_port: int) -> None:
        """A Qoima process, healthy once its /metrics answers."""
        self._start(name, argv, self._metrics_healthy(metrics_port),
                    f"metrics on http://{self.s.host}:{metrics_port}/metrics")

    def start_processor(self, worker: int | None = None) -> None:
        """The processor's workers (QOIMA_PROCESSOR_WORKERS), or only `worker`; each healthy once
        it has joined its group and restored the state of its partitions."""
        for n in range(self.s.processor_workers) if worker is None else (worker,):
            port = self.s.ports.processor_worker(n)

            def ready(port: int = port) -> bool:
                text = requests.get(f"http://{self.s.host}:{port}/metrics", timeout=2).text
                return "\nqoima_processor_ready 1.0" in text

            self._start(processor_process(n), ["processor"], ready,
                        f"ready, metrics on http://{self.s.host}:{port}/metrics",
                        env={"QOIMA_PROCESSOR_WORKER": str(n)})

    def start_without_metrics(self, name: str, argv: list[str], port: int) -> None:
        """A Qoima process without metrics, healthy once its port answers."""
        self._start(name, argv, lambda: port_open(self.s.host, port), f"on {self.s.host}:{port}")

    def _start(self, name: str, argv: list[str], healthy: Callable[[], bool], where: str,
               env: dict[str, str] | None = None) -> None:
        managed = self.managed(name)
        if managed.pid():
            self.progress(f"{name}: already running")
            return
        # Supervised: a crash, or a processor ending on a failed transaction, restarts it (infra/supervise.py).
        start_supervised(managed, [sys.executable, "-m", "qoima", *argv], self.s, env)
        wait_until(healthy, 60, name, managed)
        self.progress(f"{name}: up, {where}")
