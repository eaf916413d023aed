"""Names of the training-time penalty families, for the modules that must not import torch.

The run and sweep specifications, the results records and the CLI name the penalty families of
:class:`~privrec.defences.DependenceSpec` without loading the defences themselves (which need
torch); this is their one list.
"""

from __future__ import annotations

PENALTY_FAMILIES: tuple[str, ...] = ("mmd", "hsic", "swd")
"""The penalty families of a :class:`~privrec.defences.DependenceSpec`, each a field
``attribute → weight``: MMD and HSIC (:mod:`privrec.defences.dependence`) and the
sliced-Wasserstein alignment (:mod:`privrec.defences.alignment`)."""

__all__ = ["PENALTY_FAMILIES"]
