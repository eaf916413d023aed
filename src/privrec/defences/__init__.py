"""Every defence privrec has, in one place.

* :mod:`privrec.defences.adversarial`: attribute heads behind gradient reversal (the paper) and
  the bounded ``confusion`` objective;
* :mod:`privrec.defences.dependence`: kernel dependence penalties (MMD, HSIC);
* :mod:`privrec.defences.alignment`: sliced-Wasserstein alignment of the groups' vectors to
  their barycenter (SWD);
* :mod:`privrec.defences.penalties`: one builder of those penalties from a ``DependenceSpec``;
* :mod:`privrec.defences.erasure`: post-hoc erasure of trained vectors (LEACE, INLP).

The training-time defences plug into the trainer through its user-vector penalty seam
(:class:`~privrec.training.penalty.UserPenalty`)::

    from privrec.defences import DependenceSpec, build_dependence_penalties

    spec = DependenceSpec(mmd={"gender": 1.0, "age": 1.0})
    penalties = build_dependence_penalties(ds.attributes, spec, cfg.embedding_size)
    trained = Trainer(cfg, penalties).fit(split)
"""

from privrec.defences.adversarial import (
    ADVERSARY_OBJECTIVES,
    AdversarialPenalty,
    AdversarySpec,
    build_adversaries,
)
from privrec.defences.alignment import SlicedWassersteinPenalty, sliced_barycenter_distance
from privrec.defences.dependence import (
    DEFAULT_BANDWIDTHS,
    DependenceSpec,
    HSICPenalty,
    MMDPenalty,
    hsic,
    hsic_features,
    label_kernel,
    median_bandwidth,
    mmd_classes,
    mmd_classes_features,
    rbf_kernel,
    rbf_kernels,
)
from privrec.defences.erasure import METHODS as ERASURE_METHODS
from privrec.defences.erasure import AffineEraser, erase_vectors, fit_eraser
from privrec.defences.penalties import build_dependence_penalties

__all__ = [
    "ADVERSARY_OBJECTIVES",
    "DEFAULT_BANDWIDTHS",
    "ERASURE_METHODS",
    "AdversarialPenalty",
    "AdversarySpec",
    "AffineEraser",
    "DependenceSpec",
    "HSICPenalty",
    "MMDPenalty",
    "SlicedWassersteinPenalty",
    "build_adversaries",
    "build_dependence_penalties",
    "sliced_barycenter_distance",
    "erase_vectors",
    "fit_eraser",
    "hsic",
    "hsic_features",
    "label_kernel",
    "median_bandwidth",
    "mmd_classes",
    "mmd_classes_features",
    "rbf_kernel",
    "rbf_kernels",
]
