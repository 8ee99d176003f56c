"""The documented commands that no other e2e test runs as a user does (issue 14 item 3), each as a
subprocess against the test stack, checked by its exit status and its effect: `qoima up` on a
running stack leaves every process as it was; `qoima demo load` changes the source and the
warehouse follows; `qoima load-history` loads a file's rows; `qoima risk` prints every table
with quasi-identifiers and exits 1 exactly when one is below its k; `qoima sink skip-held`
refuses to move the sink back over rows it already loaded."""
from __future__ import annotations

import random
import shutil
import uuid

from connectors.connect_client import ConnectClient
from infra.demo import generator
from infra.qoima_processes import processor_process
from model.identifiers import is_valid_iin
from model.regulation import load_all
from sinks.clickhouse_users import ADMIN_USER, client
from tests.e2e.cli import qoima
from tests.e2e.warehouse import poll_until, wait_converged

PROCESSES = ("sink", processor_process(0), "assessor", "poller")


BROKEN_PROVIDER = """
provider: broken
organization: "Демо"
information_system: "A source that does not answer"
source:
  dbms: postgresql
  host: "127.0.0.1"
  port: {port}
  database: gosdata
  user: qoima_capture
  password:
    file: "${{QOIMA_SECRETS_DIR}}/demo-source-password"
tables:
  - name: catalog.nothing
    primary_key: [id]
    columns:
      - {{name: id, type: bigint, nullable: false}}
"""


def test_up_on_a_running_stack_leaves_it_running_and_skips_a_source_not_ready(stack, tmp_path):
    """Run again, `qoima up` restarts nothing; a provider whose source does not answer gets no
    connector, with the reason and the fix, and the others keep theirs."""
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    (regulations / "broken.yaml").write_text(BROKEN_PROVIDER.format(port=stack.s.ports.postgres + 7), encoding="utf-8")
    pids = {name: stack.managed(name).pid() for name in PROCESSES}
    result = qoima(stack, "up", "--no-demo", regulations=regulations, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Qoima is running." in result.stdout and "Traceback" not in result.stderr
    assert "provider broken: connector not registered: the source is not ready for capture" in result.stdout
    assert {name: stack.managed(name).pid() for name in PROCESSES} == pids   # nothing restarted
    connect = ConnectClient(stack.s.connect_url)
    assert not connect.exists("qoima-broken")
    assert connect.state("qoima-demo") == "RUNNING" and connect.state("qoima-shop") == "RUNNING"


def test_demo_load_changes_the_source_and_the_warehouse_follows(stack, pg, ch):
    before = pg.execute("SELECT count(*), coalesce(max(updated_at), 'epoch') FROM social.payments").fetchone()
    result = qoima(stack, "demo", "load", "--rate", "40", "--duration", "3", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    after = pg.execute("SELECT count(*), coalesce(max(updated_at), 'epoch') FROM social.payments").fetchone()
    assert after != before, "the demo load changed nothing"
    wait_converged(pg, ch, tables=("population.persons", "social.organizations", "social.payments"), timeout=120)


def test_demo_fill_adds_persons_that_reach_the_warehouse(stack, pg, ch):
    before = pg.execute("SELECT count(*), coalesce(max(person_id), 0) FROM population.persons").fetchone()
    result = qoima(stack, "demo", "fill", "--rows", "25", "--defect-rate", "0", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    count, top = pg.execute("SELECT count(*), max(person_id) FROM population.persons").fetchone()
    assert count == before[0] + 25 and f"population.persons holds {count:,} rows" in result.stdout
    added = pg.execute("SELECT iin FROM population.persons WHERE person_id > %s", (before[1],)).fetchall()
    assert len(added) == 25 and all(is_valid_iin(iin) for (iin,) in added)
    poll_until(lambda: ch.query("SELECT count() FROM udw.demo__population__persons FINAL WHERE person_id > "
                                f"{before[1]} AND person_id <= {top}").result_rows[0][0] == 25, 120,
               "the 25 filled persons in the warehouse")
    refused = qoima(stack, "demo", "fill", "--rows", "0")
    assert refused.returncode != 0 and "--rows must be a positive number" in refused.stderr + refused.stdout


def test_load_history_loads_a_files_rows(stack, ch, tmp_path):
    rng = random.Random()
    first = 10_000_000 + rng.randrange(1_000_000)
    rows = []
    for org_id in (first, first + 1):
        org = generator.make_organization(rng, defect_rate=0)
        rows.append(f"{org_id},{org['bin']},\"{org['name'].replace(chr(34), chr(34) * 2)}\",{org['kato_code']},"
                    "2020-05-01 10:00:00+06")
    path = tmp_path / f"organizations-{uuid.uuid4().hex[:8]}.csv"
    path.write_text("org_id,bin,name,kato_code,updated_at\n" + "\n".join(rows) + "\n", encoding="utf-8")
    try:
        result = qoima(stack, "load-history", "demo", "social.organizations", str(path), "--no-progress")
        assert result.returncode == 0, result.stdout + result.stderr
        poll_until(lambda: ch.query("SELECT count() FROM udw.demo__social__organizations FINAL "
                                    "WHERE org_id IN ({a:Int64}, {b:Int64})",
                                    parameters={"a": first, "b": first + 1}).result_rows[0][0] == 2, 60,
                   "the file's two organizations in the warehouse")
    finally:  # rows the source never had: later tests compare the warehouse with the source
        admin = client(stack.s, ADMIN_USER)
        for table in ("demo__social__organizations", "demo__social__organizations__history"):
            admin.command(f"ALTER TABLE udw.{table} DELETE WHERE org_id IN ({first}, {first + 1})",
                          settings={"mutations_sync": 2})


def test_risk_lists_every_table_with_quasi_identifiers(stack):
    result = qoima(stack, "risk")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    declared = [f"{r.provider}.{t.name}" for r in load_all(stack.s.regulations_dir, stack.s.regulation_env())
                for t in r.tables if any(c.quasi_identifier for c in t.columns)]
    assert declared and all(name in result.stdout for name in declared)
    below = "BELOW k" in result.stdout
    assert (result.returncode == 1) == below
    if below:
        assert "re-identification risk above the declared threshold; incidents recorded" in result.stderr


def test_skip_held_refuses_to_move_the_sink_back(stack, pg, ch):
    wait_converged(pg, ch, tables=("population.persons",), timeout=120)
    result = qoima(stack, "sink", "skip-held", "qoima.clean.demo.population.persons", "0", "0")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "qoima.clean.demo.population.persons[0] is already committed at" in result.stderr
    assert "Traceback" not in result.stderr
    # Nothing was deleted: the topic still starts at offset 0.
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": stack.s.kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}"})
    try:
        low, _ = consumer.get_watermark_offsets(TopicPartition("qoima.clean.demo.population.persons", 0), timeout=10)
    finally:
        consumer.close()
    assert low == 0


def test_down_wipe_deletes_data_and_keeps_secrets_and_logs(tmp_path):
    """On a home of its own (nothing running there): `qoima down --wipe` stops nothing, deletes
    the data, config and pids, keeps the secrets and the logs."""
    import os
    import subprocess
    import sys

    home = tmp_path / "home"
    for part in ("data/kafka", "conf", "run", "secrets", "log"):
        (home / part).mkdir(parents=True)
        (home / part / "file").write_text("x")
    result = subprocess.run([sys.executable, "-m", "qoima", "down", "--wipe"], capture_output=True, text=True,
                            env={**os.environ, "QOIMA_HOME": str(home)}, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "postgres: not running" in result.stdout and f"data wiped under {home}" in result.stdout
    assert sorted(p.name for p in home.iterdir()) == ["log", "secrets"]
    assert (home / "secrets" / "file").exists() and (home / "log" / "file").exists()
