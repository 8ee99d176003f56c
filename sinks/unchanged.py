"""Filling in the large values an UPDATE left unchanged and the source did not send.

The processor loads such a column empty and names it in the record's `_unchanged`
(streams/unchanged.py). Before a batch is inserted, each such column takes the value of the
row's latest version: an earlier row of the same key in this batch, else the latest version
loaded before the batch (its own table first, then its twin: the analysts' table or the held
table). Reading only versions below the batch's first keeps a batch read again after a crash
from taking a value from its own later rows. A value found nowhere (the row's earlier versions
were never loaded) stays empty, with a defect that says how to re-read it.

The values read back are the depersonalized ones the warehouse holds: nothing clear is read.
"""
from __future__ import annotations

from typing import Any, Callable

# (database, table, key columns, value columns, keys, versions below) -> key -> values
Latest = Callable[[str, str, list[str], list[str], list[tuple], int], dict[tuple, tuple]]

NOT_FOUND = ("unchanged large value not found in the warehouse, loaded empty; "
             "re-read the row with `qoima snapshot <provider> <table>`")


def fill(rows: list[list[Any]], fields: list[str], key_fields: list[str], pending: dict[int, list[str]],
         tables: list[tuple[str, str]], latest: Latest) -> int:
    """Fill `pending` (row index -> unchanged field names) in `rows` in place; the number of
    values found nowhere."""
    index = {name: i for i, name in enumerate(fields)}
    key_of = [index[name] for name in key_fields]
    version = index["_version"]
    # Keys whose first pending row has no earlier row in the batch: the warehouse must answer.
    wanted: dict[tuple, set[str]] = {}
    seen: set[tuple] = set()
    for i, row in enumerate(rows):
        key = tuple(row[k] for k in key_of)
        if i in pending and key not in seen:
            wanted.setdefault(key, set()).update(pending[i])
        seen.add(key)
    found: dict[tuple, dict[str, Any]] = {}
    if wanted:
        names = sorted(set().union(*wanted.values()))
        before = min(row[version] for row in rows)
        for database, table in tables:
            missing = [key for key in wanted if key not in found]
            if not missing:
                break
            for key, values in latest(database, table, key_fields, names, missing, before).items():
                found[key] = dict(zip(names, values))
    lost = 0
    previous: dict[tuple, list[Any]] = {}
    for i, row in enumerate(rows):
        key = tuple(row[k] for k in key_of)
        if i in pending:
            earlier = previous.get(key)
            for name in pending[i]:
                if earlier is not None:
                    row[index[name]] = earlier[index[name]]
                elif key in found:
                    row[index[name]] = found[key][name]
                else:
                    lost += 1
                    row[index["_defects"]] = [*row[index["_defects"]], f"{name}: {NOT_FOUND}"]
        previous[key] = row
    return lost
