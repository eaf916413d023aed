"""Re-fit the item side of a model on fixed user vectors (after an erasure or a purge).

An erasure moves the user vectors and leaves the item vectors as they were trained for the old
ones, so part of the accuracy it costs is a mismatch the items can repair. :func:`refit_items`
trains only the item vectors and item biases, with the BPR loss on the training interactions
(the user vectors are frozen: what the audit reads does not change), starting from the current
items, for at most ``epochs`` epochs with the usual early stopping on validation HR@k. The
items of the best validation epoch are kept — or the items it started from, when no epoch beats
them on validation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from privrec.data.split import Split
from privrec.errors import ConfigError
from privrec.evaluation.protocol import evaluate_split, vectors_scorer
from privrec.models.mf import BPRMF
from privrec.training.config import TrainConfig
from privrec.training.trainer import Trainer


@dataclass(frozen=True)
class ItemRefit:
    """The result of :func:`refit_items`.

    Attributes:
        item_vectors, item_bias: the items kept (float32).
        info: ``epochs`` (asked), ``epochs_run``, ``best_epoch`` (0: the starting items were
            kept), validation HR@k before and after, ``seconds``.
    """

    item_vectors: np.ndarray
    item_bias: np.ndarray
    info: dict


def refit_config(base: TrainConfig | None, dim: int, epochs: int) -> TrainConfig:
    """The training settings of a refit: BPR with dense Adam on a BPR-MF of size ``dim``,
    ``epochs`` epochs; learning rate, regularisation, batch size, patience, seed, threads and
    device from ``base`` when it trained a pair-loss matrix factorisation, else the defaults."""
    if epochs < 1:
        raise ConfigError(f"refit epochs must be at least 1, got {epochs}")
    keep: dict[str, Any] = {}
    if base is not None:
        keep = {"seed": base.seed, "num_threads": base.num_threads, "device": base.device}
        if base.model in ("bpr-mf", "tower-mf"):
            keep.update(
                learning_rate=base.learning_rate,
                reg=base.reg,
                batch_size=base.batch_size,
                patience=base.patience,
                k=base.k,
            )
    config = TrainConfig(
        model="bpr-mf", loss="bpr", optimizer="adam", embedding_size=dim, epochs=epochs
    )
    return config.replace(**keep)


def refit_items(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    item_bias: np.ndarray,
    split: Split,
    config: TrainConfig,
) -> ItemRefit:
    """Train the items (vectors and biases) on fixed ``user_vectors``; see the module.

    All arrays are in the split's user/item index order; ``config`` is a
    :func:`refit_config`.
    """
    n_users, dim = user_vectors.shape
    n_items = item_vectors.shape[0]
    if (n_users, n_items) != (split.train.n_users, split.train.n_items):
        raise ConfigError(
            f"refit: vectors for {n_users} users and {n_items} items, the split has "
            f"{split.train.n_users} and {split.train.n_items}"
        )
    k = config.k
    before = evaluate_split(
        vectors_scorer(user_vectors, item_vectors, item_bias), split, "validation", k
    )[f"hr@{k}"]
    model = BPRMF(n_users, n_items, dim)
    with torch.no_grad():
        model.user.weight.copy_(torch.as_tensor(user_vectors, dtype=torch.float32))
        model.item.weight.copy_(torch.as_tensor(item_vectors, dtype=torch.float32))
        model.bias.weight.copy_(torch.as_tensor(item_bias, dtype=torch.float32).reshape(-1, 1))
    model.user.weight.requires_grad_(False)
    trained = Trainer(config, model=model).fit(split)
    after = float(trained.validation[f"hr@{k}"])
    info = {
        "epochs": config.epochs,
        "epochs_run": trained.epochs_run,
        "seconds": trained.seconds,
        f"validation_hr@{k}_before": float(before),
        f"validation_hr@{k}_after": max(after, float(before)),
    }
    if after <= before:
        info["best_epoch"] = 0
        return ItemRefit(
            np.asarray(item_vectors, dtype=np.float32), np.asarray(item_bias, np.float32), info
        )
    info["best_epoch"] = trained.best_epoch
    return ItemRefit(trained.item_vectors(), trained.item_bias(), info)
