"""Executors: where the runs of a sweep are computed.

The interface is deliberately small so that another backend (e.g. Ray, in its own module
``privrec.experiments.ray_executor``) can be added without touching
:mod:`~privrec.experiments.sweep_runner`:

* construct with ``Executor(workers=None)`` (``None`` = the backend's default);
* use as a context manager (``__exit__`` releases workers and cancels tasks not yet started);
* :meth:`Executor.map` takes a **picklable module-level function** and a sequence of
  **picklable tasks**, submits them all, and yields one :class:`TaskOutcome` per task **in
  completion order** (``outcome.index`` is the task's position in the input);
* an exception raised by ``fn`` never escapes :meth:`~Executor.map`: it becomes an outcome with
  ``error`` set (the message) and ``traceback`` (the formatted traceback), so one failing run
  never stops a sweep; a dead worker fails only the tasks it took with it;
* ``fn`` must be idempotent with respect to what it writes (the sweep's run function writes each
  run directory atomically and returns an existing complete one unchanged), so a backend may
  retry a task;
* each worker calls :func:`configure_worker` with the thread budget ``threads_per_worker``
  (``max(1, cores // workers)``) before its first task.

Register a new backend with :func:`register_executor` (or add a lazy ``"module:Class"`` entry
to :data:`EXECUTORS`), then ``run_sweep(..., executor="ray")`` finds it by name.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from privrec.cpus import usable_cpus
from privrec.errors import ConfigError

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one task.

    Attributes:
        index: the task's position in the sequence given to :meth:`Executor.map`.
        result: ``fn(task)`` when it returned; ``None`` when it raised.
        error: ``"ExceptionType: message"`` when ``fn`` raised (or its worker died), else ``None``.
        traceback: the formatted traceback of that exception, if any.
    """

    index: int
    result: Any = None
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def cpu_count() -> int:
    """Usable CPU cores (:func:`privrec.cpus.usable_cpus`: the affinity set, within
    a cgroup CPU quota)."""
    return usable_cpus()


def configure_worker(threads: int, die_with_parent: bool = False) -> None:
    """Give the current process a budget of ``threads`` compute threads.

    Sets the BLAS/OpenMP environment variables (effective for libraries not yet loaded) and
    torch's intra-op threads. With ``die_with_parent`` (Linux), the process is killed when the
    process that started it dies, so a killed sweep leaves no orphan worker writing results.
    """
    threads = max(1, int(threads))
    for var in _THREAD_ENV:
        os.environ[var] = str(threads)
    if die_with_parent and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes
            import signal

            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
            if os.getppid() == 1:  # the parent died before prctl took effect
                os._exit(1)
    with contextlib.suppress(ImportError):
        import torch

        torch.set_num_threads(threads)


def _call(fn: Callable[[Any], Any], index: int, task: Any) -> TaskOutcome:
    """Run one task, turning an exception into an outcome (runs in the worker)."""
    try:
        return TaskOutcome(index, fn(task))
    except Exception as exc:  # noqa: BLE001 - reported, never swallowed silently
        return TaskOutcome(index, None, f"{type(exc).__name__}: {exc}", traceback.format_exc())


class Executor(ABC):
    """Common interface of the sweep backends (see the module docstring)."""

    name: ClassVar[str] = "abstract"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        self.workers = workers

    @abstractmethod
    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[TaskOutcome]:
        """Submit every task; yield one :class:`TaskOutcome` per task as each completes."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers; tasks not yet started are cancelled."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return self.name


class SerialExecutor(Executor):
    """Runs the tasks one after another in this process (debugging, tiny sweeps)."""

    name = "serial"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers)
        self.threads = cpu_count()

    def map(self, fn, tasks):
        previous = None
        with contextlib.suppress(ImportError):
            import torch

            previous = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        try:
            for i, task in enumerate(tasks):
                yield _call(fn, i, task)
        finally:
            if previous is not None:
                import torch

                torch.set_num_threads(previous)

    def describe(self) -> str:
        return f"serial ({self.threads} threads)"


class LocalExecutor(Executor):
    """A pool of worker processes on this machine (``concurrent.futures``).

    ``workers`` defaults to the number of usable cores (never more than the number of tasks);
    each worker gets ``max(1, cores // workers)`` torch/BLAS threads. Workers are started with
    the ``spawn`` method (safe with torch and OpenMP, unlike ``fork``) and die with the sweep.
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        super().__init__(workers)
        self._pool = None
        self.effective_workers = workers or cpu_count()

    def map(self, fn, tasks):
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        tasks = list(tasks)
        if not tasks:
            return
        n = max(1, min(self.workers or cpu_count(), len(tasks)))
        self.effective_workers = n
        threads = max(1, cpu_count() // n)
        self._pool = ProcessPoolExecutor(
            max_workers=n,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=configure_worker,
            initargs=(threads, True),
        )
        futures = {self._pool.submit(_call, fn, i, t): i for i, t in enumerate(tasks)}
        pending = set(futures)
        finished = False
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=futures.__getitem__):
                    try:
                        yield fut.result()
                    except Exception as exc:  # noqa: BLE001 - e.g. BrokenProcessPool
                        yield TaskOutcome(futures[fut], None, f"{type(exc).__name__}: {exc}", None)
            finished = True
        finally:
            self.close(terminate=not finished)

    def close(self, terminate: bool = True) -> None:
        """Shut the pool down; with ``terminate``, kill the workers of unfinished tasks."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if terminate:
            procs = list((getattr(pool, "_processes", None) or {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.terminate()
            for proc in procs:
                with contextlib.suppress(Exception):
                    proc.join(timeout=5)
        else:
            pool.shutdown(wait=True)

    def describe(self) -> str:
        return (
            f"local ({self.effective_workers} worker process(es), "
            f"{max(1, cpu_count() // self.effective_workers)} thread(s) each)"
        )


EXECUTORS: dict[str, type[Executor] | str] = {
    "local": LocalExecutor,
    "serial": SerialExecutor,
    "ray": "privrec.experiments.ray_executor:RayExecutor",
}
"""Executor name → class, or a lazy ``"package.module:ClassName"`` reference."""


def register_executor(name: str, cls: type[Executor] | str) -> None:
    """Make ``cls`` available to ``run_sweep(executor=name)``."""
    EXECUTORS[name] = cls


def get_executor(name: str, workers: int | None = None, **options: Any) -> Executor:
    """Instantiate the executor registered as ``name``; ``options`` go to its constructor
    (e.g. ``address``, ``num_cpus``, ``num_gpus`` for ``ray``).

    Raises:
        ConfigError: unknown name, a lazy entry whose module is not installed, or an option
            that backend does not take.
    """
    entry = EXECUTORS.get(name)
    if entry is None:
        raise ConfigError(f"unknown executor {name!r}; expected one of: {', '.join(EXECUTORS)}")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        try:
            entry = getattr(importlib.import_module(module), attr)
        except ImportError as exc:
            raise ConfigError(
                f"executor {name!r} needs {exc.name}, which is not installed"
            ) from None
        EXECUTORS[name] = entry
    options = {k: v for k, v in options.items() if v is not None}
    if options:
        import inspect

        accepted = set(inspect.signature(entry.__init__).parameters) - {"self", "workers"}
        unknown = sorted(set(options) - accepted)
        if unknown:
            raise ConfigError(
                f"executor {name!r} does not take option(s) {', '.join(unknown)}"
                + (f" (it takes: {', '.join(sorted(accepted))})" if accepted else "")
            )
    return entry(workers, **options)
