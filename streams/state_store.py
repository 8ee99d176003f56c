"""The processor's state: the mappings the cross-row rules keep, with a changelog and a local store.

What a batch changes goes to the compacted topic `qoima.processor-state` in the batch's own
Kafka transaction (streams/processor.py), beside the clean records and the offsets it consumed:
a crash loses either all of a batch or none of it, state included. A worker reads the topic
back whenever it is given partitions, keeping the keys of the partitions it now owns
(`restore`): every key starts with its partition, `<partition>|` (streams/cross_row).

Keys and values hold digests and row-key digests (streams/cross_row), never a clear value;
they are JSON on the changelog.

A worker keeps its stores on local disk too (`StateBase`: LMDB, a memory-mapped B+tree, in
`<data>/processor/worker-<n>.lmdb`), with the changelog offsets they reflect, written in one
LMDB transaction. Memory holds only what changed since the last write (each store's overlay,
deletions included); a read of any other key goes to the base, about 1.6 µs. A restarted worker
opens the base and reads the changelog on from its offsets: it consumes again within seconds
whatever the state's size, where loading the whole state into memory took 25 s for ten million
keys, and memory is bounded by the changes of a minute or two, not by the rows ever seen (about
7 keys per persons row; docs/benchmarks.md). `pending` and `access` (rows waiting out a grace
period, open access buckets) are small and read whole every batch: they stay wholly in memory
and are written whole with each base write.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Container, Iterable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import lmdb
import orjson

log = logging.getLogger("qoima.state")

_MISSING = object()
_DELETED = object()     # in an overlay: deleted since the base was written
_SEPARATOR = "\x1f"  # store name, then key; no state key holds a unit separator


class ChangelogStore(MutableMapping):
    """One named mapping; remembers the keys changed since the last `changes()`.

    Without a base (`attach`) every key is in memory. With one, memory holds the keys changed
    since the base was last written, deletions as a marker, and every other key is read from
    the base."""

    def __init__(self, name: str, data: dict | None = None) -> None:
        self.name = name
        self._data: dict = {} if data is None else data
        self._dirty: set = set()
        self._touched: set = set()    # changed since the base write under way began (StateBase.save)
        self.attach(None)

    def attach(self, read: Callable[[bytes], bytes | None] | None,
               base_keys: Callable[[str], Iterable[str]] | None = None, held: int = 0) -> None:
        """Read keys not in memory with `read` (the base's bytes of a key, or None), find them
        with `base_keys` (the base's keys with a prefix); the base holds `held` keys."""
        self._read, self._base_keys, self._held = read, base_keys, held

    def __getitem__(self, key: Any) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def get(self, key: Any, default: Any = None) -> Any:  # the hot path: no MutableMapping detour
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            if self._read is None:
                return default
            raw = self._read(key.encode())
            return default if raw is None else orjson.loads(raw)
        return default if value is _DELETED else value

    def __contains__(self, key: object) -> bool:
        value = self._data.get(key, _MISSING)
        if value is _MISSING:
            return self._read is not None and self._read(key.encode()) is not None  # type: ignore[union-attr]
        return value is not _DELETED

    def __setitem__(self, key: Any, value: Any) -> None:
        self._dirty.add(key)
        self._touched.add(key)
        self._data[key] = value

    def __delitem__(self, key: Any) -> None:
        if key not in self:
            raise KeyError(key)
        self._dirty.add(key)
        self._touched.add(key)
        self._remove(key)

    def _remove(self, key: Any) -> None:
        """Gone from memory; with a base, a marker hides the base's value until it is written."""
        if self._read is None:
            self._data.pop(key, None)
        else:
            self._data[key] = _DELETED

    def keys_with_prefix(self, prefix: str) -> list[str]:
        """The keys starting with `prefix` (a partition and a table: a TRUNCATE forgets them)."""
        found = [key for key, value in self._data.items() if key.startswith(prefix) and value is not _DELETED]
        if self._base_keys is not None:
            found += [key for key in self._base_keys(prefix) if key not in self._data]
        return found

    def __iter__(self) -> Iterator:
        return iter(self._data) if self._read is None else iter(self.keys_with_prefix(""))

    # Views of the dict itself when every key is in memory: MutableMapping's generic ones call
    # __getitem__ per key. `pending` and `access` are read whole every batch (streams/cross_row).
    def keys(self):
        return self._data.keys() if self._read is None else list(self)

    def items(self):
        return self._data.items() if self._read is None else [(key, self[key]) for key in self]

    def values(self):
        return self._data.values() if self._read is None else [self[key] for key in self]

    def __len__(self) -> int:
        return len(self._data) if self._read is None else len(self.keys_with_prefix(""))

    @property
    def held(self) -> int:
        """Keys held, cheaply: for a store on disk the base's entries and what memory adds (a
        key changed since the base was written counts twice)."""
        return len(self._data) + self._held

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """(changelog key, JSON value or None for a deletion) of every key changed since last time."""
        records = []
        for key in self._dirty:
            value = self.get(key, _MISSING)    # from the base when written there since
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
    # A few keys per row ever seen: read from the base (StateBase) when not changed lately.
    ON_DISK = ("owners", "values", "references")

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
            store._touched.clear()
            store.attach(None)

    def held(self) -> int:
        """Keys held (approximately, with a base: `ChangelogStore.held`)."""
        return sum(store.held for store in self.stores.values())

    def restore(self, records: Iterable[tuple[bytes, bytes | None]],
                partitions: Callable[[str], Container[int]] | None = None, clear: bool = True) -> int:
        """Load changelog records in order (the last one of a key wins), keeping only keys of
        the partitions `partitions(store name)` gives (all without it); the keys held.
        `clear`: start empty (False: on top of what the base holds)."""
        if clear:
            self.clear()
        owned = {name: partitions(name) for name in self.NAMES} if partitions else None
        for name, inner, value in _owned_records(records, owned):
            store = self.stores[name]
            if value is None:
                store._remove(inner)
            else:
                store._data[inner] = orjson.loads(value)
        return self.held()


def _owned_records(records: Iterable[tuple[bytes, bytes | None]],
                   owned: dict[str, Container[int]] | None) -> Iterator[tuple[str, str, bytes | None]]:
    """(store, key, value) of the changelog records of stores this version keeps, of the owned
    partitions (all without `owned`)."""
    for key, value in records:
        name, _, inner = key.decode().partition(_SEPARATOR)
        if name not in StateStores.NAMES:
            continue  # a store this version does not keep
        if owned is not None and not _owned(inner, owned[name]):
            continue  # another worker's partition (or a key of a version before partitions)
        yield name, inner, value


def _partition(key: str) -> int | None:
    """The partition a state key belongs to (its `<partition>|` prefix); None for a key
    written before keys had one."""
    partition = key.split("|", 1)[0]
    return int(partition) if partition.isdigit() else None


def _owned(key: str, partitions: Container[int]) -> bool:
    return _partition(key) in partitions


_FENCED = 3   # a writer's exit code: another writer wrote since its worker last read the base


def _die_with_the_parent() -> None:
    """A writer whose worker is gone (killed, crashed) goes too: its worker's successor writes."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass   # not Linux: the stamp check in `_write` still keeps an older state from landing


def _yield_the_cpu() -> None:
    """The base writer runs only on CPU time nobody else wants: a minute of changes at full
    speed is a few seconds of its CPU, which at normal priority came out of the processor's and
    the warehouse's share on a two-core machine (docs/benchmarks.md)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux: the lowest nice level instead
        os.nice(19)


class StateBase:
    """A worker's stores on local disk (LMDB), with the changelog offsets they reflect.

    Written between batches (`save`), so it holds exactly the committed state of the partitions
    the worker owned then, up to those offsets (its own writes are all below them, and no other
    worker writes its partitions' keys). Used on a restart only when it covers every partition
    the worker owns now and is younger than `MAX_AGE_S`: the changelog keeps a deletion
    (tombstone) for `delete.retention.ms`, 24 h by default, and an older base could miss one.
    Otherwise it is emptied and filled from the changelog (`rebuild`).

    Writes are LMDB transactions, synced to disk: all or nothing, a writer killed half-way or a
    machine that loses power leaves the previous state and offsets. The syncing costs the
    writer child, at idle priority, not the worker's loop. A writer commits only on top of the
    base its worker last saw (the meta's `saved` stamp): a writer its worker outlived cannot
    put an older state over a newer worker's. A store that cannot be opened or read is
    deleted and rebuilt from the changelog."""

    MAX_AGE_S = 12 * 3600
    _FORMAT = 3
    _META = b"meta"
    _MAP_SIZE = 1 << 40       # address space only: the file grows with what it holds
    _REBUILD_TXN_RECORDS = 50_000

    def __init__(self, path: Path) -> None:
        self.path = path
        self._env: Any = None
        self._dbs: dict[str, Any] = {}
        self._txn: Any = None       # the read transaction stores read through
        self._writer: int | None = None    # the child writing the last save
        self._written: dict[str, dict] = {}    # what that child writes, to drop from memory once it has
        self._seen: float | None = None    # the `saved` stamp of the base the stores read

    # --- the environment ---------------------------------------------------------------------------

    def _open(self) -> Any:
        env = lmdb.open(str(self.path), map_size=self._MAP_SIZE, max_dbs=len(StateStores.NAMES) + 1,
                        readahead=False)
        try:
            # py-lmdb keeps database handles opened in a write transaction only.
            with env.begin(write=True) as txn:
                dbs = {name: env.open_db(name.encode(), txn=txn) for name in (*StateStores.NAMES, "meta")}
        except BaseException:
            env.close()
            raise
        return env, dbs

    def _ensure_open(self) -> None:
        if self._env is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._env, self._dbs = self._open()
            self._env.reader_check()   # slots of readers that died (a killed worker) pin old pages

    def _begin_read(self) -> None:
        """A fresh read transaction, which sees everything committed so far (an open one keeps
        seeing the base as it was when it began)."""
        if self._txn is not None:
            self._txn.abort()
        self._txn = self._env.begin(buffers=False)

    def _get(self, db: Any) -> Callable[[bytes], bytes | None]:
        return lambda key: self._txn.get(key, db=db)

    def _meta(self) -> dict | None:
        with self._env.begin(db=self._dbs["meta"]) as txn:
            raw = txn.get(self._META)
        try:
            meta = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            return None
        return meta if isinstance(meta, dict) and meta.get("format") == self._FORMAT else None

    def close(self) -> None:
        self._stop_writer()
        self._close_env()

    def _close_env(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        if self._env is not None:
            self._env.close()
            self._env, self._dbs = None, {}

    # --- a restart -----------------------------------------------------------------------------------

    def load(self, stores: StateStores, owned: Callable[[str], Container[int]]) -> dict[int, int] | None:
        """Attach `stores` (cleared first) to the base as far as `owned` goes: the changelog
        offsets to read on from. None, and `stores` untouched, when the base does not cover
        the partitions or is too old (then `rebuild`)."""
        self._stop_writer()
        try:
            self._ensure_open()
            meta = self._meta()
        except lmdb.Error as exc:
            log.warning("local state store %s unreadable (%s): deleted, it is rebuilt from the changelog",
                        self.path, type(exc).__name__)
            self._close_env()
            shutil.rmtree(self.path, ignore_errors=True)
            return None
        if meta is None or time.time() - meta["saved"] > self.MAX_AGE_S:
            return None
        for name in stores.NAMES:
            if not set(owned(name)) <= set(meta["owned"].get(name, ())):
                return None  # a partition this worker did not own then: its state is not here
        self._attach(stores, owned)
        return {int(p): offset for p, offset in meta["offsets"].items()}

    def _attach(self, stores: StateStores, owned: Callable[[str], Container[int]]) -> None:
        stores.clear()
        self._bind(stores)
        for name in StateStores.NAMES:
            if name in StateStores.ON_DISK:
                continue
            # Small, and read whole every batch: into memory.
            store, partitions = stores[name], owned(name)
            for key, value in self._txn.cursor(db=self._dbs[name]):
                inner = key.decode()
                if _owned(inner, partitions):
                    store._data[inner] = orjson.loads(value)

    def _bind(self, stores: StateStores) -> None:
        """The stores on disk read through a fresh read transaction: they see every write so far."""
        self._begin_read()
        raw = self._txn.get(self._META, db=self._dbs["meta"])
        self._seen = orjson.loads(raw)["saved"] if raw else None
        for name in StateStores.ON_DISK:
            db = self._dbs[name]
            stores[name].attach(self._get(db), lambda prefix, _db=db: self._keys(_db, prefix),
                                self._txn.stat(db)["entries"])

    def _keys(self, db: Any, prefix: str) -> Iterator[str]:
        cursor = self._txn.cursor(db=db)
        start = prefix.encode()
        if not cursor.set_range(start):
            return
        for key in cursor.iternext(keys=True, values=False):
            if not key.startswith(start):
                return
            yield key.decode()

    def reset(self) -> None:
        """Empty the base, offsets included, before a rebuild from the changelog."""
        self._stop_writer()
        self._ensure_open()
        with self._env.begin(write=True) as txn:
            for db in self._dbs.values():
                txn.drop(db, delete=False)

    def rebuild(self, records: Iterable[tuple[bytes, bytes | None]], owned: Callable[[str], Container[int]]) -> None:
        """Write changelog records (in order: the last of a key wins) of the owned partitions
        straight into the base, after `reset`: the values are the changelog's own bytes."""
        chosen = {name: owned(name) for name in StateStores.NAMES}
        pending = list(_owned_records(records, chosen))
        for start in range(0, len(pending), self._REBUILD_TXN_RECORDS):
            with self._env.begin(write=True) as txn:
                for name, inner, value in pending[start:start + self._REBUILD_TXN_RECORDS]:
                    if value is None:
                        txn.delete(inner.encode(), db=self._dbs[name])
                    else:
                        txn.put(inner.encode(), value, db=self._dbs[name])

    def rebuilt(self, stores: StateStores, owned: Callable[[str], Container[int]], offsets: dict[int, int]) -> None:
        """The rebuild read the changelog to `offsets`: record them and attach `stores`."""
        with self._env.begin(write=True) as txn:
            txn.put(self._META, self._meta_value(owned, offsets, time.time()), db=self._dbs["meta"])
        self._attach(stores, owned)

    @classmethod
    def _meta_value(cls, owned: Callable[[str], Container[int]], offsets: dict[int, int], saved: float) -> bytes:
        return orjson.dumps({"format": cls._FORMAT, "saved": saved, "offsets": {str(p): o for p, o in offsets.items()},
                             "owned": {name: sorted(owned(name)) for name in StateStores.NAMES}})

    # --- saving -------------------------------------------------------------------------------------

    def save(self, stores: StateStores, owned: Callable[[str], Container[int]], offsets: dict[int, int],
             background: bool = False) -> bool:
        """Write what changed since the last write, and `offsets`; `background`: in a forked
        child, which sees the stores as they are now (copy-on-write) while this process goes on
        (the way Redis saves), at the lowest CPU priority. Once it has written, what it wrote
        and nothing changed since leaves memory. False when a background save is skipped
        because the previous one is still being written."""
        saved = time.time()   # now, not when an idle-priority writer gets round to it
        if self._writer is not None:
            # Still writing the previous one: a background save skips its turn rather than make
            # the worker wait; a foreground one (the worker stopping) waits for it.
            done, status = os.waitpid(self._writer, 0 if not background else os.WNOHANG)
            if not done:
                return False
            self._writer = None
            code = os.waitstatus_to_exitcode(status)
            if code == 0:
                self._forget_written(stores)
            else:
                # Nothing was committed; memory still holds it all and the next turn writes it.
                log.warning("local state write failed (%s); memory keeps the changes, next turn writes them",
                            "another writer wrote since" if code == _FENCED else f"exit code {code}")
                self._bind(stores)   # after a fence: on top of what the other writer left
            self._written = {}
        self._ensure_open()
        on_disk = {name: dict(stores[name]._data) for name in StateStores.ON_DISK}
        for name in StateStores.ON_DISK:
            stores[name]._touched.clear()
        meta = self._meta_value(owned, offsets, saved)
        seen = self._seen
        if background and hasattr(os, "fork"):
            # One environment per process (LMDB's locks belong to the process): the child opens
            # its own, so this one is closed across the fork and opened again after it.
            # The child waits for the worker to have opened its own again: opening takes LMDB's one
            # write transaction, which the worker must not wait for behind an idle-priority writer.
            self._close_env()
            reopened, go = os.pipe()
            try:
                pid = os.fork()
            except OSError as exc:   # no memory for a child, say: memory keeps the changes
                os.close(reopened)
                os.close(go)
                self._ensure_open()
                self._bind(stores)
                log.warning("local state write not started (%s); next turn", exc.strerror or type(exc).__name__)
                return False
            if pid:
                os.close(reopened)
                self._writer, self._written = pid, on_disk
                try:
                    self._ensure_open()
                    self._bind(stores)
                finally:
                    os.close(go)   # the child reads end-of-file: its turn
                return True
            try:  # the child: no Kafka client, no logging; only the base, through an environment of its own
                _die_with_the_parent()
                os.close(go)
                os.read(reopened, 1)
                _yield_the_cpu()
                env, dbs = self._open()
                os._exit(0 if self._write(env, dbs, stores, owned, meta, seen) else _FENCED)
            except BaseException:
                os._exit(1)
        if not self._write(self._env, self._dbs, stores, owned, meta, seen):
            # Another writer (a child this worker outlived) wrote first: on top of what it left.
            self._bind(stores)
            self._write(self._env, self._dbs, stores, owned, meta, self._seen)
        self._written = on_disk
        self._forget_written(stores)
        self._written = {}
        return True

    @staticmethod
    def _write(env: Any, dbs: dict[str, Any], stores: StateStores, owned: Callable[[str], Container[int]],
               meta: bytes, seen: float | None) -> bool:
        """Write the memory's changes and `meta` on top of the base whose `saved` stamp is
        `seen`; False, writing nothing, when another writer has written since."""
        with env.begin(write=True) as txn:
            raw = txn.get(StateBase._META, db=dbs["meta"])
            if (orjson.loads(raw)["saved"] if raw else None) != seen:
                txn.abort()
                return False
            for name in StateStores.ON_DISK:
                db = dbs[name]
                for key, value in stores[name]._data.items():
                    if value is _DELETED:
                        txn.delete(key.encode(), db=db)
                    else:
                        txn.put(key.encode(), orjson.dumps(value), db=db)
            for name in StateStores.NAMES:
                if name in StateStores.ON_DISK:
                    continue
                db, partitions = dbs[name], owned(name)
                txn.drop(db, delete=False)
                for key, value in stores[name]._data.items():
                    if _owned(key, partitions):
                        txn.put(key.encode(), orjson.dumps(value), db=db)
            txn.put(StateBase._META, meta, db=dbs["meta"])
        return True

    def _forget_written(self, stores: StateStores) -> None:
        """The base now holds what was written: read it from there, and drop from memory each
        key written that has not changed since."""
        self._bind(stores)
        for name, written in self._written.items():
            data, touched = stores[name]._data, stores[name]._touched
            for key in written:
                if key not in touched:
                    data.pop(key, None)

    def _stop_writer(self) -> None:
        """A restore starts from what the base holds: a writer still at work is stopped (its
        transaction is then not committed) and what it was writing is read from the changelog."""
        if self._writer is not None:
            try:
                os.kill(self._writer, signal.SIGKILL)
                os.waitpid(self._writer, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            self._writer, self._written = None, {}
