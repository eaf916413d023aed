"""Re-fitting the items on defended user vectors (``refit_items``): the user vectors stay, the
items adapt, the file reproduces the recorded ranking, bad values are refused before work."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import privrec
from privrec.cli.app import app
from privrec.data.split import leave_last_out
from privrec.errors import ConfigError
from privrec.evaluation.protocol import evaluate_split, vectors_scorer
from privrec.runs.run_spec import RunSpec
from privrec.training.config import TrainConfig
from privrec.training.refit import refit_config, refit_items


@pytest.fixture(scope="module")
def trained():
    ds = privrec.load_dataset("synthetic", seed=0)
    run = privrec.train(ds, embedding_size=16, epochs=20, seed=0)
    return ds, run


def _hr(emb, split, which="validation"):
    return evaluate_split(
        vectors_scorer(emb.user_vectors, emb.item_vectors, emb.item_bias), split, which, 10
    )["hr@10"]


def test_refit_moves_only_the_items_and_repairs_a_mismatch(trained):
    ds, run = trained
    split = leave_last_out(ds.interactions)
    emb = run.embeddings
    # users rotated at random: the items no longer fit them, but every score can be recovered
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    users = (emb.user_vectors @ q).astype(np.float32)
    before = _hr(emb.replace_users(users), split)
    out = refit_items(
        users, emb.item_vectors, emb.item_bias, split, refit_config(None, 16, epochs=15)
    )
    after = _hr(emb.replace_users(users).replace_items(out.item_vectors, out.item_bias), split)
    assert after > before + 0.05, (before, after)
    assert out.info["best_epoch"] >= 1
    assert out.info["validation_hr@10_after"] == pytest.approx(after)
    assert not np.array_equal(out.item_vectors, emb.item_vectors)


def test_refit_keeps_the_starting_items_when_no_epoch_beats_them(trained):
    ds, run = trained
    split = leave_last_out(ds.interactions)
    emb = run.embeddings
    # a learning rate too small to change the ranking cannot beat the trained items
    config = refit_config(None, 16, epochs=1).replace(learning_rate=1e-12)
    out = refit_items(emb.user_vectors, emb.item_vectors, emb.item_bias, split, config)
    assert out.info["best_epoch"] == 0
    assert np.array_equal(out.item_vectors, emb.item_vectors)


def test_refit_config_takes_the_pair_model_settings_only():
    bpr = TrainConfig(learning_rate=0.01, reg=1e-4, batch_size=512, seed=4, patience=2)
    cfg = refit_config(bpr, 8, epochs=5)
    assert (cfg.learning_rate, cfg.reg, cfg.batch_size, cfg.seed, cfg.patience) == (
        0.01,
        1e-4,
        512,
        4,
        2,
    )
    assert (cfg.model, cfg.embedding_size, cfg.epochs, cfg.optimizer) == ("bpr-mf", 8, 5, "adam")
    vae = TrainConfig.for_model("multvae", seed=2)
    cfg = refit_config(vae, 8, epochs=5)
    assert cfg.learning_rate == TrainConfig().learning_rate and cfg.seed == 2
    with pytest.raises(ConfigError, match="at least 1"):
        refit_config(None, 8, epochs=0)


@pytest.mark.slow
def test_erase_with_refit_keeps_the_user_vectors_and_writes_its_ranking(trained, tmp_path):
    ds, run = trained
    plain = privrec.erase(run, ds, method="leace", attributes="attr", label_fraction=0.5)
    refit = privrec.erase(
        run, ds, method="leace", attributes="attr", label_fraction=0.5, refit_items=10
    )
    assert np.array_equal(plain.embeddings.user_vectors, refit.embeddings.user_vectors)
    record = refit.metrics["erasure"]["refit_items"]
    assert record["epochs"] == 10 and 1 <= record["epochs_run"] <= 10
    assert refit.metrics["validation"]["hr@10"] >= plain.metrics["validation"]["hr@10"]
    out = refit.save(tmp_path / "refit")
    again = privrec.load_run(out)
    split = leave_last_out(ds.interactions)
    assert _hr(again.embeddings, split, "test") == pytest.approx(refit.metrics["test"]["hr@10"])
    config = json.loads((out / "config.json").read_text())
    assert config["spec"]["erasure_refit_items"] == 10
    assert again.spec.erasure_refit_items == 10


def test_refit_is_left_out_of_older_run_ids():
    base = RunSpec(erasure="leace")
    assert "erasure_refit_items" not in base.identity()
    assert RunSpec(erasure="leace", erasure_refit_items=5).run_id != base.run_id


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"erasure": "leace", "erasure_refit_items": -1}, "whole number of epochs"),
        ({"erasure_refit_items": 3}, "set erasure"),
    ],
)
def test_run_spec_refuses_a_bad_refit(kw, message):
    with pytest.raises(ConfigError, match=message):
        RunSpec(**kw)


def test_purge_command_refuses_a_negative_refit_before_work(trained, tmp_path):
    _, run = trained
    src = run.save(tmp_path / "src")
    out = tmp_path / "o"
    result = CliRunner().invoke(
        app, ["purge", str(src), "-a", "attr", "--refit-items", "-1", "-o", str(out)]
    )
    assert result.exit_code == 2
    assert "--refit-items" in result.output and "whole number" in result.output
    assert not out.exists()
