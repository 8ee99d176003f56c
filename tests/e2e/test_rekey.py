"""Key rotation: a new key takes effect at a chosen moment, and an incremental snapshot
re-keys the warehouse while streaming goes on. Runs last among the e2e tests: it leaves the
test stack's processor on the new key."""
from __future__ import annotations

import os
import secrets
import time
from datetime import datetime, timedelta, timezone

from model.regulation import load_all
from connectors.snapshot import request_snapshot
from tests.e2e.warehouse import wait_converged

PERSONS = "udw.demo__population__persons"


def test_rotation_then_snapshot_rekeys_the_table(stack, pg, ch, tmp_path_factory):
    regulation = load_all(stack.s.regulations_dir, stack.s.regulation_env())[0]
    wait_converged(pg, ch, tables=("population.persons",), timeout=120)
    person_id, iin = pg.execute("SELECT person_id, iin FROM population.persons ORDER BY person_id LIMIT 1").fetchone()
    before = ch.query(f"SELECT iin_hash, _key_id FROM {PERSONS} FINAL WHERE person_id = {{id:Int64}}",
                      parameters={"id": person_id}).result_rows
    assert before and before[0][1] == "k1"

    directory = tmp_path_factory.mktemp("keys")
    new_key = directory / "k2.key"
    new_key.write_text(secrets.token_hex(32))
    new_key.chmod(0o600)
    active_from = datetime.now(timezone.utc) + timedelta(seconds=3)
    schedule = directory / "keys.yaml"
    schedule.write_text("keys:\n"
                        f"  - {{id: k1, file: {stack.s.master_key_file}}}\n"
                        f"  - {{id: k2, file: {new_key}, active_from: '{active_from.isoformat()}'}}\n")
    os.environ["QOIMA_KEYRING_FILE"] = str(schedule)
    stack.managed("processor").stop()
    stack.start_processor()
    time.sleep(max(0.0, (active_from - datetime.now(timezone.utc)).total_seconds()) + 0.5)

    request_snapshot(regulation, ["population.persons"], stack.s.regulation_env())
    total = pg.execute("SELECT count(*) FROM population.persons").fetchone()[0]
    # Generous: the incremental snapshot runs chunk by chunk behind live streaming, and on a
    # busy two-core machine a chunk's window can take a while to close.
    deadline = time.monotonic() + 240
    while True:
        keys = dict(ch.query(f"SELECT _key_id, count() FROM {PERSONS} FINAL GROUP BY _key_id").result_rows)
        if keys == {"k2": total}:
            break
        assert time.monotonic() < deadline, f"re-keying did not finish: {keys} (source has {total} rows)"
        time.sleep(1)
    after = ch.query(f"SELECT iin_hash FROM {PERSONS} FINAL WHERE person_id = {{id:Int64}}",
                     parameters={"id": person_id}).result_rows[0][0]
    assert after != before[0][0], "the new key gives a new pseudonym"
    wait_converged(pg, ch, tables=("population.persons",), timeout=60)

    # A change made after the rotation joins the re-keyed table on the new pseudonym.
    org_bin = pg.execute("SELECT bin FROM social.organizations LIMIT 1").fetchone()[0]
    payment_id = pg.execute(
        "INSERT INTO social.payments (person_iin, org_bin, payment_type, amount, period, status) "
        "VALUES (%s, %s, 'housing', 10.00, '2026-11-01', 'pending') RETURNING payment_id", (iin, org_bin)).fetchone()[0]
    deadline = time.monotonic() + 30
    while True:
        joined = ch.query(
            f"SELECT p._key_id, count() FROM udw.demo__social__payments AS p FINAL "
            f"JOIN (SELECT iin_hash FROM {PERSONS} FINAL) AS s ON p.person_iin_hash = s.iin_hash "
            f"WHERE p.payment_id = {{id:Int64}} GROUP BY p._key_id", parameters={"id": payment_id}).result_rows
        if joined:
            break
        assert time.monotonic() < deadline, "the new payment did not join the re-keyed person"
        time.sleep(0.5)
    assert joined[0][0] == "k2"
