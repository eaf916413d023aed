"""The trainer's seam for extra losses on the user vectors.

A :class:`UserPenalty` sees the batch's user vectors ``p_u`` and returns a loss that is added to
the recommendation loss before the single optimizer step. Its own parameters (e.g. adversarial
heads) are trained by the same optimizer, unless it trains them itself
(:meth:`UserPenalty.trainer_parameters`). Adversarial heads, MMD/HSIC penalties and any future
defence plug in here without touching the trainer.
"""

from __future__ import annotations

import torch
from torch import nn


class UserPenalty(nn.Module):
    """Base class of extra user-vector losses."""

    name: str = "penalty"

    def forward(
        self, user_vecs: torch.Tensor, users: torch.Tensor, progress: float
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """Return (loss to add, numbers to report) for the batch.

        Args:
            user_vecs: the batch users' vectors (with gradient).
            users: their user indices.
            progress: fraction of training done, in [0, 1] (for schedules).
        """
        raise NotImplementedError

    def before_step(self, user_vecs: torch.Tensor, users: torch.Tensor, progress: float) -> None:
        """Optional extra updates of the penalty's own parameters on detached vectors."""

    def take_reset_parameters(self) -> list[torch.Tensor]:
        """Parameters re-initialised since the last call (e.g. adversarial heads re-drawn every
        N steps). The trainer drops its optimizer state for them (Adam's moments of the old
        weights would otherwise steer the new ones). Default: none."""
        return []

    def trainer_parameters(self) -> list[torch.Tensor]:
        """The parameters the trainer's optimizer updates (default: all of them). A penalty
        that trains some of its own parameters itself (e.g. in :meth:`before_step`) leaves
        them out, so that no parameter has two optimizers."""
        return list(self.parameters())

    def epoch_end(self, model, epoch: int) -> dict[str, float]:
        """Optional per-epoch numbers (e.g. a probe's leakage), merged into the epoch record."""
        return {}
