"""Memory of a process and all its descendants, as the kernel accounts it, for e2e tests and
benchmarks.

Two sums over the tree (the server, its converters, the compactor, the resource tracker):

- ``pss``: proportional set size, each shared page split among the processes that map it.
  This is the physical memory the tree takes (what a cgroup limit sees), and the figure the
  memory bounds are stated in;
- ``rss``: resident set size, each process's shared pages counted whole. Every process maps the
  same libarrow, DuckDB and Python (~100 MiB of shared pages each), so this sum counts them once
  per process: an upper bound, reported beside it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

MiB = 1024


@dataclass(frozen=True)
class TreeMemory:
    """MiB summed over a process tree."""

    rss: float
    pss: float


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
            found.extend(kids)
            todo.extend(kids)
    return found


def process_kib(pid: int, keys: tuple[str, ...] = ("Rss", "Pss")) -> dict[str, int]:
    """``keys`` of ``/proc/<pid>/smaps_rollup`` in KiB (empty once the process is gone)."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                name, _, rest = line.partition(":")
                if name in keys:
                    out[name] = int(rest.split()[0])
    except (OSError, ValueError):
        return {}
    return out


def status_kib(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (``VmRSS``, ``VmHWM``), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> TreeMemory:
    rss = pss = 0
    for p in [pid, *descendants(pid)]:
        kib = process_kib(p)
        rss += kib.get("Rss", 0)
        pss += kib.get("Pss", 0)
    return TreeMemory(rss / MiB, pss / MiB)


class PeakSampler:
    """Samples a tree's memory on a thread until ``stop``; keeps the highest sums."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid = pid
        self.every = every
        self.peak = TreeMemory(0.0, 0.0)
        self.main_peak_rss = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            now = tree_memory(self.pid)
            self.peak = TreeMemory(max(self.peak.rss, now.rss), max(self.peak.pss, now.pss))
            self.main_peak_rss = max(self.main_peak_rss, status_kib(self.pid, "VmRSS") / MiB)

    def stop(self) -> TreeMemory:
        self._stop.set()
        self._thread.join()
        return self.peak
