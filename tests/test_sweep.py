"""Sweeps: specs, run ids, TOML, executors, determinism, diverged runs, resume after SIGKILL."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from privrec.errors import ConfigError
from privrec.experiments.sweep_runner import run_sweep
from privrec.experiments.sweep_spec import SweepSpec, load_sweep_toml
from privrec.runs.run_spec import RunSpec

TINY_DATA = {"n_users": 300, "n_items": 100, "density": 0.08, "strength": 0.6, "seed": 1}
TINY_TRAIN = {"embedding_size": 8, "epochs": 5, "batch_size": 512, "learning_rate": 0.01}


def tiny_run(**changes) -> RunSpec:
    d = {"dataset": "synthetic", "data": TINY_DATA, "train": TINY_TRAIN, "attackers": "fast"}
    d.update(changes)
    return RunSpec.from_dict(d)


# --- specs and ids -------------------------------------------------------------------------


def test_run_id_is_stable_readable_and_location_free():
    a = tiny_run(adversary={"weights": {"attr": 0.1}})
    b = tiny_run(adversary={"weights": {"attr": 0.1}}, data_dir="/somewhere/else")
    c = tiny_run(adversary={"weights": {"attr": 0.1}}, train={**TINY_TRAIN, "reg": 0.01})
    assert a.run_id == b.run_id != c.run_id
    assert a.run_id.startswith("e8-lam0.1-s0-") and len(a.run_id.split("-")[-1]) == 8
    assert RunSpec.from_dict(a.to_dict()).run_id == a.run_id
    # the run seed drives training, heads and audit
    s = tiny_run(seed=3)
    assert s.train.seed == 3 and s.adversary.seed == 3 and s.run_id.split("-")[-2] == "s3"
    # ints and floats are the same value
    assert (
        tiny_run(adversary={"weights": {"attr": 1}}).run_id
        == tiny_run(adversary={"weights": {"attr": 1.0}}).run_id
    )


def test_options_added_later_keep_older_run_ids():
    """Options added after 0.1 do not enter the run id at their default, so sweep directories
    made before they existed still resume; set, they do."""
    spec = tiny_run(dependence={"mmd": {"attr": 0.1}})
    dep = spec.identity()["dependence"]
    assert not {"schedule", "gamma", "scaling"} & set(dep) and dep["mmd"] == {"attr": 0.1}
    assert spec.to_dict()["dependence"]["schedule"] == "constant"  # still recorded in full
    ramp = tiny_run(dependence={"mmd": {"attr": 0.1}, "schedule": "ramp"})
    assert ramp.identity()["dependence"]["schedule"] == "ramp" and ramp.run_id != spec.run_id
    # pinned: these ids were computed before `schedule`, `gamma` and `scaling` existed
    grid = load_sweep_toml(Path(__file__).parents[1] / "benchmarks/defences/mmd-2048.toml")
    assert [r.run_id for r in grid.runs] == [
        "e10-mmd0.0001-s0-e95b79cd",
        "e10-mmd0.0003-s0-3abc09ad",
        "e10-mmd0.001-s0-d339882f",
    ]


def test_grid_expansion_shared_and_per_attribute_lambda():
    base = RunSpec.from_dict({"dataset": "ml-1m", "train": {"epochs": 2}})
    spec = SweepSpec(base=base, grid={"embedding_size": [10, 20], "lambda": [0, 0.1], "seed": [0]})
    assert spec.purge == ("gender", "age")
    points = spec.expand()
    assert len(points) == 4
    values, run = points[3]
    assert values == {"embedding_size": 20, "lambda": 0.1, "seed": 0}
    assert run.train.embedding_size == 20
    assert run.adversary.weights == {"gender": 0.1, "age": 0.1}
    per = SweepSpec(base=base, grid={"lambda.gender": [0, 1], "lambda.age": [0.5]})
    assert [r.adversary.weights for r in per.runs] == [
        {"gender": 0.0, "age": 0.5},
        {"gender": 1.0, "age": 0.5},
    ]
    assert per.runs[1].prefix == "e32-gender1-age0.5-s0"


def test_toml_loading(tmp_path: Path):
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        """
name = "toy"
purge = ["attr"]

[run]
dataset = "synthetic"
attackers = "fast"
folds = 3
[run.data]
n_users = 300
n_items = 100
[run.train]
epochs = 5
learning_rate = 0.01
[run.adversary]
head = "linear"

[grid]
embedding_size = [8, 16]
lambda = [0, 1]
seed = [0, 1]
train.batch_size = [512]

[[override]]
match = { embedding_size = 8, lambda = 1 }
set = { attackers = "paper" }
""",
        encoding="utf-8",
    )
    spec = load_sweep_toml(cfg)
    assert spec.name == "toy" and spec.purge == ("attr",)
    runs = spec.runs
    assert len(runs) == 8 and len({r.run_id for r in runs}) == 8
    assert all(r.train.batch_size == 512 and r.train.learning_rate == 0.01 for r in runs)
    assert all(r.folds == 3 and r.data_options["n_users"] == 300 for r in runs)
    paper = [r for r in runs if r.attackers == "paper"]
    assert len(paper) == 2
    assert all(r.train.embedding_size == 8 and r.adversary.weights == {"attr": 1.0} for r in paper)
    # round trip through the dict form
    again = SweepSpec.from_dict(spec.to_dict())
    assert [r.run_id for r in again.runs] == [r.run_id for r in runs]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("colour = 1\n", "unknown key 'colour'"),
        ("[run]\ndatset = 'synthetic'\n", "unknown key 'run.datset' (did you mean 'dataset'?)"),
        ("[run.train]\nepoch = 3\n", "unknown key 'run.train.epoch' (did you mean 'epochs'?)"),
        ("[run.adversary]\nheads = 2\n", "unknown key 'run.adversary.heads'"),
        ("[run.data]\nn_user = 3\n", "unknown key 'data.n_user'"),
        ("[grid]\nlamda = [0, 1]\n", "unknown key 'grid.lamda' (did you mean 'lambda'?)"),
        ("[grid]\ntrain.epoch = [1]\n", "unknown key 'grid.train.epoch'"),
        ("[run.train]\nepochs = 'ten'\n", "'run.train.epochs' must be an integer"),
        ("[run]\nerasure = 'magic'\n", "erasure must be one of"),
        ("[grid]\nlambda = [0, 0]\n", "repeats a value"),
        ("[[override]]\nmatch = {lambda = 1}\nset = {seed = 1}\n", "not a grid key"),
        ("[run\n", "invalid TOML"),
    ],
)
def test_toml_errors_name_the_key(tmp_path: Path, text: str, needle: str):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_sweep_toml(cfg)
    assert needle in str(exc.value)
    assert str(cfg) in str(exc.value)


def test_missing_toml_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file"):
        load_sweep_toml(tmp_path / "nope.toml")


def test_diverged_runs_are_recorded_not_reported(tmp_path: Path):
    # the second point's norm limit is below the initial vectors' norms: it must diverge
    spec = SweepSpec(
        base=tiny_run(train={**TINY_TRAIN, "epochs": 2}),
        grid={"lambda": (0.0, 1e6)},
        overrides=(({"lambda": 1e6}, {"train.max_user_norm": 0.01}),),
    )
    res = run_sweep(spec, tmp_path, executor="serial", progress=False).results
    assert list(res["status"]) == ["ok", "diverged"]
    bad = res.iloc[1]
    assert bad["reason"] in ("nan_loss", "exploding_norm", "collapse")
    assert np.isnan(bad["test_hr@10"]) and np.isnan(bad["attr_max_roc_auc"])
    run_dir = tmp_path / "runs" / bad["run_id"]
    assert (run_dir / "metrics.json").is_file() and not (run_dir / "audit.json").exists()
    assert json.loads((run_dir / "metrics.json").read_text())["status"] == "diverged"


def test_dependence_penalty_runs_in_a_sweep(tmp_path: Path):
    pytest.importorskip("privrec.defences")
    base = tiny_run(train={**TINY_TRAIN, "epochs": 2})
    spec = SweepSpec(base=base, grid={"mmd": (0.5,)}, purge=("attr",))
    res = run_sweep(spec, tmp_path, executor="serial", progress=False).results
    assert res["method"].iloc[0] == "mmd" and res["status"].iloc[0] == "ok"
    assert res["run_id"].iloc[0].startswith("e8-mmd0.5-s0-")


def test_erasure_runs_in_a_sweep(tmp_path: Path):
    pytest.importorskip("privrec.defences.erasure")
    spec = SweepSpec(base=tiny_run(erasure="leace"), grid={"lambda": (0.0,)})
    res = run_sweep(spec, tmp_path, executor="serial", progress=False).results
    row = res.iloc[0]
    assert row["status"] == "ok" and row["method"] == "adversarial+erasure-leace"
    assert not np.isnan(row["trained_attr_max_roc_auc"]) and not np.isnan(row["test_hr@10"])
    run_dir = tmp_path / "runs" / row["run_id"]
    assert (run_dir / "embeddings_trained.npz").is_file()
    assert (run_dir / "audit_trained" / "audit.json").is_file()


@pytest.mark.slow
def test_results_are_stored_long_and_the_wide_view_is_derived(tmp_path: Path):
    """``results_long`` holds one record per measurement; the wide columns are computed from
    it (the strongest attacker's AUC is the maximum of the attackers' records) and equal the
    row of the run loaded back from its directory."""
    import privrec
    from privrec.experiments.sweep_results import attackers_of, leakage_attributes, load_records
    from privrec.runs.result_records import RECORD_COLUMNS

    base = tiny_run(attackers=["logistic", "decision_tree"], erasure="leace")
    spec = SweepSpec(base=base, grid={"lambda": (0.0, 0.5)}, purge=("attr",))
    wide = run_sweep(spec, tmp_path, executor="serial", progress=False).results
    long = load_records(tmp_path)
    assert list(long.columns) == list(RECORD_COLUMNS)
    assert (tmp_path / "results_long.csv").is_file()
    assert leakage_attributes(long) == ["attr"]
    assert attackers_of(long, "attr") == ["logistic", "decision_tree"]
    assert set(long["stage"]) == {"final", "trained"}
    for _, row in wide.iterrows():
        mine = long[(long["run_id"] == row["run_id"]) & (long["metric"] == "roc_auc")]
        final = mine[(mine["stage"] == "final") & (mine["attribute"] == "attr")]
        trained = mine[(mine["stage"] == "trained") & (mine["attribute"] == "attr")]
        assert row["attr_max_roc_auc"] == pytest.approx(final["value"].max())
        assert row["trained_attr_max_roc_auc"] == pytest.approx(trained["value"].max())
        assert final["spread"].notna().all()  # the fold spread travels with the figure
        test_hr = long[(long["run_id"] == row["run_id"]) & (long["metric"] == "test_hr@10")]
        assert row["test_hr@10"] == pytest.approx(
            test_hr[test_hr["stage"] == "final"]["value"].iloc[0]
        )
        loaded = privrec.load_run(tmp_path / "runs" / row["run_id"]).summary
        for key in ("attr_max_roc_auc", "attr_strongest_attacker", "test_hr@10", "method"):
            assert loaded[key] == row[key] or loaded[key] == pytest.approx(row[key])


def test_the_longest_runs_start_first():
    """The sweep hands its runs to the workers longest first (bigger vectors, more epochs,
    more attackers), so that no worker idles while the last long run finishes."""
    from privrec.experiments.sweep_runner import RunTask, _expected_cost

    def cost(**kw):
        return _expected_cost(RunTask(tiny_run(**kw), "unused"))

    small = cost(train={**TINY_TRAIN, "embedding_size": 8})
    assert cost(train={**TINY_TRAIN, "embedding_size": 50}) > small
    assert cost(train={**TINY_TRAIN, "embedding_size": 8, "epochs": 40}) > small
    fast = cost(train={**TINY_TRAIN, "embedding_size": 8}, attackers="fast")
    assert cost(train={**TINY_TRAIN, "embedding_size": 8}, attackers="paper") > fast
