"""A MariaDB binlog position as one integer that orders every change of a row.

PostgreSQL gives each change an LSN; MariaDB gives a binlog coordinate: the file
(`mariadb-bin.000042`), the byte position of the rows event in it (`pos`) and the row's index
within that event (`row`, one event may carry many rows). Their lexicographic order is commit
order on one server, so they are packed, most significant first, into the 63 bits an Avro long
and ClickHouse's UInt64 `_version` both hold:

    file sequence (18 bits) | pos (32 bits) | slot (13 bits)

- pos: a binlog event header keeps its position in 32 bits, so no file goes past 4 GiB.
- slot: 0 for a snapshot read, row + 1 for a streamed change. An initial snapshot's reads carry
  the position the stream resumes from (SHOW MASTER STATUS), and the first streamed event may
  start at exactly that byte: its change must win over the read, so a read takes the lowest
  slot. An incremental snapshot's chunk is emitted when its closing signal is streamed and
  carries that event's position: later than every change the chunk reflects (changes inside
  the window are dropped from the chunk by Debezium), earlier than every change after it.
- file sequence: 262,143 rotations (a daily FLUSH LOGS lasts 700 years).

What breaks the order, and is therefore refused or documented (docs/mariadb.md): a rows event
with more than 8,191 rows (binlog_row_event_max_size far above its 8 KiB default), RESET MASTER
or a new log-bin base name (numbering restarts at 1), a failover to a server with its own
binlog, and MariaDB 11.4+ with binlog_legacy_event_pos=OFF (events inside a transaction then
carry no position).
"""
from __future__ import annotations

import re
from typing import Any

_FILE_BITS, _POS_BITS, _SLOT_BITS = 18, 32, 13
_FILE = re.compile(r"^.+\.(\d+)$")
_FIRST_EVENT = 4  # every binlog file starts with a 4-byte magic number


class BinlogPositionError(ValueError):
    """The source block's binlog coordinate cannot be ordered; the message says why, never its value."""


def _natural(source: dict[str, Any], key: str) -> int:
    value = source.get(key, 0 if key == "row" else None)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BinlogPositionError(f"binlog source block: '{key}' is not a non-negative integer")
    return value


def binlog_version(source: dict[str, Any], snapshot_read: bool) -> int:
    """The `_version` of a MariaDB change event from its source block (`file`, `pos`, `row`)."""
    name = source.get("file")
    match = _FILE.match(name) if isinstance(name, str) else None
    if match is None:
        raise BinlogPositionError("binlog source block: 'file' is not a binlog file name ending in .<number>")
    sequence, pos, row = int(match.group(1)), _natural(source, "pos"), _natural(source, "row")
    if sequence >= 1 << _FILE_BITS:
        raise BinlogPositionError(f"binlog file sequence beyond {(1 << _FILE_BITS) - 1}: versions would overflow; "
                                  "re-snapshot the provider into fresh tables after RESET MASTER (docs/mariadb.md)")
    if pos >= 1 << _POS_BITS:
        raise BinlogPositionError("binlog position beyond 4 GiB, which a binlog event header cannot hold")
    if not snapshot_read and pos < _FIRST_EVENT:
        raise BinlogPositionError("streamed change without a binlog position; on MariaDB 11.4+ set "
                                  "binlog_legacy_event_pos=ON")
    slot = 0 if snapshot_read else row + 1
    if slot >= 1 << _SLOT_BITS:
        raise BinlogPositionError(f"more than {(1 << _SLOT_BITS) - 1} rows in one binlog event; keep "
                                  "binlog_row_event_max_size at its default (8192)")
    return ((sequence << _POS_BITS | pos) << _SLOT_BITS) | slot
