"""``privrec audit`` end to end, and leakage through recommendations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from privrec.artifacts import Embeddings, save_embeddings
from privrec.audit import audit_recommendations, recommendation_bags
from privrec.cli.app import app
from privrec.data.split import leave_last_out
from privrec.data.synthetic import make_synthetic
from privrec.errors import ConfigError

runner = CliRunner()


@pytest.fixture()
def files(tmp_path):
    rng = np.random.default_rng(0)
    n = 300
    ids = np.arange(1, n + 1)
    y = rng.integers(0, 2, n)
    X = rng.standard_normal((n, 4))
    X[:, 0] += 4 * y
    np.savez(tmp_path / "v.npz", user_ids=ids, user_vectors=X)
    pd.DataFrame(
        {"user_id": ids, "gender": np.where(y == 1, "F", "M"), "score": X[:, 1] * 2}
    ).to_csv(tmp_path / "attrs.csv", index=False)
    return tmp_path


def test_cli_audit_npz_with_attributes_csv(files):
    out = files / "out"
    res = runner.invoke(
        app,
        [
            "audit",
            str(files / "v.npz"),
            "--attributes",
            str(files / "attrs.csv"),
            "--user-col",
            "user_id",
            "--continuous",
            "score",
            "--attackers",
            "fast",
            "--folds",
            "3",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "strongest attacker: logistic" in res.output
    assert "gender" in res.output and "score" in res.output
    assert {p.name for p in out.iterdir()} == {"audit.json", "audit.csv", "audit.md"}
    d = json.loads((out / "audit.json").read_text())
    head = {h["attribute"]: h for h in d["headline"]}
    assert head["gender"]["roc_auc"] > 0.95
    assert head["score"]["r2"] > 0.9
    assert d["info"]["folds"] == 3
    # the folder exists now: a second run replaces the files
    res = runner.invoke(
        app,
        [
            "audit",
            str(files / "v.npz"),
            "--attributes",
            str(files / "attrs.csv"),
            "--user-col",
            "user_id",
            "--attribute",
            "gender",
            "--attackers",
            "fast",
            "-o",
            str(out),
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert [h["attribute"] for h in json.loads((out / "audit.json").read_text())["headline"]] == [
        "gender"
    ]


def test_cli_bad_join_exits_2(files):
    rng = np.random.default_rng(1)
    np.savez(files / "other.npz", user_ids=np.arange(5000, 5100), user_vectors=rng.random((100, 3)))
    res = runner.invoke(
        app,
        [
            "audit",
            str(files / "other.npz"),
            "--attributes",
            str(files / "attrs.csv"),
            "--user-col",
            "user_id",
            "--attackers",
            "fast",
            "-q",
        ],
    )
    assert res.exit_code == 2
    assert "error:" in res.output and "none of the 100 vector user ids" in res.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--attackers", "fast"], "--dataset NAME or --attributes CSV"),
        (["--dataset", "ml-1m", "--attributes", "X.csv"], "not both"),
        (["--attributes", "ATTR", "--user-col", "user_id", "--attackers", "bogus"], "bogus"),
        (["--attributes", "ATTR", "--user-col", "user_id", "--from-recommendations"], "needs"),
    ],
)
def test_cli_option_errors(files, args, message):
    args = [a.replace("ATTR", str(files / "attrs.csv")) for a in args]
    res = runner.invoke(app, ["audit", str(files / "v.npz"), *args, "-q"])
    assert res.exit_code == 2, res.output
    assert message in res.output


def _encoding_embeddings(ds, seed=0):
    """Two item clusters; a user's vector points at the cluster of their class."""
    rng = np.random.default_rng(seed)
    a = ds.attributes["attr"].values
    n_i = ds.interactions.n_items
    iv = np.zeros((n_i, 2))
    iv[: n_i // 2, 0] = 1
    iv[n_i // 2 :, 1] = 1
    iv += 0.05 * rng.standard_normal(iv.shape)
    uv = np.eye(2)[a] + 0.1 * rng.standard_normal((len(a), 2))
    return Embeddings(
        ds.interactions.user_ids, uv, ds.interactions.item_ids, iv, rng.random(n_i) * 0.01
    )


@pytest.fixture(scope="module")
def synthetic():
    return make_synthetic(n_users=400, n_items=120, strength=0.9, seed=0)


def test_recommendation_bags_exclude_training_items(synthetic):
    emb = _encoding_embeddings(synthetic)
    split = leave_last_out(synthetic.interactions)
    ids, bags, item_ids = recommendation_bags(emb, split, k=5)
    assert bags.shape[0] == len(ids) == 400
    assert (np.diff(bags.indptr) == 5).all()
    train = split.train.csr
    col_item = {str(i): j for j, i in enumerate(split.train.item_ids)}
    for u in range(0, 400, 37):
        recommended = {col_item[str(item_ids[c])] for c in bags[u].indices}
        assert not recommended & set(train[u].indices)
    with pytest.raises(ConfigError, match="k must be"):
        recommendation_bags(emb, split, k=0)


def test_audit_recommendations_finds_encoded_attribute(synthetic, tmp_path):
    emb = _encoding_embeddings(synthetic)
    r = audit_recommendations(emb, synthetic, k=10, names=["attr"], attackers="logistic")
    assert r.info["source"] == "recommendations" and r.info["k"] == 10
    assert r.leakage("attr") > 0.9
    assert r.headline.iloc[0]["max_balanced_accuracy"] > 0.8
    with pytest.raises(ConfigError, match="does not accept sparse"):
        audit_recommendations(emb, synthetic, names=["attr"], attackers="gradient_boosting")
    # the CLI path: a run directory + the synthetic dataset it came from
    run = tmp_path / "run"
    run.mkdir()
    save_embeddings(run / "embeddings.npz", emb)
    res = runner.invoke(
        app,
        [
            "audit",
            str(run),
            "--dataset",
            "synthetic",
            "--syn-users",
            "400",
            "--syn-items",
            "120",
            "--syn-strength",
            "0.9",
            "--from-recommendations",
            "--k",
            "10",
            "--attribute",
            "attr",
            "--attackers",
            "fast",
            "-q",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "top-10 recommendations" in res.output


def test_a_run_directory_brings_its_own_dataset(tmp_path):
    """`privrec audit RUN_DIR` needs no --dataset when the run records it (with its loader
    options: the synthetic data is rebuilt with the run's own sizes and strength)."""
    run = tmp_path / "run"
    train = [
        "train",
        *("--dataset", "synthetic", "--syn-users", "300", "--syn-items", "90"),
        *("--syn-strength", "0.9", "-e", "8", "--epochs", "2", "-q", "--out", str(run)),
    ]
    assert runner.invoke(app, train).exit_code == 0
    res = runner.invoke(app, ["audit", str(run), "--attackers", "fast", "-q"])
    assert res.exit_code == 0, res.output
    assert "attributes of the run's dataset synthetic" in res.output
    assert "300 of 300 users matched" in res.output
    # a plain vector file still has to say whose attributes
    res = runner.invoke(app, ["audit", str(run / "embeddings.npz"), "--attackers", "fast"])
    assert res.exit_code == 2 and "--dataset NAME or --attributes CSV" in res.output


def test_auditing_a_diverged_run_says_so(tmp_path):
    run = tmp_path / "run"
    bad = [
        "train",
        *("--dataset", "synthetic", "--syn-users", "200", "--syn-items", "80", "-q"),
        *("-e", "8", "--epochs", "6", "--optimizer", "sgd", "--lr", "1e6", "--out", str(run)),
    ]  # an absurd step size: the user vectors explode
    res = runner.invoke(app, bad)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "diverged", res.output
    res = runner.invoke(app, ["audit", str(run), "--attackers", "fast", "-q"])
    assert res.exit_code == 2 and "is a diverged run" in res.output, res.output
    assert "Traceback" not in res.output
