"""`qoima provider apply` and `qoima provider remove` on the running stack, run as a user runs them
(issue 14 item 2): a table added to a running provider is loaded (its existing rows by an
incremental snapshot, then its changes) while the provider's other tables keep flowing; a new
provider is brought in, then removed, which releases its slot and publication at the source and
keeps its warehouse data. Each test puts the stack back as the repository's regulations say."""
from __future__ import annotations

import random
import shutil
import time
from datetime import date

from connectors.connect_client import ConnectClient
from infra.demo import generator
from tests.e2e.cli import qoima
from tests.e2e.warehouse import poll_until, wait_converged

PROBE_TABLE = "udw.demo__catalog__apply_probe"
PROBE_PROVIDER = """
provider: probe
organization: "Демо-министерство"
information_system: "Пробный источник"
source:
  dbms: postgresql
  host: "${QOIMA_LOCAL_PG_HOST:-127.0.0.1}"
  port: "${QOIMA_LOCAL_PG_PORT:-25432}"
  database: gosdata
  user: qoima_capture
  password:
    file: "${QOIMA_SECRETS_DIR}/demo-source-password"
tables:
  - name: catalog.remove_probe
    primary_key: [id]
    columns:
      - {name: id, type: bigint, nullable: false}
      - {name: note, type: text}
"""


def _restore(stack) -> None:
    """The processes and the demo connector as the repository's regulations say."""
    result = qoima(stack, "provider", "apply", "demo", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr


def _insert_person(pg) -> None:
    rng = random.Random()
    while True:
        iin = generator.make_iin(rng, date(1980, 1, 1), "M")
        if not pg.execute("SELECT 1 FROM population.persons WHERE iin = %s", (iin,)).fetchone():
            break
    pg.execute("INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
               "VALUES (%s, 'Тестов', 'Тест', '1980-01-01', 'M', 'active', '751110000')", (iin,))


def test_a_table_added_to_a_running_provider_is_loaded_while_the_others_flow(stack, pg, ch, tmp_path):
    pg.execute("CREATE TABLE IF NOT EXISTS catalog.apply_probe (id bigint PRIMARY KEY, note text, "
               "updated_at timestamptz NOT NULL DEFAULT now())")
    pg.execute("INSERT INTO catalog.apply_probe (id, note) VALUES (1, 'a'), (2, 'b'), (3, 'c') ON CONFLICT DO NOTHING")
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    with (regulations / "demo.yaml").open("a", encoding="utf-8") as demo:
        demo.write("\n  - name: catalog.apply_probe\n    primary_key: [id]\n    columns:\n"
                   "      - {name: id, type: bigint, nullable: false}\n      - {name: note, type: text}\n"
                   "      - {name: updated_at, type: timestamptz, nullable: false}\n")
    try:
        _insert_person(pg)   # a change of another table just before: not lost across the restarts
        started = time.monotonic()
        applied = qoima(stack, "provider", "apply", "demo", "--now", regulations=regulations, timeout=600)
        took = time.monotonic() - started
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "incremental snapshot of the new table(s) catalog.apply_probe requested" in applied.stdout
        assert "Traceback" not in applied.stdout + applied.stderr
        print(f"[apply] took {took:.1f}s")
        _insert_person(pg)
        pg.execute("INSERT INTO catalog.apply_probe (id, note) VALUES (4, 'streamed')")
        poll_until(lambda: ch.query(f"SELECT count() FROM {PROBE_TABLE} FINAL").result_rows[0][0] == 4, 120,
                   "the new table's 3 snapshot rows and its streamed one")
        wait_converged(pg, ch, tables=("population.persons", "social.payments"), timeout=120)
    finally:
        _restore(stack)
        pg.execute("DROP TABLE IF EXISTS catalog.apply_probe")
    # The repository's regulation again: the connector no longer captures the probe table.
    include = ConnectClient(stack.s.connect_url).config("qoima-demo")["table.include.list"]
    assert "apply_probe" not in include


def test_a_new_provider_is_applied_then_removed_releasing_its_slot_and_keeping_its_data(stack, pg, ch, tmp_path):
    pg.execute("CREATE TABLE IF NOT EXISTS catalog.remove_probe (id bigint PRIMARY KEY, note text)")
    pg.execute("INSERT INTO catalog.remove_probe VALUES (1, 'x'), (2, 'y') ON CONFLICT DO NOTHING")
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    (regulations / "probe.yaml").write_text(PROBE_PROVIDER, encoding="utf-8")
    connect = ConnectClient(stack.s.connect_url)
    try:
        applied = qoima(stack, "provider", "apply", "probe", regulations=regulations, timeout=600)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert connect.state("qoima-probe") == "RUNNING"
        poll_until(lambda: ch.query("SELECT count() FROM udw.probe__catalog__remove_probe FINAL").result_rows[0][0] == 2,
                   120, "the new provider's rows")

        asked = qoima(stack, "provider", "remove", "probe", regulations=regulations)
        assert asked.returncode == 1 and "Add --yes to do it" in asked.stderr, asked.stderr
        assert connect.exists("qoima-probe")   # nothing done without --yes

        removed = qoima(stack, "provider", "remove", "probe", "--yes", regulations=regulations, timeout=600)
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "slot qoima_probe: dropped, WAL released" in removed.stdout
        assert not connect.exists("qoima-probe")
        assert not pg.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = 'qoima_probe'").fetchone()
        assert not pg.execute("SELECT 1 FROM pg_publication WHERE pubname = 'qoima_probe_pub'").fetchone()
        assert (regulations / "removed" / "probe.yaml").exists() and not (regulations / "probe.yaml").exists()
        # The warehouse keeps what was loaded.
        assert ch.query("SELECT count() FROM udw.probe__catalog__remove_probe FINAL").result_rows[0][0] == 2
    finally:
        if connect.exists("qoima-probe"):
            connect.delete("qoima-probe")
        _restore(stack)
        pg.execute("DROP TABLE IF EXISTS catalog.remove_probe")
