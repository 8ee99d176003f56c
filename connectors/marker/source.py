"""What the poller asks a marker source, in marker terms (positions, MarkerTable), answered by
the one source reader (connectors/source_reader.py) over an autocommit connection."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from connectors.marker.errors import PollerConfigError
from connectors.marker.table import MarkerTable
from connectors.source_reader import SourceReader
from model.regulation import Regulation, RegulationError

# Above the reader's default: a reconciliation reads every key of a table in one statement.
_STATEMENT_TIMEOUT_MS = 300_000


class MarkerSource(Protocol):
    """What the poller needs from a source database (PolledSource; fakes in the unit tests)."""

    def catalog(self, table: MarkerTable) -> tuple[list[str] | None, bool, bool]:
        """(source column names or None when the table is absent, SELECT allowed, marker indexed)."""

    def clock(self) -> tuple[datetime, datetime]:
        """The source's now() (an instant) and localtimestamp (its wall clock)."""

    def page(self, table: MarkerTable, *, after: tuple | None, lower: int | None, upper: int | None,
             limit: int) -> list[dict[str, Any]]:
        """One keyset page: rows after the cursor `after` (marker, key...) or from the position
        `lower` (inclusive), up to the position `upper`, in (marker, key) order."""

    def keys(self, table: MarkerTable) -> list[tuple[tuple, Any, bool]]:
        """(key, marker value, flagged deleted) of every row."""

    def close(self) -> None: ...


class PolledSource:
    """A marker regulation's source: connected on first use, reconnected after `close()` (the
    poller closes it after a failed poll, for a fresh connection next time)."""

    def __init__(self, regulation: Regulation, environ: dict[str, str]) -> None:
        self.regulation = regulation
        # Autocommit: a poller's statements must not share one long transaction (now() would stand still).
        self._reader = SourceReader(regulation, environ, timeout_ms=_STATEMENT_TIMEOUT_MS,
                                    application="qoima-poller", autocommit=True)

    def _connected(self) -> SourceReader:
        try:
            return self._reader.connect()
        except RegulationError as exc:  # names the file or variable, never the secret
            raise PollerConfigError(f"provider {self.regulation.provider}: {exc}") from None

    def catalog(self, table: MarkerTable) -> tuple[list[str] | None, bool, bool]:
        return self._connected().catalog(table.table)

    def clock(self) -> tuple[datetime, datetime]:
        return self._connected().clock()

    def page(self, table: MarkerTable, *, after: tuple | None, lower: int | None, upper: int | None,
             limit: int) -> list[dict[str, Any]]:
        return self._connected().keyset_page(
            table.table, limit=limit, as_text=table.text_columns,
            after=None if after is None else (table.parameter(table.position(after[0])), *after[1:]),
            lower=None if lower is None else table.parameter(lower),
            upper=None if upper is None else table.parameter(upper))

    def keys(self, table: MarkerTable) -> list[tuple[tuple, Any, bool]]:
        return self._connected().marker_keys(table.table)

    def close(self) -> None:
        self._reader.close()
