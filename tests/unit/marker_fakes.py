"""A fake source and a fake Kafka for the marker poller's unit tests (connectors/marker/), and the
demo marker regulation's rows.

The fake source answers `page` with the semantics of the poller's keyset SQL (checked on its own
in test_marker_source.py), so paging, watermarks, lookback, deletes and reconciliation are tested
without a database; `clean_record` sends an event through the real router, to show it becomes
the record CDC gives.
"""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

from connectors.marker.errors import PollerError
from connectors.marker.poller import MarkerPoller
from connectors.marker.table import MarkerTable
from model.names import MARKER_STATE_TOPIC as STATE_TOPIC
from model.regulation import Regulation, load_regulation
from model.settings import Settings

UTC = timezone.utc
NOW = datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
IIN = "850101300124"
MICROS = 1_000_000
LICENSES_RAW = "qoima.raw.registry.registry.licenses"


def micros(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def marker_regulation(settings: Settings, regulation_env: dict[str, str],
                      tables: tuple[str, ...] = ("registry.licenses",)) -> Regulation:
    """The demo marker regulation (connectors/regulations/demo_marker.yaml), with `tables` only:
    the fakes here hold licences."""
    regulation = load_regulation(settings.regulations_dir / "demo_marker.yaml", regulation_env)
    return regulation.model_copy(update={"tables": [regulation.table(name) for name in tables]})


class FakeSource:
    """A table in memory, read the way the keyset SQL reads it."""

    def __init__(self, rows=(), extra=(), missing=(), now: datetime = NOW) -> None:
        self.rows = [dict(r) for r in rows]
        self.extra, self.missing = list(extra), set(missing)
        self.now = now
        self.pages: list[dict] = []
        self.allowed = True
        self.fail: Exception | None = None

    def catalog(self, table: MarkerTable):
        columns = [c.source_column for c in table.table.columns if c.name not in self.missing] + self.extra
        return columns, self.allowed, True

    def clock(self):
        return self.now, self.now.astimezone(UTC).replace(tzinfo=None)

    def page(self, table: MarkerTable, *, after, lower, upper, limit):
        if self.fail is not None:
            raise self.fail
        self.pages.append({"after": after, "lower": lower, "upper": upper, "limit": limit})

        def order(row):
            return (table.position(row[table.marker]), *table.key_of(row))

        # One fake can hold rows of several tables: a row belongs to the table whose key it has.
        rows = sorted((r for r in self.rows if all(k in r for k in table.key)), key=order)
        if after is not None:
            rows = [r for r in rows if order(r) > (table.position(after[0]), *after[1:])]
        elif lower is not None:
            rows = [r for r in rows if table.position(r[table.marker]) >= lower]
        if upper is not None:
            rows = [r for r in rows if table.position(r[table.marker]) <= upper]
        return [dict(r) for r in rows[:limit]]

    def keys(self, table: MarkerTable):
        return [(table.key_of(r), r[table.marker], table.is_deleted(r)) for r in self.rows
                if all(k in r for k in table.key)]

    def close(self) -> None:
        pass

    # changes at the "source"
    def upsert(self, **row) -> None:
        self.rows = [r for r in self.rows if r["license_id"] != row["license_id"]] + [row]

    def delete(self, license_id: int) -> None:
        self.rows = [r for r in self.rows if r["license_id"] != license_id]


class FakeKafka:
    """Produced messages count as delivered only once flushed; a flush can be made to fail."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, bytes | None, bytes | None]] = []
        self.delivered: list[tuple[str, bytes | None, bytes | None]] = []
        self.fail_flush = False

    def produce(self, topic, key, value) -> None:
        self.pending.append((topic, key, value))

    def flush(self) -> None:
        if self.fail_flush:
            self.pending.clear()
            raise PollerError("kafka", "1 message(s) undelivered")
        self.delivered += self.pending
        self.pending.clear()

    def events(self, topic: str) -> list[dict]:
        return [json.loads(v) for t, _, v in self.delivered if t == topic]

    def states(self) -> dict[str, dict]:
        return {k.decode(): json.loads(v) for t, k, v in self.delivered if t == STATE_TOPIC}

    def take(self, topic: str) -> list[dict]:
        events = self.events(topic)
        self.delivered.clear()
        return events


def license_row(license_id: int = 7, updated_at: datetime = datetime(2024, 1, 15, 10, 30, tzinfo=UTC),
                **overrides) -> dict:
    row = {"license_id": license_id, "holder_iin": IIN, "license_type": "pharmacy",
           "issued_on": date(2024, 1, 10), "revoked": False, "updated_at": updated_at}
    row.update(overrides)
    return row


def poller_for(regulation, source: FakeSource, kafka: FakeKafka, saved=None, **source_overrides) -> MarkerPoller:
    if source_overrides:
        regulation = regulation.model_copy(update={"source": regulation.source.model_copy(update=source_overrides)})
    return MarkerPoller([regulation], {regulation.provider: source}, kafka, saved or {}, clock=lambda: NOW.timestamp())


def clean_record(router, codec, topic: str, value: bytes) -> dict:
    """What the processor makes of a raw event that it loads (not quarantined)."""
    out = router.route(topic, 0, 1, value)
    assert out.outcome == "clean", out.reason
    record = codec.decode(out.value)[1]
    record.pop("_processed_ts_ms")
    return record
