"""The processor's state: the mappings the stateful quality rules keep, with a changelog and an undo log.

Each store is a dict in the worker's memory. What a batch changes goes to the compacted topic
`qoima.processor-state` in the batch's own Kafka transaction (streams/processor.py), beside
the clean records and the raw offsets it consumed: a crash loses either all of a batch or
none of it, state included. A restarted worker reads the topic back to its end before it
consumes again (`restore`).

A row's changes can be undone (`savepoint`, `rollback`): the router keeps state only for rows
it loads, so a rejected or quarantined row does not own an identifier it never brought in.

Keys and values hold digests and row-key digests (streams/stateful_rules.py), never a clear
value; they are JSON on the changelog.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableMapping
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
        self._undo: dict | None = None   # key -> (value before the current row or _MISSING, was it dirty)

    def _touch(self, key: Any) -> None:
        if self._undo is not None and key not in self._undo:
            self._undo[key] = (self._data.get(key, _MISSING), key in self._dirty)
        self._dirty.add(key)

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def get(self, key: Any, default: Any = None) -> Any:  # the hot path: no MutableMapping detour
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setitem__(self, key: Any, value: Any) -> None:
        self._touch(key)
        self._data[key] = value

    def __delitem__(self, key: Any) -> None:
        self._touch(key)
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

    def savepoint(self) -> None:
        self._undo = {}

    def release(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        for key, (value, was_dirty) in (self._undo or {}).items():
            if value is _MISSING:
                self._data.pop(key, None)
            else:
                self._data[key] = value
            if not was_dirty:
                self._dirty.discard(key)  # back as the changelog already has it
        self._undo = None

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
    """The four stores of streams/stateful_rules.py, changed and logged together."""

    NAMES = ("values", "owners", "references", "pending")

    def __init__(self, data: dict[str, dict] | None = None) -> None:
        self.stores = {name: ChangelogStore(name, (data or {}).get(name)) for name in self.NAMES}

    def mappings(self) -> dict[str, MutableMapping]:
        return dict(self.stores)

    def savepoint(self) -> None:
        for store in self.stores.values():
            store.savepoint()

    def release(self) -> None:
        for store in self.stores.values():
            store.release()

    def rollback(self) -> None:
        for store in self.stores.values():
            store.rollback()

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        return [record for store in self.stores.values() for record in store.changes()]

    def clear(self) -> None:
        for store in self.stores.values():
            store._data.clear()
            store._dirty.clear()

    def restore(self, records: Iterable[tuple[bytes, bytes | None]]) -> int:
        """Load changelog records in order (the last one of a key wins); the number of keys held."""
        self.clear()
        for key, value in records:
            name, _, inner = key.decode().partition(_SEPARATOR)
            store = self.stores.get(name)
            if store is None:
                continue  # a store this version does not keep
            if value is None:
                store._data.pop(inner, None)
            else:
                store._data[inner] = json.loads(value)
        return sum(len(store) for store in self.stores.values())
