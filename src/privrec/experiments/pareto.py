"""The accuracy-vs-leakage Pareto front (pure functions over result tables).

Objectives: **maximise** validation HR@10 and **minimise** leakage. Leakage of a categorical
attribute is the strongest attacker's ROC-AUC normalised to ``[0, 1]``:
``max(0, (AUC − 0.5) / 0.5)`` (0 = chance, 1 = perfect read-out); the *combined* leakage of a run
is the maximum over its attributes (a run is only as private as its leakiest attribute).
Points are selected on **validation** HR@10 and reported with their **test** metrics, so the
test items never influence which models are chosen. Diverged runs are never candidates.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from privrec.errors import ConfigError

COMBINED = "combined"


def pareto_mask(maximise: ArrayLike, minimise: ArrayLike) -> np.ndarray:
    """Boolean mask of the non-dominated points.

    Point ``i`` is dominated when some ``j`` has ``maximise[j] >= maximise[i]`` and
    ``minimise[j] <= minimise[i]`` with at least one strict inequality. Identical points do not
    dominate each other (both stay). Points with a NaN objective are never on the front.
    """
    x = np.asarray(maximise, dtype=float)
    y = np.asarray(minimise, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ConfigError(f"objectives must be 1-D of equal length, got {x.shape} and {y.shape}")
    valid = ~(np.isnan(x) | np.isnan(y))
    mask = valid.copy()
    for i in np.flatnonzero(valid):
        others = valid.copy()
        others[i] = False
        ge = x[others] >= x[i]
        le = y[others] <= y[i]
        strict = (x[others] > x[i]) | (y[others] < y[i])
        if np.any(ge & le & strict):
            mask[i] = False
    return mask


def normalised_auc(auc: ArrayLike) -> np.ndarray:
    """``max(0, (AUC − 0.5) / 0.5)``: 0 at chance (or below), 1 for a perfect attacker."""
    a = np.asarray(auc, dtype=float)
    return np.clip((a - 0.5) / 0.5, 0.0, 1.0)


def normalised_accuracy(accuracy: ArrayLike, majority: ArrayLike) -> np.ndarray:
    """``max(0, (acc − majority) / (1 − majority))``: 0 at the majority baseline, 1 perfect."""
    acc = np.asarray(accuracy, dtype=float)
    maj = np.asarray(majority, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip((acc - maj) / (1.0 - maj), 0.0, 1.0)


def add_leakage(
    df: pd.DataFrame, attributes: Sequence[str], metric: str = "roc_auc"
) -> pd.DataFrame:
    """Copy of ``df`` with ``leak_<attr>`` (normalised leakage of each of ``attributes``, the
    audited ones: :func:`privrec.experiments.sweep_results.leakage_attributes`) and
    ``leak_combined`` columns.

    ``metric``: ``roc_auc`` (default; the strongest attacker's AUC) or ``accuracy`` (the best
    accuracy against the majority baseline).
    """
    if metric not in ("roc_auc", "accuracy"):
        raise ConfigError(f"leakage metric must be 'roc_auc' or 'accuracy', got {metric!r}")
    out = df.copy()
    attributes = list(attributes)
    if not attributes:
        raise ConfigError("no audited attribute: the results have no leakage to compare")
    cols = []
    for a in attributes:
        if metric == "roc_auc":
            out[f"leak_{a}"] = normalised_auc(_col(out, f"{a}_max_roc_auc"))
        else:
            out[f"leak_{a}"] = normalised_accuracy(
                _col(out, f"{a}_max_accuracy"), _col(out, f"{a}_majority")
            )
        cols.append(f"leak_{a}")
    values = out[cols].to_numpy(dtype=float)
    # NaN if any attribute is missing (an unaudited run is not "private")
    out[f"leak_{COMBINED}"] = values.max(axis=1) if len(values) else np.zeros(0)
    return out


def _col(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        raise ConfigError(f"the results have no column {name!r}")
    return pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)


def ok_runs(df: pd.DataFrame) -> pd.DataFrame:
    """Only the runs that finished (``status == "ok"``): diverged and failed runs are dropped."""
    if "status" not in df.columns:
        return df
    return df[df["status"] == "ok"]


def aggregate_seeds(
    df: pd.DataFrame, by: Sequence[str], k: int = 10, attributes: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per configuration (``by`` columns): mean and std over the finished seeds.

    Columns: the ``by`` keys, ``n_ok``, ``n_diverged``, ``n_runs``, then ``<metric>`` (mean) and
    ``<metric>_std`` for validation/test HR@k and NDCG@k and, for each of ``attributes``,
    ``leak_<attr>`` and ``<attr>_max_*`` (where present), and ``leak_combined``.
    """
    by = [b for b in by if b in df.columns]
    if not by:
        raise ConfigError("aggregate_seeds needs at least one configuration column")
    metrics = [f"val_hr@{k}", f"val_ndcg@{k}", f"test_hr@{k}", f"test_ndcg@{k}"]
    for a in attributes:
        metrics += [f"{a}_max_roc_auc", f"{a}_max_balanced_accuracy", f"{a}_max_accuracy"]
    metrics += [f"leak_{a}" for a in attributes] + [f"leak_{COMBINED}"]
    metrics = [m for m in dict.fromkeys(metrics) if m in df.columns]
    rows = []
    key_frame = df[by].astype(object).where(df[by].notna(), None)
    groups: dict[tuple, list[int]] = {}
    for pos, key in enumerate(map(tuple, key_frame.to_numpy())):
        groups.setdefault(key, []).append(pos)
    for key, positions in groups.items():
        g = df.iloc[positions]
        ok = ok_runs(g)
        row = dict(zip(by, key, strict=True))
        row["n_runs"] = len(g)
        row["n_ok"] = len(ok)
        row["n_diverged"] = (
            int(g["status"].isin(["diverged", "leaky"]).sum()) if "status" in g else 0
        )
        for m in metrics:
            v = pd.to_numeric(ok[m], errors="coerce").to_numpy(dtype=float)
            v = v[~np.isnan(v)]
            row[m] = float(v.mean()) if len(v) else np.nan
            row[f"{m}_std"] = float(v.std(ddof=1)) if len(v) > 1 else (0.0 if len(v) else np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def pareto_front(
    df: pd.DataFrame,
    attribute: str = COMBINED,
    objective: str = "val_hr@10",
    leakage: str | None = None,
) -> pd.DataFrame:
    """The non-dominated rows of ``df`` (maximise ``objective``, minimise leakage).

    ``leakage`` defaults to ``leak_<attribute>`` (add it with :func:`add_leakage`). Rows with a
    status other than ``ok`` are excluded; with aggregated configurations (no ``status``), rows
    without a finished seed (``n_ok == 0``) are excluded. Sorted by ``objective``, best first.
    """
    leakage = leakage or f"leak_{attribute}"
    for col in (objective, leakage):
        if col not in df.columns:
            raise ConfigError(f"the results have no column {col!r}")
    cand = ok_runs(df)
    if "n_ok" in cand.columns:
        cand = cand[cand["n_ok"] > 0]
    mask = pareto_mask(_col(cand, objective), _col(cand, leakage))
    front = cand[mask]
    return front.sort_values([objective, leakage], ascending=[False, True], kind="stable")


def flag_reversals(results, attributes: Sequence[str], z: float = 1.96):
    """Mark adversarial runs whose leakage got *worse* than the undefended model's as diverged
    (``attributes``: the audited attributes whose leakage is compared).

    The paper saw its size-50 models "diverge" at λ ≥ 1: the attribute became *more* readable
    than with no defence at all. For each finished run with λ > 0, the λ = 0 run with the same
    embedding size and seed is its reference. The strongest attacker's ROC-AUC of an attribute
    is a mean over ``folds`` cross-validation folds with spread ``s`` (their standard
    deviation, ``<attr>_max_roc_auc_spread``), so its standard error is ``s / √folds``; the run
    is worse when its AUC exceeds the reference's by more than ``z`` (1.96: a one-sided test
    at 2.5 %) combined standard errors — a test, not a fixed margin. Then it gets
    ``status = "diverged"`` and ``reason = "reversal: ..."``, so it is never reported as a
    result (it stays in the table, marked). Results without spreads (0.1 sweeps) fall back to
    a spread of 0.05, the fold spread measured on ML-1M. Returns a new frame.
    """
    df = results.copy()
    if "lambda" not in df.columns or "status" not in df.columns or df.empty:
        return df
    keys = [c for c in ("dataset", "method", "embedding_size", "seed") if c in df.columns]
    lam = df["lambda"].astype(float)
    base = df[(lam == 0) & (df["status"] == "ok")]
    for i in df.index[(lam > 0) & (df["status"] == "ok")]:
        ref = base
        for k in keys:
            ref = ref[ref[k] == df.at[i, k]]
        if ref.empty:
            continue
        worse = []
        for a in attributes:
            col = f"{a}_max_roc_auc"
            if col not in df.columns:
                continue
            auc, ref_auc = float(df.at[i, col]), float(ref.iloc[0][col])
            if auc != auc or ref_auc != ref_auc:
                continue
            se = np.hypot(_se(df.loc[i], a), _se(ref.iloc[0], a))
            if auc - ref_auc > z * se:
                worse.append(
                    f"{a} AUC {auc:.3f} > λ=0's {ref_auc:.3f} (by {(auc - ref_auc) / se:.1f} "
                    "standard errors)"
                )
        if worse:
            df.at[i, "status"] = "diverged"
            df.at[i, "reason"] = "reversal: " + "; ".join(worse)
    return df


def _se(row: pd.Series, attribute: str) -> float:
    """Standard error of a row's strongest-attacker AUC: fold spread / √folds."""
    spread = row.get(f"{attribute}_max_roc_auc_spread", np.nan)
    folds = row.get("folds", 5)
    spread = 0.05 if spread is None or spread != spread else float(spread)
    folds = 5 if folds is None or folds != folds else int(folds)
    return spread / np.sqrt(max(folds, 2))
