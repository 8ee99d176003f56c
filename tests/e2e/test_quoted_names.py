"""Tables under names that need quoting (infra/demo/schema.sql), captured end to end under the
warehouse names their regulations give them (docs/regulation.md, "Names"):

- by CDC, schema "Registry Office" with tables "Persons Main" and "Persons/Main" (upper case,
  spaces; columns with a space, a dot, a quote): both reach Kafka as one topic, and the router
  tells them apart by the event's source;
- by marker mode, "Реестр"."Жители" with columns in Russian (Debezium 3.0 garbles names beyond
  ASCII in the WAL stream, so CDC refuses them).

Hashed identifiers join with the other sources', and `qoima snapshot` re-reads such a table."""
from __future__ import annotations

import random
from datetime import date

from confluent_kafka.admin import AdminClient

from connectors.snapshot import request_snapshot
from infra.demo import generator
from model.regulation import load_all
from tests.e2e.warehouse import poll_until, wait_converged

PERSONS_MAIN = "udw.demo__registry_office__persons_main"
PERSONS_OLD = "udw.demo__registry_office__person_addresses"
RESIDENTS = "udw.registry__reestr__zhiteli"
CDC_TABLES = ("registry_office.persons_main", "registry_office.person_addresses")


def _unused_iin(pg) -> str:
    rng = random.Random()
    while True:
        iin = generator.make_iin(rng, date(1990, 5, 15), "F")
        if not pg.execute("SELECT 1 FROM population.persons WHERE iin = %s", (iin,)).fetchone():
            return iin


def _person(pg, iin: str) -> int:
    return pg.execute(
        'INSERT INTO "Registry Office"."Persons Main" ("ID", "IIN", "Last Name", "Birth Date", "Status.Code", '
        '"say ""hi""", "Name") SELECT coalesce(max("ID"), 0) + 1, %s, %s, %s, %s, %s, %s '
        'FROM "Registry Office"."Persons Main" RETURNING "ID"',
        (iin, "Сейітқалиева", "1990-05-15", "A.1", 'he said "hi"', "Upper")).fetchone()[0]


def _person_hash(pg, ch, iin: str) -> str:
    """The pseudonym the population register gives `iin`, once a person holding it is loaded."""
    person_id = pg.execute("INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, "
                           "kato_code) VALUES (%s, 'Тестов', 'Тест', '1990-05-15', 'F', 'active', '751110000') "
                           "RETURNING person_id", (iin,)).fetchone()[0]
    return poll_until(lambda: ch.query("SELECT iin_hash FROM udw.demo__population__persons FINAL "
                                       "WHERE person_id = {id:Int64}", parameters={"id": person_id}).result_rows,
                      60, "the person in the warehouse")[0][0]


def test_cdc_tables_under_quoted_names_share_a_topic_and_load_under_their_warehouse_names(stack, pg, ch):
    iin = _unused_iin(pg)
    person = _person(pg, iin)
    pg.execute('INSERT INTO "Registry Office"."Persons/Main" ("ID", "Person ID", "Address") VALUES (%s, %s, %s)',
               (person, person, f"Алматы, ИИН {iin}"))
    wait_converged(pg, ch, tables=CDC_TABLES, timeout=90)
    row = ch.query(f"SELECT iin_hash, last_name_hash, birth_date_year, status_code, say_hi, name "
                   f"FROM {PERSONS_MAIN} FINAL WHERE id = {{id:Int64}}", parameters={"id": person}).result_rows[0]
    assert row[2:] == (1990, "A.1", 'he said "hi"', "Upper")
    assert iin not in row[0] and "Сейітқалиева" not in row[1]
    address = ch.query(f"SELECT person_id, address_redacted FROM {PERSONS_OLD} FINAL WHERE id = {{id:Int64}}",
                       parameters={"id": person}).result_rows[0]
    assert address == (person, "Алматы, ИИН [IIN]")
    # The same IIN in the population register gets the same pseudonym: joins across sources hold.
    assert _person_hash(pg, ch, iin) == row[0]

    # One raw topic for both tables: Debezium writes the space as '_'.
    topics = AdminClient({"bootstrap.servers": stack.s.kafka_bootstrap}).list_topics(timeout=10).topics
    assert [t for t in topics if t.startswith("qoima.raw.demo.Registry")] == ["qoima.raw.demo.Registry_Office.Persons_Main"]

    # Updates and deletes find their rows by the renamed key.
    pg.execute('UPDATE "Registry Office"."Persons Main" SET "Status.Code" = %s, updated_at = now() WHERE "ID" = %s',
               ("B.2", person))
    pg.execute('DELETE FROM "Registry Office"."Persons/Main" WHERE "ID" = %s', (person,))
    wait_converged(pg, ch, tables=CDC_TABLES, timeout=60)
    assert ch.query(f"SELECT count() FROM {PERSONS_OLD} FINAL WHERE id = {{id:Int64}}",
                    parameters={"id": person}).result_rows[0][0] == 0


def test_a_snapshot_of_a_table_under_quoted_names_rereads_it(stack, pg, ch):
    _person(pg, _unused_iin(pg))
    wait_converged(pg, ch, tables=CDC_TABLES[:1], timeout=60)
    regulation = next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "demo")
    request_snapshot(regulation, [CDC_TABLES[0]], stack.s.regulation_env())
    # Every row comes again as a snapshot read ('r'), into the history as a new version.
    total = pg.execute('SELECT count(*) FROM "Registry Office"."Persons Main"').fetchone()[0]
    poll_until(lambda: ch.query(f"SELECT uniqExact(id) FROM {PERSONS_MAIN}__history WHERE _op = 'r'"
                                ).result_rows[0][0] == total, 120, "the snapshot's reads in the history")
    wait_converged(pg, ch, tables=CDC_TABLES[:1], timeout=60)


def test_a_polled_table_named_in_russian_loads_under_its_warehouse_names(stack, pg, ch):
    iin = _unused_iin(pg)
    resident = pg.execute('INSERT INTO "Реестр"."Жители" ("ИД", "ИИН", "Фамилия", "Дата рождения") '
                          'SELECT coalesce(max("ИД"), 0) + 1, %s, %s, %s FROM "Реестр"."Жители" RETURNING "ИД"',
                          (iin, "Сейітқалиева", "1990-05-15")).fetchone()[0]
    wait_converged(pg, ch, tables=("reestr.zhiteli",), timeout=90)
    iin_hash, year = ch.query(f"SELECT iin_hash, data_rozhdeniya_year FROM {RESIDENTS} FINAL "
                              f"WHERE id = {{id:Int64}}", parameters={"id": resident}).result_rows[0]
    assert year == 1990 and iin not in iin_hash
    assert _person_hash(pg, ch, iin) == iin_hash
    pg.execute('DELETE FROM "Реестр"."Жители" WHERE "ИД" = %s', (resident,))
    wait_converged(pg, ch, tables=("reestr.zhiteli",), timeout=90)   # found by reconciliation
