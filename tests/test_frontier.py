"""Several methods in one sweep (``[[series]]``) and their frontier in the report."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from privrec.errors import ConfigError
from privrec.experiments.frontier import best_points, paper_points, plot_frontier, seed_summary
from privrec.experiments.report import write_report
from privrec.experiments.report_tables import load_sweep
from privrec.experiments.sweep_runner import run_sweep
from privrec.experiments.sweep_spec import SweepSpec

BASE = {
    "dataset": "synthetic",
    "data": {"n_users": 240, "n_items": 50},
    "train": {"epochs": 2, "embedding_size": 4},
    "attackers": "logistic",
    "folds": 3,
    "audit_lists": True,
}


def _spec(series, grid=None, **extra):
    return SweepSpec.from_dict(
        {"purge": ["attr"], "run": BASE, "grid": grid or {}, "series": series, **extra}
    )


def test_series_are_the_union_of_their_grids_and_shared_runs_run_once():
    spec = _spec(
        [
            {"name": "plain"},
            {"name": "confusion", "grid": {"lambda": [0, 0.5]}},
            {
                "name": "reverse",
                "set": {"adversary.objective": "reverse"},
                "grid": {"lambda": [0, 1]},
            },
            {"name": "purge", "set": {"erasure": "purge"}, "grid": {"erasure_options.weight": [2]}},
        ],
        grid={"seed": [0, 1]},
    )
    points = spec.expand()
    labels = [(v["series"], v.get("lambda"), v["seed"]) for v, _ in points]
    # λ = 0 is the same run for both objectives: listed once, under the first series
    assert ("reverse", 0, 0) not in labels and ("confusion", 0, 0) in labels
    assert len(points) == 2 * (1 + 2 + 1 + 1)
    purge = [s for v, s in points if v["series"] == "purge"]
    assert purge[0].erasure == "purge" and purge[0].erasure_options == {"weight": 2}
    reverse = [s for v, s in points if v["series"] == "reverse"]
    assert all(s.adversary.objective == "reverse" for s in reverse)
    again = SweepSpec.from_dict(spec.to_dict())  # what sweep.json records rebuilds it
    assert [s.run_id for _, s in again.expand()] == [s.run_id for _, s in points]


@pytest.mark.parametrize(
    ("series", "grid", "message"),
    [
        ([{"name": "a"}, {"name": "a"}], {}, "a name of its own"),
        ([{"grid": {"lambda": [1]}}], {}, "missing 'name'"),
        ([{"name": "a", "grid": {"seed": [1]}}], {"seed": [0]}, "in the shared grid"),
        ([{"name": "a", "grid": {"lamda": [1]}}], {}, "lamda"),
        ([{"name": "a", "sett": {}}], {}, "sett"),
    ],
)
def test_bad_series_are_refused_with_the_key(series, grid, message):
    with pytest.raises(ConfigError, match=message):
        _spec(series, grid=grid)


def _point(series, share, auc, bal, size=10, seed=0, knob=""):
    return {
        "series": series,
        "knob": knob,
        "embedding_size": size,
        "seed": seed,
        "run_id": f"{series}-{share}",
        "hr": share / 1000,
        "hr_share": share,
        "gender_value": auc,
        "gender_chance": 0.5,
        "age_value": bal,
        "age_chance": 1 / 7,
    }


def test_the_best_point_is_the_least_leaky_that_keeps_the_share():
    points = pd.DataFrame(
        [
            _point("a", 100, 0.80, 0.28),
            _point("a", 92, 0.62, 0.16),
            _point("a", 88, 0.52, 0.15),  # less leaky, but below 90 %
            _point("b", 85, 0.60, 0.20),
            _point("b", 70, 0.51, 0.15),
        ]
    )
    best = best_points(points, ["gender", "age"]).set_index("series")
    assert best.loc["a", "hr_share"] == 92 and bool(best.loc["a", "kept"])
    # the leakage is the larger normalised one: gender (0.62 − 0.5) / 0.5 = 0.24
    assert best.loc["a", "leakage"] == pytest.approx(0.24)
    # no point of b keeps 90 %: its most accurate point, marked
    assert best.loc["b", "hr_share"] == 85 and not bool(best.loc["b", "kept"])


def test_seed_summary_gives_each_settings_mean_and_spread_and_the_best_is_picked_on_means():
    points = pd.DataFrame(
        [
            _point("a", 94, 0.60, 0.20, seed=0, knob="w=1"),
            _point("a", 86, 0.56, 0.16, seed=1, knob="w=1"),  # mean share 90: kept
            _point("a", 96, 0.70, 0.22, seed=0, knob="w=0.1"),
            _point("a", 92, 0.72, 0.24, seed=1, knob="w=0.1"),
            _point("b", 99, 0.80, 0.28, seed=0),
        ]
    )
    summary = seed_summary(points, ["gender", "age"]).set_index(["series", "knob"])
    w1 = summary.loc[("a", "w=1")]
    assert w1["seeds"] == 2 and w1["hr_share"] == pytest.approx(90)
    assert w1["hr_share_sd"] == pytest.approx(np.std([94, 86], ddof=1))
    assert w1["gender_value"] == pytest.approx(0.58)
    assert (w1["gender_min"], w1["gender_max"]) == (0.56, 0.60)
    assert w1["age_sd"] == pytest.approx(np.std([0.20, 0.16], ddof=1))
    assert math.isnan(summary.loc[("b", ""), "gender_sd"])  # one seed: no spread
    best = best_points(summary.reset_index(), ["gender", "age"]).set_index("series")
    # seed 1 of w=1 alone keeps only 86 %, but the setting's mean keeps 90 %: it is the best
    assert best.loc["a", "knob"] == "w=1" and bool(best.loc["a", "kept"])


@pytest.mark.slow
def test_a_sweep_over_seeds_reports_the_spread_of_each_setting(tmp_path):
    spec = _spec(
        [{"name": "plain"}, {"name": "leace", "set": {"erasure": "leace"}}],
        grid={"seed": [0, 1]},
    )
    out = tmp_path / "sweep"
    run_sweep(spec, out, executor="serial", progress=False)
    rep = write_report(out)
    seeds = rep.table("frontier_seeds")
    assert [r[0] for r in seeds.rows] == ["plain", "leace"]
    assert [r[3] for r in seeds.rows] == ["2", "2"]
    assert "±" in seeds.rows[1][6] and "[" in seeds.rows[1][6]
    assert rep.table("frontier_best").columns == seeds.columns
    assert len(rep.table("frontier_points").rows) == 4


@pytest.mark.slow
def test_a_sweep_with_series_reports_its_frontier(tmp_path):
    spec = _spec(
        [
            {"name": "plain"},
            {"name": "confusion", "grid": {"lambda": [0.5]}},
            {"name": "leace", "set": {"erasure": "leace"}},
        ]
    )
    out = tmp_path / "sweep"
    outcome = run_sweep(spec, out, executor="serial", progress=False)
    assert list(outcome.results["series"]) == ["plain", "confusion", "leace"]
    rep = write_report(out)
    assert (out / "frontier.png").stat().st_size > 0 and "frontier" in rep.files
    best = rep.table("frontier_best")
    assert [r[0] for r in best.rows] == ["plain", "confusion", "leace"]
    assert best.rows[0][5] == "100.0"  # plain is its own reference
    cell = best.rows[2][6]  # leace's attr leakage with its interval
    assert "[" in cell and "–" in cell
    every = rep.table("frontier_points")
    assert len(every.rows) == sum(outcome.results["status"] == "ok")
    assert best.columns[-1] == "attr from the served lists" and "[" in best.rows[0][-1]
    md = (out / "report.md").read_text()
    assert "frontier.png" in md and "Frontier — best point per method" in md
    assert not math.isnan(float(best.rows[1][4]))
    assert "5-fold CV over all users" not in md and "3-fold CV over all users" in md
    # each point carries the paper's metric too: the logistic readout's accuracy
    from privrec.experiments.frontier import frontier_points

    meta, results, records = load_sweep(out)
    points = frontier_points(results, records)
    logistic = records[
        (records["attacker"] == "logistic")
        & (records["metric"] == "accuracy")
        & (records["stage"] == "final")
    ].set_index("run_id")["value"]
    for _, p in points.iterrows():
        assert p["attr_readout"] == pytest.approx(logistic[p["run_id"]])


def test_the_report_says_which_users_were_audited():
    from privrec.experiments.report import _audited_users

    assert _audited_users({}, {}, []) == "all users"
    held = _audited_users({"label_fraction": 0.5}, {}, [])
    assert held.startswith("the users whose labels the defences did not see (label_fraction 0.5")
    mixed = _audited_users({}, {"label_fraction": [0.5, 1.0]}, [])
    assert "0.5/1" in mixed and "all users where it is 1" in mixed
    series = [{"name": "s", "set": {"label_fraction": 0.25}}]
    assert "0.25/1" in _audited_users({}, {}, series)


@pytest.mark.slow
def test_a_run_audits_its_served_lists_on_the_audited_users(tmp_path):
    import privrec
    from privrec.runs.pipeline import run_pipeline
    from privrec.runs.run_spec import RunSpec

    ds = privrec.load_dataset("synthetic", seed=4, n_users=300, n_items=60)
    spec = RunSpec.from_dict(
        {**BASE, "label_fraction": 0.5, "adversary": {"weights": {"attr": 0.2}}}
    )
    plain = RunSpec.from_dict({k: v for k, v in BASE.items() if k != "audit_lists"})
    assert "audit_lists" not in plain.identity()  # runs from before the option keep their ids
    assert "audit_lists" in spec.identity()
    run = run_pipeline(spec, ds)
    lists = run.list_audit
    assert lists is not None and lists.info["source"] == "recommendations"
    held = int((~np.isin(ds.interactions.user_ids, run.label_users)).sum())
    assert int(lists.table["n_users"].iloc[0]) <= held  # the audit's population, not everyone
    assert run.metrics["leakage_lists"][0]["attribute"] == "attr"
    stages = {r["stage"] for r in run.stored_results()["records"] if r["attacker"]}
    assert stages == {"final", "lists"}
    run.save(tmp_path / "run")
    assert (tmp_path / "run" / "audit_lists" / "audit.json").is_file()
    again = privrec.load_run(tmp_path / "run")
    assert again.list_audit is not None
    assert list(again.list_audit.table["attacker"]) == list(lists.table["attacker"])
    for col in ("roc_auc", "balanced_accuracy", "roc_auc_ci_low", "p_value_family"):
        np.testing.assert_array_equal(
            again.list_audit.table[col].to_numpy(float), lists.table[col].to_numpy(float)
        )


def test_the_papers_points_are_its_tables_as_shares_of_its_plain_run():
    paper = paper_points(10).set_index("lambda")
    assert paper.loc[0.0, "hr_share"] == 100
    assert paper.loc[0.1, "hr_share"] == pytest.approx(100 * 2.88 / 3.05)
    assert paper.loc[0.1, "gender_readout"] == pytest.approx(0.7133)
    assert paper.loc[10.0, "age_readout"] == pytest.approx(0.3431)
    assert paper_points(16).empty  # a size the paper did not run


@pytest.mark.slow
def test_the_frontier_figure_adds_the_papers_metric_row_only_with_its_points(tmp_path):
    import matplotlib.image

    points = pd.DataFrame([_point("a", 100, 0.80, 0.28), _point("a", 92, 0.62, 0.16)])
    for a in ("gender", "age"):
        points[f"{a}_metric"] = "roc_auc" if a == "gender" else "balanced_accuracy"
        points[f"{a}_low"], points[f"{a}_high"] = points[f"{a}_value"], points[f"{a}_value"]
        points[f"{a}_readout"] = [0.78, 0.72] if a == "gender" else [0.41, 0.35]
        points[f"{a}_majority"] = 0.717 if a == "gender" else 0.347
    one = plot_frontier(points, ["gender", "age"], tmp_path / "one.png")
    two = plot_frontier(points, ["gender", "age"], tmp_path / "two.png", paper_points(10))
    assert one is not None and two is not None
    h1, h2 = (matplotlib.image.imread(str(p)).shape[0] for p in (one, two))
    assert h2 == pytest.approx(2 * h1, rel=0.05)  # a second row of panels
    # without readout figures in the points the paper has nothing to stand beside
    bare = points.drop(columns=["gender_readout", "age_readout"])
    three = plot_frontier(bare, ["gender", "age"], tmp_path / "three.png", paper_points(10))
    assert three is not None and matplotlib.image.imread(str(three)).shape[0] == h1


def test_a_series_knob_is_a_grid_key_never_an_attackers_column():
    from privrec.experiments.frontier import _knob_keys

    results = pd.DataFrame(
        {
            "series": ["purge", "purge", "plain"],
            "erasure_options.weight": [1, 3, None],
            "gender_auc_linear_svm_c0.1": [0.61, 0.72, 0.80],  # varies, but is a result
            "seed": [0, 0, 0],
        }
    )
    assert _knob_keys(results) == {"purge": ["erasure_options.weight"], "plain": []}


@pytest.mark.slow
def test_the_best_point_of_each_method_is_kept_with_its_spec_metrics_and_label_users(tmp_path):
    """``benchmarks/frontier/keep_best.py``: the small files of each series' best run (and of
    plain), byte for byte, and a table naming them."""
    import subprocess
    import sys
    from pathlib import Path

    spec = _spec(
        [{"name": "plain"}, {"name": "leace", "set": {"erasure": "leace"}}],
        run={**BASE, "label_fraction": 0.5},
    )
    out = tmp_path / "sweep"
    outcome = run_sweep(spec, out, executor="serial", progress=False)
    script = Path(__file__).parents[1] / "benchmarks" / "frontier" / "keep_best.py"
    dest = tmp_path / "kept"
    done = subprocess.run(
        [sys.executable, str(script), str(out), str(dest), "--command", "privrec sweep -c F"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    table = (dest / "README.md").read_text()
    assert "privrec sweep -c F" in table
    for series, run_id in zip(outcome.results["series"], outcome.results["run_id"], strict=True):
        kept = dest / series / run_id
        assert f"`{series}/{run_id}`" in table
        for name in ("config.json", "metrics.json", "audit.md", "label_users.txt"):
            assert (kept / name).read_bytes() == (out / "runs" / run_id / name).read_bytes()
        assert (kept / "audit_lists" / "audit.md").exists()
        assert not (kept / "embeddings.npz").exists()
