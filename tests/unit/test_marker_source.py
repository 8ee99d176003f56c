"""What the marker poller asks its source (connectors/marker/source.py), as the statements the one
source reader (connectors/source_reader.py) sends: no server, a recording connection."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from connectors.marker.errors import PollerConfigError
from connectors.marker.source import PolledSource
from connectors.marker.table import MarkerTable
from model.regulation import RegulationError
from tests.unit.marker_fakes import IIN, MICROS, NOW, UTC, marker_regulation, micros


@pytest.fixture(scope="module")
def registry(unit_settings, regulation_env, demo_password_file):
    return marker_regulation(unit_settings, regulation_env)


class Recording:
    """A DB-API connection that records each statement with its parameters."""

    def __init__(self, answer=()) -> None:
        self.answer, self.statements = list(answer), []

    def cursor(self):
        return self

    def execute(self, query, params=None) -> None:
        self.statements.append((query, params))

    def fetchall(self):
        return self.answer

    def close(self) -> None:
        pass


@pytest.fixture()
def recorded(registry, monkeypatch):
    connection, options = Recording(), {}

    def connect(regulation, environ, **given):
        options.update(given)
        return connection

    monkeypatch.setattr("connectors.source_reader.connect_source", connect)
    return PolledSource(registry, {}), connection, options


def test_keyset_sql(registry, recorded) -> None:
    source, connection, options = recorded
    table = MarkerTable(registry, registry.tables[0])
    source.page(table, after=None, lower=micros(NOW) - 60 * MICROS, upper=micros(NOW), limit=1000)
    text, params = connection.statements[-1]
    assert text.startswith('SELECT "license_id", "holder_iin", "license_type", "issued_on", "revoked", "updated_at" '
                           'FROM "registry"."licenses" WHERE ')
    assert '"updated_at" >= %s AND "updated_at" <= %s' in text  # lower bound inclusive: ties at it are re-read
    assert text.endswith('ORDER BY "updated_at", "license_id" LIMIT %s')
    assert params == [NOW - timedelta(seconds=60), NOW, 1000]
    moment = datetime(2024, 1, 15, 16, 0, tzinfo=timezone(timedelta(hours=6)))
    source.page(table, after=(moment, 7), lower=0, upper=None, limit=10)
    text, params = connection.statements[-1]
    assert '("updated_at", "license_id") > (%s, %s)' in text
    assert ">=" not in text  # the cursor replaces the lower bound
    assert params == [datetime(2024, 1, 15, 10, 0, tzinfo=UTC), 7, 10]
    source.page(table, after=None, lower=None, upper=None, limit=5)
    assert connection.statements[-1][0].count("WHERE TRUE") == 1
    source.keys(table)
    keys = connection.statements[-1][0]
    assert keys == 'SELECT "license_id", "updated_at", "revoked" IS TRUE FROM "registry"."licenses"'
    # One autocommit connection (now() must move between polls), statements bounded.
    assert options == {"timeout_ms": 300_000, "application": "qoima-poller", "autocommit": True}


def test_rows_come_back_by_column_name(registry, recorded) -> None:
    source, connection, _ = recorded
    row = (7, IIN, "pharmacy", date(2024, 1, 10), False, NOW)
    connection.answer = [row]
    [page] = source.page(MarkerTable(registry, registry.tables[0]), after=None, lower=None, upper=None, limit=5)
    assert page == {"license_id": 7, "holder_iin": IIN, "license_type": "pharmacy", "issued_on": date(2024, 1, 10),
                    "revoked": False, "updated_at": NOW}


def test_an_unreadable_password_stops_the_poller(registry, monkeypatch) -> None:
    def refuse(regulation, environ, **options):
        raise RegulationError("source.password: file /run/secrets/registry-password not found")

    monkeypatch.setattr("connectors.source_reader.connect_source", refuse)
    with pytest.raises(PollerConfigError, match="provider registry: source.password: file"):
        PolledSource(registry, {}).clock()


def test_timestamp_without_zone_compares_wall_clock(registry) -> None:
    table = MarkerTable(registry, registry.tables[0])
    table.zoned = False  # as for a `timestamp` column
    wall = datetime(2024, 1, 15, 10, 30)
    assert table.parameter(table.position(wall)) == wall
    # The upper bound comes from the source's wall clock (localtimestamp), not from now().
    assert table.upper_bound(NOW, datetime(2024, 1, 15, 17, 0)) == micros(datetime(2024, 1, 15, 17, 0, tzinfo=UTC))
