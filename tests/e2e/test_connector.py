"""The Debezium connector through the Kafka Connect REST API, on the real worker."""
from __future__ import annotations

import json

import pytest

from connectors.connect_client import ConnectClient, ConnectError
from connectors.debezium import connector_config
from model.regulation import load_all


@pytest.fixture(scope="module")
def regulation(stack):
    return load_all(stack.s.regulations_dir, stack.s.regulation_env())[0]


@pytest.fixture(scope="module")
def connect(stack):
    return ConnectClient(stack.s.connect_url)


def test_password_is_a_reference_never_a_literal(stack, connect, regulation):
    secret = (stack.s.secrets_dir / "demo-source-password").read_text().strip()
    config = connect.config(regulation.connector_name)
    assert config["database.password"].startswith("${dir:")
    assert secret not in json.dumps(config)
    assert secret not in json.dumps(connect.status(regulation.connector_name))


def test_register_is_idempotent(connect, regulation):
    assert connect.upsert(regulation.connector_name, connector_config(regulation)) == "unchanged"


def test_pause_resume_restart(connect, regulation):
    name = regulation.connector_name
    connect.pause(name)
    try:
        for _ in range(30):
            if connect.state(name) == "PAUSED":
                break
            __import__("time").sleep(0.5)
        assert connect.state(name) == "PAUSED"
    finally:
        connect.resume(name)
    connect.wait_running(name, timeout=60)
    connect.restart(name)
    connect.wait_running(name, timeout=60)


def test_errors_say_what_to_do(stack, connect, regulation):
    with pytest.raises(ConnectError, match="not found"):
        connect.status("no-such-connector")
    broken = {**connector_config(regulation), "snapshot.mode": "sometimes"}
    problems = connect.validate(broken)
    assert any(p.startswith("snapshot.mode") for p in problems)
    with pytest.raises(ConnectError, match="not reachable"):
        ConnectClient("http://127.0.0.1:9", timeout=2).list()
