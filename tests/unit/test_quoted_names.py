"""Source names that need quoting (upper case, Cyrillic, spaces, dots, quotes): the regulation's
source_schema / source_table / source_name, the warehouse names derived from them
(model/names.py), Debezium's topic for them, and the router telling apart two tables that share
one topic, CDC refusing names beyond ASCII and marker mode taking them. The demo regulations'
registry_office and reestr tables (infra/demo/schema.sql) are the examples;
tests/e2e/test_quoted_names.py runs them through the stack."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
import yaml

from model import names
from model.regulation import RegulationError, load_regulation
from streams.keys import pseudonym
from tests.unit.test_router import CLEAR, IIN, LAST, SOURCE_TS

SHARED_TOPIC = "qoima.raw.demo.Registry_Office.Persons_Main"


def test_a_name_that_needs_no_quoting_is_its_own_warehouse_name() -> None:
    assert names.warehouse_names(["person_id", "iin", "v_text2"]) == {
        "person_id": "person_id", "iin": "iin", "v_text2": "v_text2"}


def test_warehouse_names_are_derived_readably_and_never_collide() -> None:
    derived = names.warehouse_names(["ИД", "ИИН", "Фамилия", "Birth Date", "Статус.Код", 'say "hi"', "Name", "name",
                                     "a.b", "a b", "1st", "Қазақ тілі", "名前", "№"])
    assert derived == {
        "ИД": "id", "ИИН": "iin", "Фамилия": "familiya", "Birth Date": "birth_date", "Статус.Код": "status_kod",
        'say "hi"': "say_hi",
        "Name": "name_ee8c7f",        # 'name' is a column of its own: kept, and this one takes a digest
        "name": "name",
        "a.b": "a_b_28b8f5", "a b": "a_b_fbd987",   # both derive a_b: each takes its own digest
        "1st": "n_1st", "Қазақ тілі": "qazaq_tili", "名前": "mingqian", "№": "no",
    }
    assert len(set(derived.values())) == len(derived)
    assert all(names.WAREHOUSE_NAME.match(name) for name in derived.values())


def test_the_raw_topic_is_debeziums_spelling_of_the_source_names(demo) -> None:
    # Every character outside [A-Za-z0-9._-] becomes '_', one per UTF-16 unit.
    assert names.raw_topic("demo", "Реестр.Persons Main") == "qoima.raw.demo.______.Persons_Main"
    assert names.raw_topic("demo", "s.t😀") == "qoima.raw.demo.s.t__"
    main, old = demo.table("registry_office.persons_main"), demo.table("registry_office.person_addresses")
    assert demo.raw_topic(main) == demo.raw_topic(old) == SHARED_TOPIC   # 'Persons Main' and 'Persons/Main'
    assert demo.raw_topic(demo.table("population.persons")) == "qoima.raw.demo.population.persons"
    # Everything downstream goes by the warehouse names.
    assert demo.clean_topic(main) == "qoima.clean.demo.registry_office.persons_main"
    assert demo.warehouse_table(main) == "demo__registry_office__persons_main"
    assert (main.schema_name, main.table_name) == ("Registry Office", "Persons Main")
    assert main.renamed["Birth Date"] == "birth_date" and "updated_at" not in main.renamed


def _envelope(table: str, after: dict, op: str = "c", before: dict | None = None) -> bytes:
    return json.dumps({"before": before, "after": after, "op": op, "ts_ms": SOURCE_TS + 5, "transaction": None,
                       "source": {"connector": "postgresql", "ts_ms": SOURCE_TS, "snapshot": "false", "db": "gosdata",
                                  "schema": "Registry Office", "table": table, "lsn": 1, "txId": 7}},
                      ensure_ascii=False).encode()


PERSON = {"ID": 1, "IIN": IIN, "Last Name": LAST, "Birth Date": 5479, "Status.Code": "A.1", 'say "hi"': "hi",
          "Name": "N", "updated_at": "2024-01-15T10:30:00Z"}


def test_the_router_tells_two_tables_on_one_topic_apart_and_renames_their_columns(router, codec, ring) -> None:
    out = router.route(SHARED_TOPIC, 0, 3, _envelope("Persons Main", PERSON))
    assert (out.topic, out.outcome, out.table) == ("qoima.clean.demo.registry_office.persons_main", "clean",
                                                   "registry_office.persons_main")
    _, record = codec.decode(out.value)
    assert record["iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode())
    assert (record["birth_date_year"], record["status_code"], record["say_hi"], record["name"]) == (1985, "A.1", "hi",
                                                                                                   "N")
    assert out.defects == ()   # every source column was declared, under its own name
    text = json.dumps(record, default=str, ensure_ascii=False)
    assert not any(clear in text for clear in CLEAR)

    address = {"ID": 1, "Person ID": 1, "Address": f"ИИН {IIN}", "updated_at": "2024-01-15T10:30:00Z"}
    out = router.route(SHARED_TOPIC, 0, 4, _envelope("Persons/Main", address))
    assert (out.topic, out.outcome) == ("qoima.clean.demo.registry_office.person_addresses", "clean")
    _, record = codec.decode(out.value)
    assert record["person_id"] == 1 and record["address_redacted"] == "ИИН [IIN]"

    deleted = router.route(SHARED_TOPIC, 0, 5, _envelope("Persons Main", None, op="d", before={"ID": 1}))
    assert (deleted.topic, deleted.op, deleted.key) == ("qoima.clean.demo.registry_office.persons_main", "d", b"[1]")


def test_an_event_of_a_table_no_regulation_names_on_a_shared_topic_is_quarantined(router) -> None:
    out = router.route(SHARED_TOPIC, 0, 5, _envelope("Persons-Main", {"ID": 1}))
    assert (out.topic, out.outcome) == ("qoima.quarantine", "quarantined")


def test_a_renamed_source_column_that_disappears_is_drift_under_its_warehouse_name(router) -> None:
    out = router.route(SHARED_TOPIC, 0, 6, _envelope("Persons Main", {k: v for k, v in PERSON.items()
                                                                      if k != "Last Name"}))
    assert out.outcome == "clean"
    assert any("last_name" in defect for defect in out.defects)


def test_a_polled_table_under_russian_names_becomes_a_clean_record(unit_settings, regulation_env, ring) -> None:
    """Marker mode reads rows by warehouse name and sends them under the source's names, as CDC would."""
    from schemas.avro_codec import codec_for
    from streams.router import Router
    from tests.unit.marker_fakes import FakeKafka, FakeSource, marker_regulation, poller_for

    registry = marker_regulation(unit_settings, regulation_env, tables=("reestr.zhiteli",))
    row = {"id": 5, "iin": IIN, "familiya": LAST, "data_rozhdeniya": date(1985, 1, 1),
           "updated_at": datetime(2024, 1, 15, 10, 30, tzinfo=timezone.utc)}
    source, kafka = FakeSource([row]), FakeKafka()
    poller_for(registry, source, kafka).poll(registry)
    topic = registry.raw_topic(registry.table("reestr.zhiteli"))
    assert topic == "qoima.raw.registry.______.______"
    [(key, value)] = [(k, v) for t, k, v in kafka.delivered if t == topic]
    assert json.loads(key) == {"ИД": 5}
    assert set(json.loads(value)["after"]) == {"ИД", "ИИН", "Фамилия", "Дата рождения", "updated_at"}
    codec = codec_for([registry])
    out = Router([registry], ring, codec).route(topic, 0, 1, value)
    assert (out.topic, out.outcome, out.defects) == ("qoima.clean.registry.reestr.zhiteli", "clean", ())
    _, record = codec.decode(out.value)
    assert record["iin_hash"] == pseudonym(ring.subkey("iin"), IIN.encode()) and record["data_rozhdeniya_year"] == 1985


def _regulation(tmp_path, regulation_env, unit_settings, edit) -> None:
    document = yaml.safe_load((unit_settings.regulations_dir / "demo.yaml").read_text(encoding="utf-8"))
    edit(next(t for t in document["tables"] if t["name"] == "registry_office.persons_main"), document)
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    load_regulation(path, regulation_env)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda t, d: t["columns"][1].update(source_name="ID"), "source columns declared twice: ID"),
    (lambda t, d: t["columns"][1].update(source_name="id"), "source columns ID, id differ only in case"),
    (lambda t, d: t.update(source_table="Persons/Main"), "source tables declared twice: Registry Office.Persons/Main"),
    (lambda t, d: t.update(source_table="a,b"), "holds a comma"),
    (lambda t, d: t["columns"][2].update(source_name=" "), "source_name is empty"),
    (lambda t, d: t["columns"][2].update(name="Last Name"), "String should match pattern"),
    (lambda t, d: t["columns"][2].update(source_name="Фамилия"), "Фамилия: a name beyond ASCII"),
    (lambda t, d: t.update(source_schema="Реестр"), "garbled name and are lost"),
])
def test_the_regulation_refuses_names_it_cannot_capture(tmp_path, regulation_env, unit_settings, edit,
                                                        message) -> None:
    with pytest.raises(RegulationError) as error:
        _regulation(tmp_path, regulation_env, unit_settings, edit)
    assert message in str(error.value)


def test_the_draft_writes_warehouse_names_beside_the_source_names() -> None:
    from connectors.regulation_draft import DraftColumn, DraftTable, render

    table = DraftTable("Реестр", "Жители", key=["ИД"], columns=[
        DraftColumn("ИД", "bigint", False), DraftColumn("ИИН", "character(12)", False),
        DraftColumn("Name", "text", True), DraftColumn("name", "text", True)])
    text = render("demo", "postgresql", {"host": "h", "port": 5432, "database": "d", "user": "u",
                                         "password_file": "/p"}, [table])
    entry = yaml.safe_load(text)["tables"][0]
    assert (entry["name"], entry["source_schema"], entry["source_table"]) == ("reestr.zhiteli", "Реестр", "Жители")
    assert entry["primary_key"] == ["id"]
    assert [(c["name"], c.get("source_name")) for c in entry["columns"]] == [
        ("id", "ИД"), ("iin", "ИИН"), ("name_ee8c7f", "Name"), ("name", None)]


def test_a_snapshot_signal_names_a_quoted_table_so_that_debezium_parses_it() -> None:
    from connectors.debezium.shared import snapshot_collection

    assert snapshot_collection("population", "persons") == r"population\.persons"   # a regex, as before
    assert snapshot_collection("Registry Office", "Persons Main") == '"Registry Office"."Persons Main"'
    assert snapshot_collection("s", 'say "hi"') == '"s"."say ""hi"""'
    with pytest.raises(ValueError, match="not a valid one"):
        snapshot_collection("s", "Persons (2024")
