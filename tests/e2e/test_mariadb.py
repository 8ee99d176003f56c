"""MariaDB as a second source type (issue 5, item 8): the same guarantees on a subset.

The demo provider `shop` (connectors/regulations/shop.yaml) runs on the stack's MariaDB server,
read from its binlog by Debezium's MariaDB connector. Each test drives changes as the data
owner and requires the warehouse to equal the source: after the initial snapshot and a mix of
inserts, updates and deletes over both tables; for the edges of the declared types; for a column
added at the source; across a kill -9 of the Connect worker under load; and through an
incremental snapshot while rows change.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import time
from datetime import datetime
from decimal import Decimal

import pytest

from connectors.connect_client import ConnectClient
from model.regulation import load_all
from connectors.snapshot import request_snapshot
from tests.e2e.warehouse import Mismatch, checksums, poll_until

CUSTOMERS, ORDERS = "udw.shop__shop__customers", "udw.shop__shop__orders"
COMPARED = {
    "shop.customers": (
        "SELECT id, tier, active, balance, year(birth_date), updated_at FROM customers",
        f"SELECT id, tier, toUInt8(active), balance, birth_date_year, updated_at FROM {CUSTOMERS} FINAL",
    ),
    "shop.orders": (
        "SELECT order_id, amount, quantity, placed_at FROM orders",
        f"SELECT order_id, amount, quantity, placed_at FROM {ORDERS} FINAL",
    ),
}
SEED = int(os.environ.get("QOIMA_MARIADB_SEED", time.time_ns() % 1_000_000))


@pytest.fixture(scope="module")
def shop(stack):
    conn = stack.mariadb.owner_connection("shop")
    conn.autocommit(True)
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def regulation(stack):
    return next(r for r in load_all(stack.s.regulations_dir, stack.s.regulation_env()) if r.provider == "shop")


def rows(shop, sql: str, args=()) -> list[tuple]:
    with shop.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def wait_shop_converged(shop, ch, timeout: float = 120.0) -> float:
    started = time.monotonic()
    while True:
        differing = {}
        for table, (source_sql, warehouse_sql) in COMPARED.items():
            source, warehouse = checksums(rows(shop, source_sql)), checksums(ch.query(warehouse_sql).result_rows)
            keys = sorted(k for k in source.keys() | warehouse.keys() if source.get(k) != warehouse.get(k))
            if keys:
                differing[table] = f"source {len(source)} rows, warehouse {len(warehouse)}, differ: {keys[:5]}"
        if not differing:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise Mismatch(f"shop did not converge in {timeout:.0f}s: {differing}")
        time.sleep(0.25)


def test_snapshot_then_changes_over_both_tables_converge(stack, shop, ch):
    wait_shop_converged(shop, ch, timeout=180)  # the initial snapshot of the seeded rows
    assert ch.query(f"SELECT count() FROM {CUSTOMERS} FINAL").result_rows[0][0] >= 3
    shop.begin()
    with shop.cursor() as cursor:  # one transaction over both tables
        cursor.execute("INSERT INTO customers (iin, full_name, birth_date, tier, balance) "
                       "VALUES ('990101300122', 'Новый Покупатель', '1999-01-01', 'basic', 5.25)")
        new_id = cursor.lastrowid
        cursor.execute("UPDATE customers SET tier = 'gold', balance = balance + 10 WHERE id = 2")
        cursor.execute("INSERT INTO orders (customer_iin, amount, quantity, note) "
                       "VALUES ('990101300122', 77.70, 3, 'первый заказ')")
        cursor.execute("DELETE FROM orders WHERE order_id = 2")
    shop.commit()
    with shop.cursor() as cursor:
        cursor.executemany("INSERT INTO customers (iin, full_name, birth_date, tier, balance) "
                           "VALUES (%s, 'Покупатель', %s, %s, %s)",
                           [("900215400122", f"19{50 + i % 50}-03-0{1 + i % 9}", ("basic", "gold", "platinum")[i % 3],
                             Decimal(i) / 4) for i in range(60)])
        cursor.execute("UPDATE customers SET balance = balance * 2, active = NOT active WHERE id > 3 AND id % 2 = 0")
        cursor.execute("DELETE FROM customers WHERE id > 3 AND id % 5 = 0")
    shop.begin()  # rolled back: nothing of it may arrive
    with shop.cursor() as cursor:
        cursor.execute("DELETE FROM customers WHERE id = 1")
    shop.rollback()
    wait_shop_converged(shop, ch)
    loaded = ch.query(f"SELECT _op, iin_hash FROM {CUSTOMERS} FINAL WHERE id = {{id:UInt64}}",
                      parameters={"id": new_id}).result_rows
    # Inserted, then updated by the set-based update (an even id): a streamed change, hashed.
    assert loaded and loaded[0][0] in ("c", "u") and not loaded[0][1].startswith("invalid:")
    assert "990101300122" not in loaded[0][1]
    columns = {row[0] for row in ch.query(f"DESCRIBE TABLE {CUSTOMERS}").result_rows}
    assert "full_name" not in columns and "iin" not in columns and "iin_hash" in columns
    clear = ch.query(f"SELECT count() FROM {CUSTOMERS} WHERE iin_hash IN ('850101300124', '900215400122')")
    assert clear.result_rows[0][0] == 0


def test_type_edges_arrive_exactly(stack, shop, ch):
    with shop.cursor() as cursor:
        cursor.execute("INSERT INTO customers (id, iin, full_name, birth_date, tier, active, balance, updated_at) "
                       "VALUES (18446744073709551615, '751231500126', 'Край', '1900-01-01', 'platinum', 0, "
                       "-999999999999.99, '2299-12-31 23:59:59.999999')")
        cursor.execute("INSERT INTO orders (customer_iin, amount, quantity, placed_at, note) "
                       "VALUES ('751231500126', 0.01, 4294967295, '2038-01-19 03:14:07.999', 'ёмкость 😀')")
        order_id = cursor.lastrowid
    wait_shop_converged(shop, ch)
    customer = ch.query(f"SELECT id, birth_date_year, balance, updated_at, active FROM {CUSTOMERS} FINAL "
                        "WHERE id = 18446744073709551615").result_rows
    assert customer == [(Decimal("18446744073709551615"), 1900, Decimal("-999999999999.99"),
                         datetime(2299, 12, 31, 23, 59, 59, 999999), False)]  # UTC, read naive
    order = ch.query(f"SELECT amount, quantity, placed_at FROM {ORDERS} FINAL WHERE order_id = {{id:Int64}}",
                     parameters={"id": order_id}).result_rows
    assert order == [(Decimal("0.01"), 4294967295, datetime(2038, 1, 19, 3, 14, 7, 999000))]
    with shop.cursor() as cursor:  # the same row through the stream's update path
        cursor.execute("UPDATE customers SET balance = 999999999999.99 WHERE id = 18446744073709551615")
    wait_shop_converged(shop, ch)


def test_a_column_added_at_the_source_is_noted_and_rows_keep_loading(stack, shop, ch):
    with shop.cursor() as cursor:
        cursor.execute("ALTER TABLE orders ADD COLUMN coupon varchar(20) NULL")
        try:
            cursor.execute("INSERT INTO orders (customer_iin, amount, quantity, note, coupon) "
                           "VALUES ('850101300124', 10.00, 1, NULL, 'WINTER')")
            order_id = cursor.lastrowid
            defects = poll_until(lambda: ch.query(f"SELECT _defects FROM {ORDERS} FINAL WHERE order_id = {{id:Int64}}",
                                                  parameters={"id": order_id}).result_rows, 60,
                                 "the order placed after ADD COLUMN")[0][0]
            assert "coupon: not declared in the regulation, not loaded" in defects
            wait_shop_converged(shop, ch)
        finally:
            cursor.execute("ALTER TABLE orders DROP COLUMN coupon")
    with shop.cursor() as cursor:  # and after the column is gone again
        cursor.execute("INSERT INTO orders (customer_iin, amount, quantity) VALUES ('850101300124', 11.00, 2)")
    wait_shop_converged(shop, ch)


def _writer(stack, seconds: float, seed: int, stop: threading.Event) -> int:
    """Random inserts, updates and deletes at about 40 transactions a second; the count done."""
    rng, done = random.Random(seed), 0
    conn = stack.mariadb.owner_connection("shop")
    conn.autocommit(True)
    deadline = time.monotonic() + seconds
    try:
        with conn.cursor() as cursor:
            while time.monotonic() < deadline and not stop.is_set():
                kind = rng.random()
                if kind < 0.5:
                    cursor.execute("INSERT INTO orders (customer_iin, amount, quantity) VALUES (%s, %s, %s)",
                                   ("850101300124", Decimal(rng.randrange(1, 10**6)) / 100, rng.randrange(1, 9)))
                elif kind < 0.8:
                    cursor.execute("UPDATE orders SET amount = amount + 1 ORDER BY RAND(%s) LIMIT 3",
                                   (rng.randrange(1 << 30),))
                elif kind < 0.9:
                    cursor.execute("UPDATE customers SET balance = balance + 1 "
                                   "WHERE id %% 7 = %s AND balance < 1000000", (rng.randrange(7),))
                else:
                    cursor.execute("DELETE FROM orders ORDER BY RAND(%s) LIMIT 1", (rng.randrange(1 << 30),))
                done += 1
                time.sleep(0.025)
    finally:
        conn.close()
    return done


def test_kill_9_of_connect_under_load_then_restart_converges(stack, shop, ch, regulation, capsys):
    wait_shop_converged(shop, ch)
    stop, result = threading.Event(), {}
    worker = threading.Thread(target=lambda: result.update(done=_writer(stack, 16, SEED, stop)))
    worker.start()
    try:
        time.sleep(random.Random(SEED).uniform(3, 8))
        managed = stack.managed("connect")
        os.killpg(managed.pid(), signal.SIGKILL)
        poll_until(lambda: managed.pid() is None, 10, "the Connect worker gone after SIGKILL")
        down_at = time.monotonic()
        time.sleep(2)
        stack.start_connect()
        client = ConnectClient(stack.s.connect_url)
        for provider in load_all(stack.s.regulations_dir, stack.s.regulation_env()):
            if provider.source.capture.value == "cdc":
                client.wait_running(provider.connector_name, timeout=180)
    finally:
        worker.join(timeout=60)
        stop.set()
    converged = wait_shop_converged(shop, ch, timeout=180)
    with capsys.disabled():  # the figures docs/benchmarks.md reports
        print(f"\n[mariadb crash] seed={SEED}: {result.get('done', 0)} transactions, Connect killed and restarted; "
              f"converged {converged:.1f}s after the load ended, {time.monotonic() - down_at:.1f}s after the kill",
              flush=True)
    assert result.get("done", 0) > 100


def test_incremental_snapshot_while_rows_change_equals_the_source(stack, shop, ch, regulation):
    wait_shop_converged(shop, ch)
    mark = ch.query(f"SELECT max(_version) FROM {CUSTOMERS}").result_rows[0][0]
    request_snapshot(regulation, ["shop.customers", "shop.orders"], stack.s.regulation_env())
    stop = threading.Event()
    worker = threading.Thread(target=_writer, args=(stack, 8, SEED + 1, stop))
    worker.start()
    try:
        # Every customer untouched by the writer is re-read: its image is a snapshot read newer than the mark.
        poll_until(lambda: ch.query(f"SELECT count() FROM {CUSTOMERS} FINAL WHERE _op = 'r' "
                                    f"AND _version > {mark}").result_rows[0][0] > 0, 120,
                   "the incremental snapshot's reads in the warehouse")
    finally:
        worker.join(timeout=60)
        stop.set()
    wait_shop_converged(shop, ch)


def test_a_row_image_other_than_full_is_refused_with_the_fix(stack, regulation):
    """binlog_row_image=MINIMAL would leave unchanged columns out of the row image (docs/type-mapping.md,
    "Unchanged large values"): Debezium's connector must refuse it, naming the setting to fix."""
    client = ConnectClient(stack.s.connect_url)
    stack.mariadb._client("SET GLOBAL binlog_row_image = 'MINIMAL';")
    try:
        client.restart(regulation.connector_name)

        def refusal() -> str:
            tasks = client.status(regulation.connector_name)["tasks"]
            return next((t.get("trace", "") for t in tasks if t["state"] == "FAILED"), "")
        trace = poll_until(refusal, 60, "the connector to refuse binlog_row_image=MINIMAL")
        assert "binlog_row_image=FULL" in trace
    finally:
        stack.mariadb._client("SET GLOBAL binlog_row_image = 'FULL';")
        client.restart(regulation.connector_name)
        client.wait_running(regulation.connector_name, timeout=120)
