"""A marker regulation (`capture: marker`, model/regulation.py) as the poller takes it."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connectors.marker.poller import MarkerPoller
from connectors.marker.table import MarkerTable
from model.regulation import RegulationError, load_regulation
from tests.unit.marker_fakes import LICENSES_RAW, NOW, FakeKafka, marker_regulation


@pytest.fixture(scope="module")
def registry(unit_settings, regulation_env, demo_password_file):
    return marker_regulation(unit_settings, regulation_env)


def test_demo_marker_regulation(registry) -> None:
    assert registry.provider == "registry" and registry.polled
    table = registry.tables[0]
    assert (table.name, table.marker, table.deleted_flag) == ("registry.licenses", "updated_at", "revoked")
    assert registry.raw_topic(table) == LICENSES_RAW
    assert (registry.source.poll_seconds, registry.source.lookback_seconds) == (5, 60)


def test_cdc_regulations_are_not_polled(demo) -> None:
    assert not demo.polled
    assert MarkerPoller([demo], {}, FakeKafka()).regulations == []


# --- regulation checks ------------------------------------------------------------------------


def _marker_doc(unit_settings) -> dict:
    return yaml.safe_load((unit_settings.regulations_dir / "demo_marker.yaml").read_text(encoding="utf-8"))


def _error(tmp_path: Path, document: dict, regulation_env) -> str:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RegulationError) as info:
        load_regulation(path, regulation_env)
    return str(info.value)


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["tables"][0].pop("marker"), "needs 'marker: <column>'"),
    (lambda d: d["tables"][0].update(marker="issued_at"), "marker column 'issued_at' is not among its columns"),
    (lambda d: d["tables"][0].update(marker="issued_on"), "a marker must increase with every change"),
    (lambda d: d["tables"][0].update(marker="license_type"), "a marker must increase with every change"),
    (lambda d: d["tables"][0]["columns"][5].update(nullable=True), "must be declared 'nullable: false'"),
    (lambda d: d["tables"][0].update(deleted_flag="license_type"), "must be boolean"),
    (lambda d: d["tables"][0].update(deleted_flag="gone"), "deleted_flag column 'gone' is not among"),
    (lambda d: d["source"].update(snapshot="initial"), "snapshot: applies to capture 'cdc'"),
    (lambda d: d["source"].update(heartbeat_seconds=10), "heartbeat_seconds: applies to capture 'cdc'"),
    (lambda d: d.update(source={k: v for k, v in d["source"].items() if not k.startswith(("poll", "lookback",
                                                                                           "safety", "reconcile"))}
                        | {"capture": "cdc"}),
     "'marker' and 'deleted_flag' apply to capture 'marker' only"),
])
def test_marker_regulation_mistakes_are_named(tmp_path, unit_settings, regulation_env, change, expected) -> None:
    document = _marker_doc(unit_settings)
    change(document)
    assert expected in _error(tmp_path, document, regulation_env)


def test_poll_settings_refused_on_cdc(tmp_path, unit_settings, regulation_env) -> None:
    document = _marker_doc(unit_settings)
    document["source"]["capture"] = "cdc"
    document["tables"] = [t for t in document["tables"] if "source_table" not in t]   # CDC refuses those names
    for table in document["tables"]:
        table.pop("marker"), table.pop("deleted_flag")
    message = _error(tmp_path, document, regulation_env)
    assert "applies to capture 'marker' only" in message and "poll_seconds" in message


def test_integer_marker_is_accepted(tmp_path, unit_settings, regulation_env) -> None:
    document = _marker_doc(unit_settings)
    document["tables"][0]["columns"].append({"name": "row_seq", "type": "bigint", "nullable": False})
    document["tables"][0]["marker"] = "row_seq"
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    table = MarkerTable(*(lambda r: (r, r.tables[0]))(load_regulation(path, regulation_env)))
    assert table.kind == "integer" and table.lookback == 1000
    assert table.version(41) == 41 and table.version(-3) == 0
    assert table.upper_bound(NOW, NOW.replace(tzinfo=None)) is None
