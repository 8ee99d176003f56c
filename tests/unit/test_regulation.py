"""The regulation model (model/regulation.py): the demo file loads; mistakes are named."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from model.regulation import (Action, Generalization, IdentifierKind, RegulationError,
                                   load_all, load_regulation)

BASE = {
    "provider": "acme",
    "organization": "Acme ministry",
    "information_system": "Acme register",
    "source": {
        "dbms": "postgresql", "host": "db.example", "port": 5432, "database": "acme",
        "user": "qoima_capture", "password": {"file": "/run/secrets/acme-password"},
    },
    "tables": [{
        "name": "population.persons",
        "primary_key": ["person_id"],
        "retention_days": 30,
        "columns": [
            {"name": "person_id", "type": "bigint", "nullable": False},
            {"name": "iin", "type": "char(12)", "nullable": False, "action": "hash", "kind": "iin"},
            {"name": "birth_date", "type": "date", "action": "generalize", "to": "year"},
            {"name": "last_name", "type": "text", "action": "drop"},
        ],
    }],
}


def doc() -> dict:
    return copy.deepcopy(BASE)


def write(directory: Path, document, name: str = "acme.yaml") -> Path:
    path = directory / name
    text = document if isinstance(document, str) else yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, document, environ: dict[str, str] | None = None) -> str:
    path = write(tmp_path, document)
    with pytest.raises(RegulationError) as info:
        load_regulation(path, environ or {})
    message = str(info.value)
    assert str(path) in message  # every message names the file
    return message


# --- the demo file --------------------------------------------------------------------------


def test_demo_regulation_loads(demo, unit_settings) -> None:
    assert demo.provider == "demo"
    assert [t.name for t in demo.tables] == ["population.persons", "social.organizations", "social.payments",
                                                  "catalog.type_samples", "social.appeals", "registry_office.persons_main",
                                                  "registry_office.person_addresses"]
    # Interpolated from the local stack's settings.
    assert demo.source.host == unit_settings.host
    assert demo.source.port == unit_settings.ports.postgres
    assert demo.source.password.file == str(unit_settings.secrets_dir / "demo-source-password")
    assert demo.source.password.env is None
    persons = demo.table("population.persons")
    assert persons.primary_key == ["person_id"]
    assert persons.retention_days == 3650
    assert persons.column("iin").action is Action.hash and persons.column("iin").kind is IdentifierKind.iin
    assert persons.column("birth_date").to is Generalization.year
    assert persons.column("last_name").output_name is None
    assert persons.column("iin").output_name == "iin_hash"
    assert persons.column("kato_code").output_name == "kato_code_region"
    assert persons.column("birth_date").output_name == "birth_date_year"
    assert persons.column("sex").output_name == "sex"


def test_demo_derived_names(demo) -> None:
    payments = demo.table("social.payments")
    assert demo.connector_name == "qoima-demo"
    assert demo.raw_topic(payments) == "qoima.raw.demo.social.payments"
    assert demo.clean_topic(payments) == "qoima.clean.demo.social.payments"
    assert demo.warehouse_table(payments) == "demo__social__payments"
    assert (demo.slot_name, demo.publication_name) == ("qoima_demo", "qoima_demo_pub")
    with pytest.raises(KeyError, match="population.persons"):
        demo.table("social.nope")


def test_base_document_is_valid(tmp_path) -> None:
    regulation = load_regulation(write(tmp_path, doc()), {})
    assert regulation.provider == "acme"


# --- errors name the field and the fix ------------------------------------------------------


def test_unknown_key_names_the_column(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"][1]["actoin"] = "hash"
    message = error_of(tmp_path, document)
    assert "tables[population.persons].columns[iin].actoin" in message
    assert "unknown field" in message
    assert "spelling" in message


def test_unknown_top_level_key_and_missing_field_both_reported(tmp_path) -> None:
    document = doc()
    document["organisation"] = document.pop("organization")
    message = error_of(tmp_path, document)
    assert "2 problem(s)" in message
    assert "organisation: unknown field" in message
    assert "organization: required field is missing" in message


def test_hash_without_kind(tmp_path) -> None:
    document = doc()
    del document["tables"][0]["columns"][1]["kind"]
    message = error_of(tmp_path, document)
    assert "tables[population.persons].columns[iin]" in message
    assert "'hash' needs 'kind'" in message
    assert "iin, bin, phone, name, email, passport, id_card" in message


def test_generalize_without_to(tmp_path) -> None:
    document = doc()
    del document["tables"][0]["columns"][2]["to"]
    message = error_of(tmp_path, document)
    assert "tables[population.persons].columns[birth_date]" in message
    assert "'generalize' needs 'to'" in message
    assert "year, age_band, kato_region, address_region, postcode_region" in message


def test_kind_on_a_kept_column_refused(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"].append({"name": "note", "type": "text", "kind": "name"})
    message = error_of(tmp_path, document)
    assert "tables[population.persons].columns[note]" in message
    assert "'kind' applies to actions 'hash' and 'drop' only" in message


def test_kind_on_a_dropped_column_tells_the_scanner_what_it_holds(tmp_path) -> None:
    document = doc()
    column = next(c for c in document["tables"][0]["columns"] if c["name"] == "last_name")
    assert column["action"] == "drop"
    column["kind"] = "name"
    loaded = load_regulation(write(tmp_path, document), {})
    assert loaded.table("population.persons").column("last_name").kind is IdentifierKind.name


def test_quasi_identifier_flags(tmp_path) -> None:
    message = error_of(tmp_path, with_column(name="note", type="text", action="drop", quasi_identifier=True))
    assert "columns[note]" in message and "cannot be a quasi-identifier" in message
    document = doc()
    for column in document["tables"][0]["columns"]:
        if column["name"] in ("iin", "birth_date"):
            column["sensitive"] = True
    assert "at most one 'sensitive' column" in error_of(tmp_path, document)


def with_column(**column) -> dict:
    document = doc()
    document["tables"][0]["columns"].append(column)
    return document


def test_to_without_generalize(tmp_path) -> None:
    message = error_of(tmp_path, with_column(name="note", type="text", action="redact", to="year"))
    assert "tables[population.persons].columns[note]" in message
    assert "'to' only applies to action 'generalize'" in message


def test_kind_with_redact_refused(tmp_path) -> None:
    message = error_of(tmp_path, with_column(name="note", type="text", action="redact", kind="iin"))
    assert "columns[note]" in message and "'kind' applies to actions 'hash' and 'drop' only" in message


@pytest.mark.parametrize("declared", ["bigint", "date", "numeric(14,2)", "jsonb", "uuid", "timestamptz"])
def test_redact_needs_a_text_column(tmp_path, declared: str) -> None:
    message = error_of(tmp_path, with_column(name="note", type=declared, action="redact"))
    assert "tables[population.persons].columns[note]" in message
    assert "action 'redact' needs a text column (text, varchar(n), char(n))" in message
    assert repr(declared) in message
    assert "use 'hash' or 'drop'" in message


@pytest.mark.parametrize("declared", ["text", "varchar(2000)", "character varying(50)", "char(12)", "TEXT"])
def test_redact_on_text_types(tmp_path, declared: str) -> None:
    regulation = load_regulation(write(tmp_path, with_column(name="note", type=declared, action="redact")), {})
    column = regulation.tables[0].column("note")
    assert column.action is Action.redact
    assert column.output_name == "note_redacted"
    assert column.output_types == ("string", "String")


@pytest.mark.parametrize("to", ["year", "age_band"])
@pytest.mark.parametrize("declared", ["text", "varchar(10)", "bigint"])
def test_date_generalizations_need_a_date_column(tmp_path, to: str, declared: str) -> None:
    message = error_of(tmp_path, with_column(name="born", type=declared, action="generalize", to=to))
    assert "tables[population.persons].columns[born]" in message
    assert f"'to: {to}' needs a date column (date, timestamp, timestamptz)" in message
    assert "fix the type or choose another 'to'" in message


@pytest.mark.parametrize("to", ["kato_region", "address_region", "postcode_region"])
@pytest.mark.parametrize("declared", ["date", "bigint", "integer"])
def test_text_generalizations_need_a_text_column(tmp_path, to: str, declared: str) -> None:
    message = error_of(tmp_path, with_column(name="place", type=declared, action="generalize", to=to))
    assert "tables[population.persons].columns[place]" in message
    assert f"'to: {to}' needs a text column" in message


@pytest.mark.parametrize(("to", "declared", "suffix", "types"), [
    ("year", "date", "year", ("int", "UInt16")),
    ("year", "timestamptz", "year", ("int", "UInt16")),
    ("age_band", "date", "age_band", ("string", "LowCardinality(String)")),
    ("age_band", "timestamp", "age_band", ("string", "LowCardinality(String)")),
    ("kato_region", "varchar(9)", "region", ("string", "LowCardinality(String)")),
    ("address_region", "text", "region", ("string", "LowCardinality(String)")),
    ("postcode_region", "char(7)", "region", ("string", "LowCardinality(String)")),
])
def test_generalization_outputs(tmp_path, to: str, declared: str, suffix: str, types: tuple) -> None:
    regulation = load_regulation(write(tmp_path, with_column(name="x", type=declared, action="generalize", to=to)), {})
    column = regulation.tables[0].column("x")
    assert column.to is Generalization(to)
    assert column.output_name == f"x_{suffix}"
    assert column.output_types == types


@pytest.mark.parametrize("kind", ["passport", "id_card", "email", "name"])
def test_new_hash_kinds(tmp_path, kind: str) -> None:
    regulation = load_regulation(write(tmp_path, with_column(name="doc", type="text", action="hash", kind=kind)), {})
    column = regulation.tables[0].column("doc")
    assert column.kind is IdentifierKind(kind)
    assert (column.output_name, column.output_types) == ("doc_hash", ("string", "String"))


def test_keep_and_drop_outputs(demo) -> None:
    persons = demo.table("population.persons")
    assert persons.column("person_id").output_types == ("long", "Int64")
    assert persons.column("person_id").output is None
    assert persons.column("last_name").output is None and persons.column("last_name").output_name is None


def test_redacted_primary_key_refused(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"][0].update(type="text", action="redact")
    message = error_of(tmp_path, document)
    assert "primary key column 'person_id' must be 'keep' or 'hash'" in message


def test_primary_key_not_among_columns(tmp_path) -> None:
    document = doc()
    document["tables"][0]["primary_key"] = ["id"]
    message = error_of(tmp_path, document)
    assert "tables[population.persons]" in message
    assert "primary key column 'id' is not among its columns" in message


def test_nullable_primary_key(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"][0]["nullable"] = True
    message = error_of(tmp_path, document)
    assert "primary key column 'person_id' must be declared 'nullable: false'" in message


def test_dropped_primary_key(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"][0]["action"] = "drop"
    message = error_of(tmp_path, document)
    assert "primary key column 'person_id' must be 'keep' or 'hash'" in message


def test_duplicate_columns(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"].append({"name": "iin", "type": "text"})
    message = error_of(tmp_path, document)
    assert "columns declared twice: iin" in message


def test_duplicate_tables(tmp_path) -> None:
    document = doc()
    document["tables"].append(copy.deepcopy(document["tables"][0]))
    message = error_of(tmp_path, document)
    assert "tables declared twice: population.persons" in message


def test_invalid_type_lists_supported_types(tmp_path) -> None:
    document = doc()
    document["tables"][0]["columns"][1]["type"] = "varchar2(10)"
    message = error_of(tmp_path, document)
    assert "tables[population.persons].columns[iin].type" in message
    assert "unsupported column type 'varchar2(10)'" in message
    assert "supported:" in message
    for supported in ("bigint", "numeric(p,s)", "varchar(n)", "timestamptz"):
        assert supported in message


def test_missing_variable_without_default(tmp_path) -> None:
    document = doc()
    document["source"]["host"] = "${ACME_DB_HOST}"
    message = error_of(tmp_path, document, {"OTHER": "x"})
    assert "${ACME_DB_HOST} is not set" in message
    assert "export ACME_DB_HOST" in message
    assert "${ACME_DB_HOST:-default}" in message


def test_variables_and_defaults_interpolated(tmp_path) -> None:
    document = doc()
    document["source"]["host"] = "${ACME_DB_HOST}"
    document["source"]["port"] = "${ACME_DB_PORT:-6543}"
    document["source"]["password"] = {"file": "${ACME_SECRETS}/pw"}
    regulation = load_regulation(write(tmp_path, document), {"ACME_DB_HOST": "10.0.0.5", "ACME_SECRETS": "/s"})
    assert regulation.source.host == "10.0.0.5"
    assert regulation.source.port == 6543
    assert regulation.source.password.file == "/s/pw"


def test_password_both_file_and_env(tmp_path) -> None:
    document = doc()
    document["source"]["password"] = {"file": "/run/secrets/pw", "env": "ACME_PASSWORD"}
    message = error_of(tmp_path, document)
    assert "source.password" in message
    assert "exactly one of" in message


def test_password_value_inline_is_refused(tmp_path) -> None:
    document = doc()
    document["source"]["password"] = "hunter2-inline"
    message = error_of(tmp_path, document)
    assert "source.password" in message


def test_marker_capture_needs_a_marker_column(tmp_path) -> None:
    # Marker mode itself is tested in test_marker_*.py.
    document = doc()
    document["source"]["capture"] = "marker"
    message = error_of(tmp_path, document)
    assert "population.persons" in message and "needs 'marker: <column>'" in message


def test_invalid_yaml(tmp_path) -> None:
    message = error_of(tmp_path, "provider: acme\ntables: [unclosed\n  - x: : y\n")
    assert "not valid YAML" in message


def test_yaml_that_is_not_a_mapping(tmp_path) -> None:
    message = error_of(tmp_path, "- just\n- a list\n")
    assert "YAML mapping" in message


def test_missing_file(tmp_path) -> None:
    with pytest.raises(RegulationError, match="no such regulation file"):
        load_regulation(tmp_path / "absent.yaml", {})


# --- secrets by reference -------------------------------------------------------------------


def test_secret_ref_reads_file_and_env(tmp_path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    document = doc()
    document["source"]["password"] = {"file": str(secret)}
    assert load_regulation(write(tmp_path, document), {}).source.password.read({}) == "s3cret"
    document["source"]["password"] = {"env": "ACME_PASSWORD"}
    ref = load_regulation(write(tmp_path, document), {}).source.password
    assert ref.read({"ACME_PASSWORD": "from-env"}) == "from-env"
    with pytest.raises(RegulationError, match="ACME_PASSWORD is not set"):
        ref.read({})


# --- load_all -------------------------------------------------------------------------------


def test_load_all_two_files_same_provider(tmp_path) -> None:
    write(tmp_path, doc(), "a.yaml")
    write(tmp_path, doc(), "b.yaml")
    with pytest.raises(RegulationError) as info:
        load_all(tmp_path, {})
    assert "provider declared in more than one file: acme" in str(info.value)


def test_load_all_distinct_providers(tmp_path) -> None:
    write(tmp_path, doc(), "a.yaml")
    other = doc()
    other["provider"] = "beta"
    write(tmp_path, other, "b.yaml")
    assert [r.provider for r in load_all(tmp_path, {})] == ["acme", "beta"]


def test_load_all_empty_directory(tmp_path) -> None:
    with pytest.raises(RegulationError, match="no regulation files"):
        load_all(tmp_path, {})


# --- consistency against a reference table --------------------------------------------------

AGAINST = {"name": "r", "kind": "consistency", "against": "population.register",
           "match": {"iin": "iin"}, "compare": {"birth_date": "birth_date"}}


def with_rule(rule: dict) -> dict:
    document = doc()
    document["tables"][0]["rules"] = [rule]
    return document


def test_consistency_against_a_reference_table_loads(tmp_path) -> None:
    rule = load_regulation(write(tmp_path, with_rule(AGAINST)), {}).tables[0].rules[0]
    assert (rule.against, rule.match, rule.compare) == ("population.register", {"iin": "iin"},
                                                        {"birth_date": "birth_date"})
    assert rule.grace_seconds == 300 and rule.stateful and not rule.kind.stateful
    expression = {"name": "r", "kind": "consistency", "expression": "birth_date <= today"}
    rule = load_regulation(write(tmp_path, with_rule(expression)), {}).tables[0].rules[0]
    assert not rule.stateful and not hasattr(rule, "grace_seconds")   # an expression takes none


@pytest.mark.parametrize("rule, expected", [
    ({**AGAINST, "expression": "birth_date <= today"},
     ["rule r", "takes either 'expression'", "or 'against', 'match' and 'compare'", "not both"]),
    ({k: v for k, v in AGAINST.items() if k != "compare"},
     ["rule r", "kind 'consistency' against a reference table needs 'compare: {<column>: <reference column>"]),
    ({k: v for k, v in AGAINST.items() if k != "against"}, ["rule r", "needs 'against: schema.table'"]),
    ({"name": "r", "kind": "consistency"},
     ["rule r", "needs 'expression'", "or 'against', 'match' and 'compare' to agree with a reference table"]),
    ({**AGAINST, "against": "register"}, ["rule r", "'against' is schema.table, e.g. population.persons"]),
    ({**AGAINST, "against": "population.persons"}, ["rule r", "'against' names this table"]),
    ({**AGAINST, "match": {"iin_code": "iin"}}, ["rule r", "column 'iin_code' is not among the table's columns"]),
    ({**AGAINST, "compare": {"birth": "birth_date"}}, ["rule r", "column 'birth' is not among the table's columns"]),
    ({**AGAINST, "references": "population.register.iin"},
     ["rule r", "'references' does not apply", "takes 'against', 'match', 'compare', 'grace_seconds'"]),
    ({"name": "r", "kind": "consistency", "expression": "birth_date <= today", "grace_seconds": 5},
     ["rule r", "'grace_seconds' does not apply to kind 'consistency'"]),
    ({**AGAINST, "match": {}}, ["rules[r].match", "at least 1"]),
    ({**AGAINST, "match": ["iin"]}, ["rules[r].match", "dictionary"]),
    ({**AGAINST, "grace_seconds": -1}, ["rules[r].grace_seconds", "greater than or equal to 0"]),
])
def test_consistency_against_mistakes_are_named(tmp_path, rule, expected) -> None:
    message = error_of(tmp_path, with_rule(rule))
    assert "tables[population.persons]" in message
    for part in expected:
        assert part in message, (part, message)
