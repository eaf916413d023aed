"""The run-directory schema: one writer, the same layout from every command, and privrec 0.1's
run directories (``tests/fixtures/v0.1``) still load, recommend, erase, resume and report."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import privrec
from privrec.cli.app import app
from privrec.runs.run_directory import SCHEMA_VERSION

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "v0.1"
REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()
SYN = ["--syn-users", "150", "--syn-items", "40"]


def test_one_writer_of_run_directories():
    """Only privrec.runs.run_directory writes config.json / metrics.json of a run."""
    res = subprocess.run(
        ["git", "grep", "-l", '"config.json"', "--", "src"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    if res.returncode not in (0, 1):  # not a git checkout (e.g. an sdist)
        pytest.skip("git grep unavailable")
    writers = [
        f
        for f in res.stdout.split()
        if 'atomic_write_json(tmp / "config.json"'
        in (REPO / f).read_text(encoding="utf-8").replace("\n", " ")
    ]
    assert writers == ["src/privrec/runs/run_directory.py"]


@pytest.mark.slow
def test_train_erase_and_sweep_write_the_same_config_layout(tmp_path):
    train = tmp_path / "train"
    args = ["train", *SYN, "-e", "4", "--epochs", "2", "-q", "--out", str(train)]
    assert runner.invoke(app, args).exit_code == 0
    erased = tmp_path / "erased"
    args = ["erase", str(train), "--attributes", "attr", "--out", str(erased), "-q"]
    assert runner.invoke(app, [*args, "--attackers", "fast"]).exit_code == 0
    sweep = tmp_path / "sweep"
    args = ["sweep", *SYN, "--sizes", "4", "--lambdas", "0", "--epochs", "2", "-q"]
    res = runner.invoke(app, [*args, "--executor", "serial", "--out", str(sweep), "--no-report"])
    assert res.exit_code == 0, res.output
    (swept,) = (sweep / "runs").iterdir()
    layouts = []
    for d in (train, erased, swept):
        config = json.loads((d / "config.json").read_text())
        assert config["schema_version"] == SCHEMA_VERSION
        layouts.append(sorted(config))
        assert sorted(config["spec"]) == sorted(privrec.RunSpec().to_dict())
    assert layouts[0] == layouts[1] == layouts[2]


@pytest.mark.parametrize("name", ["train-run", "erase-run"])
def test_v01_run_directories_load(name):
    run = privrec.load_run(FIXTURES / name)
    assert run.schema_version == 1 and run.status == "ok"
    assert run.spec is not None and run.spec.train.embedding_size == 4
    assert run.spec.adversary.weights == {"attr": 0.1}
    assert run.user_vectors.shape == (150, 4)
    # 0.1 recorded no training interactions: seen items cannot be excluded, said so
    with pytest.raises(privrec.DataError, match="exclude_seen=False"):
        run.recommend(users=[1], k=3)
    assert len(run.recommend(users=[1], k=3, exclude_seen=False)) == 3
    if name == "erase-run":
        assert run.erasure["method"] == "leace" and run.trained_audit is not None
        assert run.audit is not None and list(run.audit.headline["attribute"]) == ["attr"]


@pytest.mark.slow
def test_v01_run_directory_erases_and_recommends_on_the_cli(tmp_path):
    out = tmp_path / "erased"
    args = ["erase", str(FIXTURES / "train-run"), "--attributes", "attr", "--out", str(out)]
    res = runner.invoke(app, [*args, *SYN, "--attackers", "fast", "-q"])
    assert res.exit_code == 0, res.output
    erased = privrec.load_run(out)
    assert erased.schema_version == SCHEMA_VERSION and erased.spec.erasure == "leace"
    source = privrec.load_run(FIXTURES / "train-run")
    np.testing.assert_array_equal(erased.embeddings.item_vectors, source.embeddings.item_vectors)
    assert erased.seen is not None  # the new run records the training interactions
    res = runner.invoke(app, ["recommend", str(FIXTURES / "train-run"), "--include-seen"])
    assert res.exit_code == 0, res.output


def test_v01_sweep_resumes_and_reports(tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(FIXTURES / "sweep", sweep)
    before = {p.name for p in (sweep / "runs").iterdir()}
    # 0.1 trained with gradient reversal (today's default objective is confusion)
    args = ["sweep", *SYN, "--sizes", "4", "--lambdas", "0,0.5", "--epochs", "2"]
    args += ["--adv-objective", "reverse"]
    args += ["--erasure", "leace", "--executor", "serial", "-q", "--out", str(sweep)]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "2 reused" in res.output and "0 computed" in res.output  # same run ids as 0.1
    assert {p.name for p in (sweep / "runs").iterdir()} == before
    from privrec.experiments.sweep_results import leakage_attributes, load_records, load_results

    long = load_records(sweep)
    assert leakage_attributes(long) == ["attr"] and set(long["stage"]) == {"final", "trained"}
    old = json.loads((FIXTURES / "sweep" / "results.json").read_text())
    new = load_results(sweep)
    for was, row in zip(old, new.to_dict(orient="records"), strict=True):
        for key in ("run_id", "attr_max_roc_auc", "trained_attr_max_roc_auc", "test_hr@10"):
            assert row[key] == pytest.approx(was[key]), key
    assert (sweep / "report.md").is_file()
