"""The two loop shapes of training, behind one interface.

A model names its loop (:attr:`~privrec.models.base.Recommender.loop`); the trainer asks the
loop for the epoch's batches and, per batch, for the step's terms, and treats every loop the
same way afterwards (L2 weight, penalties on the batch's users, backward, step):

* :class:`PairLoop` — every training pair once per epoch in a fresh random order, each with a
  freshly drawn negative item, scored by the model's :meth:`batch_terms` and a pairwise loss
  (BPR-MF, Tower-MF, LightGCN).
* :class:`UserLoop` — every user with training items once per epoch in a fresh random order,
  the model's own loss on the whole item vectors (:meth:`user_terms`; MultVAE).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from privrec.data.interactions import Interactions
from privrec.data.sampling import sample_negatives
from privrec.models.base import Recommender


@dataclass(frozen=True, eq=False)
class StepTerms:
    """What one batch contributes before the penalties.

    Attributes:
        rec_loss: the recommendation loss.
        reg: the L2 term (weighted by ``TrainConfig.reg`` by the trainer).
        users: the batch's users.
        user_vectors: their vectors when the loop computed them for distinct users (the
            penalties reuse them), else None (the trainer looks up the distinct users).
    """

    rec_loss: torch.Tensor
    reg: torch.Tensor
    users: torch.Tensor
    user_vectors: torch.Tensor | None


class PairLoop:
    """Minibatches of (user, positive, negative) triples; see the module docstring."""

    def __init__(self, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        self.loss_fn = loss_fn

    @staticmethod
    def steps_per_epoch(train: Interactions, batch_size: int) -> int:
        return math.ceil(len(train) / batch_size)

    @staticmethod
    def batches(
        train: Interactions, rng: np.random.Generator, batch_size: int, device: torch.device
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        users, pos, neg = shuffled_triples(train, rng)
        users, pos, neg = users.to(device), pos.to(device), neg.to(device)
        for lo in range(0, len(train), batch_size):
            hi = lo + batch_size
            yield users[lo:hi], pos[lo:hi], neg[lo:hi]

    def terms(
        self, model: Recommender, batch: tuple[torch.Tensor, ...], progress: float
    ) -> StepTerms:
        u, i, j = batch
        s_pos, s_neg, reg, _ = model.batch_terms(u, i, j)
        return StepTerms(self.loss_fn(s_pos, s_neg), reg, u, None)


class UserLoop:
    """Minibatches of distinct users with training items; see the module docstring."""

    @staticmethod
    def _active(train: Interactions) -> np.ndarray:
        return np.flatnonzero(np.bincount(train.users, minlength=train.n_users))

    @classmethod
    def steps_per_epoch(cls, train: Interactions, batch_size: int) -> int:
        return math.ceil(len(cls._active(train)) / batch_size)

    @classmethod
    def batches(
        cls,
        train: Interactions,
        rng: np.random.Generator,
        batch_size: int,
        device: torch.device,
    ) -> Iterator[tuple[torch.Tensor, ...]]:
        order = torch.from_numpy(rng.permutation(cls._active(train))).to(device)
        for lo in range(0, len(order), batch_size):
            yield (order[lo : lo + batch_size],)

    @staticmethod
    def terms(model: Recommender, batch: tuple[torch.Tensor, ...], progress: float) -> StepTerms:
        (users,) = batch
        rec, reg, vecs = model.user_terms(users, progress)
        return StepTerms(rec, reg, users, vecs)


def shuffled_triples(
    train: Interactions, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The training pairs in a random order (``rng.permutation``), each with a negative item
    drawn by :func:`~privrec.data.sampling.sample_negatives` from the same ``rng``, as tensors
    ``(users, positives, negatives)``."""
    perm = rng.permutation(len(train))
    users_np = train.users[perm]
    pos_np = train.items[perm]
    neg_np = sample_negatives(train, users_np, rng)
    return (
        torch.from_numpy(np.ascontiguousarray(users_np)),
        torch.from_numpy(pos_np),
        torch.from_numpy(neg_np),
    )
