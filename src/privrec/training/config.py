"""Frozen, self-validating training configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

from privrec.config_types import check_fields
from privrec.errors import ConfigError

ModelName = Literal["bpr-mf", "tower-mf"]
"""Recommender architectures (:data:`privrec.models.MODELS`)."""
LossName = Literal["bpr", "bce"]
"""Recommendation losses (:data:`privrec.models.losses.LOSSES`)."""
OptimizerName = Literal["adam", "sgd", "sparse-adam"]
"""Optimizers accepted by :class:`TrainConfig`."""
SelectionRule = Literal["hr", "hr_probe"]
"""Model-selection rules on the validation split."""

#: Optimizer names accepted by :class:`TrainConfig`.
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one recommender training run."""

    model: ModelName = "bpr-mf"
    """Recommender architecture: ``bpr-mf`` or ``tower-mf``."""
    loss: LossName = "bpr"
    """Recommendation loss: ``bpr`` (pairwise) or ``bce`` (pointwise, sampled negatives)."""
    embedding_size: int = 32
    """Dimension of user and item vectors."""
    epochs: int = 60
    """Maximum number of passes over the training interactions."""
    learning_rate: float = 0.005
    """Optimizer step size."""
    reg: float = 1e-3
    """L2 weight on the vectors touched by each batch."""
    batch_size: int = 4096
    """Training triples per optimizer step."""
    optimizer: OptimizerName = "adam"
    """``adam``, ``sgd`` or ``sparse-adam``. ``sparse-adam`` is row-wise ("lazy") Adam on the
    embedding tables (:class:`~privrec.training.optim.RowAdam`: a step updates only the rows in
    the batch, and only their moments) and Adam on every other parameter; its step costs
    O(batch) instead of O(users + items), which is what large catalogues need
    (benchmarks/SCALING.md)."""
    init_std: float = 0.1
    """Standard deviation of the initial embeddings."""
    eval_every: int = 1
    """Evaluate validation HR@k every this many epochs."""
    patience: int = 10
    """Stop after this many evaluations without validation improvement (0 = never stop early)."""
    k: int = 10
    """Cut-off of HR@k / NDCG@k."""
    seed: int = 0
    """Seed of initialisation, shuffling and negative sampling."""
    max_grad_norm: float | None = None
    """Clip the global gradient norm to this value (None = no clipping)."""
    max_user_norm: float = 1e3
    """A user vector longer than this means training exploded (FitError)."""
    num_threads: int | None = None
    """torch intra-op threads (None = torch's default)."""
    selection: SelectionRule = "hr"
    """Model selection on validation: ``hr`` (best HR@k) or ``hr_probe`` (best
    HR@k × (1 − max probe leakage), needs penalties that report ``probe_*_leak``)."""
    collapse_ratio: float = 0.0
    """Diverged if validation HR@k falls below this share of its best so far (0 = off)."""

    def __post_init__(self) -> None:
        check_fields(self)
        positive = {
            "embedding_size": self.embedding_size,
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "eval_every": self.eval_every,
            "k": self.k,
            "init_std": self.init_std,
            "max_user_norm": self.max_user_norm,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value}")
        if self.reg < 0:
            raise ConfigError(f"reg must be >= 0, got {self.reg}")
        if self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if not 0 <= self.collapse_ratio < 1:
            raise ConfigError(f"collapse_ratio must be in [0, 1), got {self.collapse_ratio}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"num_threads must be >= 1, got {self.num_threads}")

    def replace(self, **changes) -> TrainConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
