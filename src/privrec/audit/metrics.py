"""Leakage metrics from out-of-fold predictions.

All headline figures are computed on the pooled out-of-fold predictions (every audited user is
predicted exactly once, by a model that never saw them); the ``_std`` figures are the population
standard deviation (``ddof=0``) of the same metric computed fold by fold.

ROC-AUC is one-vs-rest, macro-averaged: for each class ``c`` the binary AUC of ``y == c``
against the score column ``c``, averaged over classes. Scores are ``predict_proba`` for
probabilistic attackers and raw ``decision_function`` values for SVMs (a binary decision value
``d`` becomes the columns ``(-d, d)``). For probabilities this equals scikit-learn's
``roc_auc_score(multi_class="ovr", average="macro")``; on decision values it needs no
normalisation because a binary AUC depends only on the ranking within a column. For two classes
it is the usual binary AUC.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    r2_score,
)

EPS = 1e-15

CATEGORICAL_METRICS = (
    "accuracy",
    "accuracy_std",
    "balanced_accuracy",
    "balanced_accuracy_std",
    "roc_auc",
    "roc_auc_std",
    "macro_f1",
    "majority",
    "gap",
    "chance_balanced",
    "log_loss",
    "mi_lower_bits",
    "ordinal_mae",
    "ordinal_mae_baseline",
)
CONTINUOUS_METRICS = ("r2", "r2_std", "mae", "mae_baseline")


def ovr_macro_auc(y: np.ndarray, scores: np.ndarray, n_classes: int) -> float:
    """One-vs-rest macro ROC-AUC of integer labels ``y`` in ``0..n_classes-1``.

    Classes absent from ``y`` (or present in every row) are left out of the average; NaN if
    none is left. Computed from midranks (:func:`macro_auc_of_labelings`): the same value as
    scikit-learn's ``roc_auc_score`` per class, ties counting one half.
    """
    return float(macro_auc_of_labelings(np.asarray(y)[None, :], scores, n_classes)[0])


def macro_auc_of_labelings(labels: np.ndarray, scores: np.ndarray, n_classes: int) -> np.ndarray:
    """One-vs-rest macro ROC-AUC (as :func:`ovr_macro_auc`) of the fixed ``scores``
    ``(n, n_classes)`` under each row of ``labels`` ``(P, n)``, rows being permutations of one
    another (same class counts). Returns ``(P,)``.

    The Mann–Whitney form: a class's AUC is the rank sum of its rows' scores (midranks) less
    its minimum, over the number of (positive, negative) pairs. With two classes it is the
    AUC of the second class's column alone."""
    labels = np.atleast_2d(labels)
    n = labels.shape[1]
    aucs = []
    for c in range(n_classes):
        if n_classes == 2 and c == 0:
            continue  # the binary AUC is that of class 1
        positive = labels == c
        n_pos = int(positive[0].sum())
        if n_pos in (0, n):
            continue
        ranks = rankdata(scores[:, c])  # midranks: ties count one half
        rank_sum = positive @ ranks
        aucs.append((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * (n - n_pos)))
    if not aucs:
        return np.full(len(labels), math.nan)
    return np.mean(aucs, axis=0)


def entropy_bits(y: np.ndarray, n_classes: int) -> float:
    """Empirical entropy of the labels, in bits."""
    counts = np.bincount(y, minlength=n_classes).astype(float)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def classification_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    scores: np.ndarray,
    proba: np.ndarray | None,
    fold: np.ndarray,
    n_classes: int,
) -> dict[str, float]:
    """Metrics of out-of-fold class predictions.

    Args:
        y: true codes ``0..n_classes-1`` (one per audited user).
        pred: predicted codes.
        scores: ``(n, n_classes)`` scores for ROC-AUC.
        proba: ``(n, n_classes)`` class probabilities, or None for non-probabilistic attackers
            (their log-loss and MI bound are NaN).
        fold: fold number of every user.
        n_classes: number of classes audited.
    """
    labels = np.arange(n_classes)
    per_fold: dict[str, list[float]] = {"accuracy": [], "balanced_accuracy": [], "roc_auc": []}
    for f in np.unique(fold):
        m = fold == f
        per_fold["accuracy"].append(accuracy_score(y[m], pred[m]))
        per_fold["balanced_accuracy"].append(_balanced(y[m], pred[m]))
        per_fold["roc_auc"].append(ovr_macro_auc(y[m], scores[m], n_classes))
    counts = np.bincount(y, minlength=n_classes)
    majority = float(counts.max() / counts.sum())
    acc = float(accuracy_score(y, pred))
    out = {
        "accuracy": acc,
        "accuracy_std": _std(per_fold["accuracy"]),
        "balanced_accuracy": _balanced(y, pred),
        "balanced_accuracy_std": _std(per_fold["balanced_accuracy"]),
        "roc_auc": ovr_macro_auc(y, scores, n_classes),
        "roc_auc_std": _std(per_fold["roc_auc"]),
        "macro_f1": float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)),
        "majority": majority,
        "gap": acc - majority,
        "chance_balanced": 1.0 / n_classes,
        "log_loss": math.nan,
        "mi_lower_bits": math.nan,
    }
    if proba is not None:
        p = np.clip(proba, EPS, 1.0)
        p = p / p.sum(axis=1, keepdims=True)
        ll = float(log_loss(y, p, labels=labels))
        out["log_loss"] = ll
        out["mi_lower_bits"] = max(0.0, entropy_bits(y, n_classes) - ll / math.log(2))
    return out


def ordinal_metrics(
    y: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray | None,
    fold: np.ndarray,
    ranks: np.ndarray,
) -> dict[str, float]:
    """Leakage of an ordered attribute (e.g. age groups) as a distance, which a 7-class
    balanced accuracy near chance can hide: the mean absolute error, in groups, of the
    attacker's guess, against that of always guessing the median group.

    Args:
        y: true class codes; ``ranks[code]`` is the class's position in the order.
        pred: predicted codes (the guess of attackers without probabilities).
        proba: class probabilities, or None; when given, the guess is the median of the
            predicted distribution (the guess that minimises the expected absolute error).
        fold: fold of every user; the baseline guesses the median group of the *other* folds.
        ranks: ``(n_classes,)`` position of each class code in the order.

    Returns ``ordinal_mae`` and ``ordinal_mae_baseline``.
    """
    true_rank = ranks[y]
    if proba is not None:
        by_rank = np.zeros((len(y), int(ranks.max()) + 1))
        by_rank[:, ranks] = proba
        cdf = np.cumsum(by_rank / by_rank.sum(axis=1, keepdims=True), axis=1)
        guess = (cdf < 0.5 - 1e-12).sum(axis=1)
    else:
        guess = ranks[pred]
    baseline = np.empty(len(y))
    for f in np.unique(fold):
        m = fold == f
        baseline[m] = np.floor(np.median(true_rank[~m])) if (~m).any() else np.median(true_rank)
    return {
        "ordinal_mae": float(np.mean(np.abs(guess - true_rank))),
        "ordinal_mae_baseline": float(np.mean(np.abs(baseline - true_rank))),
    }


def regression_metrics(
    y: np.ndarray, pred: np.ndarray, baseline: np.ndarray, fold: np.ndarray
) -> dict[str, float]:
    """R² and MAE of out-of-fold predictions; ``baseline`` holds each user's training-fold mean."""
    r2s = [float(r2_score(y[fold == f], pred[fold == f])) for f in np.unique(fold)]
    return {
        "r2": float(r2_score(y, pred)),
        "r2_std": _std(r2s),
        "mae": float(mean_absolute_error(y, pred)),
        "mae_baseline": float(mean_absolute_error(y, baseline)),
    }


def _balanced(y: np.ndarray, pred: np.ndarray) -> float:
    import warnings

    with warnings.catch_warnings():  # "y_pred contains classes not in y_true" on tiny folds
        warnings.simplefilter("ignore")
        return float(balanced_accuracy_score(y, pred))


def _std(values: list[float]) -> float:
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    return float(v.std()) if v.size else math.nan
