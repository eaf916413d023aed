"""The speed-ups (benchmarks/README.md) compute the same thing as the plain code they replace."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from privrec.data import sampling
from privrec.data.interactions import Interactions
from privrec.errors import DataError
from privrec.evaluation.ranking import target_ranks, target_ranks_reference, target_ranks_tensor
from privrec.models import BPRMF, TowerMF, build_model


def _random_interactions(rng, n_users=40, n_items=30, density=0.3) -> Interactions:
    dense = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(dense)
    return Interactions.from_ids(
        u, i, all_user_ids=np.arange(n_users), all_item_ids=np.arange(n_items)
    )


@pytest.mark.parametrize("seed", range(5))
def test_bitset_membership_matches_binary_search(seed):
    rng = np.random.default_rng(seed)
    inter = _random_interactions(rng)
    users = rng.integers(0, inter.n_users, 5000)
    items = rng.integers(0, inter.n_items, 5000)
    assert np.array_equal(sampling._contains(inter, users, items), inter.contains(users, items))


@pytest.mark.parametrize("bits_per_key", [64, 4, 1])
@pytest.mark.parametrize("seed", range(3))
def test_hashed_filter_membership_matches_binary_search(seed, bits_per_key, monkeypatch):
    """Above the bitset limit the hashed filter decides; its false positives (many with few
    bits per key) are confirmed by the binary search, so the answer stays exact."""
    rng = np.random.default_rng(seed)
    inter = _random_interactions(rng, n_users=300, n_items=200, density=0.05)
    monkeypatch.setattr(sampling, "BITSET_MAX_BITS", 0)
    monkeypatch.setattr(sampling, "FILTER_BITS_PER_KEY", bits_per_key)
    users = rng.integers(0, inter.n_users, 20000)
    items = rng.integers(0, inter.n_items, 20000)
    expected = inter.contains(users, items)
    membership = sampling._membership(inter)
    assert membership.shift is not None
    assert membership.bits.nbytes * 8 >= bits_per_key * len(inter)
    maybe = membership.maybe(users * inter.n_items + items)
    assert maybe[expected].all()  # no false negatives
    if bits_per_key == 1:
        assert (maybe & ~expected).any()  # the confirmation step is exercised
    assert np.array_equal(sampling._contains(inter, users, items), expected)


@pytest.mark.parametrize("seed", range(3))
def test_negative_sampling_draws_do_not_depend_on_the_membership_test(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    inter = _random_interactions(rng, density=0.6)  # many collisions: several redraw rounds
    users = np.repeat(np.arange(inter.n_users), 50)
    exact = sampling.sample_negatives(inter, users, np.random.default_rng(seed))
    assert sampling._membership(inter).shift is None
    monkeypatch.setattr(sampling, "BITSET_MAX_BITS", 0)  # the hashed filter + binary search
    monkeypatch.setattr(sampling, "FILTER_BITS_PER_KEY", 2)
    hashed = sampling.sample_negatives(inter, users, np.random.default_rng(seed))
    assert sampling._membership(inter).shift is not None
    monkeypatch.setattr(sampling, "_contains", lambda inter, u, i: inter.contains(u, i))
    plain = sampling.sample_negatives(inter, users, np.random.default_rng(seed))
    assert np.array_equal(exact, hashed) and np.array_equal(exact, plain)
    assert not inter.contains(users, exact).any()


def test_negative_sampling_rejects_unknown_users():
    inter = _random_interactions(np.random.default_rng(0))
    with pytest.raises(DataError, match="user index"):
        sampling.sample_negatives(inter, np.array([inter.n_users]), np.random.default_rng(0))


@pytest.mark.parametrize("seed", range(200))
def test_fast_ranks_equal_reference_ranks(seed):
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 25)), int(rng.integers(2, 40))
    dtype = (np.float32, np.float64)[seed % 2]
    if seed % 4 < 2:  # coarse integer scores: many ties
        scores = rng.integers(-3, 4, size=(n, m)).astype(dtype)
    else:
        scores = rng.normal(size=(n, m)).astype(dtype)
    if seed % 5 == 0:  # infinities and NaN
        scores[rng.random((n, m)) < 0.1] = -np.inf
        scores[rng.random((n, m)) < 0.1] = np.inf
        scores[rng.random((n, m)) < 0.05] = np.nan
    targets = rng.integers(0, m, n)
    mask = rng.random((n, m)) < rng.uniform(0, 0.6)
    mask[np.arange(n), targets] = False
    exclude = sp.csr_matrix(mask)
    if seed % 7 == 0 and exclude.nnz:  # an explicitly stored zero is not an exclusion
        exclude.data[0] = 0
    reference = target_ranks_reference(scores, targets, exclude)
    assert np.array_equal(target_ranks(scores, targets, exclude), reference)
    # the ranks counted on the scores' device (here a CPU tensor) are the same
    tensor = torch.from_numpy(scores)
    assert np.array_equal(target_ranks_tensor(tensor, targets, exclude), reference)
    assert np.array_equal(tensor.numpy(), scores, equal_nan=True)  # the scores are not masked


def test_fast_ranks_keep_the_input_checks():
    scores = np.zeros((2, 3))
    with pytest.raises(DataError, match="also excluded"):
        target_ranks(scores, np.array([0, 1]), sp.csr_matrix(np.array([[0, 0, 0], [0, 1, 0]])))
    with pytest.raises(DataError, match="does not match"):
        target_ranks(scores, np.array([0]), sp.csr_matrix((2, 3)))
    with pytest.raises(DataError, match="differs"):
        target_ranks(scores, np.array([0, 1]), sp.csr_matrix((2, 4)))
    for bad, message in [
        ((np.array([0, 1]), sp.csr_matrix(np.array([[0, 0, 0], [0, 1, 0]]))), "also excluded"),
        ((np.array([0]), sp.csr_matrix((2, 3))), "does not match"),
        ((np.array([0, 1]), sp.csr_matrix((2, 4))), "differs"),
    ]:
        with pytest.raises(DataError, match=message):
            target_ranks_tensor(torch.from_numpy(scores), *bad)


def _reference_terms(model: BPRMF, users, pos, neg):
    """The model's math written with nn.Embedding lookups (the code before the speed-up)."""
    pv = model.user(users)
    if isinstance(model, TowerMF):
        pv = pv + torch.tanh(model.tower(pv))

    def score(items):
        return (pv * model.item(items)).sum(-1) + model.bias(items).squeeze(-1)

    reg = (
        pv.pow(2).sum(-1) + model.item(pos).pow(2).sum(-1) + model.item(neg).pow(2).sum(-1)
    ).mean()
    return pv, score(pos), score(neg), reg


@pytest.mark.parametrize("name", ["bpr-mf", "tower-mf"])
def test_fused_pair_terms_match_the_separate_calls(name):
    torch.manual_seed(0)
    model = build_model(name, 50, 40, 6, 0.1, seed=3)
    with torch.no_grad():
        model.bias.weight.normal_()
    gen = torch.Generator().manual_seed(1)
    users = torch.randint(0, 50, (300,), generator=gen)  # duplicates on purpose
    pos = torch.randint(0, 40, (300,), generator=gen)
    neg = torch.randint(0, 40, (300,), generator=gen)

    pv = model.user_vectors(users)
    s_pos, s_neg, reg = model.pair_terms(pv, pos, neg)
    ref_pv, ref_pos, ref_neg, ref_reg = _reference_terms(model, users, pos, neg)
    assert torch.equal(pv, ref_pv)
    assert torch.equal(s_pos, ref_pos) and torch.equal(s_neg, ref_neg)
    assert torch.equal(s_pos, model.score(pv, pos)) and torch.equal(s_neg, model.score(pv, neg))
    assert torch.equal(reg, ref_reg) and torch.equal(reg, model.regularization(pv, pos, neg))

    def grads(loss):
        model.zero_grad(set_to_none=True)
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    fast = grads(-F.logsigmoid(s_pos - s_neg).mean() + 0.1 * reg)
    slow = grads(-F.logsigmoid(ref_pos - ref_neg).mean() + 0.1 * ref_reg)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_fused_path_respects_overridden_scores():
    class Doubled(BPRMF):
        def score(self, user_vecs, items):
            return 2 * super().score(user_vecs, items)

    model = Doubled(5, 4, 3, generator=torch.Generator().manual_seed(0))
    users, pos, neg = torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([3, 0])
    pv = model.user_vectors(users)
    s_pos, s_neg, _ = model.pair_terms(pv, pos, neg)
    assert torch.equal(s_pos, model.score(pv, pos)) and torch.equal(s_neg, model.score(pv, neg))


def test_lookups_accept_any_index_shape():
    model = build_model("bpr-mf", 7, 5, 3, 0.1, seed=0)
    idx = torch.tensor([[0, 1], [6, 6]])
    assert torch.equal(model.user_vectors(idx), model.user(idx))
    assert model.score(model.user_vectors(idx), torch.tensor([[1, 2], [3, 4]])).shape == (2, 2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_ranks_counted_on_cuda_equal_the_reference():
    rng = np.random.default_rng(0)
    scores = rng.integers(-3, 4, size=(300, 500)).astype(np.float32)
    targets = rng.integers(0, 500, 300)
    mask = rng.random((300, 500)) < 0.3
    mask[np.arange(300), targets] = False
    exclude = sp.csr_matrix(mask)
    on_gpu = target_ranks_tensor(torch.from_numpy(scores).cuda(), targets, exclude)
    assert np.array_equal(on_gpu, target_ranks_reference(scores, targets, exclude))


@pytest.mark.parametrize("objective", ["reverse", "confusion"])
def test_multi_tensor_adam_trains_the_same_weights_as_the_per_tensor_loop(objective, monkeypatch):
    """The trainer's optimizers use torch's ``foreach`` implementation (its default only on
    CUDA); on the CPU it must give the very weights of the per-tensor loop."""
    import privrec
    from privrec.data.split import leave_last_out
    from privrec.defences.adversarial import AdversarySpec, build_adversaries
    from privrec.training.config import TrainConfig
    from privrec.training.trainer import Trainer

    ds = privrec.load_dataset("synthetic", seed=0)
    split = leave_last_out(ds.interactions)
    spec = AdversarySpec(weights={"attr": 0.5}, objective=objective)
    cfg = TrainConfig(embedding_size=8, epochs=2, batch_size=256, seed=0, num_threads=1)

    def fit():
        return Trainer(cfg, build_adversaries(ds.attributes, spec, 8)).fit(split)

    fast = fit()
    adam = torch.optim.Adam
    monkeypatch.setattr(
        torch.optim, "Adam", lambda params, lr, foreach=None: adam(params, lr=lr, foreach=False)
    )
    loop = fit()
    assert np.array_equal(fast.user_vectors(), loop.user_vectors())
    assert np.array_equal(fast.item_vectors(), loop.item_vectors())
    for a, b in zip(fast.penalties, loop.penalties, strict=True):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(p, q)


@pytest.mark.parametrize("objective", ["reverse", "confusion"])
def test_a_head_with_zero_weight_leaves_the_vectors_as_without_it(objective):
    """Why the pipeline does not train heads with λ = 0 (``build_penalties``): trained, they
    would leave the user and item vectors bit for bit as without them."""
    import privrec
    from privrec.data.split import leave_last_out
    from privrec.defences.adversarial import AdversarySpec, build_adversaries
    from privrec.runs.pipeline import build_penalties
    from privrec.runs.run_spec import RunSpec
    from privrec.training.config import TrainConfig
    from privrec.training.trainer import Trainer

    ds = privrec.load_dataset("synthetic", seed=0)
    split = leave_last_out(ds.interactions)
    cfg = TrainConfig(embedding_size=8, epochs=2, batch_size=256, seed=0, num_threads=1)
    spec = AdversarySpec(weights={"attr": 0.0}, objective=objective)
    with_heads = Trainer(cfg, build_adversaries(ds.attributes, spec, 8)).fit(split)
    without = Trainer(cfg).fit(split)
    assert np.array_equal(with_heads.user_vectors(), without.user_vectors())
    assert np.array_equal(with_heads.item_vectors(), without.item_vectors())
    assert with_heads.history[0]["adv_attr_lambda"] == 0.0  # the heads did train
    run = RunSpec(dataset="synthetic", adversary=spec)
    assert build_penalties(run, ds) == []
    probed = RunSpec(
        dataset="synthetic", adversary=AdversarySpec(weights={"attr": 0.0}, probe=True)
    )
    assert len(build_penalties(probed, ds)) == 1  # the probe needs its penalty


@pytest.mark.parametrize("n_classes", [2, 4])
def test_gram_rbf_svc_matches_libsvm_rbf(n_classes, monkeypatch):
    """The audit's RBF SVM on an explicit Gram matrix: libsvm's RBF model, same predictions,
    decision values equal up to rounding; above the Gram limit libsvm's own kernel is used."""
    from sklearn.svm import SVC

    from privrec.audit import attackers

    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(400, 6))
    y = (X[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(int) + (n_classes > 2) * (X[:, 1] > 0)
    Xte = rng.normal(size=(150, 6))
    ref = SVC(kernel="rbf", gamma="scale", random_state=0).fit(X, y)
    ours = attackers.GramRBFSVC(random_state=0).fit(X, y)
    assert ours.X_fit_ is not None
    assert np.array_equal(ours.classes_, ref.classes_)
    assert np.array_equal(ours.predict(Xte), ref.predict(Xte))
    np.testing.assert_allclose(
        ours.decision_function(Xte), ref.decision_function(Xte), atol=1e-3, rtol=1e-3
    )
    monkeypatch.setattr(attackers, "GRAM_MAX_ROWS", 100)
    big = attackers.GramRBFSVC(random_state=0).fit(X, y)
    assert big.X_fit_ is None
    assert np.array_equal(big.decision_function(Xte), ref.decision_function(Xte))
    sparse = attackers.GramRBFSVC(random_state=0).fit(sp.csr_matrix(X), y)
    assert sparse.X_fit_ is None and np.array_equal(
        sparse.predict(sp.csr_matrix(Xte)), ref.predict(Xte)
    )


def test_gram_rbf_svr_matches_libsvm_rbf():
    from sklearn.svm import SVR

    from privrec.audit.attackers import GramRBFSVR

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5))
    y = np.sin(X[:, 0]) + 0.1 * rng.normal(size=300)
    Xte = rng.normal(size=(100, 5))
    ref = SVR(kernel="rbf", gamma="scale").fit(X, y).predict(Xte)
    np.testing.assert_allclose(GramRBFSVR().fit(X, y).predict(Xte), ref, atol=1e-3)
