"""Leakage audit: chance on random vectors, near-perfect on encoded labels, bad input."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from privrec.audit import (
    ATTACKER_PRESETS,
    ATTACKERS,
    HEADLINE_COLUMNS,
    TABLE_COLUMNS,
    AuditWarning,
    audit_vectors,
    write_audit,
)
from privrec.audit.metrics import entropy_bits, ovr_macro_auc
from privrec.data.attributes import Attribute, UserAttributes
from privrec.errors import ConfigError, DataError


def _attrs(ids, **columns) -> UserAttributes:
    cols = {}
    for name, values in columns.items():
        values = np.asarray(values)
        if values.dtype.kind == "f":
            cols[name] = Attribute(name, "continuous", values)
        else:
            k = int(values.max()) + 1
            cols[name] = Attribute(name, "categorical", values, tuple(f"c{i}" for i in range(k)))
    return UserAttributes(np.asarray(ids), cols)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AuditWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def random_binary():
    rng = np.random.default_rng(1)
    n = 2000
    ids = np.arange(1, n + 1)
    return ids, rng.standard_normal((n, 8)), _attrs(ids, g=rng.integers(0, 2, n))


# --- the API's shape ------------------------------------------------------------------------


def test_presets_cover_the_design():
    assert ATTACKER_PRESETS["fast"] == ("logistic",)
    assert set(ATTACKER_PRESETS["paper"]) == {
        "logistic",
        "linear_svm_c0.1",
        "linear_svm_c1",
        "linear_svm_c10",
        "rbf_svm",
        "decision_tree",
        "random_forest",
        "gradient_boosting",
    }
    assert {"mlp", "knn", "hist_gb_tuned", "rbf_svm", "random_forest"} <= set(
        ATTACKER_PRESETS["strong"]
    )
    assert set(ATTACKER_PRESETS["all"]) == set(ATTACKER_PRESETS["paper"]) | set(
        ATTACKER_PRESETS["strong"]
    )
    assert all(n in ATTACKERS for p in ATTACKER_PRESETS.values() for n in p)


def test_random_vectors_are_at_chance(random_binary):
    ids, X, attrs = random_binary
    r = audit_vectors(ids, X, attrs, attackers="fast", seed=0)
    assert list(r.table.columns) == list(TABLE_COLUMNS)
    assert list(r.headline.columns) == list(HEADLINE_COLUMNS)
    row = r.table.iloc[0]
    assert row["n_users"] == 2000
    assert abs(row["roc_auc"] - 0.5) < 0.05
    assert abs(row["balanced_accuracy"] - 0.5) < 0.05
    assert row["chance_balanced"] == 0.5
    assert row["mi_lower_bits"] < 0.02
    assert row["gap"] == pytest.approx(row["accuracy"] - row["majority"])
    assert 0 < row["roc_auc_std"] < 0.1
    assert math.isnan(row["r2"])
    assert r.leakage("g") == row["roc_auc"]
    assert r.headline.iloc[0]["strongest_attacker"] == "logistic"
    assert r.info["n_matched"] == 2000 and r.info["folds"] == 5 and r.info["seed"] == 0


@pytest.mark.slow
def test_paper_preset_at_chance_on_random_vectors():
    # Smaller problem (500 users) so the whole suite runs in seconds; the AUC of a chance-level
    # attacker then has a standard error ≈ 0.026, so the bound is the looser 0.5 ± 0.12.
    rng = np.random.default_rng(2)
    n = 500
    ids = np.arange(n)
    attrs = _attrs(ids, g=rng.integers(0, 2, n))
    r = audit_vectors(ids, rng.standard_normal((n, 5)), attrs, attackers="paper", jobs=1)
    assert list(r.table["attacker"]) == list(ATTACKER_PRESETS["paper"])
    assert (abs(r.table["roc_auc"] - 0.5) < 0.12).all(), r.table[["attacker", "roc_auc"]]
    svm = r.table["attacker"].str.contains("svm")
    assert r.table.loc[svm, "log_loss"].isna().all()  # no probabilities: no log-loss / MI
    assert r.table.loc[~svm, "mi_lower_bits"].notna().all()
    assert (r.table.loc[~svm, "mi_lower_bits"] < 0.05).all()


@pytest.mark.parametrize("attacker", list(ATTACKERS))
def test_every_attacker_reads_an_encoded_label(attacker):
    rng = np.random.default_rng(3)
    n = 400
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((n, 4))
    X[:, 0] += 4.0 * (2 * y - 1)
    ids = np.arange(n)
    r = audit_vectors(ids, X, _attrs(ids, g=y), attackers=[attacker], seed=1)
    assert r.table.iloc[0]["roc_auc"] > 0.95
    assert r.table.iloc[0]["accuracy"] > 0.9


def test_mi_bound_for_a_perfectly_encoded_balanced_binary_label():
    rng = np.random.default_rng(4)
    n = 1000
    y = np.repeat([0, 1], n // 2)
    X = rng.standard_normal((n, 3))
    X[:, 1] = 6.0 * (2 * y - 1) + rng.standard_normal(n)
    ids = np.arange(n)
    r = audit_vectors(ids, X, _attrs(ids, g=y), attackers="fast")
    assert r.table.iloc[0]["roc_auc"] > 0.99
    assert r.headline.iloc[0]["mi_lower_bits"] > 0.5  # H(Y) = 1 bit
    assert r.headline.iloc[0]["mi_lower_bits"] <= 1.0 + 1e-9


def test_multiclass_metrics():
    rng = np.random.default_rng(5)
    n = 900
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 6))
    X[np.arange(n), y] += 4.0
    ids = np.arange(n)
    r = audit_vectors(
        ids, X, _attrs(ids, age=y), attackers="logistic,linear_svm_c1", folds=3, seed=2
    )
    assert (r.table["roc_auc"] > 0.95).all()
    assert r.table["chance_balanced"].tolist() == pytest.approx([1 / 3, 1 / 3])
    h = r.headline.iloc[0]
    assert h["max_roc_auc"] == r.table["roc_auc"].max()
    assert h["max_accuracy"] == r.table["accuracy"].max()
    assert h["roc_auc"] == h["max_roc_auc"]
    assert r.info["folds"] == 3


def test_continuous_attribute():
    rng = np.random.default_rng(6)
    n = 600
    X = rng.standard_normal((n, 5))
    ids = np.arange(n)
    encoded = 2.0 * X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(n)
    noise = rng.standard_normal(n)
    attrs = _attrs(ids, enc=encoded, noise=noise)
    r = audit_vectors(ids, X, attrs, attackers="fast")
    t = r.table.set_index("attribute")
    assert t.loc["enc", "attacker"] == "ridge"
    assert t.loc["enc", "r2"] > 0.9
    assert t.loc["enc", "mae"] < 0.5 * t.loc["enc", "mae_baseline"]
    assert t.loc["noise", "r2"] <= 0.02
    assert math.isnan(t.loc["enc", "roc_auc"])
    assert r.headline.set_index("attribute").loc["enc", "max_r2"] == t.loc["enc", "r2"]
    assert r.leakage("enc", "r2") == t.loc["enc", "r2"]


@pytest.mark.slow
def test_paper_regressors_on_an_encoded_continuous_attribute():
    rng = np.random.default_rng(7)
    n = 300
    X = rng.standard_normal((n, 3))
    ids = np.arange(n)
    r = audit_vectors(ids, X, _attrs(ids, v=3.0 * X[:, 0]), attackers="paper")
    assert list(r.table["attacker"]) == [
        "ridge",
        "rbf_svr",
        "decision_tree",
        "random_forest",
        "gradient_boosting",
    ]
    assert (r.table["r2"] > 0.7).all(), r.table[["attacker", "r2"]]


@pytest.mark.slow
def test_results_are_reproducible_and_parallel_matches_serial():
    rng = np.random.default_rng(8)
    n = 300
    ids = np.arange(n)
    X = rng.standard_normal((n, 4))
    attrs = _attrs(ids, g=rng.integers(0, 2, n))
    a = audit_vectors(ids, X, attrs, attackers="logistic,decision_tree", seed=3)
    b = audit_vectors(ids, X, attrs, attackers="logistic,decision_tree", seed=3, jobs=2)
    cols = ["accuracy", "roc_auc", "balanced_accuracy", "log_loss"]
    pd.testing.assert_frame_equal(a.table[cols], b.table[cols])


def test_join_by_id_across_dtypes_and_order():
    rng = np.random.default_rng(9)
    n = 400
    y = rng.integers(0, 2, n)
    attrs = _attrs(np.arange(1, n + 1), g=y)
    X = rng.standard_normal((n, 3))
    X[:, 0] += 5 * y
    perm = rng.permutation(n)
    ids_str = np.array([str(i) for i in np.arange(1, n + 1)])[perm]
    r = audit_vectors(ids_str, X[perm], attrs, attackers="fast")
    assert r.table.iloc[0]["roc_auc"] > 0.95
    assert r.info["n_matched"] == n


def test_unknown_values_are_left_out():
    rng = np.random.default_rng(10)
    n = 300
    y = rng.integers(0, 2, n)
    y[:50] = -1
    ids = np.arange(n)
    X = rng.standard_normal((n, 3))
    r = audit_vectors(ids, X, _attrs(ids, g=y), attackers="fast", progress=True)
    assert r.table.iloc[0]["n_users"] == 250
    assert r.info["attributes"]["g"]["n_known"] == 250
    assert r.info["attributes"]["g"]["n_unknown_or_unmatched"] == 50


def test_to_dict_and_write_audit(tmp_path, random_binary):
    ids, X, attrs = random_binary
    r = audit_vectors(ids[:300], X[:300], attrs.align_to(ids[:300]), attackers="fast")
    d = r.to_dict()
    json.dumps(d, allow_nan=False)
    assert set(d) == {"info", "headline", "table"}
    assert d["table"][0]["r2"] is None
    out = tmp_path / "audit"
    out.mkdir()
    (out / "audit.csv").write_text("stale")
    assert write_audit(r, out) == out
    assert {p.name for p in out.iterdir()} == {"audit.json", "audit.csv", "audit.md"}
    loaded = json.loads((out / "audit.json").read_text())
    assert loaded["headline"][0]["strongest_attacker"] == "logistic"
    csv = pd.read_csv(out / "audit.csv")
    assert list(csv.columns) == list(TABLE_COLUMNS)
    md = (out / "audit.md").read_text()
    assert "strongest attacker: logistic" in md and "| logistic |" in md


def test_leakage_errors(random_binary):
    ids, X, attrs = random_binary
    r = audit_vectors(ids[:200], X[:200], attrs.align_to(ids[:200]), attackers="fast")
    with pytest.raises(DataError, match="not audited"):
        r.leakage("age")
    with pytest.raises(DataError, match="unknown metric"):
        r.leakage("g", "auc")


# --- bad input ------------------------------------------------------------------------------


def test_no_join_is_an_error():
    attrs = _attrs(np.arange(100), g=np.arange(100) % 2)
    with pytest.raises(DataError, match="none of the 50 vector user ids"):
        audit_vectors(np.arange(1000, 1050), np.zeros((50, 2)), attrs, attackers="fast")


def test_poor_join_warns_and_is_recorded():
    rng = np.random.default_rng(11)
    attrs = _attrs(np.arange(100), g=np.arange(100) % 2)
    ids = np.arange(60, 260)  # 40 of 200 vectors match
    with pytest.warns(AuditWarning, match="only 40 users joined"):
        r = audit_vectors(ids, rng.standard_normal((200, 2)), attrs, attackers="fast")
    assert r.info["n_matched"] == 40
    assert r.info["n_unmatched_vectors"] == 160
    assert r.info["n_attribute_users_without_vector"] == 60
    assert any("only 40 users joined" in w for w in r.info["warnings"])
    assert r.table.iloc[0]["n_users"] == 40


def test_duplicate_ids_are_an_error():
    attrs = _attrs(np.arange(10), g=np.arange(10) % 2)
    ids = np.array([0, 1, 2, 2, 4, 5, 6, 7, 8, 8])
    with pytest.raises(DataError, match=r"2 user id\(s\) appear more than once.*2, 8"):
        audit_vectors(ids, np.zeros((10, 2)), attrs, attackers="fast")


def test_non_finite_vectors_are_an_error():
    X = np.zeros((10, 3))
    X[2, 1] = np.nan
    X[5, 0] = np.inf
    X[5, 2] = np.nan
    attrs = _attrs(np.arange(10), g=np.arange(10) % 2)
    with pytest.raises(DataError, match=r"2 of 10 user vectors contain NaN or inf \(users 2, 5\)"):
        audit_vectors(np.arange(10), X, attrs, attackers="fast")


@pytest.mark.parametrize("shape", [(10,), (10, 2, 2)])
def test_vectors_must_be_2d(shape):
    attrs = _attrs(np.arange(10), g=np.arange(10) % 2)
    with pytest.raises(DataError, match="2-D"):
        audit_vectors(np.arange(10), np.zeros(shape), attrs, attackers="fast")


def test_ids_must_match_rows_and_vectors_be_numeric():
    attrs = _attrs(np.arange(10), g=np.arange(10) % 2)
    with pytest.raises(DataError, match="10 user vectors but 9 user ids"):
        audit_vectors(np.arange(9), np.zeros((10, 2)), attrs, attackers="fast")
    with pytest.raises(DataError, match="real numbers"):
        audit_vectors(np.arange(10), np.full((10, 2), "a"), attrs, attackers="fast")


def test_single_class_attribute_is_skipped_with_a_warning():
    rng = np.random.default_rng(12)
    n = 200
    ids = np.arange(n)
    attrs = UserAttributes(
        ids,
        {
            "one": Attribute("one", "categorical", np.zeros(n, dtype=np.int64), ("m", "f")),
            "g": Attribute("g", "categorical", rng.integers(0, 2, n), ("m", "f")),
        },
    )
    with pytest.warns(AuditWarning, match="attribute 'one': 1 known class"):
        r = audit_vectors(ids, rng.standard_normal((n, 2)), attrs, attackers="fast")
    assert r.attributes == ["g"]
    assert r.info["attributes"]["one"]["skipped"]
    assert any("'one'" in w for w in r.info["warnings"])
    # nothing left at all → an error naming why
    with (
        pytest.raises(DataError, match="no attribute could be audited.*'one'"),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore", AuditWarning)
        audit_vectors(ids, rng.standard_normal((n, 2)), attrs, names=["one"], attackers="fast")


def test_rare_class_is_dropped_with_a_warning():
    rng = np.random.default_rng(13)
    n = 300
    y = rng.integers(0, 2, n)
    y[:3] = 2  # 3 members < 5 folds
    ids = np.arange(n)
    attrs = _attrs(ids, g=y)
    with pytest.warns(AuditWarning, match=r"class\(es\) c2 \(3 users\) have fewer members"):
        r = audit_vectors(ids, rng.standard_normal((n, 2)), attrs, attackers="fast")
    assert r.table.iloc[0]["n_users"] == n - 3
    assert r.table.iloc[0]["chance_balanced"] == 0.5
    assert r.info["attributes"]["g"]["dropped_classes"] == {"c2": 3}
    assert any("c2" in w for w in r.info["warnings"])


def test_config_errors():
    attrs = _attrs(np.arange(20), g=np.arange(20) % 2)
    X = np.zeros((20, 2))
    with pytest.raises(ConfigError, match="unknown attacker or preset 'nope'"):
        audit_vectors(np.arange(20), X, attrs, attackers="logistic,nope")
    with pytest.raises(ConfigError, match="folds"):
        audit_vectors(np.arange(20), X, attrs, attackers="fast", folds=1)
    with pytest.raises(DataError, match="unknown attribute 'age'"):
        audit_vectors(np.arange(20), X, attrs, names=["age"], attackers="fast")


# --- metrics --------------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_classes=st.integers(2, 5),
    n=st.integers(20, 80),
)
def test_ovr_macro_auc_matches_sklearn_on_probabilities(seed, n_classes, n):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, n)])
    p = rng.dirichlet(np.ones(n_classes), size=len(y))
    ours = ovr_macro_auc(y, p, n_classes)
    if n_classes == 2:
        ref = roc_auc_score(y, p[:, 1])
    else:
        ref = roc_auc_score(y, p, multi_class="ovr", average="macro", labels=range(n_classes))
    assert ours == pytest.approx(ref)
    # decision values: any per-column monotone transform leaves the AUC unchanged
    assert ovr_macro_auc(y, 3 * np.log(p) - 1, n_classes) == pytest.approx(ours)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_classes=st.integers(2, 4), levels=st.integers(2, 5))
def test_ovr_macro_auc_counts_ties_one_half_like_sklearn(seed, n_classes, levels):
    rng = np.random.default_rng(seed)
    y = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, 60)])
    scores = rng.integers(0, levels, size=(len(y), n_classes)).astype(float)  # many ties
    ref = [roc_auc_score(y == c, scores[:, c]) for c in range(n_classes)]
    expected = ref[1] if n_classes == 2 else float(np.mean(ref))
    assert ovr_macro_auc(y, scores, n_classes) == pytest.approx(expected, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(counts=st.lists(st.integers(1, 50), min_size=2, max_size=6))
def test_entropy_bits(counts):
    y = np.repeat(np.arange(len(counts)), counts)
    p = np.asarray(counts) / sum(counts)
    assert entropy_bits(y, len(counts)) == pytest.approx(-(p * np.log2(p)).sum())
    assert 0 <= entropy_bits(y, len(counts)) <= np.log2(len(counts)) + 1e-12
