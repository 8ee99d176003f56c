"""The statements SourceReader sends, in each source's dialect (no server: a recording cursor)."""
from __future__ import annotations

import pytest

from model.regulation import load_regulation
from connectors.source_reader import SourceReader


@pytest.fixture()
def registry(unit_settings, regulation_env, demo_password_file):
    return load_regulation(unit_settings.regulations_dir / "demo_marker.yaml", regulation_env)


class Recording:
    def __init__(self, answer) -> None:
        self.answer, self.queries = answer, []

    def cursor(self):
        return self

    def execute(self, query, params=None):
        self.queries.append(query)

    def fetchall(self):
        return self.answer

    def close(self) -> None:
        pass


def reader(dbms: str, answer) -> SourceReader:
    made = object.__new__(SourceReader)  # no connection: the dialect is all that is tested
    made.dbms, made._conn = dbms, Recording(answer)
    return made


@pytest.mark.parametrize("dbms, expected", [
    ("postgresql", 'SELECT count(*) FROM "population"."persons"'),
    ("mariadb", "SELECT count(*) FROM `population`.`persons`"),
])
def test_counts_in_each_dialect(demo, dbms, expected) -> None:
    source = reader(dbms, [(42,)])
    assert source.count_rows(demo.table("population.persons")) == 42
    assert source._conn.queries == [expected]


def test_soft_deleted_rows_are_not_counted_in_marker_mode(registry) -> None:
    source = reader("postgresql", [(7,)])
    source.count_rows(registry.table("registry.licenses"))
    assert source._conn.queries[0].endswith('WHERE "revoked" IS NOT TRUE')


def test_identifiers_are_quoted_against_injection(demo) -> None:
    source = reader("mariadb", [("a",), ("b",)])
    assert list(source.distinct_values(demo.table("population.persons"), "last`name", 10)) == ["a", "b"]
    assert source._conn.queries == ["SELECT DISTINCT `last``name` FROM `population`.`persons` LIMIT 10"]


def test_connects_on_first_use_and_again_after_close(demo, monkeypatch) -> None:
    opened = []

    def connect(regulation, environ, **options):
        opened.append(Recording([(1,)]))
        return opened[-1]

    monkeypatch.setattr("connectors.source_reader.connect_source", connect)
    source = SourceReader(demo, {})
    assert opened == []  # a reader that is never asked never connects
    source.count_rows(demo.table("population.persons"))
    source.count_rows(demo.table("population.persons"))
    assert len(opened) == 1
    source.close()
    source.count_rows(demo.table("population.persons"))
    assert len(opened) == 2  # a poller closes after a failure and gets a fresh connection
