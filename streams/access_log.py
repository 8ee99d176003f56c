"""The PD236 access protocol at the point where Qoima reads rows: counts per table, path and interval.

Every row of a table that holds personal data (model/personal_data.py) is counted in a bucket:
(scope, provider, table, path, key id, interval). `scope` is what makes one reader's buckets
its own: a processor worker's work partition (the bucket is state of that partition, logged
with the batch's transaction and moved with the partition: streams/state_store.py), or one
`qoima load-history` run. When its interval has ended, a bucket becomes one access event
(`closed`), and is deleted in the same step: in the processor, both ride the batch's Kafka
transaction, so an event is emitted once whatever crashes.

Distinct subjects are distinct pseudonyms of the table's subject column (an IIN, else a
passport or identity card: model/personal_data.py `subject_column`), or distinct row keys in a
table without one, counted with a k-minimum-values sketch of their CRC-32s: exact below `SUBJECTS_K` keys (but
for a CRC collision, about 1 in 10^5 at that size), an estimate with about 13% standard
error above it. The sketch keeps the state small: 64 numbers per bucket, never a key.
"""
from __future__ import annotations

import bisect
import zlib
from collections.abc import Iterator, MutableMapping

from model.personal_data import AccessEvent, AccessPath, TableAccess, event_id, table_access
from model.regulation import Regulation
from streams.keys import KeySchedule

SUBJECTS_K = 64
_SPACE = 1 << 32
_CHECK_EVERY_MS = 1000
# rows, first read ms, last read ms, the sketch (the smallest distinct key CRCs, ascending), the
# interval's end, and the facts in force when the rows were read: organization, information
# system, categories, legal basis, purpose. An event reports what was read under them, even when
# a regulation applied since changed the table or stopped capturing it.
Bucket = list


def estimate(sketch: list[int]) -> tuple[int, bool]:
    """(distinct keys, exact?) from a k-minimum-values sketch."""
    if len(sketch) < SUBJECTS_K:
        return len(sketch), True
    return round((SUBJECTS_K - 1) * _SPACE / (sketch[-1] + 1)), False


def add_key(sketch: list[int], key: bytes) -> None:
    value = zlib.crc32(key)
    if len(sketch) >= SUBJECTS_K and value >= sketch[-1]:
        return
    at = bisect.bisect_left(sketch, value)
    if at < len(sketch) and sketch[at] == value:
        return
    sketch.insert(at, value)
    if len(sketch) > SUBJECTS_K:
        sketch.pop()


class AccessLog:
    """Buckets of one reader in `store` (a state store of the processor, or a plain dict)."""

    def __init__(self, regulations: list[Regulation], keys: KeySchedule, store: MutableMapping,
                 interval_s: int) -> None:
        self.tables: dict[tuple[str, str], TableAccess] = table_access(regulations)
        self.keys = keys
        self.store = store
        self.interval_ms = interval_s * 1000
        self._next_check = 0

    def path(self, facts: TableAccess, op: str) -> str:
        if facts.polled:
            return AccessPath.marker.value
        return AccessPath.snapshot.value if op == "r" else AccessPath.cdc.value

    def note(self, scope: object, provider: str, table: str, op: str, key: bytes | None, source_ts_ms: int | None,
             now_ms: int, path: str | None = None) -> str | None:
        """Count one row read now; the path it was counted under, None when the table holds no
        personal data (or is not regulated)."""
        facts = self.tables.get((provider, table))
        if facts is None:
            return None
        path = path or self.path(facts, op)
        key_id = self.keys.for_time(source_ts_ms if source_ts_ms is not None else now_ms).key_id
        start = now_ms - now_ms % self.interval_ms
        name = f"{scope}|{provider}|{table}|{path}|{key_id}|{start}"
        bucket = self.store.get(name)
        if bucket is None:
            bucket = [0, now_ms, now_ms, [], start + self.interval_ms,
                      [facts.organization, facts.information_system, list(facts.categories), facts.legal_basis,
                       facts.purpose]]
        bucket[0] += 1
        bucket[2] = now_ms
        if key is not None:
            add_key(bucket[3], key)
        self.store[name] = bucket   # marks it changed for the changelog
        return path

    def closed(self, now_ms: int, everything: bool = False) -> Iterator[AccessEvent]:
        """The events of the buckets whose interval has ended (all of them with `everything`),
        each deleted from the store as it is given."""
        if not everything and now_ms < self._next_check:
            return
        # Looked at once a second, and at each interval's end (a bucket is due then, not later).
        self._next_check = min(now_ms + _CHECK_EVERY_MS, now_ms - now_ms % self.interval_ms + self.interval_ms)
        for name in [n for n, bucket in self.store.items() if everything or bucket[4] <= now_ms]:
            rows, first, last, sketch, end, (organization, system, kinds, basis, purpose) = self.store.pop(name)
            scope, provider, table, path, key_id, start = name.split("|")
            subjects, exact = estimate(sketch)
            begin = int(start)
            yield AccessEvent(event_id(provider, table, path, scope, key_id, begin), provider, organization, system,
                              table, path, tuple(kinds), rows, subjects, exact, basis, purpose, key_id, begin, end,
                              first, last)
