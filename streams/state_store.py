"""The processor's state: the mappings the cross-row rules keep, with a changelog.

Each store is a dict in the worker's memory. What a batch changes goes to the compacted topic
`qoima.processor-state` in the batch's own Kafka transaction (streams/processor.py), beside
the clean records and the offsets it consumed: a crash loses either all of a batch or none of
it, state included. A worker reads the topic back to its end whenever it is given partitions,
keeping the keys of the partitions it now owns (`restore`): every key starts with its
partition, `<partition>|` (streams/cross_row).

Keys and values hold digests and row-key digests (streams/cross_row), never a clear value;
they are JSON on the changelog.

A worker also keeps its stores on local disk (`StateSnapshot`), with the changelog offset they
reflect: restarted, it loads them and reads the changelog on from there, instead of from its
beginning (1,000,000 keys: about 11 s from the changelog alone; docs/benchmarks.md).
"""
from __future__ import annotations

import marshal
import os
import time
from collections.abc import Callable, Container, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import orjson

_MISSING = object()
_SEPARATOR = "\x1f"  # store name, then key; no state key holds a unit separator


class ChangelogStore(MutableMapping):
    """One named mapping; remembers the keys changed since the last `changes()`."""

    def __init__(self, name: str, data: dict | None = None) -> None:
        self.name = name
        self._data: dict = {} if data is None else data
        self._dirty: set = set()

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def get(self, key: Any, default: Any = None) -> Any:  # the hot path: no MutableMapping detour
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setitem__(self, key: Any, value: Any) -> None:
        self._dirty.add(key)
        self._data[key] = value

    def __delitem__(self, key: Any) -> None:
        self._dirty.add(key)
        del self._data[key]

    def __iter__(self) -> Iterator:
        return iter(self._data)

    # Views of the dict itself: MutableMapping's generic ones call __getitem__ per key.
    def keys(self):
        return self._data.keys()

    def items(self):
        return self._data.items()

    def values(self):
        return self._data.values()

    def __len__(self) -> int:
        return len(self._data)

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """(changelog key, JSON value or None for a deletion) of every key changed since last time."""
        records = []
        for key in self._dirty:
            value = self._data.get(key, _MISSING)
            records.append(((self.name + _SEPARATOR + key).encode(),
                            None if value is _MISSING else orjson.dumps(value)))
        self._dirty.clear()
        return records


class StateStores:
    """The stores of streams/cross_row: `owners` (step 1, by work partition) and `values`,
    `references`, `pending` (step 2, by rules partition); and `access`, the PD236 access log's
    open buckets (streams/access_log.py, by work partition); logged together."""

    NAMES = ("owners", "values", "references", "pending", "access")
    BY_WORK_PARTITION = ("owners", "access")

    def __init__(self, data: dict[str, dict] | None = None) -> None:
        self.stores = {name: ChangelogStore(name, (data or {}).get(name)) for name in self.NAMES}

    def __getitem__(self, name: str) -> ChangelogStore:
        return self.stores[name]

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        return [record for store in self.stores.values() for record in store.changes()]

    def clear(self) -> None:
        for store in self.stores.values():
            store._data.clear()
            store._dirty.clear()

    def restore(self, records: Iterable[tuple[bytes, bytes | None]],
                partitions: Callable[[str], Container[int]] | None = None, clear: bool = True) -> int:
        """Load changelog records in order (the last one of a key wins), keeping only keys of
        the partitions `partitions(store name)` gives (all without it); the keys held.
        `clear`: start empty (False: on top of what a snapshot loaded)."""
        if clear:
            self.clear()
        owned = {name: partitions(name) for name in self.NAMES} if partitions else None
        for key, value in records:
            name, _, inner = key.decode().partition(_SEPARATOR)
            store = self.stores.get(name)
            if store is None:
                continue  # a store this version does not keep
            if owned is not None and not _owned(inner, owned[name]):
                continue  # another worker's partition (or a key of a version before partitions)
            if value is None:
                store._data.pop(inner, None)
            else:
                store._data[inner] = orjson.loads(value)
        return sum(len(store) for store in self.stores.values())


def _partition(key: str) -> int | None:
    """The partition a state key belongs to (its `<partition>|` prefix); None for a key
    written before keys had one."""
    partition = key.split("|", 1)[0]
    return int(partition) if partition.isdigit() else None


def _owned(key: str, partitions: Container[int]) -> bool:
    return _partition(key) in partitions


def _yield_the_cpu() -> None:
    """The snapshot writer runs only on CPU time nobody else wants: a million keys take it many
    seconds of CPU, which at normal priority came out of the processor's and the warehouse's
    share on a two-core machine and showed as a freshness spike every minute (docs/benchmarks.md)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux: the lowest nice level instead
        os.nice(19)


class StateSnapshot:
    """A worker's stores on local disk, with the changelog offsets they reflect.

    Saved between batches, so it holds exactly the committed state of the partitions the
    worker owned then, up to those offsets (its own writes are all below them, and no other
    worker writes its partitions' keys). Loaded only when it covers every partition the worker
    owns now and is younger than `MAX_AGE_S`: the changelog keeps a deletion (tombstone) for
    `delete.retention.ms`, 24 h by default, and an older snapshot could miss one. Keys are
    grouped by partition, so loading takes whole partitions without looking at each key.
    """

    MAX_AGE_S = 12 * 3600
    _FORMAT = 2

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: int | None = None   # the child process writing the last snapshot

    def save(self, stores: StateStores, owned: Callable[[str], Container[int]], offsets: dict[int, int],
             background: bool = False) -> bool:
        """Write the snapshot; `background`: in a forked child, which sees the stores as they
        are now (copy-on-write) while this process goes on (the way Redis saves), at the lowest
        CPU priority. False when a background save is skipped because the previous one is
        still being written."""
        saved = time.time()   # now, not when an idle-priority writer gets round to it
        if self._writer is not None:
            # Still writing the previous one: a background save skips its turn rather than make
            # the worker wait; a foreground one (the worker stopping) waits for it.
            done, _ = os.waitpid(self._writer, 0 if not background else os.WNOHANG)
            if not done:
                return False
            self._writer = None
        if background and hasattr(os, "fork"):
            pid = os.fork()
            if pid:
                self._writer = pid
                return True
            try:  # the child: no Kafka client, no logging; only the file
                _yield_the_cpu()
                self._write(stores, owned, offsets, saved)
                os._exit(0)
            except BaseException:
                os._exit(1)
        self._write(stores, owned, offsets, saved)
        return True

    def _write(self, stores: StateStores, owned: Callable[[str], Container[int]], offsets: dict[int, int],
               saved: float) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partitions = {name: set(owned(name)) for name in stores.NAMES}
        data: dict[str, dict[int, dict]] = {name: {} for name in stores.NAMES}
        for name, store in stores.stores.items():
            grouped = data[name]
            for key, value in store.items():
                partition = _partition(key)
                if partition in partitions[name]:
                    grouped.setdefault(partition, {})[key] = value
        snapshot = {"format": self._FORMAT, "saved": saved, "offsets": offsets,
                    "owned": {name: sorted(p) for name, p in partitions.items()}, "data": data}
        partial = self.path.with_suffix(".partial")
        with open(partial, "wb") as file:
            marshal.dump(snapshot, file)
        os.replace(partial, self.path)  # a crash while writing leaves the previous snapshot

    def load(self, stores: StateStores, owned: Callable[[str], Container[int]]) -> dict[int, int] | None:
        """Put the saved stores, as far as `owned` goes, into `stores` (cleared first); the
        changelog offsets to read on from. None, and `stores` untouched, when there is no
        usable snapshot."""
        try:
            with open(self.path, "rb") as file:
                snapshot = marshal.load(file)
        except (OSError, EOFError, ValueError, TypeError):
            return None  # none yet, or unreadable: the changelog alone
        if (not isinstance(snapshot, dict) or snapshot.get("format") != self._FORMAT
                or time.time() - snapshot["saved"] > self.MAX_AGE_S):
            return None
        for name in stores.NAMES:
            if not set(owned(name)) <= set(snapshot["owned"].get(name, ())):
                return None  # a partition this worker did not own then: its state is not here
        stores.clear()
        for name, by_partition in snapshot["data"].items():
            if name in stores.stores:
                target = stores.stores[name]._data
                for partition in owned(name):
                    target.update(by_partition.get(partition, {}))
        return snapshot["offsets"]
