"""Killing a component of the real stack with SIGKILL and starting it again the way `qoima up` does."""
from __future__ import annotations

import os
import signal
import time

from connectors.connect_client import ConnectClient
from model.regulation import load_all


def kill_9(stack, component: str) -> None:
    """SIGKILL to the component's process group; returns once it is gone."""
    managed = stack.managed(component)
    pid = managed.pid()
    assert pid is not None, f"{component} runs before it is killed"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while managed.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert managed.pid() is None, f"{component} survived SIGKILL"


def restart(stack, component: str) -> None:
    if component == "kafka":
        stack.start_kafka()
    elif component == "connect":
        stack.start_connect()
    elif component == "clickhouse":
        stack.start_clickhouse()
    elif component == "processor":
        stack.start_processor()
    else:
        stack.start_qoima(component, [component], getattr(stack.s.ports, f"{component}_metrics"))


def connectors_running(stack) -> None:
    client = ConnectClient(stack.s.connect_url)
    for regulation in load_all(stack.s.regulations_dir, stack.s.regulation_env()):
        if regulation.source.capture.value == "cdc":
            client.wait_running(regulation.connector_name, timeout=180)
