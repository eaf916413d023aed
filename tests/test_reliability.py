"""Families of silent or unclear failures, each tested with fresh cases: option values that
mean the opposite (3), a sweep directory reused with another grid (5), sweeps that check every
option before the first run (11), Rich markup eating brackets (13)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from privrec.cli.app import app
from privrec.cli.options import parse_key_values
from privrec.defences.erasure.fitting import checked_options, option_types
from privrec.errors import ConfigError
from privrec.experiments.sweep_runner import run_sweep
from privrec.experiments.sweep_spec import SweepSpec
from privrec.runs.run_spec import RunSpec

runner = CliRunner()
DATA = {"n_users": 200, "n_items": 60, "density": 0.08, "strength": 0.6, "seed": 1}
TRAIN = {"embedding_size": 4, "epochs": 2, "batch_size": 512, "patience": 0}


def _spec(**grid) -> SweepSpec:
    base = RunSpec.from_dict(
        {"dataset": "synthetic", "data": DATA, "train": TRAIN, "attackers": "fast"}
    )
    return SweepSpec(base=base, grid=grid or {"lambda": (0.0,)}, purge=("attr",))


# -- family 3: option values that mean the opposite ----------------------------------------------


@pytest.mark.parametrize(
    ("raw", "value"),
    [("off", False), ("no", False), ("0", False), ("FALSE", False), ("on", True), ("Yes", True)],
)
def test_family3_booleans_parse_strictly(raw, value):
    types = option_types("leace")
    assert parse_key_values([f"shrinkage={raw}"], "--option", types) == {"shrinkage": value}


@pytest.mark.parametrize("raw", ["maybe", "2", "", "tru"])
def test_family3_anything_else_is_refused(raw):
    with pytest.raises(ConfigError, match="expected a boolean"):
        parse_key_values([f"shrinkage={raw}"], "--option", option_types("leace"))


def test_family3_typed_values_and_library_checks():
    types = option_types("inlp")
    got = parse_key_values(["n_iterations=3", "C=0.5", "rank_per_iteration=none"], "-O", types)
    assert got == {"n_iterations": 3, "C": 0.5, "rank_per_iteration": None}
    for bad, message in (("n_iterations=2.5", "integer"), ("C=nan", "finite")):
        with pytest.raises(ConfigError, match=message):
            parse_key_values([bad], "-O", types)
    # the library refuses a string where a boolean is expected (no truthy "off")
    with pytest.raises(ConfigError, match="shrinkage"):
        checked_options("leace", {"shrinkage": "off"})


@pytest.mark.slow
def test_family3_cli_erase_applies_off_as_false(tmp_path):
    run_dir = tmp_path / "run"
    args = ["train", "--syn-users", "200", "--syn-items", "60", "-e", "4", "--epochs", "2"]
    assert runner.invoke(app, [*args, "-q", "--out", str(run_dir)]).exit_code == 0
    out = tmp_path / "erased"
    res = runner.invoke(
        app,
        ["erase", str(run_dir), "-a", "attr", "--out", str(out), "-O", "shrinkage=off", "-q"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["erasure"]["options"] == {
        "shrinkage": False
    }


# -- family 5: a sweep directory reused with another grid -----------------------------------------


@pytest.mark.slow
def test_family5_another_grid_is_refused_then_extended(tmp_path):
    first = run_sweep(_spec(), tmp_path, executor="serial", progress=False)
    assert len(first.results) == 1
    other = _spec(**{"lambda": (0.5,)})
    with pytest.raises(ConfigError, match="--extend"):
        run_sweep(other, tmp_path, executor="serial", progress=False)
    assert len(json.loads((tmp_path / "results.json").read_text())) == 1  # nothing lost
    both = run_sweep(other, tmp_path, executor="serial", progress=False, existing="extend")
    assert sorted(both.results["lambda"]) == [0.0, 0.5]  # the earlier run is kept
    assert both.skipped == 1 and both.computed == 1
    # rerunning the extended sweep resumes it (nothing recomputed)
    again = run_sweep(other, tmp_path, executor="serial", progress=False)
    assert again.computed == 0 and len(again.results) == 2


def test_family5_replace_removes_only_what_the_sweep_wrote(tmp_path):
    run_sweep(_spec(), tmp_path, executor="serial", progress=False)
    (tmp_path / "notes.txt").write_text("mine")
    other = _spec(**{"lambda": (0.5,)})
    res = run_sweep(other, tmp_path, executor="serial", progress=False, existing="replace")
    assert list(res.results["lambda"]) == [0.5] and res.computed == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_family5_a_folder_that_is_not_a_sweep_is_refused(tmp_path):
    (tmp_path / "report.md").write_text("my own report")
    with pytest.raises(ConfigError, match="not a sweep directory"):
        run_sweep(_spec(), tmp_path, executor="serial", progress=False, existing="replace")
    assert (tmp_path / "report.md").read_text() == "my own report"
    assert not (tmp_path / "runs").exists()


def test_family5_cli_flags(tmp_path):
    args = ["sweep", "--syn-users", "200", "--syn-items", "60", "--sizes", "4", "--epochs", "2"]
    args += ["--executor", "serial", "-q", "--no-report", "--out", str(tmp_path)]
    assert runner.invoke(app, [*args, "--lambdas", "0"]).exit_code == 0
    res = runner.invoke(app, [*args, "--lambdas", "0.5"])
    assert res.exit_code == 2 and "--extend" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, [*args, "--lambdas", "0.5", "--extend"])
    assert res.exit_code == 0, res.output
    assert "2 runs" in res.output
    res = runner.invoke(app, [*args, "--lambdas", "0.5", "--extend", "--replace"])
    assert res.exit_code == 2 and "exclude each other" in res.output


# -- family 11: every option checked before the first run ---------------------------------------


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"lambda": (0.0,), "attackers": ("fast", "oracle")}, "unknown attacker"),
        ({"lambda.gender": (0.1,)}, "unknown attribute"),
        ({"erasure": ("leace",), "lambda": (0.0,)}, None),
    ],
)
def test_family11_sweep_checks_every_point_first(tmp_path, grid, message):
    spec = _spec(**grid)
    if message is None:  # a valid grid runs
        assert run_sweep(spec, tmp_path, executor="serial", progress=False).failed == 0
        return
    with pytest.raises(ConfigError, match=message):
        run_sweep(spec, tmp_path, executor="serial", progress=False)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_family11_erasure_attributes_checked_first(tmp_path):
    base = RunSpec.from_dict(
        {
            "dataset": "synthetic",
            "data": DATA,
            "train": TRAIN,
            "erasure": "leace",
            "erasure_attributes": ["gender"],
        }
    )
    with pytest.raises(ConfigError, match="gender"):
        run_sweep(
            SweepSpec(base=base, grid={"lambda": (0.0,)}, purge=("attr",)),
            tmp_path,
            executor="serial",
            progress=False,
        )


# -- family 13: Rich markup must not eat brackets ------------------------------------------------


def test_family13_brackets_survive_in_help_and_messages(tmp_path):
    res = runner.invoke(app, ["sweep", "--help"], env={"COLUMNS": "200"})
    assert "privrec[ray]" in res.output
    res = runner.invoke(app, ["recommend", str(tmp_path / "[odd]name")])
    assert res.exit_code == 2 and "[odd]name" in res.output


# -- family 10: one line instead of a traceback, before any work ---------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reg", "nan"], "'train.reg' (--reg) must be a finite number"),
        (["--lr", "inf"], "'train.learning_rate' (--lr) must be a finite number"),
        (["-e", "1000000000"], "'train.embedding_size' (--embedding-size) = 1000000000 needs"),
        (["--adv", "attr=nan"], "--adv 'attr=nan': the weight must be a finite number"),
        (["--mmd", "attr=-1"], "mmd weight of 'attr' must be >= 0"),
    ],
)
def test_family10_bad_hyper_parameters_fail_before_any_work(tmp_path, args, message):
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", "--epochs", "1", "-q", *args, "--out", str(out)])
    assert res.exit_code == 2 and message in res.output, res.output
    assert "Traceback" not in res.output and not out.exists()


def test_family10_run_config_records_package_versions(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--syn-users", "100", "--syn-items", "40", "-e", "4", "--epochs", "1", "-q"]
    assert runner.invoke(app, [*args, "--out", str(out)]).exit_code == 0
    versions = json.loads((out / "config.json").read_text())["versions"]
    assert {"python", "torch", "numpy", "scikit-learn"} <= set(versions)
