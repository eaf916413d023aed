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
from privrec.progress import progress as progress_steps
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
        statuses = ("ok", "diverged", "leaky", "error")
        if not len(self.results):
            return dict.fromkeys(statuses, 0)
        s = self.results["status"]
        return {status: int((s == status).sum()) for status in statuses}


def clean_partials(out_dir: Path) -> int:
    """Remove what an interrupted sweep left half-written in ``out_dir``: temporary run
    directories (``runs/.*.partial``) and temporary files of atomic writes (``.*.tmp``).
    A run set aside by an interrupted overwrite (``.*.old-*``) is left to
    :func:`privrec.artifacts.recover_swap`, which restores or removes it. Returns how many
    were removed."""
    n = 0
    runs_dir = out_dir / "runs"
    if runs_dir.is_dir():
        for p in runs_dir.iterdir():
            if p.name.startswith(".") and p.name.endswith(".partial"):
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
    existing: str = "resume",
) -> SweepOutcome:
    """Run every grid point of ``spec`` into ``out_dir`` (resumably) and write the results.

    An ``out_dir`` that holds a sweep of *another* spec is refused unless ``existing`` is
    ``"extend"`` (run these grid points there too; every finished run of the earlier grid stays
    in the results) or ``"replace"`` (delete what the earlier sweep wrote, then start over). A
    directory that exists without being a sweep directory is always refused. Every grid point
    is checked (attackers, attributes, erasure methods, against the loaded dataset) before the
    first run starts.

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

    if existing not in ("resume", "extend", "replace"):
        raise ConfigError(f"existing must be resume, extend or replace, got {existing!r}")
    start = time.perf_counter()
    out_dir = Path(out_dir)
    runs_dir = out_dir / "runs"
    points = spec.expand()
    ex = get_executor(executor, workers, **dict(executor_options or {}))
    earlier = _earlier_sweep(out_dir, spec, existing)
    preflight(points, check_data=executor != "ray")
    runs_dir.mkdir(parents=True, exist_ok=True)
    with _sweep_lock(out_dir):
        if existing == "replace" and earlier is not None:
            _remove_sweep_outputs(out_dir)
            runs_dir.mkdir(parents=True, exist_ok=True)
            earlier = None
        clean_partials(out_dir)
        if earlier is not None:  # grid points of an extended sweep stay in it
            points = _earlier_points(earlier, points) + points
        atomic_write_json(
            out_dir / "sweep.json",
            {
                "privrec_version": __version__,
                "spec": spec.to_dict(),
                "earlier_specs": _earlier_specs(earlier, spec),
                "points": [
                    {"run_id": s.run_id, "grid": jsonable(values), "run": s.to_dict()}
                    for values, s in points
                ],
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
        # longest first: the last runs then leave no worker idle for long (the results keep
        # the grid's order)
        todo.sort(key=_expected_cost, reverse=True)
        errors: dict[str, str] = {}
        with progress_steps("sweep", len(points), done=skipped, enabled=progress) as step, ex:
            for outcome in ex.map(execute_task, todo):
                task = todo[outcome.index]
                if outcome.ok:
                    summaries[task.spec.run_id] = outcome.result
                    status = outcome.result["run"].get("status")
                else:
                    errors[task.spec.run_id] = outcome.error or "unknown error"
                    status = "error"
                    _report_error(task.spec.run_id, outcome, progress)
                step(f"{task.spec.run_id}: {status}")
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


def _expected_cost(task: RunTask) -> float:
    """A rough relative cost of a run, to start the longest runs first: the embedding size
    times the epoch budget (training) plus a share for each attacker of its audit."""
    from privrec.audit.attackers import resolve_attackers

    spec = task.spec
    try:
        attackers = len(resolve_attackers(spec.attackers)) if spec.attackers else 0
    except ConfigError:
        attackers = 0
    return float(spec.train.embedding_size) * (spec.train.epochs + 10 * attackers)


#: What a sweep writes at the top of its directory (``existing="replace"`` removes only these).
SWEEP_OUTPUTS: tuple[str, ...] = (
    "sweep.json",
    "results.csv",
    "results.json",
    "results.parquet",
    "results_long.csv",
    "results_long.json",
    "results_long.parquet",
    "report.md",
    "report.html",
    "tradeoff.png",
)


def _earlier_sweep(out_dir: Path, spec: SweepSpec, existing: str) -> dict | None:
    """The sweep already in ``out_dir`` (``None`` if none); refuses a directory that is not a
    sweep directory, and another sweep unless told to extend or replace it."""
    from privrec.artifacts import read_json

    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise ConfigError(f"{out_dir} exists and is not a directory; choose another --out")
    record = out_dir / "sweep.json"
    if not record.is_file():
        if any(p.name not in ("runs", ".sweep.lock") for p in out_dir.iterdir()) or (
            (out_dir / "runs").is_dir() and any((out_dir / "runs").iterdir())
        ):
            raise ConfigError(
                f"{out_dir} exists and is not a sweep directory (no sweep.json); its files are "
                "left alone: choose another --out"
            )
        return None
    earlier = read_json(record)
    recorded = {p.get("run_id") for p in earlier.get("points", [])}
    same = earlier.get("spec") == spec.to_dict() or recorded == {s.run_id for _, s in spec.expand()}
    if same or existing != "resume":  # the same sweep (by spec, or by its runs: older versions)
        return earlier
    n = len(earlier.get("points", []))
    raise ConfigError(
        f"{out_dir} holds another sweep ({earlier.get('spec', {}).get('name', 'sweep')!r}, "
        f"{n} grid point(s)): add --extend to run these grid points there too (its finished "
        "runs stay in the results), or --replace to start it over (its runs are deleted), or "
        "choose another --out"
    )


def _earlier_points(earlier: dict, points: list) -> list:
    """The earlier sweep's grid points that the new grid does not have, rebuilt from their
    recorded specs (points recorded without one — sweeps of privrec 0.1 — are kept only when
    their run finished, with the spec its run directory records)."""
    new_ids = {s.run_id for _, s in points}
    out = []
    for p in earlier.get("points", []):
        if p.get("run_id") in new_ids:
            continue
        record = p.get("run")
        if record is None:
            continue
        out.append((dict(p.get("grid") or {}), RunSpec.from_record(record)))
    return out


def _earlier_specs(earlier: dict | None, spec: SweepSpec) -> list:
    if earlier is None or earlier.get("spec") == spec.to_dict():
        return list((earlier or {}).get("earlier_specs", []))
    return [*earlier.get("earlier_specs", []), earlier.get("spec")]


def _remove_sweep_outputs(out_dir: Path) -> None:
    for name in SWEEP_OUTPUTS:
        (out_dir / name).unlink(missing_ok=True)
    shutil.rmtree(out_dir / "runs", ignore_errors=True)


def preflight(points: list, check_data: bool = True) -> None:
    """Check every grid point before the first run starts: attackers, erasure methods and
    (with ``check_data``, loading each dataset once) the attributes each run names. An error
    names the grid point."""
    from privrec.runs.pipeline import check_run

    for values, s in points:
        where = "run[" + ", ".join(f"{k}={v}" for k, v in values.items()) + "]"
        try:
            dataset = load_data(s)[0] if check_data else None
            check_run(s, dataset)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def _report_error(run_id: str, outcome, progress: bool) -> None:
    from rich.console import Console

    console = Console(stderr=True)
    console.print(f"[red]run {run_id} failed:[/red] {outcome.error}", highlight=False)
    if outcome.traceback and not progress:
        console.print(outcome.traceback, highlight=False, markup=False)
