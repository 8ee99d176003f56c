"""The Debezium connector through the Kafka Connect REST API, on the real worker."""
from __future__ import annotations

import json
import os
import subprocess
import sys

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
    problems = connect.validate(regulation.connector_name, broken)
    assert [p.split(":", 1)[0] for p in problems] == ["snapshot.mode"], problems
    assert connect.validate(regulation.connector_name, connector_config(regulation)) == []
    with pytest.raises(ConnectError, match="not reachable"):
        ConnectClient("http://127.0.0.1:9", timeout=2).list()


@pytest.mark.parametrize("args", [("demo",), ()])
def test_connector_register_as_a_user_runs_it(stack, connect, args):
    """`qoima connector register [PROVIDER]` as the docs give it: validated, then unchanged."""
    result = subprocess.run([sys.executable, "-m", "qoima", "connector", "register", *args], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "QOIMA_HOME": str(stack.s.home)})
    assert result.returncode == 0, result.stderr
    assert "qoima-demo: unchanged" in result.stdout
    assert "Traceback" not in result.stderr
    connect.wait_running("qoima-demo", timeout=60)


def _assessor_gauge(stack, name: str, provider: str) -> float | None:
    import requests

    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.assessor_metrics}/metrics", timeout=5).text
    prefix = f'{name}{{provider="{provider}"}} '
    values = [float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else None


def test_the_slot_and_the_connector_are_watched_for_the_sources_sake(stack, connect, regulation):
    """The assessor exports, per provider, whether the replication slot is read and how much WAL
    it keeps, and whether the connector failed. A stopped connector (tasks shut down) leaves its
    slot inactive; a paused one still holds the slot open, and its WAL grows instead."""
    from tests.e2e.warehouse import poll_until

    name, provider = regulation.connector_name, regulation.provider
    poll_until(lambda: _assessor_gauge(stack, "qoima_source_slot_active", provider) == 1, 60, "the slot read")
    assert _assessor_gauge(stack, "qoima_source_slot_retained_bytes", provider) >= 0
    poll_until(lambda: _assessor_gauge(stack, "qoima_connector_failed", provider) == 0, 60, "the connector running")
    connect.stop(name)
    try:
        poll_until(lambda: _assessor_gauge(stack, "qoima_source_slot_active", provider) == 0, 90,
                   "the stopped connector's slot reported inactive")
        assert _assessor_gauge(stack, "qoima_connector_failed", provider) == 0   # stopped is not failed
    finally:
        connect.resume(name)
    connect.wait_running(name, timeout=60)
    poll_until(lambda: _assessor_gauge(stack, "qoima_source_slot_active", provider) == 1, 90, "the slot read again")


def test_a_mariadb_connectors_binlog_lag_is_watched(stack):
    """MariaDB has no slot: the assessor exports how much binary log the server wrote past the
    position the shop connector last committed, which can never exceed what the server keeps."""
    from tests.e2e.warehouse import poll_until

    lag = poll_until(lambda: _assessor_gauge(stack, "qoima_source_binlog_lag_bytes", "shop") is not None and
                     [_assessor_gauge(stack, "qoima_source_binlog_lag_bytes", "shop")], 90, "the shop's binlog lag")[0]
    import pymysql

    from model.regulation import load_all

    source = next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "shop").source
    # As the capture account, whose BINLOG MONITOR (REPLICATION CLIENT) the owner's script grants.
    shop = pymysql.connect(host=source.host, port=source.port, user=source.user,
                           password=source.password.read(stack.s.regulation_env()), database=source.database)
    try:
        with shop.cursor() as cursor:
            cursor.execute("SHOW BINARY LOGS")
            kept = sum(int(row[1]) for row in cursor.fetchall())
    finally:
        shop.close()
    assert 0 <= lag <= kept
