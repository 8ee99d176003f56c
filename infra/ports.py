"""Whether something answers on a port: a component's first sign of life, or a stranger in its way."""
from __future__ import annotations

import socket
import time

from infra.processes import StackError


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_port_free(host: str, port: int, name: str, timeout: float = 15.0) -> None:
    """A previous stack's process may still be letting go of the port; past that, say who to stop."""
    deadline = time.monotonic() + timeout
    while port_open(host, port):
        if time.monotonic() > deadline:
            raise StackError(f"{name}: port {port} is taken by another program; stop it (`ss -ltnp "
                             f"sport = :{port}` shows which) or set QOIMA_PORT_SHIFT")
        time.sleep(0.5)
