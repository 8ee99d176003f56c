"""Quality rules from the demo regulation, evaluated in flight (DM385 §49): a flagged row is
loaded with its violation listed, a rejected row is quarantined with an incident, and a held
row stays out of the analysts' table until its incident is resolved."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

from sinks.clickhouse_users import writer_client
from tests.e2e.cli import qoima
from tests.e2e.warehouse import incident_events, loaded_twice, poll_until, sink_metric, wait_converged

PERSONS = "udw.demo__population__persons"
PAYMENTS = "udw.demo__social__payments"


def _person(pg, iin: str, status: str) -> int:
    return pg.execute(
        "INSERT INTO population.persons (iin, last_name, first_name, birth_date, sex, status, kato_code) "
        "VALUES (%s, 'Тестов', 'Тест', '1990-01-01', 'M', %s, '751110000') RETURNING person_id",
        (iin, status)).fetchone()[0]




def test_flag_reject_and_hold(stack, pg, ch):
    writer = writer_client(stack.s)
    wait_converged(pg, ch, timeout=120)

    # flag: an IIN with a wrong check digit is loaded, pseudonymized as invalid, and marked.
    flagged = _person(pg, "900101300127", "active")
    defects = poll_until(lambda: ch.query(f"SELECT _defects FROM {PERSONS} FINAL WHERE person_id = {{id:Int64}}",
                                      parameters={"id": flagged}).result_rows, 20, "flagged row not loaded")
    assert "iin: not a valid iin (rule iin_valid)" in defects[0][0]

    # reject: a status outside the allowed values never reaches the warehouse.
    rejected = _person(pg, "900101300126", "unknown")
    rows = incident_events(writer, "rule = 'status_known' AND origin = 'processor'", 30, "the rejected row")
    assert "status: not one of the 3 allowed values" in rows[-1][1] and "900101300126" not in rows[-1][1]
    assert ch.query(f"SELECT count() FROM {PERSONS} WHERE person_id = {{id:Int64}}",
                    parameters={"id": rejected}).result_rows == [(0,)]
    pg.execute("DELETE FROM population.persons WHERE person_id = %s", (rejected,))

    # hold: an implausible amount waits in qoima_meta until the incident is resolved.
    iin, org_bin = pg.execute("SELECT p.iin, o.bin FROM population.persons p, social.organizations o "
                              "WHERE p.person_id < %s LIMIT 1", (flagged,)).fetchone()
    held = pg.execute("INSERT INTO social.payments (person_iin, org_bin, payment_type, amount, period, status) "
                      "VALUES (%s, %s, 'pension', 99000000.00, '2026-11-01', 'pending') RETURNING payment_id",
                      (iin, org_bin)).fetchone()[0]
    key = "demo/social.payments/amount_plausible"
    rows = incident_events(writer, f"incident_key = '{key}'", 30, "the held row")
    assert rows[-1][0] == "critical"
    # The detection carries the held record's depersonalized key as a sample.
    samples = writer.query(f"SELECT arrayFlatten(groupArray(samples)) FROM qoima_meta.incident_events "
                           f"WHERE incident_key = '{key}'").result_rows[0][0]
    assert f"[{held}]" in samples
    poll_until(lambda: writer.command("SELECT count() FROM qoima_meta.held__demo__social__payments "
                                  f"WHERE payment_id = {held}"), 20, "held row not in qoima_meta")
    assert ch.query(f"SELECT count() FROM {PAYMENTS} WHERE payment_id = {{id:Int64}}",
                    parameters={"id": held}).result_rows == [(0,)]

    result = subprocess.run([sys.executable, "-m", "qoima", "incidents", "resolve", key, "--by", "tester",
                             "--note", "amount confirmed by the provider"],
                            env={**os.environ, "QOIMA_HOME": str(stack.s.home)}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "released 1 held row(s) of social.payments" in result.stdout
    assert ch.query(f"SELECT toString(amount) FROM {PAYMENTS} FINAL WHERE payment_id = {{id:Int64}}",
                    parameters={"id": held}).result_rows == [("99000000",)]
    assert writer.command(f"SELECT count() FROM qoima_meta.held__demo__social__payments WHERE payment_id = {held}") == 0
    wait_converged(pg, ch, timeout=60)


def _replayed_clean(result) -> int:
    """The `clean` count `qoima quarantine replay` prints."""
    assert result.returncode == 0, result.stdout + result.stderr
    counts = dict(line.strip().rsplit(maxsplit=1) for line in result.stdout.splitlines()[1:] if line.strip())
    return int(counts.get("clean", 0))


def test_quarantine_replay_after_the_rule_is_changed(stack, pg, ch, tmp_path):
    writer = writer_client(stack.s)
    started = time.time()
    person = _person(pg, "880808400123", "pending_review")
    incident_events(writer, "rule = 'status_known' AND origin = 'processor' "
                    f"AND detected_ts > toDateTime64({started}, 3)", 30, "the rejected person")
    assert ch.query(f"SELECT count() FROM {PERSONS} WHERE person_id = {{id:Int64}}",
                    parameters={"id": person}).result_rows == [(0,)]

    # The fix, as an operator makes it: the provider's status list gains 'pending_review'.
    regulations = tmp_path / "regulations"
    shutil.copytree(stack.s.regulations_dir, regulations)
    demo = regulations / "demo.yaml"
    before = "values: [active, deceased, emigrated]"
    assert before in demo.read_text(encoding="utf-8")
    demo.write_text(demo.read_text(encoding="utf-8").replace(before, "values: [active, deceased, emigrated, "
                                                                     "pending_review]"), encoding="utf-8")
    persons = "population.persons"
    try:
        first = _replayed_clean(qoima(stack, "quarantine", "replay", "--table", persons, regulations=regulations))
        assert first >= 1
        poll_until(lambda: ch.query(f"SELECT count() FROM {PERSONS} FINAL WHERE person_id = {{id:Int64}}",
                                parameters={"id": person}).result_rows == [(1,)], 30, "replayed row not loaded")
        left_out = sink_metric(stack, "qoima_sink_already_loaded_total", persons)
        second = _replayed_clean(qoima(stack, "quarantine", "replay", "--table", persons, regulations=regulations))
        assert second == first
        # The second replay's records reach the sink, which already holds their key and version.
        poll_until(lambda: sink_metric(stack, "qoima_sink_already_loaded_total", persons)
                   >= left_out + second, 30, "the sink to leave the second replay out")
        assert [r for r in loaded_twice(ch, "demo__population__persons", "person_id") if r[0] == person] == [], \
            "a replay never loads a version twice"
    finally:  # a failure above must not leave the person for later tests
        pg.execute("DELETE FROM population.persons WHERE person_id = %s", (person,))
