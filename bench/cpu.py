"""CPU time of each component of the local stack over a stretch of a benchmark, from /proc.

A component is the process `qoima up` recorded in var/run/<name>.pid and every process under it
(PostgreSQL's backends, the processor's state writer, ClickHouse behind its wrapper). Its time
is user + system of each live member plus what its members' reaped children used (Linux adds
that to the parent's `cutime`/`cstime`), so a child that came and went inside the stretch counts.

    before = cpu_by_component(stack)
    ...
    used = spent(before, cpu_by_component(stack))   # component -> CPU seconds
"""
from __future__ import annotations

import os
from pathlib import Path

from infra.stack import ORDER

_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, CPU ticks of itself and its reaped children)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        # After the command: state, ppid, ... utime (12th), stime, cutime, cstime.
        found[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    return found


def cpu_by_component(stack) -> dict[str, float]:
    """CPU seconds used so far by each running component of `stack` (an infra.stack.LocalStack)."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in processes.items():
        children.setdefault(parent, []).append(pid)
    used = {}
    for name in ORDER:
        root = stack.managed(name).pid()
        if root is None or root not in processes:
            continue
        ticks, todo = 0, [root]
        while todo:
            pid = todo.pop()
            ticks += processes[pid][1]
            todo.extend(children.get(pid, ()))
        used[name] = ticks / _TICK
    return used


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds each component used between two readings, most first (a component that
    restarted in between counts from its restart)."""
    used = {name: after[name] - before.get(name, 0.0) if after[name] >= before.get(name, 0.0) else after[name]
            for name in after}
    return dict(sorted(((name, seconds) for name, seconds in used.items() if seconds > 0),
                       key=lambda item: -item[1]))


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores; idle and I/O wait excluded)."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:9]]
    return (sum(values) - values[3] - values[4]) / _TICK
