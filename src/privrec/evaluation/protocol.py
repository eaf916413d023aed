"""The paper's evaluation protocol on a :class:`~privrec.data.split.Split`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch

from privrec.data.split import Split
from privrec.errors import ConfigError
from privrec.evaluation.ranking import evaluate_ranking


def exclusion_mask(split: Split, which: str) -> sp.csr_matrix:
    """Items that are not candidates: training items, plus the validation item when testing."""
    if which == "validation":
        return split.train.csr
    if which == "test":
        return (split.train.csr + split.validation.csr).tocsr()
    raise ConfigError(f"which must be 'validation' or 'test', got {which!r}")


def evaluate_split(
    score_fn: Callable[[np.ndarray], np.ndarray | torch.Tensor],
    split: Split,
    which: str = "test",
    k: int = 10,
    chunk_size: int = 1024,
) -> dict[str, float]:
    """HR@k / NDCG@k on the validation or test items of ``split`` (full ranking)."""
    target = split.validation if which == "validation" else split.test
    return evaluate_ranking(
        score_fn, target.users, target.items, exclusion_mask(split, which), k, chunk_size
    )


def model_scorer(model) -> Callable[[np.ndarray], torch.Tensor]:
    """Score function of a :class:`~privrec.models.base.Recommender` for :func:`evaluate_split`."""

    @torch.no_grad()
    def score(users: np.ndarray) -> torch.Tensor:
        u = torch.from_numpy(np.array(users, dtype=np.int64)).to(model.device)
        return model.score_all(model.user_vectors(u))

    return score


def vectors_scorer(
    user_vectors: np.ndarray, item_vectors: np.ndarray, item_bias: np.ndarray
) -> Callable[[np.ndarray], torch.Tensor]:
    """Score function of exported MF vectors (e.g. after post-hoc erasure)."""
    uv = torch.from_numpy(np.ascontiguousarray(user_vectors, dtype=np.float32))
    iv = torch.from_numpy(np.ascontiguousarray(item_vectors, dtype=np.float32))
    ib = torch.from_numpy(np.ascontiguousarray(item_bias, dtype=np.float32))

    def score(users: np.ndarray) -> torch.Tensor:
        return uv[torch.from_numpy(np.array(users, dtype=np.int64))] @ iv.T + ib

    return score
