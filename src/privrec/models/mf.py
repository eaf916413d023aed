"""Matrix-factorisation recommenders: score(u, i) = p_u · q_i + b_i."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from privrec.models.base import Recommender


def _rows(table: nn.Embedding, index: torch.Tensor) -> torch.Tensor:
    """``table(index)``.

    A table with ``sparse=True`` is read with ``F.embedding(..., sparse=True)``: its gradient is
    a sparse tensor holding only the batch's rows (for row-wise optimizers, whose step costs
    O(batch) instead of O(table)). Otherwise ``index_select``: same values, but its backward
    (``index_add``) is about twice as fast on CPU as the dense embedding backward, which sorts
    the indices (benchmarks/README.md)."""
    if table.sparse:
        return F.embedding(index, table.weight, sparse=True)
    if index.dim() == 1:
        return table.weight.index_select(0, index)
    return table.weight.index_select(0, index.reshape(-1)).reshape(*index.shape, -1)


class BPRMF(Recommender):
    """BPR matrix factorisation: user and item embeddings plus an item bias."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        init_std: float = 0.1,
        generator: torch.Generator | None = None,
        sparse: bool = False,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        self.user = nn.Embedding(n_users, dim, sparse=sparse)
        self.item = nn.Embedding(n_items, dim, sparse=sparse)
        self.bias = nn.Embedding(n_items, 1, sparse=sparse)
        with torch.no_grad():
            self.user.weight.normal_(0.0, init_std, generator=generator)
            self.item.weight.normal_(0.0, init_std, generator=generator)
            self.bias.weight.zero_()

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return _rows(self.user, users)

    def score(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (user_vecs * _rows(self.item, items)).sum(-1) + _rows(self.bias, items).squeeze(-1)

    def score_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        return user_vecs @ self.item.weight.T + self.bias.weight.T

    def regularization(self, user_vecs, pos, neg) -> torch.Tensor:
        return (
            user_vecs.pow(2).sum(-1)
            + _rows(self.item, pos).pow(2).sum(-1)
            + _rows(self.item, neg).pow(2).sum(-1)
        ).mean()

    def pair_terms(
        self, user_vecs: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(score(user_vecs, pos), score(user_vecs, neg), regularization(user_vecs, pos,
        neg))`` in one pass that looks each item row up once (the trainer's fast path).

        Same values as the three separate calls; the gradients only differ by the order of
        floating-point accumulation. A subclass that overrides :meth:`score` or
        :meth:`regularization` gets the three separate calls.
        """
        cls = type(self)
        if cls.score is not BPRMF.score or cls.regularization is not BPRMF.regularization:
            return (
                self.score(user_vecs, pos),
                self.score(user_vecs, neg),
                self.regularization(user_vecs, pos, neg),
            )
        if self.item.sparse:
            # One lookup of both item lists: one sparse gradient per table instead of two that
            # autograd would have to add (a sparse addition costs about as much as the step).
            both = torch.cat((pos, neg))
            q_pos, q_neg = _rows(self.item, both).split(len(pos))
            b_pos, b_neg = _rows(self.bias, both).squeeze(-1).split(len(pos))
        else:
            q_pos, q_neg = _rows(self.item, pos), _rows(self.item, neg)
            b_pos, b_neg = _rows(self.bias, pos).squeeze(-1), _rows(self.bias, neg).squeeze(-1)
        s_pos = (user_vecs * q_pos).sum(-1) + b_pos
        s_neg = (user_vecs * q_neg).sum(-1) + b_neg
        reg = (user_vecs.pow(2).sum(-1) + q_pos.pow(2).sum(-1) + q_neg.pow(2).sum(-1)).mean()
        return s_pos, s_neg, reg

    def batch_terms(self, users, pos, neg):
        pv = self.user_vectors(users)
        return (*self.pair_terms(pv, pos, neg), pv)

    def item_vectors(self) -> torch.Tensor:
        return self.item.weight

    def item_bias(self) -> torch.Tensor:
        return self.bias.weight.squeeze(-1)


class TowerMF(BPRMF):
    """A second architecture with user vectors: ``p_u = e_u + tanh(W e_u)`` (a residual user
    tower over the id embedding), scored like MF. Used to show the adversarial heads are not
    tied to BPR-MF."""

    def __init__(self, n_users, n_items, dim, init_std=0.1, generator=None, sparse=False) -> None:
        super().__init__(n_users, n_items, dim, init_std, generator, sparse)
        self.tower = nn.Linear(dim, dim)
        with torch.no_grad():
            self.tower.weight.normal_(0.0, 1.0 / dim**0.5, generator=generator)
            self.tower.bias.zero_()

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        e = _rows(self.user, users)
        return e + torch.tanh(self.tower(e))
