"""Ordinal leakage of ordered attributes (age groups): the attacker's guess as a distance in
groups, against guessing the median group — what a 7-class balanced accuracy can hide."""

from __future__ import annotations

import math

import numpy as np
import pytest

from privrec.audit import audit_vectors
from privrec.audit.metrics import ordinal_metrics
from privrec.data.attributes import Attribute, UserAttributes


def test_ordinal_metrics_by_hand():
    ranks = np.array([2, 0, 1])  # codes 0, 1, 2 are the 3rd, 1st and 2nd groups
    y = np.array([1, 2, 0, 0])  # ranks 0, 1, 2, 2
    fold = np.array([0, 0, 1, 1])
    exact = ordinal_metrics(y, y, None, fold, ranks)
    assert exact["ordinal_mae"] == 0
    # fold 0 guesses the median rank of fold 1 (2), fold 1 that of fold 0 (0.5 → 0)
    assert exact["ordinal_mae_baseline"] == pytest.approx((2 + 1 + 2 + 2) / 4)
    # with probabilities, the guess is the median of the predicted distribution
    proba = np.zeros((4, 3))
    proba[:, 0] = 0.4  # rank 2
    proba[:, 1] = 0.35  # rank 0
    proba[:, 2] = 0.25  # rank 1: cdf over ranks 0.35, 0.60, 1.0 → median rank 1
    out = ordinal_metrics(y, np.zeros(4, dtype=int), proba, fold, ranks)
    assert out["ordinal_mae"] == pytest.approx((1 + 0 + 1 + 1) / 4)


def _audit(classes, signal, seed=0):
    rng = np.random.default_rng(seed)
    n = 900
    codes = rng.integers(0, len(classes), n)
    order = np.argsort(np.argsort([float(c) for c in classes])) if classes[0][0].isdigit() else None
    x = rng.normal(size=(n, 3))
    if order is not None:
        x[:, 0] += signal * order[codes]
    ids = np.arange(n)
    attrs = UserAttributes(ids, {"g": Attribute("g", "categorical", codes, tuple(classes))})
    return audit_vectors(ids, x, attrs, attackers=["logistic"], folds=3, seed=0).headline.iloc[0]


def test_an_audit_of_ordered_groups_reports_the_ordinal_error():
    leaky = _audit(("35", "1", "18", "25", "45"), signal=1.0)  # names in no particular order
    assert leaky["min_ordinal_mae"] < 0.8 * leaky["ordinal_mae_baseline"]
    clean = _audit(("35", "1", "18", "25", "45"), signal=0.0)
    assert clean["min_ordinal_mae"] >= 0.9 * clean["ordinal_mae_baseline"]
    # unordered classes: no ordinal figure
    assert math.isnan(_audit(("a", "b", "c"), signal=0.0)["min_ordinal_mae"])
