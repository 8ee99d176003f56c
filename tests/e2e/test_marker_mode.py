"""Marker mode (DM385 §63) on the real stack: registry.licenses, polled by `qoima poller`.

The demo regulation connectors/regulations/demo_marker.yaml declares `capture: marker` on
updated_at, `deleted_flag: revoked` and `reconcile_every: 6` (hard deletes are found within
about 30 s). The table has no trigger: every change below sets updated_at itself, as the
application would.
"""
from __future__ import annotations

import time

import pytest
import requests

from connectors.connect_client import ConnectClient
from streams.versions import CDC_BASE
from tests.e2e.warehouse import checksums, poll_until, wait_converged

WAREHOUSE = "udw.registry__registry__licenses"
SOURCE_ROWS = ("SELECT license_id, license_type, issued_on, updated_at FROM registry.licenses "
               "WHERE NOT revoked")
WAREHOUSE_ROWS = f"SELECT license_id, license_type, issued_on, updated_at FROM {WAREHOUSE} FINAL"


def wait_licenses_converged(pg, ch, timeout: float = 90.0) -> None:
    """The warehouse holds exactly the source's licences that are not revoked."""
    def converged():
        source = checksums(pg.execute(SOURCE_ROWS).fetchall())
        try:
            warehouse = checksums(ch.query(WAREHOUSE_ROWS).result_rows)
        except Exception:  # the sink creates the table on its first batch
            return False
        return source == warehouse

    poll_until(converged, timeout, "registry.licenses to converge (source rows not revoked = warehouse FINAL)")


@pytest.fixture(scope="module")
def seeded(stack, pg, ch):
    assert pg.execute("SELECT count(*) FROM registry.licenses").fetchone()[0] > 100, "qoima up seeds licences"
    wait_licenses_converged(pg, ch, timeout=120)


def test_marker_source_has_no_connector_slot_or_publication(stack, pg, seeded):
    assert "qoima-registry" not in ConnectClient(stack.s.connect_url).list()
    replication = {name for (name,) in pg.execute(
        "SELECT slot_name FROM pg_replication_slots UNION ALL SELECT pubname FROM pg_publication")}
    assert not replication & {"qoima_registry", "qoima_registry_pub"}
    metrics = requests.get(f"http://{stack.s.host}:{stack.s.ports.poller_metrics}/metrics", timeout=5).text
    assert 'qoima_poller_rows_total{table="registry.licenses"}' in metrics


def test_insert_update_soft_and_hard_delete_converge(stack, pg, ch, seeded):
    wait_converged(pg, ch, ("population.persons",), timeout=120)
    person_id, iin = pg.execute("SELECT person_id, iin FROM population.persons ORDER BY person_id LIMIT 1").fetchone()
    new_id = pg.execute(
        "INSERT INTO registry.licenses (holder_iin, license_type, issued_on, updated_at) "
        "VALUES (%s, 'medical', '2026-11-01', now()) RETURNING license_id", (iin,)).fetchone()[0]
    updated_id, soft_id, hard_id = [row[0] for row in pg.execute(
        "SELECT license_id FROM registry.licenses WHERE NOT revoked AND license_id <> %s ORDER BY license_id LIMIT 3",
        (new_id,))]
    pg.execute("UPDATE registry.licenses SET license_type = 'transport', updated_at = now() WHERE license_id = %s",
               (updated_id,))
    pg.execute("UPDATE registry.licenses SET revoked = true, updated_at = now() WHERE license_id = %s", (soft_id,))
    hard_version = ch.query(f"SELECT max(_version) FROM {WAREHOUSE} WHERE license_id = {{id:Int64}}",
                            parameters={"id": hard_id}).result_rows[0][0]
    pg.execute("DELETE FROM registry.licenses WHERE license_id = %s", (hard_id,))
    started = time.monotonic()

    def current() -> dict:
        return dict(ch.query(f"SELECT license_id, license_type FROM {WAREHOUSE} FINAL "
                             "WHERE license_id IN {ids:Array(Int64)}",
                             parameters={"ids": [new_id, updated_id, soft_id, hard_id]}).result_rows)

    # Inserts, updates and soft deletes within a few polls (5 s each).
    poll_until(lambda: (lambda rows: new_id in rows and rows.get(updated_id) == "transport"
                        and soft_id not in rows)(current()), 45, "insert, update and soft delete in the warehouse")
    # The hard delete is found by reconciliation (every 6 polls: within about 30 s, plus a poll).
    poll_until(lambda: hard_id not in current(), 90, "the hard delete found by reconciliation")
    assert time.monotonic() - started < 120

    # Deletes are rows with the flag set, as with CDC, and win over the row's last version:
    # every polled image is versioned by its raw offset (streams/versions.py).
    flags = dict(ch.query(f"SELECT license_id, max(_is_deleted) FROM {WAREHOUSE} WHERE license_id IN "
                          "{ids:Array(Int64)} GROUP BY license_id", parameters={"ids": [soft_id, hard_id]}).result_rows)
    assert flags == {soft_id: 1, hard_id: 1}
    deleted_version = ch.query(f"SELECT max(_version) FROM {WAREHOUSE} WHERE license_id = {{id:Int64}} "
                               "AND _is_deleted = 1", parameters={"id": hard_id}).result_rows[0][0]
    assert deleted_version > hard_version >= CDC_BASE

    # The update is the row's last image, loaded as an update.
    version, op = ch.query(f"SELECT _version, _op FROM {WAREHOUSE} FINAL WHERE license_id = {{id:Int64}}",
                           parameters={"id": updated_id}).result_rows[0]
    assert version >= CDC_BASE and op == "u"

    # The holder's IIN is hashed exactly as CDC hashed the same IIN in the population register.
    holder_hash = ch.query(f"SELECT holder_iin_hash FROM {WAREHOUSE} FINAL WHERE license_id = {{id:Int64}}",
                           parameters={"id": new_id}).result_rows[0][0]
    person_hash = ch.query("SELECT iin_hash FROM udw.demo__population__persons FINAL WHERE person_id = {id:Int64}",
                           parameters={"id": person_id}).result_rows[0][0]
    assert holder_hash == person_hash and iin not in holder_hash

    wait_licenses_converged(pg, ch, timeout=60)


def test_poller_restart_resumes_without_loss(stack, pg, ch, seeded):
    """Killed and started again, the poller resumes from its stored watermark: nothing is lost."""
    import os
    import signal

    managed = stack.managed("poller")
    pid = managed.pid()
    assert pid is not None, "qoima up starts the poller when a regulation has capture: marker"
    os.killpg(pid, signal.SIGKILL)
    poll_until(lambda: managed.pid() is None, 10, "the poller to die")
    changed = [row[0] for row in pg.execute(
        "UPDATE registry.licenses SET issued_on = issued_on - 1, updated_at = now() WHERE license_id IN "
        "(SELECT license_id FROM registry.licenses WHERE NOT revoked ORDER BY license_id DESC LIMIT 5) "
        "RETURNING license_id")]
    assert len(changed) == 5
    stack.start_qoima("poller", ["poller"], stack.s.ports.poller_metrics)
    wait_licenses_converged(pg, ch, timeout=60)
