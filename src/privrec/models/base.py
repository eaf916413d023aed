"""The interface every recommender with user vectors implements."""

from __future__ import annotations

import torch
from torch import nn


class Recommender(nn.Module):
    """A scoring model with one vector ``p_u`` per user.

    The trainer, the adversarial heads and the audit only use this interface, so any
    gradient-trained model with user vectors can take the privacy machinery unchanged.
    """

    n_users: int
    n_items: int

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """The vectors ``p_u`` of ``users`` (what attackers and adversarial heads read)."""
        raise NotImplementedError

    def score(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of (user, item) pairs: ``user_vecs[k]`` with ``items[k]``."""
        raise NotImplementedError

    def score_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user vector: shape (len(user_vecs), n_items)."""
        raise NotImplementedError

    def regularization(
        self, user_vecs: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        """L2 penalty of the parameters touched by a batch (mean over the batch)."""
        raise NotImplementedError

    def item_vectors(self) -> torch.Tensor:
        raise NotImplementedError

    def item_bias(self) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def all_user_vectors(self, chunk_size: int = 65536) -> torch.Tensor:
        out = [
            self.user_vectors(torch.arange(lo, min(self.n_users, lo + chunk_size)))
            for lo in range(0, self.n_users, chunk_size)
        ]
        return torch.cat(out) if out else torch.zeros(0)
