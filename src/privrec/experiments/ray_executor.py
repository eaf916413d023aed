"""A sweep executor that runs each task as a Ray task, on a Ray cluster or a local Ray instance.

Ray is optional (``pip install 'privrec[ray]'``): this module imports without it, and
:class:`RayExecutor` raises :class:`~privrec.errors.ConfigError` naming the extra when Ray is
missing. It follows :mod:`privrec.experiments.executors`' interface exactly, so a sweep gives the
same run directories, the same results and the same resume semantics as with the ``local``
executor::

    from privrec.experiments.ray_executor import RayExecutor

    with RayExecutor(workers=8, address="ray://head:10001", num_cpus=2) as ex:
        for outcome in ex.map(fn, tasks):  # completion order, errors captured
            ...

Where Ray runs:

* ``address=None`` (the default): ``$RAY_ADDRESS`` when it is set (Ray's own convention, so
  ``RAY_ADDRESS=ray://head:10001 privrec sweep ... --executor ray`` uses a cluster), otherwise a
  new local instance ``ray.init(address="local", num_cpus=...)``, stopped again on ``close``;
* ``address="auto"``: the cluster started with ``ray start`` on this machine;
* ``address="ray://host:10001"`` (Ray client) or ``"host:6379"`` (a cluster node): that cluster;
* if Ray is already initialised in this process, that session is used as it is.

A cluster this executor did not start is never shut down: ``close`` only cancels this sweep's
unfinished tasks and disconnects (and does not even disconnect a session it found already open).

Resources and threads: each task reserves ``num_cpus`` CPUs and ``num_gpus`` GPUs (Ray's
scheduler places it on a node that has them) and calls
:func:`~privrec.experiments.executors.configure_worker` with a budget of ``num_cpus`` threads
(at least 1). On a local instance ``num_cpus`` defaults to ``max(1, cores // workers)`` like the
``local`` executor; on a cluster it defaults to 1. ``workers`` caps the tasks in flight (default:
as many as the cluster's resources allow).

Failures: an exception raised by ``fn`` becomes a failed :class:`TaskOutcome` (never retried: a
run that raises would raise again). A task whose worker process died (killed, out of memory, node
lost) is resubmitted by Ray up to ``max_retries`` times, then reported as a failed outcome; this
is safe because the sweep's run function writes its directory atomically and returns an existing
complete one unchanged.

Cluster nodes must be able to import privrec (install it on the nodes' image, or pass
``runtime_env={"py_modules": [privrec]}``), and the sweep directory must be on storage every node
sees (a shared file system) since each task writes its run directory itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import traceback
import types
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from privrec.errors import ConfigError
from privrec.experiments.executors import (
    Executor,
    TaskOutcome,
    _call,
    configure_worker,
    cpu_count,
)

INSTALL_HINT = "the 'ray' executor needs Ray, which is not installed: pip install 'privrec[ray]'"


def import_ray():
    """The ``ray`` module, or :class:`ConfigError` with the install hint."""
    try:
        import ray
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return ray


def _ray_task(fn: Callable[[Any], Any], index: int, task: Any, threads: int) -> TaskOutcome:
    """What a Ray worker runs for one task: thread budget, then ``fn`` with errors captured."""
    configure_worker(threads)
    return _call(fn, index, task)


def _describe_error(exc: BaseException) -> tuple[str, str]:
    """``("Type: first line", full text)`` of an exception raised by ``ray.get``."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    full = text or "".join(traceback.format_exception(exc))
    return f"{type(exc).__name__}: {first}", full


class RayExecutor(Executor):
    """Runs the tasks of a sweep as Ray tasks (see the module docstring).

    Args:
        workers: at most this many tasks in flight (``None``: as many as the resources allow;
            on a local instance, one per core as with the ``local`` executor).
        address: the cluster to use (``None``: ``$RAY_ADDRESS`` or a new local instance).
        num_cpus: CPUs reserved by each task, also its thread budget (default: see module).
        num_gpus: GPUs reserved by each task (default 0; fractions allowed).
        max_retries: resubmissions of a task whose worker died before it is reported failed.
        runtime_env: Ray runtime environment of the tasks (e.g. ``{"py_modules": [privrec]}``).
        init_kwargs: extra keyword arguments of ``ray.init`` (e.g. ``{"_temp_dir": ...}``).
    """

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        *,
        address: str | None = None,
        num_cpus: float | None = None,
        num_gpus: float = 0,
        max_retries: int = 2,
        runtime_env: Mapping[str, Any] | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(workers)
        if num_cpus is not None and not num_cpus > 0:
            raise ConfigError(f"num_cpus per task must be > 0, got {num_cpus}")
        if num_gpus < 0:
            raise ConfigError(f"num_gpus per task must be >= 0, got {num_gpus}")
        if max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
        import_ray()  # fail early, with the install hint
        if address is None:
            address = os.environ.get("RAY_ADDRESS") or None
        self.address = address
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.max_retries = max_retries
        self.runtime_env = dict(runtime_env) if runtime_env else None
        self.init_kwargs = dict(init_kwargs or {})
        self.owns_connection = False
        """Whether :meth:`start` called ``ray.init`` (so :meth:`close` calls ``ray.shutdown``)."""
        self.started_local = False
        """Whether :meth:`start` started a new local Ray instance (not a cluster's)."""
        self.task_cpus: float = 1.0
        self.threads: int = 1
        self._in_flight: dict[Any, int] = {}
        self._started = False
        self._where: str | None = None

    # ------------------------------------------------------------------ connection
    @property
    def is_local(self) -> bool:
        return self.address in (None, "local")

    def start(self) -> RayExecutor:
        """Connect to Ray (or start a local instance) now; :meth:`map` does it lazily."""
        if self._started:
            return self
        ray = import_ray()
        per_task = None if self.num_cpus is None else float(self.num_cpus)
        if ray.is_initialized():  # the caller's session: use it, never shut it down
            self.owns_connection = False
            self._where = "the running Ray session"
            if per_task is None and self.is_local:
                total = int(ray.cluster_resources().get("CPU", 1))
                per_task = float(max(1, total // (self.workers or total or 1)))
        else:
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if self.runtime_env:
                kwargs["runtime_env"] = self.runtime_env
            address: str | None
            if self.is_local:
                cores = cpu_count()
                if per_task is None:
                    per_task = float(max(1, cores // (self.workers or cores)))
                kwargs["num_cpus"] = max(cores, math.ceil(per_task * (self.workers or 1)))
                address = "local"
            else:
                address = self.address
            kwargs.update(self.init_kwargs)
            try:
                ray.init(address=address, **kwargs)
            except ConnectionError as exc:
                raise ConfigError(
                    f"cannot connect to the Ray cluster at {address}: {exc}"
                ) from None
            self.owns_connection = True
            self.started_local = self.is_local
            self._where = "local Ray" if self.is_local else f"Ray cluster {address}"
        if per_task is None:  # a cluster: one CPU per task unless told otherwise
            per_task = 1.0
        self._check_resources(ray, per_task)
        self.task_cpus = per_task
        self.threads = max(1, int(per_task))
        self._started = True
        return self

    def _check_resources(self, ray: Any, per_task: float) -> None:
        """Fail now, with a message, when no node of the cluster can ever run a task (Ray
        would queue it forever): not enough GPUs or CPUs in the whole cluster."""
        total = ray.cluster_resources()
        wanted = {"GPU": float(self.num_gpus), "CPU": float(per_task)}
        for kind, need in wanted.items():
            have = float(total.get(kind, 0))
            if need > 0 and have < need:
                where = self._where
                if self.owns_connection:
                    self.close()
                flag = "--task-gpus" if kind == "GPU" else "--task-cpus"
                raise ConfigError(
                    f"each run asks for {need:g} {kind}(s) ({flag}) but {where} has "
                    f"{have:g}: the runs could never start"
                )

    def close(self) -> None:
        """Cancel the tasks still in flight; stop Ray only if this executor started it."""
        ray: types.ModuleType | None = None
        with contextlib.suppress(ImportError):
            import ray
        if ray is not None and ray.is_initialized():
            for ref in list(self._in_flight):
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        self._in_flight.clear()
        if ray is not None and self.owns_connection and ray.is_initialized():
            ray.shutdown()
        self.owns_connection = False
        self._started = False

    # ------------------------------------------------------------------ tasks
    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[TaskOutcome]:
        tasks = list(tasks)
        if not tasks:
            return
        self.start()
        import ray

        options: dict[str, Any] = {
            "num_cpus": self.task_cpus,
            "num_gpus": self.num_gpus,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
        }
        remote = ray.remote(_ray_task).options(**options)
        fn_ref = ray.put(fn)  # shipped once, not once per task
        queue = deque(enumerate(tasks))
        window = self.workers or len(tasks)
        in_flight = self._in_flight
        try:
            while queue or in_flight:
                while queue and len(in_flight) < window:
                    i, task = queue.popleft()
                    in_flight[remote.remote(fn_ref, i, task, self.threads)] = i
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    i = in_flight.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - worker died, task cancelled...
                        error, text = _describe_error(exc)
                        outcome = TaskOutcome(i, None, error, text)
                    if not isinstance(outcome, TaskOutcome):  # pragma: no cover - defensive
                        outcome = TaskOutcome(i, outcome)
                    yield outcome
        finally:
            for ref in list(in_flight):  # interrupted: cancel what has not finished
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            in_flight.clear()

    def describe(self) -> str:
        where = self._where or ("local Ray" if self.is_local else f"Ray cluster {self.address}")
        gpus = f", {self.num_gpus:g} GPU" if self.num_gpus else ""
        cap = f", at most {self.workers} in flight" if self.workers else ""
        return (
            f"ray ({where}; {self.task_cpus:g} CPU{gpus} and {self.threads} thread(s) "
            f"per task{cap})"
        )
