"""Training: configuration, the penalty seam and the trainer."""

from privrec.training.config import TrainConfig
from privrec.training.penalty import UserPenalty
from privrec.training.trainer import TrainedModel, Trainer

__all__ = ["TrainConfig", "TrainedModel", "Trainer", "UserPenalty"]
