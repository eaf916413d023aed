import numpy as np
import pytest
import torch
import torch.nn.functional as F

from privrec.artifacts import load_embeddings
from privrec.data.sampling import sample_negatives
from privrec.data.split import leave_last_out
from privrec.errors import ConfigError, FitError
from privrec.models.losses import bpr_loss
from privrec.runs.pipeline import run_pipeline, train_and_evaluate
from privrec.runs.run_spec import RunSpec
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
    with pytest.raises(ConfigError, match="'train.embedding_size' must be > 0"):
        TrainConfig(embedding_size=0)
    with pytest.raises(ConfigError, match="'train.learning_rate' must be > 0"):
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


def _spec(ds, cfg):
    return RunSpec(dataset=ds.name, train=cfg, seed=cfg.seed, attackers=None)


def test_same_seed_same_embeddings(tiny, tmp_path):
    split = leave_last_out(tiny.interactions)
    cfg = TrainConfig(**FAST)
    paths = []
    for name in ("a", "b"):
        paths.append(run_pipeline(_spec(tiny, cfg), tiny, split).save(tmp_path / name))
    a, b = (load_embeddings(p) for p in paths)
    assert np.array_equal(a.user_vectors, b.user_vectors)
    assert np.array_equal(a.item_vectors, b.item_vectors)
    assert (paths[0] / "embeddings.npz").read_bytes() == (paths[1] / "embeddings.npz").read_bytes()
    c, _ = train_and_evaluate(_spec(tiny, cfg.replace(seed=1)), tiny, split)
    assert c["validation"] != {} and load_embeddings(paths[0]).user_ids.dtype.kind in "iu"


def test_divergence_raises_fit_error(tiny):
    split = leave_last_out(tiny.interactions)
    cfg = TrainConfig(**{**FAST, "learning_rate": 1e6, "optimizer": "sgd", "max_user_norm": 100})
    with pytest.raises(FitError) as info:
        Trainer(cfg).fit(split)
    assert info.value.reason in ("nan_loss", "exploding_norm")
    metrics, trained = train_and_evaluate(_spec(tiny, cfg), tiny, split)
    assert metrics["status"] == "diverged" and trained is None


def test_write_run_is_atomic_and_refuses_overwrite(tiny, tmp_path):
    split = leave_last_out(tiny.interactions)
    cfg = TrainConfig(**{**FAST, "epochs": 1})
    run = run_pipeline(_spec(tiny, cfg), tiny, split)
    out = run.save(tmp_path / "run")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "embeddings.npz",
        "metrics.json",
        "seen.npz",
        "summary.json",
    ]
    with pytest.raises(ValueError, match="already exists"):
        run.save(tmp_path / "run")
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


# --- row-wise (sparse) Adam: the optimizer for large catalogues ---------------------------------


def _full_batch_steps(optimizer: str, steps: int = 5) -> list[np.ndarray]:
    """A few optimizer steps on a batch that touches every user, item and bias row."""
    from privrec.models import build_model
    from privrec.training.trainer import _optimizer

    cfg = TrainConfig(embedding_size=4, learning_rate=0.05, optimizer=optimizer)
    model = build_model("bpr-mf", 5, 6, 4, 0.1, seed=3, sparse=optimizer == "sparse-adam")
    opt = _optimizer(cfg, model, list(model.parameters()))
    u = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2])
    i = torch.tensor([0, 1, 2, 3, 4, 5, 0, 1])
    j = torch.tensor([5, 4, 3, 2, 1, 3, 2, 4])  # no pair and its reverse: no ~0 gradients
    for _ in range(steps):
        pv = model.user_vectors(u)
        s_pos, s_neg, reg = model.pair_terms(pv, i, j)
        # Adam is invariant to the loss scale, except through eps; a large scale makes every
        # gradient much larger than eps (SparseAdam places eps differently)
        loss = 1e4 * (bpr_loss(s_pos, s_neg) + 0.01 * reg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()]


def test_sparse_adam_equals_adam_when_every_row_is_in_every_batch():
    """Row-wise Adam differs from Adam only on rows absent from a batch; with none absent,
    the trajectories agree (up to float rounding)."""
    dense, sparse = _full_batch_steps("adam"), _full_batch_steps("sparse-adam")
    assert len(dense) == len(sparse) == 3
    for d, s in zip(dense, sparse, strict=True):
        np.testing.assert_allclose(s, d, rtol=1e-5, atol=1e-6)
    start = _full_batch_steps("adam", steps=0)
    assert not np.allclose(start[0], dense[0])  # the steps did move the weights


def test_sparse_adam_updates_only_the_batch_rows():
    from privrec.models import build_model
    from privrec.training.trainer import _optimizer

    cfg = TrainConfig(embedding_size=4, optimizer="sparse-adam")
    model = build_model("bpr-mf", 10, 8, 4, 0.1, seed=0, sparse=True)
    before = model.user.weight.detach().clone()
    opt = _optimizer(cfg, model, list(model.parameters()))
    for _ in range(3):  # after the first step Adam's moments are non-zero everywhere it went
        pv = model.user_vectors(torch.tensor([1, 3]))
        s_pos, s_neg, _ = model.pair_terms(pv, torch.tensor([0, 1]), torch.tensor([2, 3]))
        opt.zero_grad()
        bpr_loss(s_pos, s_neg).backward()
        opt.step()
    changed = (model.user.weight.detach() != before).any(dim=1).nonzero().squeeze(1).tolist()
    assert changed == [1, 3]


def _lazy_adam_reference(w, steps, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    """Row-wise Adam written out row by row in NumPy (float64): the definition RowAdam follows."""
    w = w.astype(np.float64).copy()
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, (idx, vals) in enumerate(steps, start=1):
        g = np.zeros_like(w)
        np.add.at(g, idx, vals)
        for r in np.unique(idx):
            m[r] = b1 * m[r] + (1 - b1) * g[r]
            v[r] = b2 * v[r] + (1 - b2) * g[r] ** 2
            w[r] -= lr / (1 - b1**t) * m[r] / (np.sqrt(v[r] / (1 - b2**t)) + eps)
    return w


def test_row_adam_follows_the_row_wise_adam_definition():
    from privrec.training.optim import RowAdam

    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(30, 3)).astype(np.float32)
    steps = [
        (rng.integers(0, 24, 25), rng.normal(size=(25, 3)).astype(np.float32)) for _ in range(6)
    ]
    p = torch.nn.Parameter(torch.from_numpy(w0.copy()))
    opt = RowAdam([p], lr=0.01)
    for idx, vals in steps:  # repeated rows in every gradient: they must be summed first
        p.grad = torch.sparse_coo_tensor(
            torch.from_numpy(idx)[None], torch.from_numpy(vals), (30, 3), check_invariants=True
        )
        opt.step()
    expected = _lazy_adam_reference(w0, steps)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    untouched = np.setdiff1d(np.arange(30), np.concatenate([i for i, _ in steps]))
    assert len(untouched) and np.array_equal(p.detach().numpy()[untouched], w0[untouched])


def test_row_adam_sorts_shared_indices_once(monkeypatch):
    """Tables looked up with one index tensor (items and their biases) share the sort; tables
    with other indices of the same shape get their own."""
    from privrec.training import optim

    calls = []
    real = optim.distinct_rows
    monkeypatch.setattr(optim, "distinct_rows", lambda *a: calls.append(1) or real(*a))
    rng = np.random.default_rng(1)
    shared = torch.from_numpy(rng.integers(0, 12, 40))
    other = torch.from_numpy(rng.integers(0, 12, 40))
    params = [torch.nn.Parameter(torch.randn(12, d)) for d in (4, 1, 4)]
    starts = [p.detach().clone() for p in params]
    for p, idx in zip(params, (shared, shared, other), strict=True):
        F.embedding(idx, p, sparse=True).pow(2).sum().backward()
    grads = [p.grad for p in params]
    optim.RowAdam(params, lr=0.1).step()
    assert len(calls) == 2
    for p, start, g in zip(params, starts, grads, strict=True):  # same as one table at a time
        alone = torch.nn.Parameter(start.clone())
        alone.grad = g
        optim.RowAdam([alone], lr=0.1).step()
        assert torch.equal(alone.detach(), p.detach())


@pytest.mark.parametrize(("n_rows", "n_idx"), [(12, 40), (50, 3), (5000, 20), (7, 0)])
def test_distinct_rows_are_torch_unique_whichever_way_they_are_found(n_rows, n_idx):
    from privrec.training.optim import distinct_rows

    idx = torch.from_numpy(np.random.default_rng(n_rows).integers(0, n_rows, n_idx))
    rows, inverse = distinct_rows(idx, n_rows)
    want_rows, want_inverse = torch.unique(idx, sorted=True, return_inverse=True)
    assert torch.equal(rows, want_rows) and torch.equal(inverse, want_inverse)
    assert rows.dtype == inverse.dtype == torch.long


def test_sparse_pair_terms_give_one_gradient_per_table_and_the_dense_values():
    from privrec.models import build_model

    dense = build_model("bpr-mf", 6, 9, 4, 0.1, seed=2)
    sparse = build_model("bpr-mf", 6, 9, 4, 0.1, seed=2, sparse=True)
    u, i, j = torch.tensor([0, 2, 5, 2]), torch.tensor([1, 1, 8, 3]), torch.tensor([4, 1, 0, 7])
    outs = []
    for model in (dense, sparse):
        terms = model.pair_terms(model.user_vectors(u), i, j)
        (bpr_loss(terms[0], terms[1]) + 0.1 * terms[2]).backward()
        outs.append(terms)
    for a, b in zip(*outs, strict=True):
        torch.testing.assert_close(a, b)
    for name in ("item", "bias"):
        g = getattr(sparse, name).weight.grad
        assert g.is_sparse and g._indices().tolist() == [[1, 1, 8, 3, 4, 1, 0, 7]]
        torch.testing.assert_close(g.to_dense(), getattr(dense, name).weight.grad)


def test_sparse_adam_trains_deterministically_and_clips(tiny):
    split = leave_last_out(tiny.interactions)
    cfg = TrainConfig(**{**FAST, "optimizer": "sparse-adam", "max_grad_norm": 5.0})
    a, b = Trainer(cfg).fit(split), Trainer(cfg).fit(split)
    assert np.array_equal(a.user_vectors(), b.user_vectors())
    assert a.validation["hr@10"] > 0.15  # learns, like Adam (test_training_learns_and_reports)
    assert a.model.user.sparse and a.history[-1]["rec_loss"] < a.history[0]["rec_loss"]
    # penalties add their own (sparse) gradient to the user table and dense ones to the heads
    from privrec.defences.adversarial import AdversarySpec, build_adversaries

    heads = build_adversaries(tiny.attributes, AdversarySpec(weights={"attr": 0.1}), 8)
    before = [p.detach().clone() for p in heads[0].parameters()]
    c = Trainer(cfg, penalties=heads).fit(split)
    assert "adv_attr_loss" in c.history[-1] and c.validation["hr@10"] > 0.15
    assert any(not torch.equal(b, p) for b, p in zip(before, heads[0].parameters(), strict=True))


def test_sparse_adam_clipping_bounds_the_global_norm():
    from privrec.training.trainer import _clip_grad_norm

    w = torch.nn.Parameter(torch.zeros(6, 2))
    torch.nn.functional.embedding(torch.tensor([1, 1, 4]), w, sparse=True).sum().mul(10).backward()
    d = torch.nn.Parameter(torch.zeros(3))
    d.grad = torch.full((3,), 10.0)
    _clip_grad_norm([w, d], 1.0)
    total = torch.cat([w.grad.coalesce().values().flatten(), d.grad]).norm()
    assert float(total) == pytest.approx(1.0, rel=1e-4)
    # repeated rows are summed before the norm: row 1 carries 2 × 10 per coordinate
    vals = w.grad.coalesce().values()
    assert float(vals[0, 0]) == pytest.approx(2 * float(vals[1, 0]))


def test_sparse_adam_needs_sparse_tables(tiny):
    from privrec.models import build_model

    split = leave_last_out(tiny.interactions)
    model = build_model("bpr-mf", split.train.n_users, split.train.n_items, 8, 0.1, seed=0)
    with pytest.raises(ConfigError, match="sparse=True"):
        Trainer(TrainConfig(**{**FAST, "optimizer": "sparse-adam"}), model=model).fit(split)
    with pytest.raises(ConfigError, match="sparse-adam"):
        TrainConfig(optimizer="lazy")
