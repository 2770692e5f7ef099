"""CPU seconds per process from /proc, for benchmarks that must say where a box's cores went.

`snapshot(groups)` reads utime+stime of each named group of pids; the difference of two
snapshots over a window (`used`) is the CPU each group used in it."""
from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of one process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st is not None:
                kids.setdefault(st[0], []).append(int(d))
    return kids


def children(pid: int) -> list[int]:
    """Every live descendant of `pid`."""
    kids, out, todo = _children(), [], [pid]
    while todo:
        more = kids.get(todo.pop(), [])
        out += more
        todo += more
    return out


def snapshot(pids: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    """name -> {pid: CPU seconds} for each named group of pids."""
    out: dict[str, dict[int, float]] = {}
    for name, group in pids.items():
        seen: dict[int, float] = {}
        for p in group:
            st = _stat(p)
            if st is not None:
                seen[p] = st[1]
        out[name] = seen
    return out


def used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each name used between two snapshots (processes that ended count what was seen)."""
    res: dict[str, float] = {}
    for name, a in after.items():
        b = before.get(name, {})
        res[name] = round(sum(v - b.get(p, 0.0) for p, v in a.items()), 2)
    return res
