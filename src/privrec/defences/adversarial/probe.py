"""A fresh probe of leakage during training: a readout that the user vectors never saw."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def probe_leakage(vectors: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Fit a logistic probe on half the users, score it on the other half.

    Returns ``auc`` (binary) or ``bacc`` (multi-class balanced accuracy) and ``leak``: the same
    figure rescaled so that chance is 0 and perfect is 1 (floored at 0).
    """
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        return {}
    xtr, xte, ytr, yte = train_test_split(
        vectors, labels, test_size=0.5, stratify=labels, random_state=seed
    )
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(xtr, ytr)
    if len(classes) == 2:
        auc = float(roc_auc_score(yte, clf.predict_proba(xte)[:, 1]))
        return {"auc": auc, "leak": max(0.0, (auc - 0.5) / 0.5)}
    bacc = float(balanced_accuracy_score(yte, clf.predict(xte)))
    chance = 1.0 / len(classes)
    return {"bacc": bacc, "leak": max(0.0, (bacc - chance) / (1 - chance))}
