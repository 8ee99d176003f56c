"""The data passport without servers: the regulation's passport block, the document built from a
catalog, its exports, what a change is, and OpenLineage events validated against the spec's
JSON schemas (tests/fixtures/openlineage)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator
from openlineage.client.serde import Serde
from referencing import Registry, Resource

from connectors.structure import SourceColumn, SourceTable
from governance.passport import catalog, export, lineage
from governance.passport.document import STRUCTURE_COLUMNS, build
from model.regulation import RegulationError, load_regulation

SCHEMAS = Path(__file__).resolve().parents[1] / "fixtures" / "openlineage"


def _catalog(regulation) -> dict:
    """A catalog as the source would answer it: the declared columns, plus one it does not capture."""
    found = {}
    for table in regulation.tables:
        columns = [SourceColumn(n, c.source_column, c.type, not c.nullable,
                                "now()" if c.name == "updated_at" else None, 12 if c.type == "char(12)" else None,
                                "") for n, c in enumerate(table.columns, 1)]
        columns.append(SourceColumn(len(columns) + 1, "internal_note", "text", False, None, None, "for staff"))
        found[table.name] = SourceTable(table.schema_name, table.table_name, "", columns,
                                        [table.column(k).source_column for k in table.primary_key])
    return found


def test_the_structure_description_has_appendix_1s_columns_and_what_the_catalog_says(demo) -> None:
    document = build(demo, _catalog(demo), "k1")
    text = export.to_csv(document)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == ",".join(STRUCTURE_COLUMNS)
    by = {(r["schema_name"], r["table_name"], r["column_name"]): r for r in rows}
    iin = by[("population", "persons", "iin")]
    assert (iin["bd_name"], iin["table_type"], iin["flk"], iin["clmn_key_type"], iin["teg"]) == \
        ("PostgreSQL", "main", "NOT NULL; max length 12", "", "identifier:iin; personal")
    assert by[("population", "persons", "person_id")]["clmn_key_type"] == "PK"
    assert by[("population", "persons", "updated_at")]["flk"] == "NOT NULL; DEFAULT now()"
    assert by[("population", "persons", "birth_date")]["teg"] == "quasi_identifier"
    assert by[("population", "persons", "internal_note")]["teg"] == "not_captured"
    # The integrity rule person_exists says where person_iin points.
    payer = by[("social", "payments", "person_iin")]
    assert (payer["reference_tbl_clmn"], payer["clmn_key_type"]) == ("population.persons.iin", "FK")
    assert by[("social", "organizations", "org_id")]["table_type"] == "lookup"
    assert [int(r["id"]) for r in rows] == list(range(1, len(rows) + 1))


def test_the_general_part_derives_what_qoima_knows(demo) -> None:
    document = build(demo, _catalog(demo), "k1")
    assert document.general["update_frequency"] == "continuous_streaming"
    assert document.general["accessibility"] == "restricted" and document.general["restrictions"] == ["personal_data"]
    assert (document.questionnaire["dbms"], document.questionnaire["min_load_window"]) == ("PostgreSQL", "02:00-05:00")
    treatments = {(w["source_table"], w["source_column"]): w["treatment"] for w in document.warehouse}
    assert treatments[("population.persons", "iin")] == "hashed (iin, key k1)"
    assert treatments[("population.persons", "birth_date")] == "generalized to year"
    assert treatments[("population.persons", "last_name")] == "dropped"
    persons_iin = next(w for w in document.warehouse if w["source_column"] == "iin" and
                       w["source_table"] == "population.persons")
    assert persons_iin["quality_rules"] == "iin_unique, iin_valid" and persons_iin["retention_days"] == 3650


def _with_passport(tmp_path, regulation_env, unit_settings, **changes):
    raw = yaml.safe_load((unit_settings.regulations_dir / "demo.yaml").read_text(encoding="utf-8"))
    raw["passport"] = {**raw["passport"], **changes}
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return load_regulation(path, regulation_env)


@pytest.mark.parametrize(("changes", "message"), [
    ({"accessibility": "unrestricted", "restrictions": []}, "the tables hold personal data"),
    ({"update_frequency": "as_needed"}, "contradicts the capture"),
    ({"use_level": "national"}, "republican"),
    ({"restrictions": []}, "needs 'restrictions'"),
])
def test_a_passport_that_contradicts_itself_or_the_capture_is_refused(tmp_path, regulation_env, unit_settings,
                                                                      demo_password_file, changes, message) -> None:
    with pytest.raises(RegulationError, match=message):
        _with_passport(tmp_path, regulation_env, unit_settings, **changes)


def test_a_change_names_what_changed_and_moves_the_right_digest(demo) -> None:
    before = build(demo, _catalog(demo), "k1")
    widened = _catalog(demo)
    persons = widened["population.persons"]
    persons.columns.append(SourceColumn(99, "nickname", "text", False, None, None, ""))
    after = build(demo, widened, "k1")
    assert after.regulation_digest == before.regulation_digest and after.structure_digest != before.structure_digest
    assert catalog.changes(before.as_json(), after) == ["column population.persons.nickname added at the source (text)"]
    rekeyed = build(demo, _catalog(demo), "k2")
    assert rekeyed.structure_digest == before.structure_digest and rekeyed.regulation_digest != before.regulation_digest
    assert "column population.persons.iin: hashed (iin, key k1) -> hashed (iin, key k2)" in \
        catalog.changes(before.as_json(), rekeyed)


def test_the_html_escapes_what_it_shows(demo) -> None:
    document = build(demo, _catalog(demo), "k1")
    document.general["update_procedure"] = "<script>x</script>"
    html = export.to_html(document, 3)
    assert "<script>x" not in html and "&lt;script&gt;" in html and "version 3" in html


# --- lineage -------------------------------------------------------------------------------------


def _registry() -> Registry:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        schema = json.loads(path.read_text(encoding="utf-8"))
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


def _valid(event: dict, registry: Registry) -> None:
    Draft202012Validator({"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"},
                         registry=registry).validate(event)
    for dataset in event["inputs"] + event["outputs"]:
        for facet in [*dataset.get("facets", {}).values(), *dataset.get("inputFacets", {}).values()]:
            Draft202012Validator({"$ref": facet["_schemaURL"]}, registry=registry).validate(facet)


def test_lineage_events_follow_the_openlineage_schemas_and_mark_masked_columns(demo, unit_settings) -> None:
    registry = _registry()
    events = [Serde.to_dict(e) for e in lineage.flow_events(unit_settings, demo)]
    assert len(events) == 3 * len(demo.tables)
    for event in events:
        _valid(event, registry)
    process = next(e for e in events if e["job"]["name"] == "demo.process.population.persons")
    assert process["inputs"][0]["name"] == "qoima.raw.demo.population.persons"
    fields = process["outputs"][0]["facets"]["columnLineage"]["fields"]
    masking = {out: f["inputFields"][0]["transformations"][0]["masking"] for out, f in fields.items()}
    assert masking["iin_hash"] is True and masking["birth_date_year"] is True and masking["status"] is False
    assert "last_name" not in masking and all("last_name" not in str(f) for f in fields.values())
    capture = next(e for e in events if e["job"]["name"] == "demo.capture.population.persons")
    assert capture["inputs"][0]["namespace"].startswith("postgres://") and \
        capture["inputs"][0]["name"] == "gosdata.population.persons"


def test_assessment_events_carry_one_assertion_per_rule(demo, unit_settings) -> None:
    registry = _registry()
    failing = {("demo", "population.persons", "iin_unique")}
    events = [Serde.to_dict(e) for e in lineage.assessment_events(unit_settings, demo, failing)]
    for event in events:
        _valid(event, registry)
    persons = next(e for e in events if e["job"]["name"] == "demo.assess.population.persons")
    assertions = {a["name"]: a["success"] for a in persons["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]}
    assert assertions["iin_unique"] is False and assertions["iin_valid"] is True
    assert set(assertions) == {r.name for r in demo.table("population.persons").rules}


def test_assessment_events_carry_the_latest_assessments_indicators(demo, unit_settings) -> None:
    from datetime import datetime, timezone

    from governance.quality_assessment import Assessment, Indicator

    measured = Assessment("demo", "population.persons", datetime(2026, 12, 5, tzinfo=timezone.utc), 200,
                          [Indicator("completeness", 1.0, 200), Indicator("uniqueness", 0.995, 200),
                           Indicator("completeness", 0.5, 200, "phone_hash")])
    other = Assessment("shop", "population.persons", measured.ts, 10, [Indicator("accuracy", 0.1, 10)])
    events = [Serde.to_dict(e) for e in lineage.assessment_events(unit_settings, demo, set(), [measured, other])]
    registry = _registry()
    for event in events:
        _valid(event, registry)
    persons = next(e for e in events if e["job"]["name"] == "demo.assess.population.persons")
    found = {a["name"]: (a["assertion"], a["success"], a.get("column"), a["actual"])
             for a in persons["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
             if a["assertion"].startswith("indicator.")}
    assert found == {"completeness": ("indicator.completeness", True, None, "1"),
                     "uniqueness": ("indicator.uniqueness", False, None, "0.995"),
                     "completeness.phone_hash": ("indicator.completeness", False, "phone_hash", "0.5")}


def test_a_description_holding_an_identifier_is_withheld_from_lineage(demo, unit_settings) -> None:
    persons = demo.table("population.persons")
    noted = persons.model_copy(update={"description": "Жители, например ИИН 900101300126"})
    events = lineage.flow_events(unit_settings, demo.model_copy(update={"tables": [noted]}))
    text = json.dumps([Serde.to_dict(e) for e in events], ensure_ascii=False)
    assert "900101300126" not in text and "withheld" in text


def test_lineage_goes_to_an_http_endpoint(demo, tmp_path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from model.settings import Settings

    received: list[tuple[str, dict]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        settings = Settings.from_env({"QOIMA_HOME": str(tmp_path), "QOIMA_LINEAGE_TRANSPORT": url})
        assert lineage.emit(settings, lineage.flow_events(settings, demo)) == 3 * len(demo.tables)
    finally:
        server.shutdown()
    assert len(received) == 3 * len(demo.tables)
    assert {path for path, _ in received} == {"/api/v1/lineage"}
    assert {event["job"]["name"] for _, event in received} >= {"demo.process.population.persons"}


def test_lineage_goes_to_the_configured_file(demo, tmp_path) -> None:
    from model.settings import Settings

    settings = Settings.from_env({"QOIMA_HOME": str(tmp_path), "QOIMA_LINEAGE_TRANSPORT": f"file:{tmp_path}/ol.jsonl"})
    assert lineage.emit(settings, lineage.flow_events(settings, demo)) == 3 * len(demo.tables)
    lines = (tmp_path / "ol.jsonl").read_text().splitlines()
    assert len(lines) == 3 * len(demo.tables) and json.loads(lines[0])["eventType"] == "COMPLETE"
    none = Settings.from_env({"QOIMA_HOME": str(tmp_path), "QOIMA_LINEAGE_TRANSPORT": "none"})
    assert lineage.emit(none, lineage.flow_events(none, demo)) == 0


def test_a_source_comment_holding_an_identifier_is_withheld_from_the_catalog(demo) -> None:
    sources = _catalog(demo)
    persons = sources["population.persons"]
    persons.columns[-1] = SourceColumn(99, "internal_note", "text", False, "'900101300126'::text", None,
                                       "ИИН, например 900101300126")
    rows = {r["column_name"]: r for r in build(demo, sources, "k1").structure if r["table_name"] == "persons"}
    assert "900101300126" not in json.dumps(rows, ensure_ascii=False)
    assert rows["internal_note"]["column_description"].startswith("(withheld")


def test_a_reference_to_another_providers_table_is_named_as_the_rule_names_it(tmp_path, regulation_env,
                                                                              unit_settings, demo_password_file) -> None:
    raw = yaml.safe_load((unit_settings.regulations_dir / "demo.yaml").read_text(encoding="utf-8"))
    raw["provider"] = "payments_only"   # population.persons is another provider's now
    raw["tables"] = [t for t in raw["tables"] if t["name"] != "population.persons"]
    path = tmp_path / "payments.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    regulation = load_regulation(path, regulation_env)
    rows = build(regulation, _catalog(regulation), "k1").structure
    payer = next(r for r in rows if r["column_name"] == "person_iin")
    assert (payer["reference_tbl_clmn"], payer["clmn_key_type"]) == ("population.persons.iin", "FK")
