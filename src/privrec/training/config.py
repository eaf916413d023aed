"""Frozen, self-validating training configuration."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal, get_args

from privrec.config_types import check_fields
from privrec.errors import ConfigError
from privrec.training.device import check_device_name

ModelName = Literal["bpr-mf", "tower-mf", "multvae", "lightgcn"]
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
    """Recommender architecture: ``bpr-mf``, ``tower-mf``, ``multvae`` or ``lightgcn``
    (:meth:`for_model` gives a model's own defaults, e.g. user batches for ``multvae``)."""
    loss: LossName = "bpr"
    """Recommendation loss of the pair-trained models: ``bpr`` (pairwise) or ``bce``
    (pointwise, sampled negatives). ``multvae`` has its own (multinomial likelihood + KL)."""
    embedding_size: int = 32
    """Dimension of user and item vectors."""
    epochs: int = 60
    """Maximum number of passes over the training interactions."""
    learning_rate: float = 0.005
    """Optimizer step size."""
    reg: float = 1e-3
    """L2 weight on the vectors touched by each batch (``lightgcn``: the ego embeddings;
    ``multvae``: the sum of squared encoder and decoder weights)."""
    batch_size: int = 4096
    """Training triples per optimizer step (users per step for ``multvae``)."""
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
    """torch intra-op threads. None (the default): chosen when training starts, at most torch's
    current count and no more than the cores other processes leave free
    (:func:`~privrec.cpus.auto_threads`). Give a number for bit-identical reruns whatever the
    load (with another thread count, matrix products, e.g. ``multvae``'s and ``lightgcn``'s,
    can round differently)."""
    selection: SelectionRule = "hr"
    """Model selection on validation: ``hr`` (best HR@k) or ``hr_probe`` (best
    HR@k × (1 − max probe leakage), needs penalties that report ``probe_*_leak``)."""
    collapse_ratio: float = 0.0
    """Diverged if validation HR@k falls below this share of its best so far (0 = off)."""
    device: str = "auto"
    """Torch device: ``auto`` (CUDA, then MPS, then CPU), ``cpu``, ``cuda``, ``cuda:N`` or
    ``mps``. A named device that the machine lacks is an error, not a fall-back."""
    vae_hidden: int = 600
    """``multvae``: width of the encoder's hidden layer."""
    vae_dropout: float = 0.5
    """``multvae``: dropout on the input item vector while training."""
    vae_beta: float = 0.2
    """``multvae``: final weight β of the KL term."""
    vae_anneal: float = 0.5
    """``multvae``: share of the planned steps over which β rises linearly from 0 (0 = no
    annealing)."""
    gcn_layers: int = 3
    """``lightgcn``: number of propagation layers K."""

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
                raise ConfigError(f"'train.{name}' must be > 0, got {value}")
        if self.reg < 0:
            raise ConfigError(f"'train.reg' must be >= 0, got {self.reg}")
        if self.patience < 0:
            raise ConfigError(f"'train.patience' must be >= 0, got {self.patience}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0:
            raise ConfigError(f"'train.max_grad_norm' must be > 0, got {self.max_grad_norm}")
        if not 0 <= self.collapse_ratio < 1:
            raise ConfigError(
                f"'train.collapse_ratio' must be in [0, 1), got {self.collapse_ratio}"
            )
        if self.num_threads is not None and self.num_threads < 1:
            raise ConfigError(f"'train.num_threads' must be >= 1, got {self.num_threads}")
        check_device_name(self.device)
        if self.vae_hidden < 1:
            raise ConfigError(f"'train.vae_hidden' must be >= 1, got {self.vae_hidden}")
        if not 0 <= self.vae_dropout < 1:
            raise ConfigError(f"'train.vae_dropout' must be in [0, 1), got {self.vae_dropout}")
        if self.vae_beta < 0:
            raise ConfigError(f"'train.vae_beta' must be >= 0, got {self.vae_beta}")
        if not 0 <= self.vae_anneal <= 1:
            raise ConfigError(f"'train.vae_anneal' must be in [0, 1], got {self.vae_anneal}")
        if self.gcn_layers < 0:
            raise ConfigError(f"'train.gcn_layers' must be >= 0, got {self.gcn_layers}")
        if self.model == "multvae" and self.loss != "bpr":
            raise ConfigError(
                "'train.loss' applies to the pair-trained models; multvae has its own "
                "(multinomial likelihood + KL): leave loss at its default"
            )
        if self.optimizer == "sparse-adam" and self.model in ("multvae", "lightgcn"):
            raise ConfigError(
                f"'train.optimizer' sparse-adam is for the MF models (row-wise updates of "
                f"embedding tables); {self.model} updates dense weights: use adam or sgd"
            )

    @classmethod
    def for_model(cls, model: str = "bpr-mf", **options) -> TrainConfig:
        """A config for ``model`` that starts from its own defaults
        (:data:`privrec.models.MODEL_DEFAULTS`, e.g. user batches of 100 for ``multvae``);
        ``options`` override them."""
        from privrec.models.registry import MODEL_DEFAULTS

        if model not in MODEL_DEFAULTS:
            cls(model=model)  # type: ignore[arg-type]  # raises the usual error naming the choices
        return cls(**{**MODEL_DEFAULTS.get(model, {}), **options, "model": model})

    def model_options(self) -> dict:
        """The model-specific options of :func:`privrec.models.build_model`."""
        if self.model == "multvae":
            return {
                "hidden": self.vae_hidden,
                "dropout": self.vae_dropout,
                "beta": self.vae_beta,
                "anneal": self.vae_anneal,
            }
        if self.model == "lightgcn":
            return {"layers": self.gcn_layers}
        return {}

    def replace(self, **changes) -> TrainConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
