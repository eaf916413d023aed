"""The scalable data path: the large synthetic generator, chunked evaluation, the benchmark."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from privrec.data.sampling import sample_negatives
from privrec.data.split import leave_last_out
from privrec.data.synthetic_large import LargeSyntheticConfig, make_synthetic_large
from privrec.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def large():
    return make_synthetic_large(2_000, 400, 60_000, seed=3)


def test_exact_size_bounds_and_determinism(large):
    inter = large.interactions
    assert large.name == "synthetic-large"
    assert (inter.n_users, inter.n_items, len(inter)) == (2_000, 400, 60_000)
    counts = inter.user_counts()
    cfg = LargeSyntheticConfig(n_users=2_000, n_items=400, n_interactions=60_000)
    assert counts.min() >= 3 and counts.max() <= cfg.per_user_cap
    assert counts.std() > 0.3 * counts.mean()  # heavy-tailed activity, not uniform
    items = np.sort(inter.item_counts())[::-1]
    assert items[:40].sum() > 2 * 40 / 400 * len(inter)  # popular head (top 10% > 20%)
    # one timestamp per interaction, increasing within a user
    order = np.lexsort((inter.timestamps, inter.users))
    assert np.all(np.diff(inter.users[order]) >= 0)
    again = make_synthetic_large(2_000, 400, 60_000, seed=3)
    for col in ("users", "items", "timestamps"):
        assert np.array_equal(getattr(inter, col), getattr(again.interactions, col))
    for name in ("attr", "noise"):
        assert np.array_equal(large.attributes[name].values, again.attributes[name].values)
    other = make_synthetic_large(2_000, 400, 60_000, seed=4).interactions
    assert not np.array_equal(inter.items, other.items)
    split = leave_last_out(inter)  # every user has validation and test items
    assert len(split.test) == len(split.validation) == 2_000


def _attr_auc(ds) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    x = ds.interactions.csr
    x = sp.diags(1.0 / np.sqrt(np.asarray(x.sum(axis=1)).ravel())) @ x  # length-normalised
    y = ds.attributes["attr"].values
    clf = LogisticRegression(C=1.0, max_iter=300)
    return float(cross_val_score(clf, x, y, cv=3, scoring="roc_auc").mean())


def test_planted_attribute_signal():
    kw = {"n_users": 1_500, "n_items": 300, "n_interactions": 45_000, "seed": 0}
    strong = make_synthetic_large(**kw, strength=0.9)
    none = make_synthetic_large(**kw, strength=0.0)
    a = strong.attributes["attr"].values
    assert 0.6 < (a == 0).mean() < 0.8  # the 70/30 classes
    assert _attr_auc(strong) > 0.75  # the interactions reveal the attribute...
    assert _attr_auc(none) < 0.6  # ...only when planted
    noise = strong.attributes["noise"]
    assert set(np.unique(noise.values)) == {0, 1, 2}


def test_no_users_times_items_work():
    """5 × 10⁹ user-item pairs: anything O(users × items) would not fit in memory or time."""
    ds = make_synthetic_large(100_000, 50_000, 500_000, seed=1)
    inter = ds.interactions
    assert len(inter) == 500_000 and inter.user_counts().min() >= 3
    rng = np.random.default_rng(0)
    users = inter.users[:200_000]
    neg = sample_negatives(inter, users, rng)  # vectorised; no bitset at this size
    assert not inter.contains(users, neg).any()


@pytest.mark.parametrize(
    "bad",
    [
        {"n_interactions": 5_000},  # fewer than 3 per user
        {"n_interactions": 10**7},  # more than the per-user cap allows
        {"strength": 1.5},
        {"cluster_share": -0.1},
        {"class_probs": (1.0,)},
        {"n_items": 10},  # cap below min_per_user
        {"n_clusters": 0},
    ],
)
def test_invalid_configs_raise(bad):
    kw = {"n_users": 2_000, "n_items": 400, "n_interactions": 60_000, **bad}
    with pytest.raises(ConfigError):
        make_synthetic_large(**kw)


def test_full_ranking_evaluation_is_chunked(large):
    """Memory of the evaluation is O(chunk × items): the scorer never sees more users."""
    from privrec.evaluation.protocol import evaluate_split

    split = leave_last_out(large.interactions)
    rng = np.random.default_rng(0)
    item_scores = rng.standard_normal(large.interactions.n_items)
    seen: list[int] = []

    def score(users: np.ndarray) -> np.ndarray:
        seen.append(len(users))
        return np.broadcast_to(item_scores, (len(users), len(item_scores)))

    res = evaluate_split(score, split, "test", k=10, chunk_size=256)
    assert max(seen) <= 256 and sum(seen) == res["users"] == 2_000
    assert 0 <= res["hr@10"] <= 1


# --- the benchmark script ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def scaling():
    path = REPO / "benchmarks" / "scaling.py"
    spec = importlib.util.spec_from_file_location("privrec_bench_scaling", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_helpers(scaling, tmp_path: Path):
    assert scaling.parse_size("1M") == 1_000_000 and scaling.parse_size("300k") == 300_000
    assert scaling.parse_size("2500000") == 2_500_000
    with pytest.raises(ValueError):
        scaling.parse_size("lots")
    assert scaling.shape_of(10_000_000) == (100_000, 20_000)
    x = np.array([1e6, 3e6, 1e7])
    assert scaling.fit_exponent(x, 2.0 * x**1.5) == pytest.approx(1.5)
    md = tmp_path / "SCALING.md"
    md.write_text(f"# Title\n\nintro\n\n{scaling.BEGIN}\nold\n{scaling.END}\n\n## Later\ntext\n")
    scaling.write_markdown(md, "new table")
    text = md.read_text()
    assert "old" not in text and "new table" in text and text.startswith("# Title")
    assert text.rstrip().endswith("text")


def test_benchmark_measure_and_report_smoke(scaling):
    res = scaling.measure(20_000, epochs=2, batch_size=4096, dim=8, shape=(500, 200), threads=1)
    assert res["status"] == "ok" and len(res["epoch_seconds"]) == 2
    assert res["eval_users"] == 500 and res["peak_rss_mib"] > 0
    assert res["optimizer"] == "sparse-adam"
    res2 = dict(res, interactions=40_000, epoch_seconds_median=2 * res["epoch_seconds_median"])
    dense = dict(res, optimizer="adam")
    dense2 = dict(res2, optimizer="adam", epoch_seconds_median=4 * res["epoch_seconds_median"])
    summary = scaling.summarise([res, res2, dense, dense2])
    assert summary["exponents"]["sparse-adam"]["epoch"] == pytest.approx(1.0)
    assert summary["exponents"]["adam"]["epoch"] == pytest.approx(2.0)
    meta = {
        "date": "today", "machine": "cpu", "cores": 2, "loadavg": "1", "torch": "x",
        "threads": 1, "repeats": 1, "dim": 8, "batch_size": 4096, "epochs": 2, "command": "c",
    }  # fmt: skip
    block = scaling.markdown(summary, meta)
    assert "| `sparse-adam` | 20k |" in block and "**1.00**" in block and "**2.00**" in block
