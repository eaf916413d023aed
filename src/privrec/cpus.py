"""CPU cores and threads: usable cores, busy cores, a training run's default thread count.

The default of ``TrainConfig.num_threads`` (None) is :func:`auto_threads`. torch's own default
is one intra-op thread per physical core, whatever else runs on the machine. When other processes keep cores busy, OpenMP threads wait on each other at every parallel
region and a small model's epoch can become many times slower than with a single thread (on
two cores with two busy processes, BPR-MF ran 2.9× slower with torch's default than with one
thread: ``benchmarks/threads.py``). :func:`auto_threads` therefore takes at most torch's
current thread count (its default, or the budget a sweep worker was given) and no more than
the usable cores that are not busy with other runnable tasks when training starts.

Only Linux exposes the instantaneous count of runnable tasks (``/proc/loadavg``); elsewhere
the one-minute load average stands in. The choice is made once, at the start of a run.
"""

from __future__ import annotations

import math
import os
import statistics
import time


def usable_cpus() -> int:
    """CPU cores this process may run on: its affinity set (where the platform has one),
    further limited by a cgroup v2 CPU quota (``/sys/fs/cgroup/cpu.max``) when one is set."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_quota(path: str = "/sys/fs/cgroup/cpu.max") -> float | None:
    """The cgroup's CPU quota in cores (``"max"`` or no file: None)."""
    try:
        with open(path) as f:
            limit, period = f.read().split()[:2]
    except (OSError, ValueError):
        return None
    if limit == "max":
        return None
    try:
        return int(limit) / int(period)
    except (ValueError, ZeroDivisionError):
        return None


def busy_cpus(samples: int = 5, interval: float = 0.02, path: str = "/proc/loadavg") -> float:
    """How many cores other tasks keep busy now: the median over ``samples`` readings of the
    running-task count in ``/proc/loadavg`` (minus this process); without that file, the
    one-minute load average (0 where the platform has none)."""
    counts: list[int] = []
    for i in range(samples):
        try:
            with open(path) as f:
                running = int(f.read().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            counts = []
            break
        counts.append(max(0, running - 1))
        if i + 1 < samples:
            time.sleep(interval)
    if counts:
        return float(statistics.median(counts))
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):  # pragma: no cover - platform without a load average
        return 0.0


def choose_threads(ceiling: int, cpus: int, busy: float) -> int:
    """At most ``ceiling`` threads and no more than the ``cpus`` minus the ``busy`` ones
    (rounded down), at least one. Pure: :func:`auto_threads` feeds it the machine's state."""
    free = math.floor(cpus - busy + 1e-9)
    return max(1, min(int(ceiling), free))


def auto_threads() -> int:
    """The thread count of a run that was not given one (see the module docstring)."""
    import torch

    return choose_threads(torch.get_num_threads(), usable_cpus(), busy_cpus())
