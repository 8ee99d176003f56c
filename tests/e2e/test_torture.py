"""Torture: random sequences of every kind of change, then source and warehouse compared.

Each round runs a seeded random mix of transactions against the demo source: single-row and
set-based inserts, updates and deletes, primary-key changes, upserts, several changes of one
row in one transaction, insert-then-delete, transactions over all three tables, rolled-back
transactions and updates that change nothing. After each round the warehouse must equal the
source (tests/e2e/warehouse.py compares every non-personal column of every row). One round
can run while an incremental snapshot re-reads a table (see SNAPSHOT_ROUND). QOIMA_TORTURE_SEED
replays a run; the figures printed are the ones docs/benchmarks.md reports.
"""
from __future__ import annotations

import os
import random
import time
from datetime import date, timedelta

import psycopg

from model.regulation import load_all
from connectors.snapshot import request_snapshot
from infra.demo import generator
from infra.demo.source import ORGANIZATION_COLUMNS, PAYMENT_COLUMNS, PERSON_COLUMNS
from infra.stack import SOURCE_DB
from streams.versions import CDC_BASE
from tests.e2e.warehouse import poll_until, wait_converged

ROUNDS = 6
TRANSACTIONS_PER_ROUND = 40
# The round that runs while an incremental snapshot re-reads two tables. It found the defect
# fixed by raw-offset versions (streams/versions.py; seed 142268 brought deleted payments back);
# test_a_transaction_open_across_a_snapshot_chunk_wins_over_it reproduces that case on purpose.
SNAPSHOT_ROUND = 3
SEED = int(os.environ.get("QOIMA_TORTURE_SEED", time.time_ns() % 1_000_000))
# Payments the demo's `hold` rule (amount_plausible, at most 50,000,000) lets through, also after
# a 1.5x update: the torture compares the analysts' table, where held rows are not yet.
PLAUSIBLE = "amount <= 30000000"


class Torturer:
    """Plans random statements; returns the number of rows each changed."""

    def __init__(self, conn: psycopg.Connection, rng: random.Random) -> None:
        self.conn, self.rng = conn, rng

    def _ids(self, table: str, key: str, n: int) -> list[int]:
        where = f" WHERE {PLAUSIBLE}" if table == "social.payments" else ""
        return [r[0] for r in self.conn.execute(
            f"SELECT {key} FROM {table}{where} ORDER BY random() LIMIT %s", (n,)).fetchall()]

    def _person(self) -> tuple[str, str | None] | None:
        return self.conn.execute("SELECT iin, kato_code FROM population.persons ORDER BY random() LIMIT 1").fetchone()

    def _org(self) -> str | None:
        row = self.conn.execute("SELECT bin FROM social.organizations ORDER BY random() LIMIT 1").fetchone()
        return row[0] if row else None

    def _insert(self, table: str, columns: tuple[str, ...], row: dict, key: str) -> int:
        placeholders = ", ".join(["%s"] * len(columns))
        return self.conn.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
                                 f"RETURNING {key}", [row[c] for c in columns]).fetchone()[0]

    def insert_person(self) -> int:
        self._insert("population.persons", PERSON_COLUMNS, generator.make_person(self.rng, defect_rate=0.05),
                     "person_id")
        return 1

    def insert_organization(self) -> int:
        self._insert("social.organizations", ORGANIZATION_COLUMNS, generator.make_organization(self.rng),
                     "org_id")
        return 1

    def insert_payment(self) -> int:
        person, org = self._person(), self._org()
        if not person or not org:
            return self.insert_person()
        row = generator.make_payment(self.rng, person[0], org, kato_code=person[1], defect_rate=0.05)
        self._insert("social.payments", PAYMENT_COLUMNS, row, "payment_id")
        return 1

    def update_payments_set_based(self) -> int:
        modulus = self.rng.randint(5, 40)
        return self.conn.execute(
            "UPDATE social.payments SET status = %s, paid_at = CASE WHEN %s = 'paid' THEN now() END, "
            f"updated_at = now() WHERE payment_id %% %s = %s AND {PLAUSIBLE}",
            (status := self.rng.choice(generator.PAYMENT_STATUSES), status, modulus,
             self.rng.randrange(modulus))).rowcount

    def update_amounts_in_range(self) -> int:
        low = self.conn.execute("SELECT min(payment_id), max(payment_id) FROM social.payments").fetchone()
        if low[0] is None:
            return 0
        start = self.rng.randint(low[0], low[1])
        return self.conn.execute(
            "UPDATE social.payments SET amount = round(amount * %s, 2), updated_at = now() "
            f"WHERE payment_id BETWEEN %s AND %s AND {PLAUSIBLE}",
            (self.rng.choice(["1.01", "0.99", "1.5"]), start, start + self.rng.randint(1, 200))).rowcount

    def delete_payments(self) -> int:
        ids = self._ids("social.payments", "payment_id", self.rng.randint(1, 30))
        return self.conn.execute("DELETE FROM social.payments WHERE payment_id = ANY(%s)", (ids,)).rowcount

    def change_person_key(self) -> int:
        # Debezium sends a delete of the old key and a create of the new one.
        ids = self._ids("population.persons", "person_id", 1)
        if not ids:
            return 0
        # Taken from the identity's own sequence, so a later insert is never handed the same key.
        new_id = self.conn.execute(
            "SELECT nextval(pg_get_serial_sequence('population.persons', 'person_id'))").fetchone()[0]
        return self.conn.execute("UPDATE population.persons SET person_id = %s, updated_at = now() "
                                 "WHERE person_id = %s", (new_id, ids[0])).rowcount

    def move_persons(self) -> int:
        ids = self._ids("population.persons", "person_id", self.rng.randint(1, 50))
        kato = self.rng.choice([generator.make_kato(self.rng), None])
        return self.conn.execute("UPDATE population.persons SET kato_code = %s, updated_at = now() "
                                 "WHERE person_id = ANY(%s)", (kato, ids)).rowcount

    def upsert_organization(self) -> int:
        ids = self._ids("social.organizations", "org_id", 1)
        row = generator.make_organization(self.rng)
        org_id = ids[0] if ids and self.rng.random() < 0.7 else None
        if org_id is None:
            return self.insert_organization()
        return self.conn.execute(
            "INSERT INTO social.organizations (org_id, bin, name, kato_code) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (org_id) DO UPDATE SET name = excluded.name, kato_code = excluded.kato_code, "
            "updated_at = now()", (org_id, row["bin"], row["name"], row["kato_code"])).rowcount

    def churn_one_row(self) -> int:
        # Several versions of one row inside one transaction: only the last may survive.
        ids = self._ids("social.payments", "payment_id", 1)
        if not ids:
            return 0
        for status in self.rng.sample(generator.PAYMENT_STATUSES, 3):
            self.conn.execute("UPDATE social.payments SET status = %s, updated_at = clock_timestamp() "
                              "WHERE payment_id = %s", (status, ids[0]))
        return 3

    def insert_then_delete(self) -> int:
        person = self._person()
        org = self._org()
        if not person or not org:
            return 0
        row = generator.make_payment(self.rng, person[0], org, kato_code=person[1], defect_rate=0)
        key = self._insert("social.payments", PAYMENT_COLUMNS, row, "payment_id")
        self.conn.execute("UPDATE social.payments SET status = 'cancelled' WHERE payment_id = %s", (key,))
        self.conn.execute("DELETE FROM social.payments WHERE payment_id = %s", (key,))
        return 3

    def noop_update(self) -> int:
        ids = self._ids("social.organizations", "org_id", self.rng.randint(1, 20))
        return self.conn.execute("UPDATE social.organizations SET name = name WHERE org_id = ANY(%s)",
                                 (ids,)).rowcount

    def delete_person_and_payments(self) -> int:
        person = self.conn.execute("SELECT person_id, iin FROM population.persons ORDER BY random() LIMIT 1").fetchone()
        if not person:
            return 0
        changed = self.conn.execute("DELETE FROM social.payments WHERE person_iin = %s", (person[1],)).rowcount
        return changed + self.conn.execute("DELETE FROM population.persons WHERE person_id = %s",
                                           (person[0],)).rowcount

    def backdate_payment_periods(self) -> int:
        ids = self._ids("social.payments", "payment_id", self.rng.randint(1, 20))
        period = date(1990, 1, 1) + timedelta(days=30 * self.rng.randint(0, 400))
        return self.conn.execute("UPDATE social.payments SET period = %s, updated_at = now() "
                                 "WHERE payment_id = ANY(%s)", (period.replace(day=1), ids)).rowcount

    STATEMENTS = ("insert_person", "insert_organization", "insert_payment", "update_payments_set_based",
                  "update_amounts_in_range", "delete_payments", "change_person_key", "move_persons",
                  "upsert_organization", "churn_one_row", "insert_then_delete", "noop_update",
                  "delete_person_and_payments", "backdate_payment_periods")

    def transaction(self) -> tuple[int, bool]:
        """One transaction of 1-8 random statements; rolled back one time in ten."""
        rollback = self.rng.random() < 0.1
        changed = 0
        with self.conn.transaction():
            for _ in range(self.rng.randint(1, 8)):
                changed += getattr(self, self.rng.choice(self.STATEMENTS))()
            if rollback:
                raise psycopg.Rollback()  # leaves the block, the transaction undone
        return (0 if rollback else changed), rollback


def test_random_change_rounds_converge_after_each_round(stack, pg, ch, capsys):
    wait_converged(pg, ch, timeout=180)
    rng = random.Random(SEED)
    demo = next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "demo")
    total_changes = total_rolled_back = 0
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as conn:
        conn.autocommit = True
        torturer = Torturer(conn, rng)
        for round_no in range(1, ROUNDS + 1):
            if round_no == SNAPSHOT_ROUND:
                # Changes made while Debezium re-reads the table in chunks must win over the chunks.
                request_snapshot(demo, ["social.payments", "population.persons"], stack.s.regulation_env())
            changes = rolled_back = 0
            started = time.monotonic()
            for _ in range(TRANSACTIONS_PER_ROUND):
                changed, was_rolled_back = torturer.transaction()
                changes += changed
                rolled_back += was_rolled_back
            converged_in = wait_converged(pg, ch, timeout=180)
            total_changes += changes
            total_rolled_back += rolled_back
            during = " (during a snapshot)" if round_no == SNAPSHOT_ROUND else ""
            with capsys.disabled():  # the figures docs/benchmarks.md reports
                print(f"\n[torture] seed={SEED} round {round_no}/{ROUNDS}{during}: {TRANSACTIONS_PER_ROUND} "
                      f"transactions ({rolled_back} rolled back), {changes} row changes; converged {converged_in:.1f}s "
                      f"after the last commit, {time.monotonic() - started:.1f}s for the round", flush=True)
    with capsys.disabled():  # the figures docs/benchmarks.md reports
        print(f"[torture] seed={SEED}: {ROUNDS} rounds, {total_changes} row changes, "
              f"{total_rolled_back} transactions rolled back; converged after every round", flush=True)
    assert total_changes > ROUNDS * TRANSACTIONS_PER_ROUND, "the rounds changed rows"


def test_a_truncate_empties_the_table_and_the_rows_after_it_stay(stack, pg, ch):
    """TRUNCATE, then new rows in the same transaction and in the next one: the warehouse holds
    exactly the new rows, and the history of corrections records the truncate row by row. Runs
    before the straddle test, which leaves an incremental snapshot of payments going: a truncate
    racing a snapshot chunk is a known limitation (docs/schema-evolution.md, "Truncate")."""
    wait_converged(pg, ch, timeout=180)
    table = "udw.demo__social__payments"
    loaded = ch.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0]
    assert loaded > 0
    rng = random.Random(SEED)
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as conn:
        conn.execute("TRUNCATE social.payments")
        torturer = Torturer(conn, rng)
        for _ in range(3):
            torturer.insert_payment()
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as conn:
        torturer = Torturer(conn, rng)
        for _ in range(7):
            torturer.insert_payment()
    wait_converged(pg, ch, timeout=120)
    remaining = pg.execute("SELECT count(*) FROM social.payments").fetchone()[0]
    assert ch.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0] == remaining == 10
    truncated = ch.query(f"SELECT count() FROM {table}__history WHERE _op = 't' AND _is_deleted = 1").result_rows[0][0]
    assert truncated >= loaded


def test_a_transaction_open_across_a_snapshot_chunk_wins_over_it(stack, pg, ch):
    """A transaction that changes rows, stays open while an incremental snapshot reads their
    chunk, then commits: the chunk shows the rows as they were, Debezium emits it before the
    transaction (commit order), and the warehouse must end with the transaction's result. With
    LSN versions the chunk won here, because the transaction's changes were written before the
    chunk's SELECT (docs/design.md, "Versions")."""
    wait_converged(pg, ch, timeout=180)
    demo = next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "demo")
    deleted, updated = [row[0] for row in pg.execute(
        f"SELECT payment_id FROM social.payments WHERE {PLAUSIBLE} AND status <> 'cancelled' "
        "ORDER BY payment_id LIMIT 2")]
    table = "udw.demo__social__payments"

    def loaded() -> dict:
        return {pid: (op, version) for pid, op, version in ch.query(
            f"SELECT payment_id, _op, _version FROM {table} FINAL WHERE payment_id IN {{ids:Array(Int64)}}",
            parameters={"ids": [deleted, updated]}).result_rows}

    before = loaded()
    assert set(before) == {deleted, updated}
    with psycopg.connect(stack.pg_admin_conninfo(SOURCE_DB)) as conn:
        conn.execute("DELETE FROM social.payments WHERE payment_id = %s", (deleted,))
        conn.execute("UPDATE social.payments SET status = 'cancelled', updated_at = now() WHERE payment_id = %s",
                     (updated,))
        request_snapshot(demo, ["social.payments"], stack.s.regulation_env())
        # The chunk with both rows is read and loaded while the transaction is still open.
        poll_until(lambda: all(op == "r" and version > before[pid][1] for pid, (op, version) in loaded().items())
                   and len(loaded()) == 2, 180, "the snapshot chunk holding both payments loaded")
        conn.commit()
    wait_converged(pg, ch, timeout=120)
    after = loaded()
    assert deleted not in after, "the chunk's image of a row deleted by the straddling transaction came back"
    assert after[updated][0] == "u" and after[updated][1] > before[updated][1] >= CDC_BASE
    status = ch.query(f"SELECT status FROM {table} FINAL WHERE payment_id = {{id:Int64}}",
                      parameters={"id": updated}).result_rows[0][0]
    assert status == "cancelled"
