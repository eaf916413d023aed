"""LightGCN (He et al., SIGIR 2020): embeddings smoothed over the user–item graph.

Users and items have ego embeddings ``E⁰``; ``K`` propagation layers compute
``Eᵏ⁺¹ = Â Eᵏ`` with the symmetrically normalised bipartite adjacency
``Â = D^-½ A D^-½`` of the training interactions, and the final embeddings are the layer mean
``(E⁰ + … + Eᴷ) / (K + 1)``. Scores are dot products of the final user and item embeddings
(no bias), trained with BPR on sampled pairs; the L2 term is on the batch's ego embeddings,
as in the paper.

The user vector (what the defences and attackers read, and what ``embeddings.npz`` holds) is
the propagated user embedding; the exported item vectors are the propagated item embeddings and
the item bias is zero, so ``embeddings.npz`` reproduces the model's scores exactly.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from privrec.models.base import Recommender, check_training_matrix


def normalized_adjacency(train: sp.csr_matrix) -> torch.Tensor:
    """``D^-½ A D^-½`` of the bipartite graph of ``train`` (users first, then items) as a
    sparse CSR tensor; isolated nodes get a zero row."""
    r = sp.csr_matrix(train, dtype=np.float32)
    r.data[:] = 1.0
    n_users, n_items = r.shape
    blocks: list[list] = [[None, r], [r.T, None]]
    adj = sp.coo_matrix(sp.bmat(blocks, dtype=np.float32))
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv_sqrt = np.zeros_like(deg)
    np.power(deg, -0.5, out=inv_sqrt, where=deg > 0)
    values = inv_sqrt[adj.row] * adj.data * inv_sqrt[adj.col]
    index = torch.from_numpy(np.vstack([adj.row, adj.col]).astype(np.int64))
    n = n_users + n_items
    coo = torch.sparse_coo_tensor(
        index, torch.from_numpy(values.astype(np.float32)), (n, n), check_invariants=True
    ).coalesce()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": products are exact
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


class _SymmetricProduct(torch.autograd.Function):
    """``A @ E`` for a symmetric sparse ``A``, differentiable in ``E``: the backward pass is
    ``A @ grad`` (no transpose of the CSR matrix, which would cost as much as the product)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        ctx.a = a
        return a @ e

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.a @ grad


class LightGCN(Recommender):
    """LightGCN with ``layers`` propagation layers; see the module docstring."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        train: sp.csr_matrix,
        layers: int = 3,
        init_std: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        check_training_matrix("lightgcn", train, n_users, n_items)
        self.n_users, self.n_items, self.dim, self.layers = n_users, n_items, dim, layers
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        with torch.no_grad():
            self.user.weight.normal_(0.0, init_std, generator=generator)
            self.item.weight.normal_(0.0, init_std, generator=generator)
        self.register_buffer("adjacency", normalized_adjacency(train), persistent=False)
        self._cache: tuple[tuple, bool, torch.Tensor, torch.Tensor] | None = None

    def begin_step(self) -> None:
        self._cache = None

    def propagate(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The final (layer-mean) user and item embeddings.

        Computed once per training step (the trainer's :meth:`begin_step` drops the cache) and
        once per weight update otherwise: the cache is keyed on the weights' version counters;
        a result recorded with gradients also serves (detached) calls without them."""
        key = (self.user.weight._version, self.item.weight._version)
        grad = torch.is_grad_enabled()
        if self._cache is not None and self._cache[0] == key:
            _, with_grad, users, items = self._cache
            if with_grad and not grad:
                return users.detach(), items.detach()
            if with_grad or not grad:
                return users, items
        e = torch.cat((self.user.weight, self.item.weight))
        total = e
        for _ in range(self.layers):
            e = _SymmetricProduct.apply(self.adjacency, e)
            total = total + e
        final = total / (self.layers + 1)
        users, items = final.split((self.n_users, self.n_items))
        self._cache = (key, grad, users, items)
        return users, items

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.propagate()[0][users]

    def score(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (user_vecs * self.propagate()[1][items]).sum(-1)

    def regularization(self, user_vecs, pos, neg) -> torch.Tensor:
        return (self.item.weight[pos].pow(2).sum(-1) + self.item.weight[neg].pow(2).sum(-1)).mean()

    def batch_terms(self, users, pos, neg):
        u_all, i_all = self.propagate()
        pv = u_all[users]
        s_pos = (pv * i_all[pos]).sum(-1)
        s_neg = (pv * i_all[neg]).sum(-1)
        reg = (
            self.user.weight[users].pow(2).sum(-1)
            + self.item.weight[pos].pow(2).sum(-1)
            + self.item.weight[neg].pow(2).sum(-1)
        ).mean()
        return s_pos, s_neg, reg, pv

    def item_vectors(self) -> torch.Tensor:
        return self.propagate()[1]

    def item_bias(self) -> torch.Tensor:
        return torch.zeros(self.n_items, device=self.device)
