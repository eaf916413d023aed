"""Models (plain ``nn.Module``s, no training logic) and pure loss functions."""

from privrec.models.base import Recommender
from privrec.models.lightgcn import LightGCN
from privrec.models.losses import bce_loss, bpr_loss
from privrec.models.mf import BPRMF, TowerMF
from privrec.models.multvae import MultVAE
from privrec.models.registry import MODEL_DEFAULTS, MODELS, build_model

__all__ = [
    "BPRMF",
    "MODELS",
    "MODEL_DEFAULTS",
    "LightGCN",
    "MultVAE",
    "Recommender",
    "TowerMF",
    "bce_loss",
    "bpr_loss",
    "build_model",
]
