"""The training-time dependence penalties of a :class:`~privrec.defences.DependenceSpec`.

One builder for the three families (:data:`~privrec.defence_names.PENALTY_FAMILIES`): MMD and
HSIC (:mod:`privrec.defences.dependence`) and the sliced-Wasserstein alignment
(:mod:`privrec.defences.alignment`).
"""

from __future__ import annotations

from privrec.data.attributes import UserAttributes
from privrec.defence_names import PENALTY_FAMILIES
from privrec.defences.alignment import SlicedWassersteinPenalty
from privrec.defences.dependence import DependenceSpec, HSICPenalty, MMDPenalty
from privrec.errors import ConfigError
from privrec.training.penalty import UserPenalty


def build_dependence_penalties(
    attributes: UserAttributes, spec: DependenceSpec, dim: int | None = None
) -> list[UserPenalty]:
    """One :class:`MMDPenalty` per ``spec.mmd`` entry, one :class:`HSICPenalty` per
    ``spec.hsic`` entry, then one :class:`~privrec.defences.alignment.SlicedWassersteinPenalty`
    per ``spec.swd`` entry (``dim``: the user-vector size, for the Fourier features; the
    penalties have no trainable parameters). An empty spec gives an empty list."""
    names = [n for family in PENALTY_FAMILIES for n in getattr(spec, family)]
    missing = sorted({n for n in names if n not in attributes})
    if missing:
        raise ConfigError(
            f"unknown attribute(s) {', '.join(missing)} for the dependence penalties; "
            f"available: {', '.join(attributes.names) or 'none'}"
        )
    out: list[UserPenalty] = []
    out += [MMDPenalty(attributes[n], w, spec, dim) for n, w in spec.mmd.items()]
    out += [HSICPenalty(attributes[n], w, spec, dim) for n, w in spec.hsic.items()]
    out += [SlicedWassersteinPenalty(attributes[n], w, spec, dim) for n, w in spec.swd.items()]
    return out


__all__ = ["build_dependence_penalties"]
