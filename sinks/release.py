"""Releasing records a 'hold' quality rule kept out of the analysts' tables (DM385 §49).

Held records wait in `qoima_meta.held__<table>` with the incident keys that hold them. When an
incident is resolved, every record whose holding incidents are now all resolved moves to the
`udw` table in one INSERT ... SELECT and leaves the held table. Moving a record whose key has
since changed at the source is harmless: the newer version has the higher `_version` and wins.
"""
from __future__ import annotations

from model.regulation import Regulation
from sinks.ddl import HELD_COLUMN, META_COLUMNS, warehouse_columns
from model.names import META_DB
from model.names import WAREHOUSE_DB


def release(client, regulations: list[Regulation], resolved_keys: set[str]) -> dict[str, int]:
    """Move released records; returns rows moved per table (tables with none omitted)."""
    moved: dict[str, int] = {}
    if not resolved_keys:
        return moved
    for regulation in regulations:
        for table in regulation.tables:
            held = f"{META_DB}.`{regulation.held_table(table)}`"
            columns = ", ".join(f"`{c}`" for c in [c.name for c in warehouse_columns(table)] +
                                [name for name, _ in META_COLUMNS])
            condition = f"arrayAll(k -> has({{keys:Array(String)}}, k), `{HELD_COLUMN[0]}`)"
            parameters = {"keys": sorted(resolved_keys)}
            count = client.command(f"SELECT count() FROM {held} WHERE {condition}", parameters=parameters)
            if not count:
                continue
            client.command(f"INSERT INTO {WAREHOUSE_DB}.`{regulation.warehouse_table(table)}` ({columns}) "
                           f"SELECT {columns} FROM {held} WHERE {condition}", parameters=parameters)
            client.command(f"ALTER TABLE {held} DELETE WHERE {condition}", parameters=parameters,
                           settings={"mutations_sync": 2})
            moved[table.name] = int(count)
    return moved
