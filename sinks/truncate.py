"""A TRUNCATE at the source, applied to the warehouse.

The processor turns Debezium's truncate event into a marker record on the table's clean topic
(`_op` 't', `_version` = the truncate's place in commit order). Every record before it in the
topic is loaded before the sink reaches it, so when the sink applies it, "every row loaded
before the truncate" is exactly the rows whose newest version is below the marker's:

- the analysts' table gets, for each such key, a delete row at the marker's version (the row's
  last values kept, `_op` 't', `_is_deleted` 1), so FINAL hides it and the history of
  corrections records the truncate row by row, through its materialized view;
- rows a 'hold' rule keeps back in `qoima_meta` and older than the marker are dropped: the
  source no longer has them, so releasing them later must not bring them back.

Rows inserted after the truncate, in the same transaction or later, have higher versions and
are untouched, wherever they fall in the batch. Applying the same marker twice (a replay after
a crash before the offset commit) finds nothing older left and changes nothing.
"""
from __future__ import annotations

from model.names import META_DB
from model.names import WAREHOUSE_DB


def truncate_statements(warehouse_table: str, held_table: str, version: int,
                        source_ts_ms: int) -> list[tuple[str, dict]]:
    """(statement, parameters) in the order they must run."""
    parameters = {"v": version, "ts": source_ts_ms}
    table = f"{WAREHOUSE_DB}.`{warehouse_table}`"
    return [
        (f"INSERT INTO {table} SELECT * REPLACE ('t' AS _op, {{v:UInt64}} AS _version, 1 AS _is_deleted, "
         "fromUnixTimestamp64Milli({ts:Int64}, 'UTC') AS _source_ts, now64(3) AS _processed_ts, "
         "now64(3) AS _loaded_ts) "
         # The filter in a subquery: in one SELECT, `WHERE _version` would read the REPLACE's alias.
         f"FROM (SELECT * FROM {table} FINAL WHERE _version < {{v:UInt64}})", parameters),
        (f"ALTER TABLE {META_DB}.`{held_table}` DELETE WHERE _version < {{v:UInt64}}", parameters),
    ]
