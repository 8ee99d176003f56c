"""The on-demand checks behind `qoima scan` and `qoima risk` (governance/): they measure, and
record what they find as incidents themselves, whoever calls them. Scanners, ClickHouse and
Kafka are fakes here; the scans themselves run in tests/e2e/test_depersonalization_check.py."""
from __future__ import annotations

from collections import Counter

import pytest

import governance.depersonalization_check as scan
import governance.reidentification as reidentification
from model.leak_scan import KnownValues


class FakePublisher:
    instances: list["FakePublisher"] = []

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.published = []
        FakePublisher.instances.append(self)

    def publish(self, detection) -> None:
        self.published.append(detection)


@pytest.fixture
def publisher(monkeypatch):
    FakePublisher.instances = []
    monkeypatch.setattr(scan, "IncidentPublisher", FakePublisher)
    monkeypatch.setattr(reidentification, "IncidentPublisher", FakePublisher)
    return FakePublisher


@pytest.fixture
def scanners(monkeypatch):
    """Known values and both scans faked; returns which scans ran."""
    ran: list[str] = []
    known = KnownValues(phones={"77011234567"}, names={"айгерим", "сапарова"})
    monkeypatch.setattr(scan, "known_values", lambda regulations, environ: known)
    monkeypatch.setattr(scan, "writer_client", lambda settings: "writer")

    def warehouse(client, regulations, known_values):
        ran.append("warehouse")
        assert client == "writer" and known_values is known
        return scan.ScanReport(rows=10, findings=Counter({("udw.demo__population__persons.note", "name"): 2}))

    def topics(settings, regulations, known_values):
        ran.append("topics")
        return scan.ScanReport(rows=5)

    monkeypatch.setattr(scan, "scan_warehouse", warehouse)
    monkeypatch.setattr(scan, "scan_topics", topics)
    return ran


def test_scan_records_every_finding_as_a_critical_incident(unit_settings, scanners, publisher):
    heard: list[str] = []
    result = scan.check(unit_settings, [], {}, progress=heard.append)
    assert heard == ["known values from the sources: 2 name words, 1 phones"]
    assert scanners == ["warehouse", "topics"] and [what for what, _ in result.reports] == ["warehouse", "topics"]
    assert result.findings == 2
    [sent] = publisher.instances
    assert sent.bootstrap == unit_settings.kafka_bootstrap
    [detection] = sent.published
    assert detection == scan.leak_detection("udw.demo__population__persons.note", "name", 2)
    assert (detection.severity, detection.rule, detection.count) == ("critical", "depersonalization_check", 2)
    assert "2 clear name value(s)" in detection.detail and "Айгерим" not in detection.detail


def test_scan_of_one_side_only_and_a_clean_scan_records_nothing(unit_settings, scanners, publisher):
    result = scan.check(unit_settings, [], {}, warehouse=False)
    assert scanners == ["topics"] and result.findings == 0
    assert publisher.instances == []        # nothing found: Kafka not even touched


def _risk(table: str, k: int, rows: int = 100) -> reidentification.Risk:
    return reidentification.Risk("demo", table, ("birth_year", "sex"), None, rows, 10, k, None,
                                 1 if k < 5 else 0, 3 if k < 5 else 0, 5)


def test_risk_records_tables_below_their_threshold(monkeypatch, unit_settings, demo, publisher):
    monkeypatch.setattr(reidentification, "writer_client", lambda settings: "writer")
    risks = {"population.persons": _risk("population.persons", 2), "social.payments": _risk("social.payments", 9)}
    monkeypatch.setattr(reidentification, "assess", lambda client, reg, table: risks.get(table.name))
    found = reidentification.check(unit_settings, [demo])
    assert [r.table for r in found] == ["population.persons", "social.payments"]   # tables without QIs omitted
    [sent] = publisher.instances
    assert sent.published == [reidentification.detection(risks["population.persons"])]
    assert sent.published[0].rule == "k_anonymity"


def test_risk_within_thresholds_records_nothing(monkeypatch, unit_settings, demo, publisher):
    monkeypatch.setattr(reidentification, "writer_client", lambda settings: "writer")
    monkeypatch.setattr(reidentification, "assess", lambda client, reg, table: _risk(table.name, 7))
    assert all(not r.below_threshold for r in reidentification.check(unit_settings, [demo]))
    assert publisher.instances == []
