"""Recommendation losses as pure functions of scores."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Bayesian personalised ranking: ``-mean log σ(s_ui - s_uj)``."""
    return -F.logsigmoid(pos_scores - neg_scores).mean()


def bce_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """Pointwise logistic loss with sampled negatives (NCF-style): positives → 1, negatives → 0."""
    return -(F.logsigmoid(pos_scores).mean() + F.logsigmoid(-neg_scores).mean()) / 2


LOSSES = {"bpr": bpr_loss, "bce": bce_loss}
