"""``privrec demo``: the whole pipeline (sweep → audit → Pareto front → report) on synthetic
data with a planted attribute, offline, in seconds."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from privrec.experiments.report import Report
    from privrec.experiments.sweep_runner import SweepOutcome

#: The demo's synthetic data: the hidden attribute ``attr`` (70/30) shapes users' tastes.
DEMO_DATA: dict = {"n_users": 1200, "n_items": 200, "density": 0.08, "strength": 0.6, "seed": 2}
DEMO_TRAIN: dict = {
    "embedding_size": 16,
    "epochs": 25,
    "batch_size": 1024,
    "learning_rate": 0.01,
    "patience": 5,
    "collapse_ratio": 0.5,
}
DEMO_LAMBDAS: tuple[float, ...] = (0.0, 0.2, 1.0)
#: Five head updates per recommender update: with one, the single head is chased by the user
#: vectors and a fresh attacker still reads the attribute (tests/test_adversarial.py).
DEMO_ADVERSARY: dict = {"weights": {"attr": 0.0}, "steps": 5}
DEMO_ATTACKERS: tuple[str, ...] = ("logistic", "rbf_svm")


def demo_sweep():
    """The demo's :class:`~privrec.experiments.sweep_spec.SweepSpec` (one size × 3 λ × 1 seed)."""
    from privrec.experiments.sweep_spec import SweepSpec
    from privrec.runs.run_spec import RunSpec

    base = RunSpec.from_dict(
        {
            "dataset": "synthetic",
            "data": DEMO_DATA,
            "train": DEMO_TRAIN,
            "adversary": DEMO_ADVERSARY,
            "attackers": list(DEMO_ATTACKERS),
            "folds": 5,
        }
    )
    return SweepSpec(
        base=base, grid={"lambda": DEMO_LAMBDAS, "seed": (0,)}, purge=("attr",), name="demo"
    )


DEMO_INTRO = (
    "BPR-MF on synthetic data whose users' tastes depend on a hidden attribute 'attr'; "
    f"adversarial heads with λ ∈ {{{', '.join(f'{v:g}' for v in DEMO_LAMBDAS)}}}; attackers "
    f"{', '.join(DEMO_ATTACKERS)} (5-fold CV)."
)
"""One sentence on what the demo does (printed by ``privrec demo``)."""


@dataclass(frozen=True, eq=False)
class DemoOutcome:
    """What :func:`run_demo` did: the sweep, its report and the wall time."""

    sweep: SweepOutcome
    report: Report
    seconds: float


def run_demo(out: str | Path, progress: bool = True) -> DemoOutcome:
    """Sweep λ on synthetic data, audit every model and write the report into ``out``."""
    from privrec.experiments.report import write_report
    from privrec.experiments.sweep_runner import run_sweep

    out = Path(out)
    start = time.perf_counter()
    sweep = run_sweep(demo_sweep(), out, executor="local", progress=progress)
    rep = write_report(out)
    return DemoOutcome(sweep, rep, time.perf_counter() - start)
