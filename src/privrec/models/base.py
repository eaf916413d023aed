"""The interface every recommender with user vectors implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

import torch
from torch import nn

from privrec.errors import ConfigError

if TYPE_CHECKING:
    import scipy.sparse as sp

TrainingLoop = Literal["pairs", "users"]
"""How a model is trained: on minibatches of (user, positive, negative) triples (``pairs``),
or on minibatches of users with their whole training-item vectors (``users``)."""


class Recommender(nn.Module):
    """A scoring model with one vector ``p_u`` per user.

    The trainer, the adversarial heads and the audit only use this interface, so any
    gradient-trained model with user vectors can take the privacy machinery unchanged.

    Every model scores as ``score(u, i) = user_vectors(u) · item_vectors()[i] + item_bias()[i]``
    (the *exported layer*: what ``embeddings.npz`` holds, so that any outside tool can
    recompute the ranking from the file alone).

    The loop shape is a property of the model (:attr:`loop`): a ``pairs`` model implements
    :meth:`batch_terms`, a ``users`` model :meth:`user_terms`; the trainer calls the one its
    loop needs and treats both the same way afterwards (L2, penalties, step).
    """

    n_users: int
    n_items: int
    loop: ClassVar[TrainingLoop] = "pairs"
    """The training loop this model needs (see :data:`TrainingLoop`)."""
    uses_pair_loss: ClassVar[bool] = True
    """Whether ``TrainConfig.loss`` (bpr / bce on sampled pairs) applies to the model."""

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """The vectors ``p_u`` of ``users`` (what attackers and adversarial heads read)."""
        raise NotImplementedError

    def score(self, user_vecs: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of (user, item) pairs: ``user_vecs[k]`` with ``items[k]``."""
        raise NotImplementedError

    def score_all(self, user_vecs: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user vector: shape (len(user_vecs), n_items)."""
        return user_vecs @ self.item_vectors().T + self.item_bias()

    def regularization(
        self, user_vecs: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:
        """L2 penalty of the parameters touched by a batch (mean over the batch)."""
        raise NotImplementedError

    def batch_terms(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One ``pairs`` step's terms: ``(positive scores, negative scores, L2 term, user
        vectors of users)``. The default composes :meth:`user_vectors`, :meth:`score` and
        :meth:`regularization`."""
        pv = self.user_vectors(users)
        return self.score(pv, pos), self.score(pv, neg), self.regularization(pv, pos, neg), pv

    def user_terms(
        self, users: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One ``users`` step's terms on a batch of distinct users: ``(recommendation loss,
        L2 term, user vectors of users)``; ``progress`` is the share of the planned steps done
        (for schedules such as KL annealing)."""
        raise NotImplementedError

    def begin_step(self) -> None:
        """Called by the trainer before each training step (e.g. to drop per-step caches)."""

    def item_vectors(self) -> torch.Tensor:
        raise NotImplementedError

    def item_bias(self) -> torch.Tensor:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters."""
        return next(self.parameters()).device

    @torch.no_grad()
    def all_user_vectors(self, chunk_size: int = 65536) -> torch.Tensor:
        dev = self.device
        out = [
            self.user_vectors(torch.arange(lo, min(self.n_users, lo + chunk_size), device=dev))
            for lo in range(0, self.n_users, chunk_size)
        ]
        return torch.cat(out) if out else torch.zeros(0, device=dev)


def check_training_matrix(model: str, train: sp.csr_matrix, n_users: int, n_items: int) -> None:
    """ConfigError unless the users × items training matrix of a model built from it (MultVAE,
    LightGCN) has the shape the model is sized for."""
    if train.shape != (n_users, n_items):
        raise ConfigError(
            f"{model}: training matrix has shape {train.shape}, expected {(n_users, n_items)}"
        )
