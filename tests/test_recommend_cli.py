"""``privrec recommend`` on a run written by ``privrec train`` and on one saved from Python,
and ``privrec --version``."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

import privrec
from privrec.cli.app import app

runner = CliRunner()
SMALL = ["train", "--syn-users", "300", "--syn-items", "80", "-e", "6", "--epochs", "3", "-q"]


def test_recommend_a_trained_run_directory(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, [*SMALL, "--out", str(out)]).exit_code == 0
    res = runner.invoke(app, ["recommend", str(out), "--users", "1,2,3", "--k", "4", "--json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.output)
    assert [r["user"] for r in recs] == [1] * 4 + [2] * 4 + [3] * 4
    assert [r["rank"] for r in recs[:4]] == [1, 2, 3, 4]
    scores = [r["score"] for r in recs[:4]]
    assert scores == sorted(scores, reverse=True)
    # the same as the Python API on the loaded run, and seen items are excluded
    run = privrec.load_run(out)
    frame = run.recommend(users=[1, 2, 3], k=4)
    assert frame["item"].tolist() == [r["item"] for r in recs]
    row = int(np.flatnonzero(run.embeddings.user_ids == 1)[0])
    seen_items = set(run.embeddings.item_ids[run.seen[row].indices].tolist())
    assert seen_items and not seen_items & set(frame[frame["user"] == 1]["item"])
    with_seen = run.recommend(users=[1], k=len(run.embeddings.item_ids), exclude_seen=False)
    assert seen_items <= set(with_seen["item"])
    table = runner.invoke(app, ["recommend", str(out), "--users", "1", "--k", "2"])
    assert table.exit_code == 0 and "rank" in table.output


def test_recommend_a_run_saved_from_python(tmp_path):
    ds = privrec.load_dataset("synthetic", seed=3, n_users=200, n_items=60)
    run = privrec.train(ds, embedding_size=4, epochs=2, patience=0)
    run.save(tmp_path / "saved")
    res = runner.invoke(app, ["recommend", str(tmp_path / "saved"), "--users", "5", "--json"])
    assert res.exit_code == 0, res.output
    assert [r["item"] for r in json.loads(res.output)] == run.recommend([5], 10)["item"].tolist()


def test_recommend_errors_are_one_line(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, [*SMALL, "--out", str(out)]).exit_code == 0
    for args, message in (
        (["--users", "99999"], "unknown user id"),
        (["--users", " , "], "at least one user id"),
        (["--k", "0"], "k must be a positive integer"),
    ):
        res = runner.invoke(app, ["recommend", str(out), *args])
        assert res.exit_code == 2 and message in res.output, res.output
        assert "Traceback" not in res.output
    res = runner.invoke(app, ["recommend", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such run directory" in res.output


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("privrec ")
