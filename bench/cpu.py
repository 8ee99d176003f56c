"""CPU time of each component of the local stack over a stretch of a benchmark, from /proc.

A component is the process `qoima up` recorded in var/run/<name>.pid and every process under it
(PostgreSQL's backends, the processor's state writer, ClickHouse behind its wrapper); the
processor's workers (`processor`, `processor-1`, ...) count as one. Its time is user + system of
each live member plus what its members' reaped children used (Linux adds that to the parent's
`cutime`/`cstime`), so a child that came and went inside the stretch counts.

    before = cpu_by_component(stack)
    ...
    used = spent(before, cpu_by_component(stack))   # component -> CPU seconds
"""
from __future__ import annotations

import os
from pathlib import Path

from infra.stack import ORDER

_TICK = os.sysconf("SC_CLK_TCK")
_WORKERS = [f"processor-{n}" for n in range(1, 8)]   # QOIMA_PROCESSOR_WORKERS is at most 8

# process name (as in var/run) -> ((pid, start time), CPU seconds)
Reading = dict[str, tuple[tuple[int, int], float]]


def processes() -> dict[int, tuple[int, int, int]]:
    """pid -> (parent pid, start time, CPU ticks of itself and its reaped children)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command: state, ppid, ... utime (12th), stime, cutime, cstime, ... starttime (20th).
        found[int(entry.name)] = (int(fields[1]), int(fields[19]), sum(int(v) for v in fields[11:15]))
    return found


def children_of(table: dict[int, tuple[int, int, int]]) -> dict[int, list[int]]:
    """parent pid -> its children's pids, in `table` (from `processes`)."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in table.items():
        children.setdefault(parent, []).append(pid)
    return children


def tree(root: int, children: dict[int, list[int]]) -> list[int]:
    """`root` and every process under it."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_by_component(stack) -> Reading:
    """CPU seconds used so far by each running process `qoima up` started in `stack` (an
    infra.stack.LocalStack) and everything under it, with the identity of that process (a
    restart changes it)."""
    table = processes()
    children = children_of(table)
    found: Reading = {}
    for name in (*ORDER, *_WORKERS):
        root = stack.managed(name).pid()
        if root is None or root not in table:
            continue
        ticks = sum(table[pid][2] for pid in tree(root, children))
        found[name] = ((root, table[root][1]), ticks / _TICK)
    return found


def spent(before: Reading, after: Reading) -> dict[str, float]:
    """CPU seconds each component used between two readings, most first, the processor's
    workers as one. A process that is not the same one (restarted in between) counts from its
    restart; one that stopped in between is left out."""
    used: dict[str, float] = {}
    for name, (identity, seconds) in after.items():
        earlier = before.get(name)
        component = "processor" if name in _WORKERS else name
        used[component] = used.get(component, 0.0) + (
            seconds - earlier[1] if earlier is not None and earlier[0] == identity else seconds)
    return dict(sorted(((name, seconds) for name, seconds in used.items() if seconds > 0), key=lambda item: -item[1]))


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores; idle, I/O wait and time stolen
    by a hypervisor excluded)."""
    with open("/proc/stat") as stat:
        user, nice, system, idle, iowait, irq, softirq, _steal = (int(v) for v in stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq) / _TICK
