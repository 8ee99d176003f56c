"""A marker table's fixed facts: its marker column and kind, its key, the columns read in text
form, and the marker arithmetic (a marker value as an integer position and back)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from connectors.marker.errors import PollerConfigError
from model.regulation import Regulation, Table, marker_kind

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO = timedelta(microseconds=1)


def epoch_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def _lossy_in_python(declared: str) -> bool:
    text = " ".join(declared.lower().split())
    if text.endswith("[]") or text.startswith("_"):
        return True
    return text.startswith(("interval", "money", "timetz")) or (text.startswith("time") and
                                                                not text.startswith("timestamp"))


class MarkerTable:
    """One table of a marker regulation, as the poller reads it."""

    def __init__(self, regulation: Regulation, table: Table) -> None:
        if table.marker is None:
            raise PollerConfigError(f"{regulation.provider} {table.name}: no 'marker' column declared")
        self.regulation, self.table = regulation, table
        self.topic = regulation.raw_topic(table)
        self.marker = table.marker
        self.key = tuple(table.primary_key)
        self.deleted_flag = table.deleted_flag
        declared = table.column(self.marker).type
        self.kind = marker_kind(declared)
        # timestamptz markers compare as instants, `timestamp` ones as the source's wall clock.
        spelled = " ".join(declared.lower().split())
        self.zoned = spelled.startswith("timestamptz") or spelled.endswith("with time zone")
        source = regulation.source
        self.lookback = (source.lookback_seconds * 1_000_000 if self.kind == "timestamp"
                         else source.lookback_values)
        self.safety_lag = source.safety_lag_seconds * 1_000_000 if self.kind == "timestamp" else 0
        # psycopg's Python values lose what these types hold (an interval's months, 24:00:00,
        # money's text): read their text form and parse it as a historical load does.
        self.lossy_columns = frozenset(c.name for c in table.columns if _lossy_in_python(c.type))
        # json/jsonb as their text too: Debezium sends the text PostgreSQL prints.
        self.text_columns = self.lossy_columns | {c.name for c in table.columns
                                                  if c.type.strip().lower() in ("json", "jsonb")}

    @property
    def name(self) -> str:
        return self.table.name

    # -- marker arithmetic: positions are integers (microseconds or values) ----------------
    def position(self, value: Any) -> int:
        if self.kind == "integer":
            return int(value)
        if value.tzinfo is None:  # a `timestamp` marker: its wall clock, read as if UTC
            value = value.replace(tzinfo=timezone.utc)
        return (value - EPOCH) // _MICRO

    def parameter(self, position: int) -> Any:
        """A position as the value to compare the marker column with."""
        if self.kind == "integer":
            return position
        instant = EPOCH + timedelta(microseconds=position)
        return instant if self.zoned else instant.replace(tzinfo=None)

    @staticmethod
    def version(position: int) -> int:
        return max(0, position)  # `_version` is UInt64

    def upper_bound(self, now: datetime, local_now: datetime) -> int | None:
        """The newest marker a poll reads: the source's clock minus the safety lag (timestamps);
        a row stamped in the future waits for its time instead of moving the watermark past
        rows still to commit. Integer markers have no clock."""
        if self.kind != "timestamp":
            return None
        return self.position(now if self.zoned else local_now) - self.safety_lag

    # -- rows ----------------------------------------------------------------------------
    def key_of(self, row: dict[str, Any]) -> tuple:
        return tuple(row[k] for k in self.key)

    def cursor(self, row: dict[str, Any]) -> tuple:
        return (row[self.marker], *self.key_of(row))

    def is_deleted(self, row: dict[str, Any]) -> bool:
        return self.deleted_flag is not None and row.get(self.deleted_flag) is True
