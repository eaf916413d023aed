import numpy as np
import pytest
import torch

from privrec.artifacts import load_embeddings
from privrec.data.sampling import sample_negatives
from privrec.data.split import leave_last_out
from privrec.errors import ConfigError, FitError
from privrec.experiments.run import train_and_evaluate, write_run
from privrec.models.losses import bpr_loss
from privrec.training import TrainConfig, Trainer

FAST = dict(embedding_size=8, epochs=6, batch_size=512, learning_rate=0.01, patience=0)


def test_bpr_loss_is_pure_and_correct():
    pos, neg = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 0.0])
    expected = -(np.log(1 / (1 + np.exp(-2.0))) + np.log(0.5)) / 2
    assert float(bpr_loss(pos, neg)) == pytest.approx(expected)


def test_negatives_are_never_interactions(tiny):
    inter = tiny.interactions
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(inter.n_users), 20)
    neg = sample_negatives(inter, users, rng)
    assert not inter.contains(users, neg).any()
    assert neg.min() >= 0 and neg.max() < inter.n_items


def test_config_validation():
    with pytest.raises(ConfigError, match="embedding_size must be > 0"):
        TrainConfig(embedding_size=0)
    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        TrainConfig(learning_rate=-1)
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig().replace(nope=1)


def test_training_learns_and_reports(tiny):
    split = leave_last_out(tiny.interactions)
    records = []
    tm = Trainer(TrainConfig(**FAST), callback=records.append).fit(split)
    assert len(records) == 6 and "val_hr@10" in records[0] and "rec_loss" in records[0]
    assert records[-1]["rec_loss"] < records[0]["rec_loss"]
    # better than popularity-free random ranking (10 / ~140 candidates ≈ 0.07)
    assert tm.validation["hr@10"] > 0.15
    assert tm.user_vectors().shape == (600, 8)


def test_early_stopping_keeps_best(tiny):
    split = leave_last_out(tiny.interactions)
    tm = Trainer(TrainConfig(**{**FAST, "epochs": 40, "patience": 2})).fit(split)
    hrs = [h["val_hr@10"] for h in tm.history]
    assert tm.epochs_run < 40
    assert tm.validation["hr@10"] == max(hrs) == hrs[tm.best_epoch - 1]


def test_same_seed_same_embeddings(tiny, tmp_path):
    split = leave_last_out(tiny.interactions)
    cfg = TrainConfig(**FAST)
    paths = []
    for name in ("a", "b"):
        m, t = train_and_evaluate(tiny, split, cfg)
        paths.append(write_run(tmp_path / name, tiny, split, cfg, m, t))
    a, b = (load_embeddings(p) for p in paths)
    assert np.array_equal(a.user_vectors, b.user_vectors)
    assert np.array_equal(a.item_vectors, b.item_vectors)
    assert (paths[0] / "embeddings.npz").read_bytes() == (paths[1] / "embeddings.npz").read_bytes()
    c, _ = train_and_evaluate(tiny, split, cfg.replace(seed=1))
    assert c["validation"] != {} and load_embeddings(paths[0]).user_ids.dtype.kind in "iu"


def test_divergence_raises_fit_error(tiny):
    split = leave_last_out(tiny.interactions)
    cfg = TrainConfig(**{**FAST, "learning_rate": 1e6, "optimizer": "sgd", "max_user_norm": 100})
    with pytest.raises(FitError) as info:
        Trainer(cfg).fit(split)
    assert info.value.reason in ("nan_loss", "exploding_norm")
    metrics, trained = train_and_evaluate(tiny, split, cfg)
    assert metrics["status"] == "diverged" and trained is None


def test_write_run_is_atomic_and_refuses_overwrite(tiny, tmp_path):
    split = leave_last_out(tiny.interactions)
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    m, t = train_and_evaluate(tiny, split, cfg)
    out = write_run(tmp_path / "run", tiny, split, cfg, m, t)
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "embeddings.npz",
        "metrics.json",
    ]
    with pytest.raises(ValueError, match="already exists"):
        write_run(tmp_path / "run", tiny, split, cfg, m, t)
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
