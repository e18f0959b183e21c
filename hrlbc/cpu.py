"""Torch CPU threads that fit the cores other processes leave free.

Torch's OpenMP threads wait for each other at the end of every operation: when another process takes one
of the cores, the thread that lost it makes the others wait for a scheduler slice, and a 2-thread training
loop on a 2-core CPU fell to ~0.28 of its idle speed beside one busy process (1 thread kept ~1.0 of its
own speed there; ``benchmarks/contention.py``). :class:`ThreadFit` watches how much CPU the *other*
processes use and sets torch's thread count to the cores they leave free, at most the cores there are.
"""

from __future__ import annotations

import os
import time

import torch

CHECK_EVERY_S = 2.0  # how often the load of other processes is read (a read is a few microseconds)


def _busy_jiffies() -> float | None:
    """Non-idle CPU time of the whole machine, in seconds (Linux ``/proc/stat``); None elsewhere."""
    try:
        with open("/proc/stat") as f:
            fields = [float(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class ThreadFit:
    """Call :meth:`check` often (every batch); every ``CHECK_EVERY_S`` it sets ``torch.set_num_threads`` to
    ``cores - round(cores other processes used since the last read)``, at least 1, at most ``limit``.

    ``limit`` 0 means every core. Where the machine's load cannot be read (not Linux), it keeps ``limit``.
    Own CPU time comes from ``os.times()`` (this process's threads), so run data loading in this process
    (``num_workers=0``, the CPU default) or count the loader workers as other processes.
    """

    def __init__(self, limit: int = 0) -> None:
        self.cores = os.cpu_count() or 1
        self.limit = min(limit, self.cores) if limit > 0 else self.cores
        self.threads = self.limit
        torch.set_num_threads(self.threads)
        self._last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        busy = _busy_jiffies()
        if busy is None:
            return None
        own = os.times()
        return time.monotonic(), busy, own.user + own.system

    def check(self) -> int:
        """The thread count now in use (re-chosen when ``CHECK_EVERY_S`` has passed)."""
        if self._last is None or time.monotonic() - self._last[0] < CHECK_EVERY_S:
            return self.threads
        now = self._read()
        wall, busy, own = (a - b for a, b in zip(now, self._last))
        self._last = now
        others = max(0.0, busy - own) / max(wall, 1e-6)  # cores the other processes kept busy
        threads = max(1, min(self.limit, self.cores - round(others)))
        if threads != self.threads:
            torch.set_num_threads(threads)
            self.threads = threads
        return threads
