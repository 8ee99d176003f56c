"""The free disk the local stack needs under QOIMA_HOME, checked before `qoima up` starts anything.

Every component keeps its data under QOIMA_HOME/data: Kafka a day of every change and a week of
clean ones, ClickHouse the warehouse, the processor its state store. A disk that fills under
them fails quietly: Kafka takes a log directory it cannot write offline, and with its only one
it stops, so changes wait at the source, the warehouse goes stale and no Qoima process reports
an error (the likely cause of a CI run whose broker vanished mid-run on a disk 95% full, thirteen
tests timing out behind it). Refusing to start on a nearly full disk says so at once, with the fix.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from infra.processes import Progress, StackError
from model.settings import Settings

GIB = 1 << 30


def free_bytes(path: Path) -> int:
    """Free bytes, for an unprivileged process, on the disk `path` is or will be on."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return shutil.disk_usage(existing).free


def ensure_room(settings: Settings, progress: Progress) -> None:
    """Below `QOIMA_MIN_FREE_GB` free on QOIMA_HOME's disk: a new stack (no data yet) is refused
    with StackError; an existing one starts with a warning. Its data is already on that disk,
    and refusing would keep it down after an operator freed what they could; QoimaKafkaDown
    says whether its broker runs."""
    free = free_bytes(settings.home)
    if free >= settings.min_free_gb * GIB:
        progress(f"disk: {free / GIB:.1f} GB free under {settings.home}")
        return
    short = (f"only {free / GIB:.1f} GB is free on the disk of QOIMA_HOME ({settings.home}); the local stack "
             f"needs at least {settings.min_free_gb} GB there (QOIMA_MIN_FREE_GB): Kafka keeps a day of every "
             "change, ClickHouse the warehouse, the processor its state, and a full disk stops Kafka")
    if settings.data_dir.exists():
        progress(f"disk: warning: {short}. Starting the existing stack anyway; free space soon.")
        return
    raise StackError(f"{short}. Free space (`qoima down --wipe` stops a stack and deletes its data), point "
                     "QOIMA_HOME at a larger disk, or lower QOIMA_MIN_FREE_GB.")
