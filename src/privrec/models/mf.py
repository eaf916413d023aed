"""Matrix-factorisation recommenders: score(u, i) = p_u · q_i + b_i."""

from __future__ import annotations

import torch
from torch import nn

from privrec.errors import ConfigError
from privrec.models.base import Recommender


class BPRMF(Recommender):
    """BPR matrix factorisation: user and item embeddings plus an item bias."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        dim: int,
        init_std: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items, self.dim = n_users, n_items, dim
        self.user = nn.Embedding(n_users, dim)
        self.item = nn.Embedding(n_items, dim)
        self.bias = nn.Embedding(n_items, 1)
        with torch.no_grad():
            self.user.weight.normal_(0.0, init_std, generator=generator)
            self.item.weight.normal_(0.0, init_std, generator=generator)
            self.bias.weight.zero_()

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.user(users)

    def score(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (user_vecs * self.item(items)).sum(-1) + self.bias(items).squeeze(-1)

    def score_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        return user_vecs @ self.item.weight.T + self.bias.weight.T

    def regularization(self, user_vecs, pos, neg) -> torch.Tensor:
        return (
            user_vecs.pow(2).sum(-1) + self.item(pos).pow(2).sum(-1) + self.item(neg).pow(2).sum(-1)
        ).mean()

    def item_vectors(self) -> torch.Tensor:
        return self.item.weight

    def item_bias(self) -> torch.Tensor:
        return self.bias.weight.squeeze(-1)


class TowerMF(BPRMF):
    """A second architecture with user vectors: ``p_u = e_u + tanh(W e_u)`` (a residual user
    tower over the id embedding), scored like MF. Used to show the adversarial heads are not
    tied to BPR-MF."""

    def __init__(self, n_users, n_items, dim, init_std=0.1, generator=None) -> None:
        super().__init__(n_users, n_items, dim, init_std, generator)
        self.tower = nn.Linear(dim, dim)
        with torch.no_grad():
            self.tower.weight.normal_(0.0, 1.0 / dim**0.5, generator=generator)
            self.tower.bias.zero_()

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        e = self.user(users)
        return e + torch.tanh(self.tower(e))


MODELS = {"bpr-mf": BPRMF, "tower-mf": TowerMF}


def build_model(
    name: str, n_users: int, n_items: int, dim: int, init_std: float, seed: int
) -> Recommender:
    """Instantiate a registered model with a seeded, private generator (no global seeding)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
    gen = torch.Generator().manual_seed(seed)
    return MODELS[name](n_users, n_items, dim, init_std, gen)
