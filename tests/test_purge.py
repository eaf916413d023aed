"""The purge (attribute unlearning with ranking preservation): the map, the API on any
system's vectors, the command and its errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from typer.testing import CliRunner

import privrec
from privrec.cli.app import app
from privrec.data.attributes import Attribute
from privrec.data.split import leave_last_out
from privrec.defences.erasure.purge import fit_purge
from privrec.errors import ConfigError, DataError


@pytest.fixture(scope="module")
def trained():
    ds = privrec.load_dataset("synthetic", seed=0)
    run = privrec.train(ds, embedding_size=16, epochs=20, seed=0)
    return ds, run


def _auc(vectors: np.ndarray, labels: np.ndarray) -> float:
    folds = StratifiedKFold(3, shuffle=True, random_state=0)
    p = cross_val_predict(
        LogisticRegression(max_iter=1000), vectors, labels, cv=folds, method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(labels, p))


def _fit(ds, run, **options):
    emb = run.embeddings
    split = leave_last_out(ds.interactions)
    attr = ds.attributes["attr"]
    fmap = fit_purge(
        emb.user_vectors, [attr], (emb.item_vectors, emb.item_bias), split.train.csr, **options
    )
    return fmap, attr


@pytest.mark.slow
def test_purge_removes_a_planted_signal_and_keeps_most_lists(trained):
    ds, run = trained
    fmap, attr = _fit(ds, run, steps=150, weight=10.0)
    before = _auc(run.embeddings.user_vectors, attr.values)
    after = _auc(fmap(run.embeddings.user_vectors), attr.values)
    assert before > 0.8  # the planted signal is there
    assert after < 0.65, (before, after)
    assert fmap.info["top10_overlap"] >= 0.6
    assert fmap.info["distance_end"]["attr"] < 0.2 * fmap.info["distance_start"]["attr"]


@pytest.mark.slow
def test_purge_starts_as_the_identity_and_weight_zero_keeps_the_lists(trained):
    ds, run = trained
    fmap, _ = _fit(ds, run, steps=20, weight=0.0)
    x = run.embeddings.user_vectors
    # the ranking loss is 0 at the start and nothing else pulls: the map stays the identity
    assert np.allclose(fmap(x), x, atol=1e-5)
    assert fmap.info["top10_overlap"] == 1.0


@pytest.mark.slow
def test_purge_is_seeded(trained):
    ds, run = trained
    a, _ = _fit(ds, run, steps=10, seed=3)
    b, _ = _fit(ds, run, steps=10, seed=3)
    x = run.embeddings.user_vectors
    assert np.array_equal(a(x), b(x))


@pytest.mark.slow
def test_purge_then_leace_guards_linear_readers(trained):
    ds, run = trained
    fmap, attr = _fit(ds, run, steps=30, leace=True)
    after = fmap(run.embeddings.user_vectors)
    assert fmap.leace is not None
    assert _auc(after, attr.values) < 0.6


def test_purge_rejects_what_it_cannot_do(trained):
    ds, run = trained
    emb = run.embeddings
    items = (emb.item_vectors, emb.item_bias)
    cont = Attribute("x", "continuous", np.random.default_rng(0).normal(size=len(emb.user_ids)))
    with pytest.raises(ConfigError, match="continuous"):
        fit_purge(emb.user_vectors, [cont], items)
    attr = ds.attributes["attr"]
    with pytest.raises(ConfigError, match="weight must be a finite number"):
        fit_purge(emb.user_vectors, [attr], items, weight=float("nan"))
    with pytest.raises(ConfigError, match="kernel must be rff or rbf"):
        fit_purge(emb.user_vectors, [attr], items, kernel="linear")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="item vectors of shape"):
        fit_purge(emb.user_vectors, [attr], (emb.item_vectors[:, :3], emb.item_bias))


def _foreign_npz(tmp_path, run, bias: bool = True):
    """Vectors as another library would export them (no privrec run directory)."""
    emb = run.embeddings
    arrays = {
        "user_ids": emb.user_ids,
        "user_vectors": emb.user_vectors,
        "item_ids": emb.item_ids,
        "item_vectors": emb.item_vectors,
    }
    if bias:
        arrays["item_bias"] = emb.item_bias
    path = tmp_path / "vectors.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.slow
def test_api_purges_vectors_privrec_did_not_train(trained, tmp_path):
    ds, run = trained
    path = _foreign_npz(tmp_path, run, bias=False)
    purged = privrec.purge(
        path, ds, attributes="attr", label_fraction=0.5, options={"steps": 20}, seed=1
    )
    assert purged.metrics["erasure"]["method"] == "purge"
    assert 0 <= purged.metrics["erasure"]["top10_overlap"] <= 1
    assert len(purged.label_users) == len(ds.user_ids) // 2
    # the test HR is recomputed from the purged vectors under the dataset's split
    assert purged.metrics["before_erasure"]["test"]["hr@10"] != purged.metrics["test"]["hr@10"]
    out = purged.save(tmp_path / "out")
    listed = (out / "label_users.txt").read_text().split()
    assert sorted(listed) == sorted(str(u) for u in purged.label_users)
    again = privrec.load_run(out)
    assert again.erasure["method"] == "purge"
    assert again.spec.label_fraction == 0.5


@pytest.mark.slow
def test_purge_command_on_an_npz(trained, tmp_path):
    ds, run = trained
    path = _foreign_npz(tmp_path, run)
    out = tmp_path / "purged"
    result = CliRunner().invoke(
        app,
        [
            "purge", str(path), "--dataset", "synthetic", "-a", "attr", "--steps", "20", "--label-fraction",
            "0.5", "--attackers", "logistic", "-O", "bandwidths=1,2", "-o", str(out), "-q",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "top-10 lists" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["erasure"]["method"] == "purge"
    assert (out / "label_users.txt").exists()
    config = json.loads((out / "config.json").read_text())
    assert config["erasure"]["options"]["bandwidths"] == [1.0, 2.0]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--steps", "0"], "steps must be ≥ 1"),
        (["-O", "kernel=linear"], "--option kernel: expected one of rff, rbf"),
        (["-O", "weight=2"], "--option weight: give it as --weight"),
        (["-O", "bandwidths=a"], "bandwidths: expected a number"),
        (["--label-fraction", "1.5"], "label_fraction"),
    ],
)
def test_purge_command_checks_options_before_work(trained, tmp_path, args, message):
    _, run = trained
    path = _foreign_npz(tmp_path, run)
    result = CliRunner().invoke(
        app, ["purge", str(path), "-d", "synthetic", "-a", "attr", "-o", str(tmp_path / "o"), *args]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "o").exists()


def test_purge_command_names_a_bad_vectors_file(tmp_path):
    path = tmp_path / "v.npz"
    np.savez(path, user_ids=np.arange(3), user_vectors=np.ones((3, 2)))
    result = CliRunner().invoke(
        app, ["purge", str(path), "-d", "synthetic", "-a", "attr", "-o", str(tmp_path / "o")]
    )
    assert result.exit_code == 2
    assert "missing array(s) item_ids, item_vectors" in result.output
    result = CliRunner().invoke(app, ["purge", str(path), "-a", "attr", "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "pass --dataset" in result.output


@pytest.mark.slow
def test_purge_with_pseudo_labels_reaches_users_whose_labels_it_did_not_see():
    """Fitted on the labelled half only, the map hides a planted direction from the labelled
    users but hardly from the others; pseudo-labels (a logistic regression's class
    probabilities for the unlabelled users) carry it over to them."""
    ds = privrec.load_dataset("synthetic", seed=0, mode="direction", n_users=800)
    run = privrec.train(ds, embedding_size=16, epochs=20, seed=0)
    emb = run.embeddings
    split = leave_last_out(ds.interactions)
    attr = ds.attributes.align_to(ds.interactions.user_ids)["attr"]
    hide = np.random.default_rng(123).random(len(attr.values)) < 0.5
    seen = Attribute("attr", "categorical", np.where(hide, -1, attr.values), attr.classes)
    x, y = emb.user_vectors, attr.values
    items = (emb.item_vectors, emb.item_bias)

    def held_out_auc(vectors):
        return _auc(vectors[hide], y[hide])

    plain = fit_purge(x, [seen], items, split.train.csr, steps=100, weight=10.0)
    pseudo = fit_purge(
        x, [seen], items, split.train.csr, steps=100, weight=10.0, pseudo_labels=True
    )
    before, without, with_ = held_out_auc(x), held_out_auc(plain(x)), held_out_auc(pseudo(x))
    assert before > 0.85
    assert without > 0.8, without  # the map alone does not carry over (why the option exists)
    assert with_ < 0.7 and without - with_ > 0.15, (without, with_)
    assert pseudo.info["top10_overlap"] >= 0.6
    assert pseudo.info["pseudo_labelled_users"] == {"attr": int(hide.sum())}


def test_purge_pseudo_labels_need_random_features(trained):
    ds, run = trained
    with pytest.raises(ConfigError, match="pseudo_labels needs kernel = rff"):
        _fit(ds, run, steps=1, kernel="rbf", pseudo_labels=True)
