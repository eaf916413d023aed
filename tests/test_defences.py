"""Kernel dependence penalties (MMD, HSIC): estimators, specs, and the defence on planted data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from privrec.data.attributes import Attribute, UserAttributes
from privrec.defences import (
    DependenceSpec,
    HSICPenalty,
    MMDPenalty,
    build_dependence_penalties,
    hsic,
    label_kernel,
    median_bandwidth,
    mmd_classes,
    parse_weights,
    rbf_kernel,
)
from privrec.errors import ConfigError


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _radius_vectors(n: int, dim: int, labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Random directions whose length depends on the label: invisible to a linear reader."""
    z = torch.randn(n, dim, generator=_gen(seed))
    return z / z.norm(dim=1, keepdim=True) * (1.0 + labels[:, None].float())


def _attrs(n: int, seed: int = 0) -> UserAttributes:
    rng = np.random.default_rng(seed)
    codes = rng.choice(2, size=n, p=[0.7, 0.3]).astype(np.int64)
    codes[:5] = -1  # missing labels
    age = rng.integers(0, 7, size=n).astype(np.int64)
    score = rng.normal(size=n)
    score[::7] = np.nan
    return UserAttributes(
        np.arange(n),
        {
            "gender": Attribute("gender", "categorical", codes, ("M", "F")),
            "age": Attribute("age", "categorical", age, tuple(str(a) for a in range(7))),
            "score": Attribute("score", "continuous", score),
        },
    )


# --------------------------------------------------------------------------- estimators


def test_rbf_kernel_shape_diagonal_and_median():
    x = torch.randn(50, 4, generator=_gen())
    k = rbf_kernel(x, (0.5, 1.0, 2.0))
    assert k.shape == (50, 50)
    assert torch.allclose(k, k.T, atol=1e-6)
    assert torch.allclose(torch.diagonal(k), torch.full((50,), 3.0), atol=1e-5)
    # median heuristic: scale-free kernel
    assert torch.allclose(rbf_kernel(10 * x, (1.0,)), rbf_kernel(x, (1.0,)), atol=1e-5)
    d = torch.cdist(x, x)
    iu = torch.triu_indices(50, 50, 1)
    assert median_bandwidth(x) == pytest.approx(float(d[iu[0], iu[1]].median()), rel=1e-4)
    assert median_bandwidth(torch.zeros(5, 3)) == 1.0  # degenerate sample


def _brute_mmd(k, y, n_classes, unbiased):
    n, total = len(y), 0.0
    for c in range(n_classes):
        a, b = (y == c).nonzero().flatten(), (y != c).nonzero().flatten()
        if len(a) < 2 or len(b) < 2:
            continue
        kaa, kbb, kab = k[a][:, a], k[b][:, b], k[a][:, b]
        if unbiased:
            m = (kaa.sum() - kaa.trace()) / (len(a) * (len(a) - 1))
            m += (kbb.sum() - kbb.trace()) / (len(b) * (len(b) - 1))
        else:
            m = kaa.mean() + kbb.mean()
        m -= 2 * kab.mean()
        p = len(a) / n
        total += p * (1 - p) ** 2 * float(m)
    return total


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd_matches_a_brute_force_computation(unbiased):
    x = torch.randn(60, 3, generator=_gen(1))
    y = torch.randint(0, 4, (60,), generator=_gen(2))
    y[y == 3] = 0
    y[0] = 3  # a singleton class is skipped
    k = rbf_kernel(x, (1.0,))
    expected = _brute_mmd(k, y, 4, unbiased)
    assert float(mmd_classes(k, y, 4, unbiased)) == pytest.approx(expected, rel=1e-4, abs=1e-7)
    # the biased statistic is the squared distance between class and pooled mean embeddings
    if not unbiased:
        direct = 0.0
        for c in range(3):
            d = (y == c).float() / (y == c).sum() - 1.0 / 60
            direct += float((y == c).float().mean() * d @ k @ d)
        assert float(mmd_classes(k, y, 4, False)) == pytest.approx(direct, rel=1e-4)


def test_hsic_matches_the_trace_formula_and_normalises():
    x = torch.randn(40, 3, generator=_gen(3))
    y = torch.randint(0, 3, (40,), generator=_gen(4))
    k, l = rbf_kernel(x, (1.0,)), label_kernel(y, "categorical", 3)  # noqa: E741
    h = torch.eye(40) - 1.0 / 40
    expected = float(torch.trace(k @ h @ l @ h)) / 39**2
    assert float(hsic(k, l)) == pytest.approx(expected, rel=1e-4)
    assert float(hsic(k, k, normalize=True)) == pytest.approx(1.0, rel=1e-5)
    assert 0.0 <= float(hsic(k, l, normalize=True)) <= 1.0


def test_centred_estimators_have_zero_mean_under_label_permutation():
    n = 120
    x = torch.randn(n, 4, generator=_gen(5))
    y = torch.randint(0, 3, (n,), generator=_gen(6))
    k = rbf_kernel(x, (0.5, 1.0, 2.0))
    g = _gen(7)
    perms = [y[torch.randperm(n, generator=g)] for _ in range(400)]
    raw = np.array([float(hsic(k, label_kernel(p, "categorical", 3))) for p in perms])
    cen = np.array([float(hsic(k, label_kernel(p, "categorical", 3), excess=True)) for p in perms])
    mmd_b = np.array([float(mmd_classes(k, p, 3, False, excess=True)) for p in perms])
    mmd_u = np.array([float(mmd_classes(k, p, 3, True)) for p in perms])
    assert raw.mean() > 5 * raw.std() / np.sqrt(len(raw))  # the biased HSIC is biased upwards
    for v in (cen, mmd_b, mmd_u):
        assert abs(v.mean()) < 4 * v.std() / np.sqrt(len(v))


def test_independent_vs_encoded_labels():
    n = 400
    y = (torch.rand(n, generator=_gen(8)) < 0.3).long()
    indep = torch.randn(n, 8, generator=_gen(9))
    enc = _radius_vectors(n, 8, y, seed=9)
    lk = label_kernel(y, "categorical", 2)
    values = {}
    for name, x in (("indep", indep), ("enc", enc)):
        k = rbf_kernel(x, (0.5, 1.0, 2.0))
        values[name] = (
            float(mmd_classes(k, y, 2)),
            float(hsic(k, lk, normalize=True, excess=True)),
        )
    (mi, hi), (me, he) = values["indep"], values["enc"]
    assert abs(mi) < 0.003 and abs(hi) < 0.01
    assert me > 0.03 and he > 0.15
    assert me > 20 * abs(mi) and he > 15 * abs(hi)


def test_continuous_label_kernel_hsic():
    n = 300
    v = torch.randn(n, generator=_gen(10)).double()
    z = torch.randn(n, 6, generator=_gen(11))
    dep = z / z.norm(dim=1, keepdim=True) * v.abs()[:, None].float()  # non-linear in v
    lk = label_kernel(v, "continuous")
    assert torch.allclose(lk, label_kernel(v * 5 + 3, "continuous"), atol=1e-5)
    h_ind = float(hsic(rbf_kernel(z), lk, normalize=True, excess=True))
    h_dep = float(hsic(rbf_kernel(dep), lk, normalize=True, excess=True))
    assert abs(h_ind) < 0.02 and h_dep > 0.1


# --------------------------------------------------------------------------- penalties


def test_penalties_give_gradients_stats_and_mask_missing_labels():
    n = 120
    attrs = _attrs(n)
    spec = DependenceSpec(mmd={"gender": 2.0}, hsic={"gender": 1.0, "score": 0.5})
    pens = build_dependence_penalties(attrs, spec, 8)
    assert [type(p) for p in pens] == [MMDPenalty, HSICPenalty, HSICPenalty]
    assert [p.name for p in pens] == ["mmd_gender", "hsic_gender", "hsic_score"]
    assert all(len(list(p.parameters())) == 0 for p in pens)
    y = torch.from_numpy(attrs["gender"].values.clip(min=0))
    vecs = _radius_vectors(n, 8, y, seed=1).requires_grad_(True)
    users = torch.arange(n)
    total = 0.0
    for p in pens:
        loss, stats = p(vecs, users, 0.5)
        assert loss.ndim == 0 and torch.isfinite(loss)
        assert list(stats) == [p.name]
        assert float(loss.detach()) == pytest.approx(p.weight * abs(stats[p.name]), rel=1e-4, abs=1e-7)
        total = total + loss
    total.backward()
    assert vecs.grad is not None and float(vecs.grad.abs().sum()) > 0
    # users with a missing gender never enter the gender estimates: no gradient reaches them
    vecs.grad = None
    loss, _ = pens[0](vecs, users, 0.5)
    (loss + pens[1](vecs, users, 0.5)[0]).backward()
    missing = ~torch.from_numpy(attrs["gender"].known)
    assert float(vecs.grad[missing].abs().sum()) == 0.0
    assert float(vecs.grad[~missing].abs().sum()) > 0.0
    # changing a missing user's vector does not change the estimate
    moved = vecs.detach().clone()
    moved[missing] += 10.0
    a = pens[0].estimate(*pens[0]._sample(vecs.detach(), users))
    b = pens[0].estimate(*pens[0]._sample(moved, users))
    assert float(a) == pytest.approx(float(b), rel=1e-5)


def test_too_few_labelled_users_in_batch_gives_zero_loss_and_no_stat():
    attrs = _attrs(50)
    (pen,) = build_dependence_penalties(attrs, DependenceSpec(mmd={"gender": 1.0}), 4)
    vecs = torch.randn(3, 4, requires_grad=True)
    loss, stats = pen(vecs, torch.arange(3), 0.0)  # users 0..2 have missing gender
    assert float(loss) == 0.0 and stats == {}
    loss.backward()  # still part of the graph


def test_subsampling_is_capped_and_seeded():
    n = 300
    attrs = _attrs(n)
    spec = DependenceSpec(hsic={"age": 1.0}, sample_size=64, seed=3)
    users = torch.arange(n)
    vecs = torch.randn(n, 5, generator=_gen(12))
    a = build_dependence_penalties(attrs, spec, 5)[0]
    b = build_dependence_penalties(attrs, spec, 5)[0]
    va, la = a._sample(vecs, users)
    vb, lb = b._sample(vecs, users)
    assert va.shape == (64, 5) and la.shape == (64,)
    assert torch.equal(va, vb) and torch.equal(la, lb)
    assert a(vecs, users, 0.0)[1] == b(vecs, users, 0.0)[1]


def test_objectives():
    n = 200
    attrs = _attrs(n)
    vecs = torch.randn(n, 6, generator=_gen(13))
    users = torch.arange(n)
    out = {}
    for obj in ("two-sided", "excess", "raw"):
        spec = DependenceSpec(hsic={"gender": 1.0}, objective=obj, normalize_hsic=False)
        (pen,) = build_dependence_penalties(attrs, spec, 6)
        loss, stats = pen(vecs, users, 0.0)
        out[obj] = (float(loss), stats["hsic_gender"])
    assert out["two-sided"][0] == pytest.approx(abs(out["two-sided"][1]), rel=1e-5)
    assert out["excess"][0] == pytest.approx(max(out["excess"][1], 0.0), abs=1e-9)
    assert out["raw"][0] == pytest.approx(out["raw"][1]) and out["raw"][1] > 0
    assert out["raw"][1] > out["two-sided"][1]  # the raw biased HSIC carries the null's bias


# --------------------------------------------------------------------------- specs


def test_spec_validation_and_to_dict():
    spec = DependenceSpec(mmd=parse_weights(["gender=1", "age=0.5"]), hsic={"age": 2})
    assert spec.mmd == {"gender": 1.0, "age": 0.5} and spec.hsic == {"age": 2.0}
    assert spec.multipliers == (0.5, 1.0, 2.0)
    assert DependenceSpec(bandwidths=(1,)).multipliers == (1.0,)
    d = spec.to_dict()
    assert d["mmd"] == {"gender": 1.0, "age": 0.5} and d["sample_size"] == 512
    assert d["objective"] == "two-sided"
    assert DependenceSpec().empty and not spec.empty
    bad = [
        dict(mmd={"gender": -1.0}),
        dict(hsic={"gender": float("nan")}),
        dict(mmd={"gender": float("inf")}),
        dict(mmd={"gender": "x"}),
        dict(bandwidths=(0.0,)),
        dict(bandwidths=(-1.0,)),
        dict(sample_size=2),
        dict(sample_size=10.5),
        dict(objective="one-sided"),
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError):
            DependenceSpec(**kwargs)


def test_builder_errors():
    attrs = _attrs(40)
    assert build_dependence_penalties(attrs, DependenceSpec(), 4) == []
    with pytest.raises(ConfigError, match=r"unknown attribute\(s\) height.*available: gender"):
        build_dependence_penalties(attrs, DependenceSpec(hsic={"height": 1.0}), 4)
    with pytest.raises(ConfigError, match="categorical.*use hsic"):
        build_dependence_penalties(attrs, DependenceSpec(mmd={"score": 1.0}), 4)
    # HSIC takes continuous attributes
    (pen,) = build_dependence_penalties(attrs, DependenceSpec(hsic={"score": 1.0}), 4)
    assert pen.kind == "continuous"
