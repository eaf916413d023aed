"""Defences beyond a single adversarial head: kernel dependence penalties (MMD, HSIC).

Use them like the adversarial heads, through the trainer's penalty seam::

    from privrec.defences import DependenceSpec, build_dependence_penalties

    spec = DependenceSpec(mmd={"gender": 1.0, "age": 1.0})
    penalties = build_dependence_penalties(ds.attributes, spec, cfg.embedding_size)
    trained = Trainer(cfg, penalties).fit(split)

Weights may be parsed from ``"gender=1.0"`` strings with
:func:`privrec.adversarial.penalty.parse_weights` (re-exported here).
"""

from privrec.adversarial.penalty import parse_weights
from privrec.defences.dependence import (
    DEFAULT_BANDWIDTHS,
    DependenceSpec,
    HSICPenalty,
    MMDPenalty,
    build_dependence_penalties,
    hsic,
    hsic_features,
    label_kernel,
    median_bandwidth,
    mmd_classes,
    mmd_classes_features,
    rbf_kernel,
    rbf_kernels,
)

__all__ = [
    "DEFAULT_BANDWIDTHS",
    "DependenceSpec",
    "HSICPenalty",
    "MMDPenalty",
    "build_dependence_penalties",
    "hsic",
    "hsic_features",
    "label_kernel",
    "median_bandwidth",
    "mmd_classes",
    "mmd_classes_features",
    "parse_weights",
    "rbf_kernel",
    "rbf_kernels",
]
