"""A fresh probe of leakage during training: a readout that the user vectors never saw."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import train_test_split

from privrec.audit.attackers import ATTACKERS, build_estimator


def probe_leakage(
    vectors: np.ndarray, labels: np.ndarray, seed: int = 0, attacker: str = "logistic"
) -> dict[str, float]:
    """Fit a probe — ``attacker`` of the audit's suite, behind its standardisation — on half
    the users, score it on the other half.

    Returns ``auc`` (binary) or ``bacc`` (multi-class balanced accuracy) and ``leak``: the same
    figure rescaled so that chance is 0 and perfect is 1 (floored at 0).
    """
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < 2:
        return {}
    xtr, xte, ytr, yte = train_test_split(
        vectors, labels, test_size=0.5, stratify=labels, random_state=seed
    )
    clf = build_estimator(attacker, "classification", seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(xtr, ytr)
    if len(classes) == 2:
        auc = float(roc_auc_score(yte, _scores(clf, attacker, xte)))
        return {"auc": auc, "leak": max(0.0, (auc - 0.5) / 0.5)}
    bacc = float(balanced_accuracy_score(yte, clf.predict(xte)))
    chance = 1.0 / len(classes)
    return {"bacc": bacc, "leak": max(0.0, (bacc - chance) / (1 - chance))}


def _scores(clf, attacker: str, x: np.ndarray) -> np.ndarray:
    """The positive class's score: its probability, or the decision function of an attacker
    without probabilities (the SVMs), as the audit scores them."""
    if ATTACKERS[attacker].probabilistic:
        return clf.predict_proba(x)[:, 1]
    return np.asarray(clf.decision_function(x), dtype=np.float64)
