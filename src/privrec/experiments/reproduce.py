"""``privrec reproduce``: the paper's grid on MovieLens 1M, its audit, and the report.

The grid is the paper's: embedding size {10, 20, 50} × λ {0, 0.01, 0.1, 1, 10} (one λ shared by
gender and age) × 3 seeds = 45 runs of BPR-MF with adversarial linear softmax heads behind
gradient reversal (the paper's objective, ``reverse``; privrec's default is ``confusion``).

Auditing is split by what each table needs:

* Tables 2–3 of the paper use only its softmax readout: every run is audited with
  ``grid_attackers`` (default ``fast`` = multinomial logistic regression, the softmax readout);
* Table 1 is the full suite on one purged model (size 10, λ = 0.1): those runs (one per seed)
  are audited with ``attackers`` (default ``paper``);
* ``grid_attackers="paper"`` audits every run with the full suite, which fills the
  strongest-attacker tables on every cell.

Measured wall times are in the README's reproduction section.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privrec.errors import ConfigError

if TYPE_CHECKING:
    from privrec.experiments.report import Report
    from privrec.experiments.sweep_runner import SweepOutcome

PAPER_SIZES: tuple[int, ...] = (10, 20, 50)
PAPER_LAMBDAS: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0, 10.0)
#: Training defaults of the reproduction (early stopping after 5 evaluations without
#: improvement, at most 40 epochs; the README gives the accuracy they reach).
REPRODUCE_TRAIN: dict = {
    "epochs": 40,
    "patience": 5,
    "batch_size": 4096,
    "learning_rate": 0.005,
    "reg": 1e-3,
    "collapse_ratio": 0.5,
}


def paper_sweep(
    dataset: str = "ml-1m",
    data_dir: str | Path | None = None,
    seeds: int = 3,
    attackers: str = "paper",
    grid_attackers: str = "fast",
    sizes: tuple[int, ...] = PAPER_SIZES,
    lambdas: tuple[float, ...] = PAPER_LAMBDAS,
    epochs: int | None = None,
    folds: int = 5,
):
    """The :class:`~privrec.experiments.sweep_spec.SweepSpec` of the paper's grid."""
    from privrec.experiments.sweep_spec import SweepSpec
    from privrec.runs.run_spec import RunSpec

    if seeds < 1:
        raise ConfigError(f"seeds must be >= 1, got {seeds}")
    train = dict(REPRODUCE_TRAIN)
    if epochs is not None:
        train["epochs"] = epochs
    purge = ("gender", "age") if dataset in ("ml-1m", "ml-100k") else ("attr",)
    base = RunSpec.from_dict(
        {
            "dataset": dataset,
            "data_dir": str(data_dir) if data_dir is not None else None,
            "train": train,
            # the paper's objective, gradient reversal (not privrec's default, confusion)
            "adversary": {
                "weights": dict.fromkeys(purge, 0.0),
                "head": "linear",
                "objective": "reverse",
            },
            "attackers": grid_attackers,
            "folds": folds,
        }
    )
    overrides = []
    if attackers != grid_attackers:
        size = min(sizes, key=lambda s: abs(s - 10))
        lam = min(lambdas, key=lambda v: abs(v - 0.1))
        overrides.append(({"embedding_size": size, "lambda": lam}, {"attackers": attackers}))
    return SweepSpec(
        base=base,
        grid={"embedding_size": sizes, "lambda": lambdas, "seed": tuple(range(seeds))},
        purge=purge,
        overrides=tuple(overrides),
        name="paper-reproduction",
    )


@dataclass(frozen=True)
class ReproduceOutcome:
    """What :func:`reproduce` did; ``*_seconds`` are worker time summed over the runs (runs
    reused from an interrupted earlier call count with their original times)."""

    sweep: SweepOutcome
    report: Report
    wall_seconds: float
    train_seconds: float
    audit_seconds: float
    report_seconds: float
    load_seconds: float = 0.0


def reproduce(
    out: str | Path,
    dataset: str = "ml-1m",
    data_dir: str | Path | None = None,
    seeds: int = 3,
    workers: int | None = None,
    attackers: str = "paper",
    grid_attackers: str = "fast",
    executor: str = "local",
    epochs: int | None = None,
    progress: bool = True,
    executor_options: Mapping[str, Any] | None = None,
    existing: str = "resume",
) -> ReproduceOutcome:
    """Run the paper's grid into ``out`` (resumable) and write the report there
    (``executor_options``, ``existing``: see
    :func:`~privrec.experiments.sweep_runner.run_sweep`)."""
    from privrec.experiments.report import write_report
    from privrec.experiments.sweep_runner import run_sweep

    start = time.perf_counter()
    spec = paper_sweep(dataset, data_dir, seeds, attackers, grid_attackers, epochs=epochs)
    sweep = run_sweep(
        spec,
        out,
        executor=executor,
        workers=workers,
        progress=progress,
        executor_options=executor_options,
        existing=existing,
    )
    t0 = time.perf_counter()
    rep = write_report(out)
    report_seconds = time.perf_counter() - t0
    res = sweep.results

    def total(col: str) -> float:
        return float(res[col].fillna(0).sum()) if col in res else 0.0

    return ReproduceOutcome(
        sweep,
        rep,
        time.perf_counter() - start,
        total("train_seconds"),
        total("audit_seconds"),
        report_seconds,
        total("load_seconds"),
    )
