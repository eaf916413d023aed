"""Uncertainty of leakage figures: bootstrap intervals over users and permutation tests against
chance (with the correction for taking the maximum over attackers)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from privrec.audit import audit_vectors
from privrec.audit.metrics import ovr_macro_auc
from privrec.audit.uncertainty import (
    balanced_accuracy_of_weights,
    bootstrap_intervals,
    bootstrap_weights,
    macro_auc_of_labelings,
    macro_auc_of_weights,
    permutation_test,
    permuted_labels,
)
from privrec.data.attributes import Attribute, UserAttributes


def _scores(n: int, k: int, seed: int, ties: bool):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    s = rng.normal(size=(n, k)) + 0.8 * np.eye(k)[y]
    if ties:  # tree-like scores: few distinct values, and a class some fold never saw
        s = np.round(s, 0)
        s[rng.random(n) < 0.1, 0] = -1e9
    return y, s


@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_auc_of_labelings_matches_the_audit_metric(k, ties):
    y, s = _scores(400, k, seed=k, ties=ties)
    rng = np.random.default_rng(0)
    labelings = np.vstack([y, rng.permutation(y), rng.permutation(y)])
    fast = macro_auc_of_labelings(labelings, s, k)
    slow = [ovr_macro_auc(lab, s, k) for lab in labelings]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


@pytest.mark.parametrize("k", [2, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_weighted_figures_equal_the_figures_of_the_repeated_sample(k, ties):
    y, s = _scores(300, k, seed=10 + k, ties=ties)
    pred = s.argmax(axis=1)
    weights = bootstrap_weights(len(y), 4, seed=3)
    aucs = macro_auc_of_weights(y, s, k, weights)
    bals = balanced_accuracy_of_weights(y, pred, k, weights)
    for b, w in enumerate(weights):
        rows = np.repeat(np.arange(len(y)), w)
        assert aucs[b] == pytest.approx(ovr_macro_auc(y[rows], s[rows], k), abs=1e-9)
        assert bals[b] == pytest.approx(balanced_accuracy_score(y[rows], pred[rows]), abs=1e-9)
    assert (weights.sum(axis=1) == len(y)).all()


def test_permutations_stay_within_folds():
    rng = np.random.default_rng(1)
    y, fold = rng.integers(0, 3, 90), np.arange(90) % 4
    for lab in permuted_labels(y, fold, 20, seed=0):
        for f in range(4):
            assert sorted(lab[fold == f]) == sorted(y[fold == f])
    assert not (permuted_labels(y, fold, 5, seed=0) == y).all(axis=1).any()


def test_the_family_p_value_keeps_its_level_where_the_best_single_one_does_not():
    """Null data: five attackers whose scores carry nothing. Taking the smallest single p-value
    rejects far more often than 5 %; the max-over-attackers p-value does not."""
    n, reps, attackers = 240, 200, 5
    fold = np.arange(n) % 5
    single = family = 0
    for r in range(reps):
        rng = np.random.default_rng(1000 + r)
        y = rng.integers(0, 2, n)
        scores = {f"a{j}": rng.normal(size=(n, 2)) for j in range(attackers)}
        test = permutation_test(y, fold, scores, 2, n_perm=199, seed=r)
        single += min(test["p_value"].values()) < 0.05
        family += test["p_value_family"] < 0.05
    assert family / reps <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)  # at most its level
    assert single / reps > 0.12  # ≈ 1 − 0.95⁵ = 0.23: why the correction is needed


def test_a_planted_signal_is_distinguishable_and_its_interval_excludes_chance():
    rng = np.random.default_rng(7)
    n = 600
    y = rng.integers(0, 2, n)
    s = np.column_stack([np.zeros(n), rng.normal(size=n) + 0.5 * y])
    fold = np.arange(n) % 5
    test = permutation_test(y, fold, {"a": s}, 2, n_perm=199, seed=0)
    assert test["p_value_family"] == pytest.approx(1 / 200)
    ci = bootstrap_intervals(y, (s[:, 1] > 0.25).astype(int), s, 2, bootstrap_weights(n, 300, 0))
    auc = ovr_macro_auc(y, s, 2)
    assert 0.5 < ci["roc_auc_ci_low"] < auc < ci["roc_auc_ci_high"]
    assert ci["balanced_accuracy_ci_low"] > 0.5


def _audited(signal: float, seed: int):
    rng = np.random.default_rng(seed)
    n = 800
    labels = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 4))
    x[:, 0] += signal * labels
    ids = np.arange(n)
    attrs = UserAttributes(ids, {"a": Attribute("a", "categorical", labels, ("x", "y", "z"))})
    return audit_vectors(ids, x, attrs, attackers=["logistic", "knn"], folds=4, seed=0)


def test_the_audit_reports_intervals_and_whether_the_strongest_attacker_beats_chance():
    leaky = _audited(1.0, seed=2)
    head = leaky.headline.iloc[0]
    assert bool(head["beats_chance"]) is True
    assert head["roc_auc_ci_low"] < head["roc_auc"] < head["roc_auc_ci_high"]
    table = leaky.table
    assert table["p_value_family"].nunique() == 1  # one family-wise p per attribute
    assert (table["p_value"] >= table["p_value_family"]).all()
    # intervals for the headline attackers (by ROC-AUC and by balanced accuracy) only
    best = table["roc_auc"].idxmax()
    assert np.isfinite(table.loc[best, "roc_auc_ci_low"])
    clean = _audited(0.0, seed=2).headline.iloc[0]
    assert clean["roc_auc_ci_low"] < 0.5 + 0.02  # chance lies at (or near) the interval
    assert "beats_chance" in leaky.to_dict()["headline"][0]
