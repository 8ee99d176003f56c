"""A polled row as the very JSON envelope Debezium would have produced for it (JSON converter,
schemas disabled), values put into Debezium's form by connectors/debezium_encode.py (the path
historical loads take), so that downstream cannot tell a polled change from a captured one
except by `_version`, `_op` and `_source_ts`."""
from __future__ import annotations

import json
import logging
from typing import Any, Callable, Iterable

from connectors.debezium_encode import encoder
from connectors.marker.errors import PollerConfigError
from connectors.marker.table import MarkerTable
from connectors.pg_text import text_parser
from model.types.values import ValueRefused

log = logging.getLogger("qoima.poller")

CONNECTOR = "qoima-marker"   # `source.connector` of the events, where Debezium writes "postgresql"


def _from_text(parse: Callable[[str], Any], encode: Callable[[Any], Any]) -> Callable[[str], Any]:
    return lambda text: encode(parse(text))


class EnvelopeEncoder:
    """Encodes one marker table's rows; built at start, so a column type with no Debezium form
    stops the poller before it reads anything."""

    def __init__(self, table: MarkerTable) -> None:
        self.table = table
        regulation = table.regulation
        self._encoders: dict[str, Callable[[Any], Any]] = {}
        for column in table.table.columns:
            try:
                encode = encoder(column.type)
                if column.name in table.lossy_columns:  # read in text form (MarkerTable.lossy_columns)
                    encode = _from_text(text_parser(column.type), encode)
            except NotImplementedError:
                raise PollerConfigError(f"{regulation.provider} {table.name}.{column.name}: type {column.type!r} "
                                        "cannot be polled yet (it has no Debezium form in "
                                        "connectors/debezium_encode.py)") from None
            self._encoders[column.name] = encode
        # Rows are read and kept by warehouse name; the envelope names columns as the source does,
        # as Debezium's would, and the processor maps them back (streams/router.py).
        self._source_names = {column.name: column.source_column for column in table.table.columns}

    def _encode(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        try:
            return self._encoders[name](value)
        except ValueRefused:
            # Not what the regulation declares (say a numeric wider than numeric(p,s)): sent as
            # Debezium would send it, so the processor quarantines the row as `bad_value`.
            log.warning("%s.%s: a value does not fit the declared type; the processor will quarantine the row",
                        self.table.name, name)
            return value if isinstance(value, (str, int, float)) else str(value)

    def _image(self, row: dict[str, Any], source_columns: Iterable[str]) -> dict[str, Any]:
        image = {self._source_names[name]: self._encode(name, row.get(name)) for name in self._encoders}
        # Undeclared source columns travel by name only, as null: the processor notes them in
        # `_defects` exactly as for CDC, and their values are never read.
        image.update({name: None for name in source_columns if name not in image})
        return image

    def event(self, op: str, row: dict[str, Any], *, version: int, ts_ms: int, now_ms: int,
              source_columns: Iterable[str] = ()) -> tuple[bytes, bytes]:
        """(key, value) of the Debezium envelope for a row.

        A delete carries the key columns only, like Debezium's with the default replica identity.
        """
        table, regulation = self.table, self.table.regulation
        if op == "d":
            before, after = {self._source_names[k]: self._encode(k, row[k]) for k in table.key}, None
        else:
            before, after = None, self._image(row, source_columns)
        image = before if after is None else after
        source = {
            "version": CONNECTOR, "connector": CONNECTOR, "name": regulation.raw_topic_prefix,
            "ts_ms": ts_ms, "snapshot": "true" if op == "r" else "false", "db": regulation.source.database,
            "sequence": None, "schema": table.table.schema_name, "table": table.table.table_name,
            "txId": None, "lsn": version, "xmin": None,
        }
        value = {"before": before, "after": after, "source": source, "op": op, "ts_ms": now_ms, "transaction": None}
        key = {self._source_names[k]: image[self._source_names[k]] for k in table.key}
        return (json.dumps(key, ensure_ascii=False, separators=(",", ":")).encode(),
                json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())

    def source_ts_ms(self, position: int, now_ms: int, snapshot: bool) -> int:
        """Commit time of a change: a timestamptz marker's time (never later than the source's
        clock); the poll time for a first full pass (as a Debezium snapshot does, so retention
        counts from capture) and for markers that are not instants."""
        if snapshot or not self.table.zoned:
            return now_ms
        return min(position // 1000, now_ms)
