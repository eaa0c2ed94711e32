"""How many CPU threads PyTorch uses, chosen so that a busy machine does not stall training.

PyTorch's intra-op threads meet at the end of every parallel region: a thread whose core
another process took holds up all the others, so a 2-thread training step next to one busy
process ran 3x slower on 2 cores (BENCHMARKS.md, "A busy machine"), where one thread would
have run at full speed. ``auto`` (the command's default) therefore uses as many threads as
there are cores that other processes leave idle, measured from /proc/stat when a command
starts and, during training, again every few seconds (:class:`ThreadGovernor`).

Thread counts change the order of floating-point sums, so runs are bit-for-bit reproducible
(and resume bit-identically) for a fixed ``--threads N``; ``auto`` trades that for speed.
"""

from __future__ import annotations

import os
import sys
import time

from .errors import WeightgenError

ENV = "WEIGHTGEN_THREADS"


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def _own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def idle_cores(since: tuple[float, float, float] | None = None, window: float = 0.25) -> float:
    """Cores that other processes left idle: over the time since ``since`` (a
    :func:`cpu_snapshot`), or over a fresh ``window`` of seconds. This process's own use
    counts as idle."""
    if since is None:
        since = cpu_snapshot()
        time.sleep(window)
    now = cpu_snapshot()
    if since[0] < 0 or now[0] < 0 or now[2] <= since[2]:
        return float(usable_cores())
    wall = now[2] - since[2]
    others = (now[0] - since[0]) - (now[1] - since[1])  # machine busy minus our own
    return max(0.0, usable_cores() - max(others, 0.0) / wall)


def cpu_snapshot() -> tuple[float, float, float]:
    """(machine busy CPU s, own CPU s, wall s) now; busy is -1 where /proc/stat is missing."""
    machine = _cpu_times()
    return (machine[0] if machine else -1.0, _own_cpu_seconds(), time.monotonic())


def auto_threads(since: tuple[float, float, float] | None = None) -> int:
    """The thread count for the idle cores (at least 1)."""
    return max(1, min(usable_cores(), int(idle_cores(since) + 0.5)))


def parse_threads(value: str | int | None) -> int | None:
    """``--threads`` / ``$WEIGHTGEN_THREADS``: a whole number >= 1, "all" (every usable core)
    or "auto" (None: chosen from the idle cores, the default)."""
    if value is None:
        value = os.environ.get(ENV) or "auto"
    if str(value).strip().lower() == "auto":
        return None
    if str(value).strip().lower() == "all":
        return usable_cores()
    try:
        threads = int(value)
    except ValueError:
        raise WeightgenError(
            f"threads must be a whole number, 'all' or 'auto', got {value!r}"
        ) from None
    if threads < 1:
        raise WeightgenError(f"threads must be >= 1, got {threads}")
    cores = usable_cores()
    if threads > cores:  # more threads than cores only slow down (and 10,000 crash libtorch)
        if threads not in _capped:
            _capped.add(threads)
            print(
                f"weightgen: notice: {threads} threads asked for, this process may use "
                f"{cores} cores; using {cores}",
                file=sys.stderr,
            )
        return cores
    return threads


_capped: set[int] = set()  # counts already reported as capped (one notice each)


def apply_threads(value: str | int | None) -> int:
    """Set PyTorch's intra-op thread count from ``value`` (see :func:`parse_threads`; "auto"
    measures the idle cores now); return the count in force."""
    import torch

    threads = parse_threads(value)
    torch.set_num_threads(auto_threads() if threads is None else threads)
    return torch.get_num_threads()


class ThreadGovernor:
    """For ``auto``: every ``interval`` seconds, sets the thread count to the cores other
    processes left idle over that interval. A fixed count is left alone."""

    def __init__(self, value: str | int | None, interval: float = 10.0):
        self.auto = parse_threads(value) is None
        self.threads = apply_threads(value)
        self.interval = interval
        self._since = cpu_snapshot()

    def update(self) -> int | None:
        """Call often (each step); returns the new thread count when it changed."""
        if not self.auto or time.monotonic() - self._since[2] < self.interval:
            return None
        import torch

        wanted = auto_threads(self._since)
        self._since = cpu_snapshot()
        if wanted == self.threads:
            return None
        torch.set_num_threads(wanted)
        self.threads = wanted
        return wanted
