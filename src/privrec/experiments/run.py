"""One training run from data to a complete run directory."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from privrec import __version__
from privrec.artifacts import Embeddings, atomic_dir, atomic_write_json, save_embeddings
from privrec.data.dataset import Dataset
from privrec.data.split import Split
from privrec.errors import FitError
from privrec.evaluation.protocol import evaluate_split, model_scorer
from privrec.training.config import TrainConfig
from privrec.training.penalty import UserPenalty
from privrec.training.trainer import TrainedModel, Trainer


def embeddings_of(trained: TrainedModel, dataset: Dataset) -> Embeddings:
    inter = dataset.interactions
    return Embeddings(
        inter.user_ids,
        trained.user_vectors(),
        inter.item_ids,
        trained.item_vectors(),
        trained.item_bias(),
    )


def train_and_evaluate(
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    penalties: Sequence[UserPenalty] = (),
    callback: Callable[[dict], None] | None = None,
) -> tuple[dict, TrainedModel | None]:
    """Train, then evaluate the kept weights on validation and test.

    Returns ``(metrics, trained)``. A diverged run returns ``status: "diverged"`` with the
    reason and the history so far, and ``trained = None``: it is never reported as a result.
    """
    k = config.k
    start = time.perf_counter()
    try:
        trained = Trainer(config, penalties, callback).fit(split)
    except FitError as exc:
        return (
            {
                "status": "diverged",
                "reason": exc.reason,
                "message": str(exc),
                "epochs_run": len(exc.history),
                "wall_seconds": time.perf_counter() - start,
                "history": exc.history,
            },
            None,
        )
    test = evaluate_split(model_scorer(trained.model), split, "test", k)
    epoch_secs = [h["seconds"] for h in trained.history]
    metrics = {
        "status": "ok",
        "validation": {
            f"hr@{k}": trained.validation.get(f"hr@{k}"),
            f"ndcg@{k}": trained.validation.get(f"ndcg@{k}"),
        },
        "test": {f"hr@{k}": test[f"hr@{k}"], f"ndcg@{k}": test[f"ndcg@{k}"]},
        "users_evaluated": test["users"],
        "best_epoch": trained.best_epoch,
        "epochs_run": trained.epochs_run,
        "wall_seconds": time.perf_counter() - start,
        "seconds_per_epoch": sum(epoch_secs) / max(1, len(epoch_secs)),
        "history": list(trained.history),
    }
    return metrics, trained


def write_run(
    out_dir: str | Path,
    dataset: Dataset,
    split: Split,
    config: TrainConfig,
    metrics: dict,
    trained: TrainedModel | None,
    extra_config: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete run directory atomically (config.json, metrics.json, embeddings.npz).

    A diverged run gets config.json and metrics.json only.
    """
    out_dir = Path(out_dir)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        atomic_write_json(
            tmp / "config.json",
            {
                "privrec_version": __version__,
                "dataset": dataset.name,
                "dataset_notes": list(dataset.notes),
                "split": split.summary(),
                "train": config.to_dict(),
                **(extra_config or {}),
            },
        )
        atomic_write_json(tmp / "metrics.json", metrics)
        if trained is not None:
            save_embeddings(tmp / "embeddings.npz", embeddings_of(trained, dataset))
    return out_dir
