"""Ranking metrics with full ranking over every item the user has not interacted with.

The metric functions are pure: they take arrays and return numbers. :func:`target_ranks` turns a
score matrix into the 0-based rank of each user's target item among the candidates; ties count
against the target (a constant scorer gets the worst rank, never a lucky one).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from privrec.errors import DataError


def target_ranks(scores: np.ndarray, targets: np.ndarray, exclude: sp.csr_matrix) -> np.ndarray:
    """0-based rank of ``targets[r]`` in row ``r`` of ``scores`` among non-excluded items.

    Args:
        scores: (n, n_items) scores; higher is better.
        targets: (n,) target item per row.
        exclude: (n, n_items) sparse mask of items that are not candidates (e.g. training
            items). The target itself must not be excluded.

    Computed without copying ``scores``: the items scoring above (or tying) the target are
    counted over the whole row, then the excluded ones among them are subtracted (read from
    the sparse mask). The result is identical to :func:`target_ranks_reference`, which masks
    a float64 copy with ``-inf``.
    """
    s = np.asarray(scores)
    if s.dtype not in (np.float32, np.float64):
        s = s.astype(np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    r_ex, c_ex = _excluded_pairs(s.shape, targets, exclude)
    n = len(targets)
    rows = np.arange(n)
    t = s[rows, targets]
    better = (s > t[:, None]).sum(axis=1)
    ties = (s == t[:, None]).sum(axis=1) - 1  # minus the target itself
    if len(r_ex):
        s_ex, t_ex = s[r_ex, c_ex], t[r_ex]
        better -= np.bincount(r_ex[s_ex > t_ex], minlength=n)
        ties -= np.bincount(r_ex[s_ex == t_ex], minlength=n)
        # the reference gives excluded items -inf: they tie with a target scored -inf
        ties += np.where(t == -np.inf, np.bincount(r_ex, minlength=n), 0)
    return (better + ties).astype(np.int64)


def target_ranks_reference(
    scores: np.ndarray, targets: np.ndarray, exclude: sp.csr_matrix
) -> np.ndarray:
    """The straightforward definition of :func:`target_ranks` (masks a float64 copy of the
    scores with ``-inf``); slower, kept as the oracle of the equivalence tests."""
    s = np.array(scores, dtype=np.float64, copy=True)
    targets = np.asarray(targets, dtype=np.int64)
    if s.ndim != 2 or s.shape[0] != len(targets):
        raise DataError(f"scores shape {s.shape} does not match {len(targets)} targets")
    rows = np.arange(len(targets))
    ex = sp.csr_matrix(exclude)
    if ex.shape != s.shape:
        raise DataError(f"exclude mask shape {ex.shape} differs from scores shape {s.shape}")
    if len(targets) and np.asarray(ex[rows, targets]).ravel().any():
        raise DataError("a target item is also excluded from the candidates")
    r, c = ex.nonzero()
    s[r, c] = -np.inf
    t = s[rows, targets][:, None]
    better = (s > t).sum(axis=1)
    ties = (s == t).sum(axis=1) - 1  # minus the target itself
    return (better + ties).astype(np.int64)


def target_ranks_tensor(
    scores: torch.Tensor, targets: np.ndarray, exclude: sp.csr_matrix
) -> np.ndarray:
    """:func:`target_ranks` counted where ``scores`` lives (e.g. on the GPU, so that only the
    ranks cross to the host): the excluded items of a copy are set to ``-inf``, as in
    :func:`target_ranks_reference`, whose ranks it gives exactly."""
    targets = np.asarray(targets, dtype=np.int64)
    r_ex, c_ex = _excluded_pairs(tuple(scores.shape), targets, exclude)
    dev = scores.device
    s = scores.detach().clone()
    s[torch.from_numpy(r_ex).to(dev), torch.from_numpy(c_ex.astype(np.int64)).to(dev)] = -torch.inf
    rows = torch.arange(len(targets), device=dev)
    t = s[rows, torch.from_numpy(targets).to(dev)][:, None]
    ranks = (s > t).sum(dim=1) + (s == t).sum(dim=1) - 1  # ties count against the target
    return ranks.cpu().numpy().astype(np.int64)


def _excluded_pairs(
    shape: tuple[int, ...], targets: np.ndarray, exclude
) -> tuple[np.ndarray, np.ndarray]:
    """The (row, column) pairs the mask excludes — its stored non-zeros — after checking that
    the scores' ``shape`` matches the targets and the mask, and that no target is excluded."""
    if len(shape) != 2 or shape[0] != len(targets):
        raise DataError(f"scores shape {shape} does not match {len(targets)} targets")
    ex = _canonical_csr(exclude)
    if ex.shape != shape:
        raise DataError(f"exclude mask shape {ex.shape} differs from scores shape {shape}")
    r_ex = np.repeat(np.arange(len(targets)), np.diff(ex.indptr))
    c_ex = ex.indices
    if not np.all(ex.data != 0):
        keep = ex.data != 0
        r_ex, c_ex = r_ex[keep], c_ex[keep]
    if len(targets) and np.any(c_ex == targets[r_ex]):
        raise DataError("a target item is also excluded from the candidates")
    return r_ex, c_ex


def _canonical_csr(m) -> sp.csr_matrix:
    """``m`` as a CSR matrix without duplicate entries (copied only when needed)."""
    ex = m if isinstance(m, sp.csr_matrix) else sp.csr_matrix(m)
    if not ex.has_canonical_format:
        ex = ex.copy()
        ex.sum_duplicates()
    return ex


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """Fraction of targets ranked in the top ``k`` (HR@k)."""
    ranks = np.asarray(ranks)
    if len(ranks) == 0:
        return float("nan")
    return float((ranks < k).mean())


def ndcg(ranks: np.ndarray, k: int) -> float:
    """Mean NDCG@k with one relevant item per user: ``1 / log2(rank + 2)`` if in the top k."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if len(ranks) == 0:
        return float("nan")
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(gains.mean())


def evaluate_ranking(
    score_fn: Callable[[np.ndarray], np.ndarray | torch.Tensor],
    users: np.ndarray,
    targets: np.ndarray,
    exclude: sp.csr_matrix,
    k: int = 10,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """HR@k and NDCG@k over ``users``, scoring ``chunk_size`` users at a time.

    ``score_fn(user_indices)`` returns the (len, n_items) score matrix; ``exclude`` is the full
    users × items candidate-exclusion mask (row = user index). Memory stays
    O(chunk_size × n_items). Scores on an accelerator are ranked there
    (:func:`target_ranks_tensor`); only the ranks are copied back.
    """
    users = np.asarray(users, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    ranks = np.empty(len(users), dtype=np.int64)
    ex = sp.csr_matrix(exclude)
    for lo in range(0, len(users), chunk_size):
        hi = min(len(users), lo + chunk_size)
        u = users[lo:hi]
        scores = score_fn(u)
        if isinstance(scores, torch.Tensor) and scores.device.type != "cpu":
            ranks[lo:hi] = target_ranks_tensor(scores, targets[lo:hi], ex[u])
            continue
        if isinstance(scores, torch.Tensor):
            scores = scores.detach().numpy()
        ranks[lo:hi] = target_ranks(scores, targets[lo:hi], ex[u])
    return {f"hr@{k}": hit_rate(ranks, k), f"ndcg@{k}": ndcg(ranks, k), "users": int(len(users))}
