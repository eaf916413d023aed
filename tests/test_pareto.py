"""Pareto front on hand-made toy points."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from privrec.errors import ConfigError
from privrec.experiments.pareto import (
    add_leakage,
    aggregate_seeds,
    normalised_accuracy,
    normalised_auc,
    pareto_front,
    pareto_mask,
)


def test_pareto_mask_toy_points():
    # (hr ↑, leak ↓):   A best hr, B balanced, C dominated by B, D most private, E dominated by A
    hr = [0.9, 0.7, 0.6, 0.3, 0.8]
    leak = [0.8, 0.3, 0.4, 0.0, 0.9]
    assert pareto_mask(hr, leak).tolist() == [True, True, False, True, False]


def test_pareto_mask_ties_and_nan():
    assert pareto_mask([0.5, 0.5], [0.2, 0.2]).tolist() == [True, True]  # identical: both stay
    assert pareto_mask([0.5, 0.5], [0.2, 0.3]).tolist() == [True, False]  # same hr, more leak
    assert pareto_mask([0.5, 0.6], [0.2, 0.2]).tolist() == [False, True]  # same leak, less hr
    assert pareto_mask([0.9, np.nan, 0.1], [0.1, 0.0, 0.5]).tolist() == [True, False, False]
    assert pareto_mask([], []).tolist() == []
    with pytest.raises(ConfigError):
        pareto_mask([1, 2], [1])


def test_normalisations():
    assert normalised_auc([0.5, 0.75, 1.0, 0.3]).tolist() == [0.0, 0.5, 1.0, 0.0]
    assert normalised_accuracy([0.7, 0.85, 0.6], [0.7, 0.7, 0.7]).tolist() == pytest.approx(
        [0.0, 0.5, 0.0]
    )


def _toy_runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": list("abcdefg"),
            "status": ["ok", "ok", "ok", "ok", "diverged", "ok", "ok"],
            "lam": [0, 0, 0.1, 0.1, 10, 1, 1],
            "seed": [0, 1, 0, 1, 0, 0, 1],
            "embedding_size": [10] * 7,
            "val_hr@10": [0.060, 0.062, 0.058, 0.056, np.nan, 0.030, 0.034],
            "test_hr@10": [0.061, 0.059, 0.055, 0.057, np.nan, 0.031, 0.029],
            "gender_max_roc_auc": [0.85, 0.82, 0.55, 0.57, np.nan, 0.52, 0.50],
            "age_max_roc_auc": [0.70, 0.72, 0.66, 0.67, np.nan, 0.51, 0.51],
        }
    )


def test_add_leakage_combined_is_max_over_attributes():
    df = add_leakage(_toy_runs(), ["gender", "age"])
    assert df["leak_gender"].iloc[0] == pytest.approx(0.7)
    assert df["leak_age"].iloc[2] == pytest.approx(0.32)
    assert df["leak_combined"].iloc[2] == pytest.approx(0.32)  # age leaks more than gender
    assert math.isnan(df["leak_combined"].iloc[4])  # diverged: no audit
    with pytest.raises(ConfigError, match="no audited attribute"):
        add_leakage(pd.DataFrame({"x": [1]}), [])


def test_front_over_runs_excludes_diverged_and_selects_on_validation():
    df = add_leakage(_toy_runs(), ["gender", "age"])
    df.loc[4, ["val_hr@10", "leak_combined"]] = [0.99, 0.0]  # a diverged run that "wins"
    front = pareto_front(df, "combined")
    assert "e" not in set(front["run_id"])
    # b: best validation HR; c: less leak; g: less still; a by b, d by c, f by g dominated
    assert list(front["run_id"]) == ["b", "c", "g"]
    # test HR never decides: a has the best test HR but is dominated on validation
    assert df.loc[0, "test_hr@10"] == df["test_hr@10"].max()


def test_front_over_seed_means():
    df = add_leakage(_toy_runs(), ["gender", "age"])
    conf = aggregate_seeds(df, ["embedding_size", "lam"], attributes=["gender", "age"])
    assert list(conf["lam"]) == [0, 0.1, 10, 1]
    assert list(conf["n_ok"]) == [2, 2, 0, 2] and list(conf["n_diverged"]) == [0, 0, 1, 0]
    row = conf.iloc[0]
    assert row["val_hr@10"] == pytest.approx(0.061)
    assert row["val_hr@10_std"] == pytest.approx(np.std([0.060, 0.062], ddof=1))
    front = pareto_front(conf, "gender")
    assert list(front["lam"]) == [0, 0.1, 1]  # every finished config trades hr for privacy
    front_age = pareto_front(conf, "age")
    assert 10 not in set(front_age["lam"])  # the all-diverged config is never a candidate


def test_flag_reversals_marks_worse_than_undefended():
    import pandas as pd

    from privrec.experiments.pareto import flag_reversals

    df = pd.DataFrame(
        {
            "dataset": ["d"] * 6,
            "embedding_size": [10, 10, 10, 50, 20, 20],
            "seed": [0, 0, 0, 0, 0, 0],
            "lambda": [0.0, 0.1, 10.0, 10.0, 0.0, 1.0],
            "status": ["ok"] * 6,
            "reason": [""] * 6,
            "folds": [5] * 6,
            "gender_max_roc_auc": [0.80, 0.68, 0.83, 0.99, 0.70, 0.76],
            # tight folds at size 10; the fold spread seen on ML-1M (≈ 0.055) at size 20
            "gender_max_roc_auc_spread": [0.01, 0.01, 0.01, 0.01, 0.055, 0.055],
        }
    )
    out = flag_reversals(df, ["gender"])
    # size 10: +0.03 is 4.7 standard errors; size 50 has no λ=0 run; size 20: +0.06 within noise
    assert out["status"].tolist() == ["ok", "ok", "diverged", "ok", "ok", "ok"]
    assert out.loc[2, "reason"].startswith("reversal: gender AUC 0.830 > λ=0's 0.800")
    df.loc[5, "gender_max_roc_auc"] = 0.82  # +0.12 at the same spread: 3.4 standard errors
    assert flag_reversals(df, ["gender"]).loc[5, "status"] == "diverged"
    assert df["status"].tolist() == ["ok"] * 6  # input untouched
