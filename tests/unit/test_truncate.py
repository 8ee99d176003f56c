"""sinks/truncate.py's statements run in ClickHouse itself (chdb, in-process) against the demo
payments table's own DDL, its history view and its held twin."""
from __future__ import annotations

import pytest

from sinks.ddl import create_table_sql, history_sql
from sinks.truncate import truncate_statements

TRUNCATE_AT = 200


@pytest.fixture()
def ch(tmp_path):
    session = pytest.importorskip("chdb.session").Session(str(tmp_path / "chdb"))

    def run(sql: str, parameters: dict | None = None) -> list[list[str]]:
        for name, value in (parameters or {}).items():  # chdb binds no parameters: inline them
            sql = sql.replace(f"{{{name}:UInt64}}", str(int(value))).replace(f"{{{name}:Int64}}", str(int(value)))
        text = session.query(sql, "TabSeparated").data()
        return [line.split("\t") for line in text.splitlines()]

    yield run
    session.close()


def _payment(payment_id: int, version: int, deleted: int = 0) -> str:
    return (f"({payment_id}, 'h{payment_id}', 'b', 'pension', 10.50, '2024-01-01', 'paid', NULL, NULL, "
            f"'2024-01-20 04:00:00', 'c', {version}, {deleted}, '2024-01-20 04:00:00', '2024-01-20 04:00:01', "
            "'k1', [])")


def test_rows_before_the_truncate_are_deleted_and_rows_after_it_stay(ch, demo) -> None:
    table = demo.table("social.payments")
    warehouse, held = demo.warehouse_table(table), demo.held_table(table)
    ch("CREATE DATABASE udw")
    ch("CREATE DATABASE qoima_meta")
    ch(create_table_sql(demo, table))
    for statement in history_sql(demo, table):
        ch(statement)
    ch(create_table_sql(demo, table, held=True))
    columns = ("payment_id, person_iin_hash, org_bin_hash, payment_type, amount, period, status, paid_at, "
               "kato_code_region, updated_at, _op, _version, _is_deleted, _source_ts, _processed_ts, _key_id, _defects")
    # 1 and 2 loaded before the truncate (2 updated once), 3 deleted before it, 4 inserted after it.
    ch(f"INSERT INTO udw.`{warehouse}` ({columns}) VALUES {_payment(1, 100)}, {_payment(2, 110)}, "
       f"{_payment(2, 150)}, {_payment(3, 120)}, {_payment(3, 130, deleted=1)}, {_payment(4, 250)}")
    ch(f"INSERT INTO qoima_meta.`{held}` ({columns}, _held_by) VALUES "
       f"{_payment(8, 140)[:-1]}, ['k']), {_payment(9, 260)[:-1]}, ['k'])")

    for _ in range(2):  # applied twice (a replay after a crash): the same result
        for statement, parameters in truncate_statements(warehouse, held, TRUNCATE_AT, 1_705_723_200_000):
            ch(statement, parameters)
        assert ch(f"SELECT payment_id FROM udw.`{warehouse}` FINAL ORDER BY payment_id") == [["4"]]
        assert ch(f"SELECT payment_id FROM qoima_meta.`{held}` ORDER BY payment_id") == [["9"]]

    # One delete row per key live before the truncate, at its version, its last values kept.
    assert ch(f"SELECT payment_id, _version, _is_deleted, status, _source_ts FROM udw.`{warehouse}` "
              "WHERE _op = 't' ORDER BY payment_id") == [
        ["1", str(TRUNCATE_AT), "1", "paid", "2024-01-20 04:00:00.000"],
        ["2", str(TRUNCATE_AT), "1", "paid", "2024-01-20 04:00:00.000"]]
    # The history of corrections records them too, through its materialized view.
    assert ch(f"SELECT count() FROM udw.`{warehouse}__history` WHERE _op = 't'") == [["2"]]
