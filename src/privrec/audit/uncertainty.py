"""How sure a leakage figure is: bootstrap intervals over users and permutation tests against
chance, both computed from an audit's pooled out-of-fold scores (no attacker is refitted).

* **Bootstrap interval.** The audited users are resampled with replacement (``n_boot`` times,
  seeded) and the ROC-AUC and balanced accuracy recomputed on each resample from the fixed
  out-of-fold scores and predictions; the interval is the central ``level`` percentile range.
  It is the uncertainty over *which users* were audited, given the fitted attackers.
* **Permutation test.** Under the null hypothesis that the vectors carry nothing about the
  attribute, a user's out-of-fold score is independent of their own label (the attacker that
  scored them never saw it). Permuting the labels *within each test fold* (``n_perm`` times,
  seeded) therefore draws from the null distribution of the pooled ROC-AUC exactly, without
  refitting. ``p = (1 + #{null ≥ observed}) / (1 + n_perm)``.
* **The maximum over attackers.** The headline reports the strongest of several attackers,
  which is biased upwards under the null. :func:`permutation_test` applies each permutation to
  every attacker of the attribute at once (they share users and folds) and compares the
  observed maximum with the null distribution of the maximum (Westfall–Young max-T), so the
  family-wise p-value keeps its level however many attackers were tried.

All functions are pure: arrays in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from privrec.audit.metrics import macro_auc_of_labelings

LEVEL = 0.95
"""Confidence level of the intervals and of the "distinguishable from chance" verdict."""
N_BOOT = 500
"""Bootstrap resamples per (attribute, attacker)."""
N_PERM = 1000
"""Label permutations per attribute (shared by its attackers)."""
UNCERTAINTY_METRICS: tuple[str, ...] = (
    "roc_auc_ci_low",
    "roc_auc_ci_high",
    "balanced_accuracy_ci_low",
    "balanced_accuracy_ci_high",
    "p_value",
    "p_value_family",
)
"""The audit table's uncertainty columns (categorical attributes): the bootstrap intervals,
this attacker's permutation p-value against chance, and the attribute's family-wise p-value
of its strongest attacker (the same in every row of the attribute)."""


def macro_auc_of_weights(
    y: np.ndarray, scores: np.ndarray, n_classes: int, weights: np.ndarray
) -> np.ndarray:
    """One-vs-rest macro ROC-AUC of ``scores`` with user weights ``(B, n)`` (bootstrap counts):
    the AUC of the resample that holds user ``i`` ``weights[b, i]`` times. Returns ``(B,)``."""
    weights = np.atleast_2d(weights).astype(np.float32)
    aucs = []
    for c in range(n_classes):
        positive = y == c
        if positive.all() or not positive.any() or (n_classes == 2 and c == 0):
            continue  # a binary AUC is class 1's
        order = np.argsort(scores[:, c], kind="stable")
        s = scores[order, c]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # groups of tied scores
        w = weights[:, order]
        pos_w = np.add.reduceat(w * positive[order], starts, axis=1)
        neg_w = np.add.reduceat(w * ~positive[order], starts, axis=1)
        below = np.cumsum(neg_w, axis=1) - neg_w
        wins = (pos_w * (below + 0.5 * neg_w)).sum(axis=1, dtype=np.float64)
        pairs = pos_w.sum(axis=1, dtype=np.float64) * neg_w.sum(axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            aucs.append(np.where(pairs > 0, wins / pairs, np.nan))
    if not aucs:
        return np.full(len(weights), math.nan)
    if n_classes == 2:
        return np.asarray(aucs[0], dtype=float)
    with np.errstate(invalid="ignore"):
        stacked = np.vstack(aucs)
        counted = (~np.isnan(stacked)).sum(axis=0)
        return np.where(counted > 0, np.nansum(stacked, axis=0) / np.maximum(counted, 1), np.nan)


def balanced_accuracy_of_weights(
    y: np.ndarray, pred: np.ndarray, n_classes: int, weights: np.ndarray
) -> np.ndarray:
    """Balanced accuracy (mean recall over the classes present) with user weights ``(B, n)``.
    Returns ``(B,)``."""
    weights = np.atleast_2d(weights).astype(np.float64)
    hit = pred == y
    recalls = []
    for c in range(n_classes):
        members = y == c
        if not members.any():
            continue
        total = weights[:, members].sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            recalls.append(
                np.where(total > 0, weights[:, members & hit].sum(axis=1) / total, np.nan)
            )
    stacked = np.vstack(recalls)
    counted = (~np.isnan(stacked)).sum(axis=0)
    return np.nansum(stacked, axis=0) / np.maximum(counted, 1)


def bootstrap_weights(n: int, n_boot: int, seed: int | tuple[int, ...]) -> np.ndarray:
    """``(n_boot, n)`` resampling counts: row ``b`` holds how often each of ``n`` users is drawn
    in resample ``b`` (``n`` draws with replacement)."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n)


def bootstrap_intervals(
    y: np.ndarray,
    pred: np.ndarray,
    scores: np.ndarray,
    n_classes: int,
    weights: np.ndarray,
    level: float = LEVEL,
) -> dict[str, float]:
    """Percentile intervals of ROC-AUC and balanced accuracy over the resamples ``weights``
    (from :func:`bootstrap_weights`): ``roc_auc_ci_low`` … ``balanced_accuracy_ci_high``."""
    tail = 100 * (1 - level) / 2
    out = {}
    for name, values in (
        ("roc_auc", macro_auc_of_weights(y, scores, n_classes, weights)),
        ("balanced_accuracy", balanced_accuracy_of_weights(y, pred, n_classes, weights)),
    ):
        finite = values[np.isfinite(values)]
        low, high = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (math.nan,) * 2
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = float(low), float(high)
    return out


def permuted_labels(
    y: np.ndarray, fold: np.ndarray, n_perm: int, seed: int | tuple[int, ...]
) -> np.ndarray:
    """``(n_perm, n)`` labelings: ``y`` permuted within each fold (the null of "scores carry
    nothing about the labels" for out-of-fold scores)."""
    rng = np.random.default_rng(seed)
    small = np.int16 if len(y) and y.max() < 2**15 else np.int64
    out = np.empty((n_perm, len(y)), dtype=small)
    for f in np.unique(fold):
        members = np.flatnonzero(fold == f)
        out[:, members] = rng.permuted(np.tile(y[members].astype(small), (n_perm, 1)), axis=1)
    return out


def permutation_test(
    y: np.ndarray,
    fold: np.ndarray,
    scores: Mapping[str, np.ndarray],
    n_classes: int,
    n_perm: int = N_PERM,
    seed: int | tuple[int, ...] = 0,
) -> dict[str, object]:
    """Permutation tests of the out-of-fold ROC-AUC of every attacker in ``scores`` (attacker
    → ``(n, n_classes)`` scores on the same users and folds) against chance.

    Returns ``{"p_value": {attacker: p}, "p_value_family": p, "n_perm": n_perm}``:
    ``p_value`` tests each attacker alone; ``p_value_family`` tests the largest observed AUC
    against the null distribution of the largest AUC over all the attackers (one permutation
    applied to all of them), so it stays valid for the maximum.
    """
    labelings = permuted_labels(y, fold, n_perm, seed)
    observed, null = {}, {}
    for name, s in scores.items():
        observed[name] = float(macro_auc_of_labelings(y[None, :], s, n_classes)[0])
        null[name] = macro_auc_of_labelings(labelings, s, n_classes)
    p_value = {
        name: float((1 + np.sum(null[name] >= observed[name] - 1e-12)) / (1 + n_perm))
        for name in scores
    }
    finite = [name for name in scores if np.isfinite(observed[name])]
    if not finite:
        family = math.nan
    else:
        best = max(observed[name] for name in finite)
        null_max = np.nanmax(np.vstack([null[name] for name in finite]), axis=0)
        family = float((1 + np.sum(null_max >= best - 1e-12)) / (1 + n_perm))
    return {"p_value": p_value, "p_value_family": family, "n_perm": n_perm}
