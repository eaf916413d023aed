"""The registered recommenders, their per-model training defaults, and how to build one."""

from __future__ import annotations

from typing import Any

import scipy.sparse as sp
import torch

from privrec.errors import ConfigError
from privrec.models.base import Recommender
from privrec.models.lightgcn import LightGCN
from privrec.models.mf import BPRMF, TowerMF
from privrec.models.multvae import MultVAE

MODELS: dict[str, type[Recommender]] = {
    "bpr-mf": BPRMF,
    "tower-mf": TowerMF,
    "multvae": MultVAE,
    "lightgcn": LightGCN,
}

#: Training settings that differ from :class:`~privrec.training.config.TrainConfig`'s defaults
#: for a model (``TrainConfig.for_model`` and the CLI start from them). MultVAE trains on
#: batches of 100 users (``batch_size`` counts users) with Adam at 1e-3 and no L2 (cornac's
#: VAECF settings);
#: LightGCN on large pair batches (it propagates over the whole graph at every step).
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "bpr-mf": {},
    "tower-mf": {},
    "multvae": {"batch_size": 100, "learning_rate": 1e-3, "reg": 0.0},
    "lightgcn": {"batch_size": 8192, "learning_rate": 5e-3, "reg": 1e-4},
}

#: Models that read the training interactions (the user's item vector, or the graph).
NEEDS_INTERACTIONS = ("multvae", "lightgcn")


def build_model(
    name: str,
    n_users: int,
    n_items: int,
    dim: int,
    init_std: float,
    seed: int,
    sparse: bool = False,
    *,
    train: sp.csr_matrix | None = None,
    **options: Any,
) -> Recommender:
    """Instantiate a registered model with a seeded, private generator (no global seeding).

    ``sparse=True`` makes the embedding tables of the MF models produce sparse gradients (for
    the row-wise ``sparse-adam`` optimizer); the initial weights do not depend on it.
    ``train`` (the users × items training matrix) is required by ``multvae`` and
    ``lightgcn``; ``options`` are model options: ``hidden``, ``dropout``, ``beta``, ``anneal``
    (MultVAE), ``layers`` (LightGCN)."""
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; expected one of: {', '.join(MODELS)}")
    gen = torch.Generator().manual_seed(seed)
    if sparse and name in NEEDS_INTERACTIONS:
        raise ConfigError(
            f"optimizer 'sparse-adam' is for the MF models (row-wise updates of embedding "
            f"tables); model {name!r} updates dense weights: use adam"
        )
    if name in NEEDS_INTERACTIONS and train is None:
        raise ConfigError(f"model {name!r} needs the training interactions (train=...)")
    if name == "multvae" and train is not None:
        keys = ("hidden", "dropout", "beta", "anneal")
        return MultVAE(
            n_users,
            n_items,
            dim,
            train,
            generator=gen,
            **_only(options, keys, name),
        )
    if name == "lightgcn" and train is not None:
        return LightGCN(
            n_users,
            n_items,
            dim,
            train,
            init_std=init_std,
            generator=gen,
            **_only(options, ("layers",), name),
        )
    _only(options, (), name)
    return MODELS[name](n_users, n_items, dim, init_std, gen, sparse)


def _only(options: dict[str, Any], allowed: tuple[str, ...], model: str) -> dict[str, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"model {model!r} takes no option(s) {', '.join(unknown)}"
            + (f" (it takes: {', '.join(allowed)})" if allowed else "")
        )
    return dict(options)
