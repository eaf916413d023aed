"""Post-hoc concept erasure math (LEACE, INLP) on vectors with a linearly planted attribute.

The attacker here is scikit-learn's logistic regression, trained on the users whose labels the
eraser saw and tested on users whose labels it did not see (held-out users).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from privrec.data.attributes import Attribute, UserAttributes
from privrec.defences.erasure import AffineEraser, erase_vectors, fit_eraser
from privrec.errors import ConfigError, DataError

N, DIM = 3000, 8


@pytest.fixture(scope="module")
def planted():
    """Vectors encoding a binary (70/30) and a 4-class attribute linearly, plus noise."""
    rng = np.random.default_rng(0)
    g = (rng.random(N) < 0.3).astype(np.int64)
    c = rng.integers(0, 4, size=N)
    x = rng.standard_normal((N, DIM))
    x += np.outer(g, rng.standard_normal(DIM)) * 0.6
    x += rng.standard_normal((4, DIM))[c] * 0.5
    x = (x * rng.uniform(0.3, 3.0, size=DIM)).astype(np.float32)  # unequal scales
    ids = np.array([f"u{i}" for i in range(N)])
    attrs = UserAttributes(
        ids,
        {
            "g": Attribute("g", "categorical", g, ("m", "f")),
            "c": Attribute("c", "categorical", c, ("a", "b", "c", "d")),
            "score": Attribute("score", "continuous", x[:, 0] * 0.7 + rng.standard_normal(N)),
        },
    )
    hidden = rng.random(N) < 1 / 3
    return ids, x, attrs, hidden


def _hide(attrs: UserAttributes, hidden: np.ndarray) -> UserAttributes:
    cols = {}
    for n, a in attrs.columns.items():
        miss = -1 if a.kind == "categorical" else np.nan
        cols[n] = Attribute(n, a.kind, np.where(hidden, miss, a.values), a.classes)
    return UserAttributes(attrs.user_ids, cols)


def _heldout_auc(x: np.ndarray, y: np.ndarray, hidden: np.ndarray) -> float:
    """Logistic regression fit on the eraser's users, ROC-AUC (OvR macro) on the hidden ones."""
    clf = LogisticRegression(max_iter=2000).fit(x[~hidden], y[~hidden])
    p = clf.predict_proba(x[hidden])
    if p.shape[1] == 2:
        return float(roc_auc_score(y[hidden], p[:, 1]))
    return float(roc_auc_score(y[hidden], p, multi_class="ovr"))


def _cross_cov(x: np.ndarray, attr: Attribute) -> float:
    known = attr.known
    xs = x[known].astype(np.float64)
    if attr.kind == "categorical":
        z = np.eye(attr.n_classes)[attr.values[known]]
    else:
        z = attr.values[known][:, None]
    xs = (xs - xs.mean(0)) / xs.std(0)
    z = z - z.mean(0)
    return float(np.abs(xs.T @ z / len(xs)).max())


def test_positive_control(planted):
    ids, x, attrs, hidden = planted
    assert _heldout_auc(x, attrs["g"].values, hidden) > 0.75
    assert _heldout_auc(x, attrs["c"].values, hidden) > 0.75


def test_leace_drives_linear_attacker_to_chance(planted):
    ids, x, attrs, hidden = planted
    out = erase_vectors(ids, x, _hide(attrs, hidden), ["g"], method="leace")
    assert out.shape == x.shape and out.dtype == np.float32
    assert abs(_heldout_auc(out, attrs["g"].values, hidden) - 0.5) <= 0.05
    # the other attribute was not asked for and stays readable
    assert _heldout_auc(out, attrs["c"].values, hidden) > 0.75


def test_leace_exact_in_sample_guarantee(planted):
    ids, x, attrs, _ = planted
    before = _cross_cov(x, attrs["g"])
    out = erase_vectors(ids, x, attrs, ["g", "c", "score"], method="leace")
    assert before > 0.1
    for n in ("g", "c", "score"):
        assert _cross_cov(out, attrs[n]) < 1e-5, n


def test_leace_multiclass(planted):
    ids, x, attrs, hidden = planted
    eraser = fit_eraser(ids, x, _hide(attrs, hidden), ["c"], method="leace")
    assert eraser.rank_removed == 3  # 4 classes → 3 directions
    out = eraser(x)
    assert abs(_heldout_auc(out, attrs["c"].values, hidden) - 0.5) <= 0.05


@pytest.mark.parametrize("strategy", ["joint", "sequential"])
def test_leace_several_attributes(planted, strategy):
    ids, x, attrs, hidden = planted
    eraser = fit_eraser(ids, x, _hide(attrs, hidden), "g,c", method="leace", strategy=strategy)
    assert eraser.names == ("g", "c")
    assert eraser.rank_removed == 4
    assert eraser.info["strategy"] == strategy
    out = eraser(x)
    for n in ("g", "c"):
        assert abs(_heldout_auc(out, attrs[n].values, hidden) - 0.5) <= 0.05, n
    # both strategies guard both attributes exactly on the fit users
    fit = _hide(attrs, hidden)
    for n in ("g", "c"):
        assert _cross_cov(out, fit[n]) < 1e-5


def test_leace_edit_is_small(planted):
    """LEACE changes the vectors less than INLP (it is the least-squares edit)."""
    ids, x, attrs, _ = planted
    leace = erase_vectors(ids, x, attrs, ["g"], method="leace")
    inlp = erase_vectors(ids, x, attrs, ["g"], method="inlp")
    assert np.linalg.norm(leace - x) < np.linalg.norm(inlp - x)
    assert np.linalg.norm(leace - x) < 0.5 * np.linalg.norm(x)


@pytest.mark.parametrize("classifier", ["logistic", "svm"])
def test_inlp_lowers_leakage(planted, classifier):
    ids, x, attrs, hidden = planted
    y = attrs["g"].values
    before = _heldout_auc(x, y, hidden)
    eraser = fit_eraser(
        ids, x, _hide(attrs, hidden), ["g"], method="inlp", classifier=classifier, seed=3
    )
    out = eraser(x)
    after = _heldout_auc(out, y, hidden)
    assert after < before - 0.2
    assert after < 0.6
    info = eraser.info
    assert info["stopped"] in ("chance", "max_iterations", "all_directions", "no_direction")
    assert 1 <= info["rank_removed"] < DIM
    assert info["history"][0]["g"] > 0.6  # the first classifier read the attribute


def test_inlp_multiclass_and_joint(planted):
    ids, x, attrs, hidden = planted
    eraser = fit_eraser(ids, x, _hide(attrs, hidden), ["g", "c"], method="inlp")
    out = eraser(x)
    assert _heldout_auc(out, attrs["c"].values, hidden) < 0.6
    assert _heldout_auc(out, attrs["g"].values, hidden) < 0.6
    # one shared orthogonal projection: the linear part is symmetric and idempotent
    m = eraser.matrix
    np.testing.assert_allclose(m, m.T, atol=1e-10)
    np.testing.assert_allclose(m @ m, m, atol=1e-8)


def test_inlp_rank_per_iteration_and_limit(planted):
    ids, x, attrs, _ = planted
    eraser = fit_eraser(ids, x, attrs, ["c"], method="inlp", n_iterations=2, rank_per_iteration=1)
    assert eraser.info["iterations_run"] <= 2
    assert eraser.rank_removed <= 2


def test_inlp_is_seeded(planted):
    ids, x, attrs, _ = planted
    a = erase_vectors(ids, x, attrs, ["g"], method="inlp", seed=5)
    b = erase_vectors(ids, x, attrs, ["g"], method="inlp", seed=5)
    np.testing.assert_array_equal(a, b)


def test_rows_matched_by_id_not_position(planted):
    ids, x, attrs, _ = planted
    ref = erase_vectors(ids, x, attrs, ["g"], method="leace")
    perm = np.random.default_rng(1).permutation(N)
    out = erase_vectors(ids[perm], x[perm], attrs, ["g"], method="leace")
    np.testing.assert_allclose(out, ref[perm], atol=1e-5)


def test_missing_labels_are_erased_too(planted):
    ids, x, attrs, hidden = planted
    eraser = fit_eraser(ids, x, _hide(attrs, hidden), ["g"], method="leace")
    assert eraser.info["fit_users"]["g"] == int((~hidden).sum())
    out = eraser(x)
    assert not np.allclose(out[hidden], x[hidden])  # the map applies to every user


def test_joint_needs_users_knowing_everything(planted):
    ids, x, attrs, _ = planted
    half = np.arange(N) < N // 2
    cols = dict(attrs.columns)
    cols["g"] = Attribute("g", "categorical", np.where(half, attrs["g"].values, -1), ("m", "f"))
    cols["c"] = Attribute(
        "c", "categorical", np.where(half, -1, attrs["c"].values), attrs["c"].classes
    )
    disjoint = UserAttributes(ids, cols)
    with pytest.raises(DataError, match="sequential"):
        fit_eraser(ids, x, disjoint, ["g", "c"], method="leace")
    out = erase_vectors(ids, x, disjoint, ["g", "c"], method="leace", strategy="sequential")
    assert _cross_cov(out, disjoint["g"]) < 1e-5
    assert _cross_cov(out, disjoint["c"]) < 1e-5


def test_continuous_attribute(planted):
    ids, x, attrs, _ = planted
    for method in ("leace", "inlp"):
        out = erase_vectors(ids, x, attrs, ["score"], method=method)
        assert out.shape == x.shape
    out = erase_vectors(ids, x, attrs, ["score"], method="leace")
    assert _cross_cov(out, attrs["score"]) < 1e-5


def test_affine_eraser_composition():
    rng = np.random.default_rng(0)
    a = AffineEraser("leace", ("x",), rng.standard_normal((3, 3)), rng.standard_normal(3))
    b = AffineEraser("leace", ("y",), rng.standard_normal((3, 3)), rng.standard_normal(3))
    v = rng.standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(a.then(b)(v), b(a(v)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "pca"}, ConfigError, "unknown erasure method"),
        ({"names": ["height"]}, ConfigError, "unknown attribute"),
        ({"names": []}, ConfigError, "at least one"),
        ({"names": ["g", "g"]}, ConfigError, "twice"),
        ({"strategy": "parallel"}, ConfigError, "strategy"),
        ({"projection": "weird"}, ConfigError, "projection"),
        ({"svd_tol": 0}, ConfigError, "svd_tol"),
        ({"n_iterations": 3}, ConfigError, "unknown leace option"),
        ({"method": "inlp", "classifier": "tree"}, ConfigError, "classifier"),
        ({"method": "inlp", "n_iterations": 0}, ConfigError, "n_iterations"),
        ({"method": "inlp", "dev_fraction": 1.5}, ConfigError, "dev_fraction"),
        ({"method": "inlp", "C": -1}, ConfigError, "C must be"),
        ({"method": "inlp", "strategy": "joint"}, ConfigError, "unknown inlp option"),
    ],
)
def test_bad_configuration(planted, kwargs, error, match):
    ids, x, attrs, _ = planted
    args = {"names": ["g"], "method": "leace", **kwargs}
    names, method = args.pop("names"), args.pop("method")
    with pytest.raises(error, match=match):
        erase_vectors(ids, x, attrs, names, method=method, **args)


def test_bad_data(planted):
    ids, x, attrs, _ = planted
    bad = x.copy()
    bad[7, 2] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        erase_vectors(ids, bad, attrs, ["g"])
    bad[7, 2] = np.inf
    with pytest.raises(DataError, match="NaN or infinite"):
        erase_vectors(ids, bad, attrs, ["g"], method="inlp")
    with pytest.raises(DataError, match="2-D"):
        erase_vectors(ids, x[:, 0], attrs, ["g"])
    with pytest.raises(DataError, match="aligned"):
        erase_vectors(ids[:-1], x, attrs, ["g"])
    with pytest.raises(DataError, match="duplicate"):
        erase_vectors(np.r_[ids[:-1], ids[:1]], x, attrs, ["g"])
    stranger = ids.copy()
    stranger[5] = "nobody"
    with pytest.raises(DataError, match="no row in the attributes"):
        erase_vectors(stranger, x, attrs, ["g"])
    one = UserAttributes(ids, {"g": Attribute("g", "categorical", np.zeros(N, int), ("m", "f"))})
    with pytest.raises(DataError, match="one class"):
        erase_vectors(ids, x, one, ["g"])
    eraser = fit_eraser(ids, x, attrs, ["g"])
    with pytest.raises(DataError, match="dimension"):
        eraser(x[:, :3])
