import numpy as np
import pytest
import scipy.sparse as sp

from privrec.evaluation.ranking import evaluate_ranking, hit_rate, ndcg, target_ranks


def test_target_ranks_hand_computed():
    scores = np.array([[0.9, 0.1, 0.5, 0.7], [0.2, 0.2, 0.3, 0.1]])
    exclude = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]]))
    # row 0: item 0 excluded; target item 2 (0.5) is behind item 3 (0.7) → rank 1
    # row 1: target item 1 (0.2) ties with item 0 (ties count against) and is behind 2 → rank 2
    assert target_ranks(scores, np.array([2, 1]), exclude).tolist() == [1, 2]


def test_constant_scores_get_worst_rank():
    scores = np.zeros((1, 5))
    assert target_ranks(scores, np.array([0]), sp.csr_matrix((1, 5))).tolist() == [4]


def test_metrics_hand_computed():
    ranks = np.array([0, 1, 9, 10, 50])
    assert hit_rate(ranks, 10) == pytest.approx(3 / 5)
    assert ndcg(ranks, 10) == pytest.approx((1 + 1 / np.log2(3) + 1 / np.log2(11)) / 5)


def test_target_excluded_is_an_error():
    with pytest.raises(ValueError, match="excluded"):
        target_ranks(np.zeros((1, 3)), np.array([1]), sp.csr_matrix(np.array([[0, 1, 0]])))


def test_evaluate_ranking_chunks_agree():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((50, 30))
    targets = rng.integers(0, 30, 50)
    ex = sp.random(50, 30, density=0.2, random_state=1, format="csr")
    ex[np.arange(50), targets] = 0
    ex.eliminate_zeros()
    ex.data[:] = 1
    fn = lambda u: s[u]  # noqa: E731
    a = evaluate_ranking(fn, np.arange(50), targets, ex, chunk_size=7)
    b = evaluate_ranking(fn, np.arange(50), targets, ex, chunk_size=1000)
    assert a == b
