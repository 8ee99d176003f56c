"""The processor's state: the mappings the cross-row rules keep, with a changelog.

Each store is a dict in the worker's memory. What a batch changes goes to the compacted topic
`qoima.processor-state` in the batch's own Kafka transaction (streams/processor.py), beside
the clean records and the offsets it consumed: a crash loses either all of a batch or none of
it, state included. A worker reads the topic back to its end whenever it is given partitions,
keeping the keys of the partitions it now owns (`restore`): every key starts with its
partition, `<partition>|` (streams/cross_row).

Keys and values hold digests and row-key digests (streams/cross_row), never a clear value;
they are JSON on the changelog.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Container, Iterable, Iterator, MutableMapping
from typing import Any

_MISSING = object()
_SEPARATOR = "\x1f"  # store name, then key; no state key holds a unit separator
_encode = json.JSONEncoder(separators=(",", ":")).encode


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
                            None if value is _MISSING else _encode(value).encode()))
        self._dirty.clear()
        return records


class StateStores:
    """The stores of streams/cross_row: `owners` (step 1, by work partition) and `values`,
    `references`, `pending` (step 2, by rules partition), logged together."""

    NAMES = ("owners", "values", "references", "pending")
    BY_WORK_PARTITION = ("owners",)

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
                partitions: Callable[[str], Container[int]] | None = None) -> int:
        """Load changelog records in order (the last one of a key wins), keeping only keys of
        the partitions `partitions(store name)` gives (all without it); the keys held."""
        self.clear()
        owned = {name: partitions(name) for name in self.NAMES} if partitions else None
        for key, value in records:
            name, _, inner = key.decode().partition(_SEPARATOR)
            store = self.stores.get(name)
            if store is None:
                continue  # a store this version does not keep
            if owned is not None:
                partition = inner.split("|", 1)[0]
                if not partition.isdigit() or int(partition) not in owned[name]:
                    continue  # another worker's partition (or a key of a version before partitions)
            if value is None:
                store._data.pop(inner, None)
            else:
                store._data[inner] = json.loads(value)
        return sum(len(store) for store in self.stores.values())
