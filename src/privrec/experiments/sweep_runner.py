"""Running a sweep: every grid point through the run pipeline, resumably, into one directory.

Layout of a sweep directory: ``sweep.json`` (the spec, the grid points and their run ids),
``runs/<run_id>/`` (one complete run directory per run, see
:mod:`privrec.runs.run_directory`), and the results table (``results.csv``, ``results.json``,
``results.parquet``). Each run directory is written atomically (a directory that exists is
complete), which makes a sweep resumable after any interruption, ``SIGKILL`` included:
rerunning the same sweep skips complete runs, cleans stale ``.partial`` temporary directories
and never duplicates a run.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from privrec.artifacts import jsonable
from privrec.errors import ConfigError, DataError
from privrec.experiments.sweep_results import results_frame, write_results
from privrec.experiments.sweep_spec import SweepSpec
from privrec.runs.run_directory import read_summary
from privrec.runs.run_spec import RunSpec

# ---------------------------------------------------------------------------------------------
# Executing one run (in a worker process)
# ---------------------------------------------------------------------------------------------

_DATA_CACHE: dict[str, tuple] = {}
_DATA_CACHE_SIZE = 2


def load_data(spec: RunSpec):
    """``(dataset, split)`` of a run, loaded once per worker process and cached by data spec
    (a worker runs many grid points on the same data)."""
    key = spec.data_key()
    hit = _DATA_CACHE.get(key)
    if hit is not None:
        return hit
    from privrec.data.split import leave_last_out
    from privrec.runs.pipeline import load_spec_dataset

    ds = load_spec_dataset(spec)
    split = leave_last_out(ds.interactions)
    while len(_DATA_CACHE) >= _DATA_CACHE_SIZE:
        _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
    _DATA_CACHE[key] = (ds, split)
    return ds, split


@dataclass(frozen=True)
class RunTask:
    """What a worker needs to compute one run: its spec and its directory."""

    spec: RunSpec
    run_dir: str


def execute_task(task: RunTask) -> dict:
    """Worker entry point: the run's summary (computing and writing the run if not complete)."""
    return execute_run(task.spec, task.run_dir)


def stored_results(run_dir: str | Path) -> dict:
    """A finished run's facts and long records (``summary.json``); for a run directory of
    privrec 0.1, rebuilt from its audit and metrics files."""
    stored = read_summary(run_dir)
    if "records" in stored:
        return stored
    from privrec.runs.run_result import read_run

    return read_run(run_dir).stored_results()


def execute_run(spec: RunSpec, run_dir: str | Path) -> dict:
    """Run one grid point through the pipeline and write its directory atomically.

    Returns the run's facts and long records (also written as ``summary.json``). A run
    directory that already exists is complete: its results are returned without recomputing.
    A diverged run is written with ``status: "diverged"`` and no audit.
    """
    from privrec.runs.pipeline import run_pipeline

    run_dir = Path(run_dir)
    if run_dir.exists():
        return stored_results(run_dir)
    started = time.perf_counter()
    ds, split = load_data(spec)
    run = run_pipeline(
        spec, ds, split, record_warnings=True, load_seconds=time.perf_counter() - started
    )
    try:
        run.save(run_dir)
    except DataError:
        if not run_dir.exists():  # pragma: no cover - a real error, not a lost race
            raise
    return run.stored_results()


@dataclass(frozen=True, eq=False)
class SweepOutcome:
    """What :func:`run_sweep` did.

    Attributes:
        out_dir: the sweep directory.
        results: one row per grid point (the content of ``results.csv``).
        computed: runs computed now; skipped: runs already complete; failed: runs that raised
            (not written; a rerun retries them).
        wall_seconds: wall time of this call.
        executor: description of the executor used.
        errors: ``run_id → error message`` of the failed runs.
    """

    out_dir: Path
    results: Any
    computed: int
    skipped: int
    failed: int
    wall_seconds: float
    executor: str
    errors: dict = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        statuses = ("ok", "diverged", "error")
        if not len(self.results):
            return dict.fromkeys(statuses, 0)
        s = self.results["status"]
        return {status: int((s == status).sum()) for status in statuses}


def clean_partials(out_dir: Path) -> int:
    """Remove what an interrupted sweep left half-written in ``out_dir``: temporary run
    directories (``runs/.*.partial``) and temporary files of atomic writes (``.*.tmp``).
    Returns how many were removed."""
    n = 0
    runs_dir = out_dir / "runs"
    if runs_dir.is_dir():
        for p in runs_dir.iterdir():
            if p.name.startswith(".") and (p.name.endswith(".partial") or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)
                n += 1
    if out_dir.is_dir():
        for p in out_dir.iterdir():
            if p.name.startswith(".") and p.name.endswith(".tmp") and p.is_file():
                p.unlink(missing_ok=True)
                n += 1
    return n


@contextlib.contextmanager
def _sweep_lock(out_dir: Path):
    """An exclusive lock on the sweep directory (released by the OS even on SIGKILL)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fh = (out_dir / ".sweep.lock").open("a+")
    try:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ConfigError(
                f"another sweep is writing to {out_dir}; wait for it or use another --out"
            ) from None
        yield
    finally:
        fh.close()


def run_sweep(
    spec: SweepSpec,
    out_dir: str | Path,
    executor: str = "local",
    workers: int | None = None,
    progress: bool = True,
    executor_options: Mapping[str, Any] | None = None,
) -> SweepOutcome:
    """Run every grid point of ``spec`` into ``out_dir`` (resumably) and write the results.

    ``executor_options`` go to the executor's constructor (``None`` values are dropped), e.g.
    ``{"address": "ray://head:10001", "num_cpus": 2, "num_gpus": 0.5}`` for ``ray``.

    Layout: ``out_dir/sweep.json`` (the spec, the grid points and their run ids),
    ``out_dir/runs/<run_id>/`` (one complete directory per run), and ``results.csv``,
    ``results.json``, ``results.parquet`` (when pyarrow is importable) with one row per grid
    point. Complete run directories are reused, never recomputed; stale ``.partial`` directories
    of an interrupted sweep are removed first.
    """
    from privrec._version import __version__
    from privrec.artifacts import atomic_write_json
    from privrec.experiments.executors import get_executor

    start = time.perf_counter()
    out_dir = Path(out_dir)
    runs_dir = out_dir / "runs"
    points = spec.expand()
    ex = get_executor(executor, workers, **dict(executor_options or {}))
    runs_dir.mkdir(parents=True, exist_ok=True)
    with _sweep_lock(out_dir):
        clean_partials(out_dir)
        atomic_write_json(
            out_dir / "sweep.json",
            {
                "privrec_version": __version__,
                "spec": spec.to_dict(),
                "points": [{"run_id": s.run_id, "grid": jsonable(values)} for values, s in points],
            },
        )
        summaries: dict[str, dict] = {}
        todo: list[RunTask] = []
        for _, s in points:
            run_dir = runs_dir / s.run_id
            if run_dir.exists():
                try:
                    summaries[s.run_id] = stored_results(run_dir)
                    continue
                except DataError:  # an incomplete directory not written by privrec
                    shutil.rmtree(run_dir, ignore_errors=True)
            todo.append(RunTask(s, str(run_dir)))
        skipped = len(points) - len(todo)
        errors: dict[str, str] = {}
        with _progress_bar(len(points), skipped, progress) as advance, ex:
            for outcome in ex.map(execute_task, todo):
                task = todo[outcome.index]
                if outcome.ok:
                    summaries[task.spec.run_id] = outcome.result
                    status = outcome.result["run"].get("status")
                else:
                    errors[task.spec.run_id] = outcome.error or "unknown error"
                    status = "error"
                    _report_error(task.spec.run_id, outcome, progress)
                advance(task.spec.run_id, status)
        results, records = results_frame(points, summaries, errors)
        write_results(results, out_dir, records)
    return SweepOutcome(
        out_dir=out_dir,
        results=results,
        computed=len(todo) - len(errors),
        skipped=skipped,
        failed=len(errors),
        wall_seconds=time.perf_counter() - start,
        executor=ex.describe(),
        errors=errors,
    )


def _report_error(run_id: str, outcome, progress: bool) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"[red]run {run_id} failed:[/red] {outcome.error}", highlight=False)
    if outcome.traceback and not progress:
        console.print(outcome.traceback, highlight=False, markup=False)


@contextlib.contextmanager
def _progress_bar(total: int, done: int, enabled: bool):
    if not enabled:
        yield lambda run_id, status: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=Console(stderr=True),
    )
    with bar:
        info = f"{done} already complete" if done else ""
        task = bar.add_task("sweep", total=total, completed=done, info=info)

        def advance(run_id: str, status: str) -> None:
            bar.update(task, advance=1, info=f"{run_id}: {status}")

        yield advance
