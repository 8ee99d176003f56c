"""Re-identification risk measured in ClickHouse equals the same measure over the source,
and a table below its threshold opens an incident and exports its metrics."""
from __future__ import annotations


import pytest
import requests

from model.regulation import load_all
from governance.reidentification import assess
from sinks.clickhouse_users import writer_client
from tests.e2e.warehouse import incident_events, wait_converged

SOURCE_CLASSES = """
SELECT min(c), count(*), min(l) FROM (
  SELECT count(*) AS c, count(DISTINCT status) AS l FROM population.persons
  GROUP BY extract(year FROM birth_date), sex,
           CASE WHEN kato_code ~ '^[0-9]{9}$' THEN left(kato_code, 2) END) classes
"""


@pytest.fixture(scope="module")
def regulation(stack):
    return load_all(stack.s.regulations_dir, stack.s.regulation_env())[0]


def test_k_anonymity_and_l_diversity_match_the_source(stack, pg, ch, regulation):
    wait_converged(pg, ch, tables=("population.persons",), timeout=120)
    table = regulation.table("population.persons")
    risk = assess(writer_client(stack.s), regulation, table)
    k, classes, l_min = pg.execute(SOURCE_CLASSES).fetchone()
    assert (risk.k, risk.classes, risk.l_diversity) == (k, classes, l_min)
    assert risk.rows == pg.execute("SELECT count(*) FROM population.persons").fetchone()[0]
    assert risk.below_threshold, "birth year x sex x region leaves small classes in 2,000 persons"


def test_coarser_quasi_identifiers_meet_the_threshold(stack, regulation):
    table = regulation.table("population.persons")
    coarse = table.model_copy(update={"columns": [
        c.model_copy(update={"quasi_identifier": c.name == "sex"}) for c in table.columns]})
    risk = assess(writer_client(stack.s), regulation, coarse)
    assert risk.quasi_identifiers == ("sex",)
    assert risk.k >= 5 and not risk.below_threshold and risk.rows_at_risk == 0


def test_assessor_exports_metrics_and_opens_an_incident(stack):
    writer = writer_client(stack.s)
    rows = incident_events(writer, "rule = 'k_anonymity' AND table = 'population.persons'", 60,
                           "the assessor's k-anonymity check")
    assert rows[0][0] == "warning" and "k=" in rows[0][1]
    text = requests.get(f"http://{stack.s.host}:{stack.s.ports.assessor_metrics}/metrics", timeout=5).text
    assert 'qoima_k_anonymity{table="population.persons"}' in text
    assert 'qoima_k_anonymity_threshold{table="population.persons"} 5.0' in text
