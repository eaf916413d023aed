"""Models (plain ``nn.Module``s, no training logic) and pure loss functions."""

from privrec.models.base import Recommender
from privrec.models.losses import bce_loss, bpr_loss
from privrec.models.mf import BPRMF, MODELS, TowerMF, build_model

__all__ = ["BPRMF", "MODELS", "Recommender", "TowerMF", "bce_loss", "bpr_loss", "build_model"]
