"""The poller's loop (connectors/marker/scheduler.py) and what a failure may say
(connectors/marker/errors.py)."""
from __future__ import annotations

import threading

import psycopg
import pytest

from connectors.marker.errors import classify
from connectors.marker.scheduler import poll_until_stopped
from tests.unit.marker_fakes import IIN, LICENSES_RAW, FakeKafka, FakeSource, license_row, marker_regulation, poller_for


@pytest.fixture(scope="module")
def registry(unit_settings, regulation_env, demo_password_file):
    return marker_regulation(unit_settings, regulation_env)


def test_errors_never_quote_what_the_driver_said() -> None:
    kind, text = classify(psycopg.OperationalError(f"connection failed for {IIN}"))
    assert kind == "source_unreachable" and IIN not in text
    kind, text = classify(psycopg.DataError(f"invalid input {IIN}"))
    assert kind == "source_error" and IIN not in text
    refused = psycopg.OperationalError("password authentication failed")
    refused.sqlstate = "28P01"
    assert classify(refused)[0] == "source_login"
    kind, text = classify(KeyError(IIN))
    assert kind == "internal" and IIN not in text and "KeyError" in text


def test_run_backs_off_on_an_unreachable_source_then_recovers(registry, caplog) -> None:
    source, kafka = FakeSource([license_row(1)]), FakeKafka()
    poller = poller_for(registry, source, kafka)
    source.fail = psycopg.OperationalError("server closed the connection")
    stop = threading.Event()
    calls = []
    original = poller.poll

    def poll(regulation):
        calls.append(1)
        if len(calls) == 2:
            source.fail = None
        try:
            return original(regulation)
        finally:
            if len(calls) == 2:
                stop.set()

    poller.poll = poll
    caplog.set_level("WARNING", logger="qoima.poller")
    poll_until_stopped(poller, stop)
    assert len(calls) == 2
    assert "source unreachable (OperationalError); retrying in 1 s" in caplog.text
    assert [e["after"]["license_id"] for e in kafka.events(LICENSES_RAW)] == [1]
