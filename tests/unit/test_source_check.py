"""The source check's verdicts from catalog answers (connectors/source_check.py); the e2e test
tests/e2e/test_provider_check.py runs `qoima provider check` against the stack's real sources."""
from __future__ import annotations

from connectors.source_check import ERROR, OK, WARNING, compare_publication, compare_table
from model import names

PERSONS = {"person_id": "bigint", "iin": "character(12)", "last_name": "text", "first_name": "text",
           "middle_name": "text", "birth_date": "date", "sex": "character(1)", "phone": "text", "address": "text",
           "kato_code": "character varying(9)", "status": "text", "updated_at": "timestamp with time zone"}


def _statuses(findings) -> list[tuple[str, str]]:
    return [(f.status, f.what) for f in findings]


def test_a_table_as_declared_is_ok(demo) -> None:
    found = compare_table(demo.table("population.persons"), "postgresql", PERSONS, ["person_id"], "d",
                          "population.persons")
    assert [f.status for f in found] == [OK]


def test_a_missing_table_names_the_grant_or_the_regulation(demo) -> None:
    [finding] = compare_table(demo.table("population.persons"), "postgresql", None, [], "", "population.persons")
    assert finding.status == ERROR and "GRANT USAGE ON SCHEMA" in finding.fix


def test_missing_undeclared_and_mistyped_columns(demo) -> None:
    columns = {k: v for k, v in PERSONS.items() if k != "phone"} | {"nickname": "text", "status": "integer"}
    found = compare_table(demo.table("population.persons"), "postgresql", columns, ["person_id"], "d", "p.p")
    assert (ERROR, "column phone declared but not at the source") in _statuses(found)
    assert (ERROR, "column status is integer at the source, declared text") in _statuses(found)
    assert (WARNING, "column(s) not declared, so not loaded: nickname") in _statuses(found)


def test_a_narrower_declared_integer_is_refused_a_wider_one_is_not(demo) -> None:
    table = demo.table("population.persons")
    wider = compare_table(table, "postgresql", PERSONS | {"person_id": "integer"}, ["person_id"], "d", "p.p")
    assert [f.status for f in wider] == [OK]
    table = table.model_copy(update={"columns": [c.model_copy(update={"type": "integer"}) if c.name == "person_id"
                                                 else c for c in table.columns]})
    narrower = compare_table(table, "postgresql", PERSONS, ["person_id"], "d", "p.p")
    assert (ERROR, "column person_id is bigint at the source, declared integer") in _statuses(narrower)


def test_a_key_other_than_the_regulations_is_an_error_with_the_regulation_fix(demo) -> None:
    found = compare_table(demo.table("population.persons"), "postgresql", PERSONS, ["iin"], "d", "p.p")
    [finding] = [f for f in found if f.status == ERROR]
    assert "primary key is (iin)" in finding.what and finding.fix == "set primary_key: [iin] in the regulation"


def test_no_key_and_no_replica_identity_would_break_the_providers_updates(demo) -> None:
    found = compare_table(demo.table("population.persons"), "postgresql", PERSONS, [], "d", "population.persons")
    [finding] = [f for f in found if f.status == ERROR]
    assert "UPDATEs and DELETEs on it would fail" in finding.what
    assert "REPLICA IDENTITY FULL" in finding.fix
    # REPLICA IDENTITY FULL (or USING INDEX) is enough without a key.
    assert [f.status for f in compare_table(demo.table("population.persons"), "postgresql", PERSONS, [], "f",
                                            "population.persons")] == [OK]


def test_bytea_under_replica_identity_default_is_a_warning(demo) -> None:
    table = demo.table("catalog.type_samples")
    columns = {c.name: c.type for c in table.columns}
    found = compare_table(table, "postgresql", columns, ["id"], "d", "catalog.type_samples")
    assert [(f.status, f.fix) for f in found if "bytea" in f.what] == \
        [(WARNING, "ALTER TABLE catalog.type_samples REPLICA IDENTITY FULL;")]
    assert not [f for f in compare_table(table, "postgresql", columns, ["id"], "f", "c.t") if "bytea" in f.what]


def test_the_publication_must_cover_exactly_the_regulated_tables(demo) -> None:
    everything = {(t.schema_name, t.table_name) for t in demo.tables} | {tuple(names.SIGNAL_TABLE.split("."))}
    assert compare_publication(demo, everything).status == OK
    missing = compare_publication(demo, everything - {("social", "appeals")})
    assert missing.status == ERROR and 'missing "social"."appeals"' in missing.what
    assert missing.fix.startswith(f'ALTER PUBLICATION {demo.publication_name} SET TABLE "population"."persons", ')
    extra = compare_publication(demo, everything | {("public", "audit")})
    assert 'not regulated "public"."audit"' in extra.what
    absent = compare_publication(demo, None)
    assert absent.fix.startswith(f"CREATE PUBLICATION {demo.publication_name} FOR TABLE ")


def test_the_owners_script_names_every_table_and_no_secret(demo) -> None:
    from connectors.source_script import owner_script

    script = owner_script(demo)
    for table in demo.tables:   # by their names at the source, quoted
        assert f'GRANT SELECT ON "{table.schema_name}"."{table.table_name}" TO qoima_capture;' in script
    assert 'GRANT SELECT ON "Registry Office"."Persons Main" TO qoima_capture;' in script
    quoted = ", ".join(f'"{t.schema_name}"."{t.table_name}"' for t in demo.tables)
    assert f'SET TABLE {quoted}, "public"."qoima_signal"' in script
    assert ":'capture_password'" in script and "PASSWORD '" not in script
    assert 'ALTER TABLE "catalog"."type_samples" REPLICA IDENTITY FULL;' in script   # it has a bytea column
    assert "ALTER TABLE population.persons REPLICA IDENTITY" not in script


def test_a_draft_flags_identifiers_by_name_and_by_values_and_decides_nothing() -> None:
    from connectors import regulation_draft as draft

    assert draft.flag_by_name("person_iin") == ["likely iin by its name: action: hash, kind: iin"]
    assert draft.flag_by_name("mobile_phone")[0].startswith("likely phone")
    assert draft.flag_by_name("status") == []
    assert draft.flag_by_values(["900101300126", "900101300126", None]) == \
        ["2 of 2 sampled values are valid iins: action: hash, kind: iin"]
    assert draft.flag_by_values(["active", "900101300126"]) == []   # 1 of 2 is not most
    table = draft.DraftTable("hr", "staff", "Staff", [], ["fk_dept: FOREIGN KEY (dept) REFERENCES hr.dept(id)"],
                             [draft.DraftColumn("iin", "character(12)", False, "", ["likely iin by its name"]),
                              draft.DraftColumn("shape", "point", True)])
    text = draft.render("hr", "postgresql", {"host": "db", "port": 5432, "database": "hr", "user": "qc",
                                             "password_file": "/run/secrets/hr"}, [table])
    assert "      - {name: iin, type: \"character(12)\", nullable: false, action: decide}" in text
    assert "      # iin: likely iin by its name" in text
    assert "primary_key: []  # TODO" in text and "# foreign key: fk_dept" in text
    assert "# shape: column type 'point' is not captured" in text
    assert 'file: "/run/secrets/hr"' in text


def test_binlog_retention_under_a_day_is_a_warning() -> None:
    from connectors.source_check import binlog_retention

    assert binlog_retention({"binlog_expire_logs_seconds": "3600"}).status == WARNING
    assert "1.0 h" in binlog_retention({"binlog_expire_logs_seconds": "3600"}).what
    assert binlog_retention({"binlog_expire_logs_seconds": "0", "expire_logs_days": "7"}).status == OK
    assert "7.0 days" in binlog_retention({"binlog_expire_logs_seconds": "0", "expire_logs_days": "7"}).what
    assert binlog_retention({"binlog_expire_logs_seconds": "0", "expire_logs_days": "0"}).status == OK
