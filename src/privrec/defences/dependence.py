"""Kernel dependence penalties: MMD and HSIC between user vectors and private attributes.

An adversarial head only removes what *its own* function class can read: a linear head behind
gradient reversal leaves a non-linearly encoded attribute (e.g. in the length of the vectors)
untouched, and a stronger attacker still reads it. A kernel dependence measure with a
characteristic kernel (Gaussian RBF) is zero **only** when the vectors' distribution does not
depend on the attribute, so penalising it targets every attacker at once, with no inner
max-player to train.

Both penalties plug into the trainer's :class:`~privrec.training.penalty.UserPenalty` seam. At
each step they take the batch's unique users with a known label, subsample at most
``sample_size`` of them (seeded), and add ``weight × estimate`` to the loss:

- **MMD** (categorical attributes): ``Σ_c π_c · MMD²(P_c, P)``, the prior-weighted squared
  distance, in the kernel's feature space, between the mean embedding of each class ``c`` and
  the mean embedding of the pooled sample. With ``π_c`` the class share of the sample this is
  ``Σ_c π_c (1 − π_c)² MMD²(P_c, P_rest)``; the class-vs-rest MMD² is the unbiased U-statistic
  (diagonal excluded, ≈ 0 in expectation under independence, may be slightly negative) or the
  biased V-statistic (``DependenceSpec.unbiased``). Classes with fewer than 2 members in the
  sample (or fewer than 2 non-members) are skipped.
- **HSIC**: the biased estimator ``tr(K H L H) / (n − 1)²`` with ``K`` the RBF kernel on the
  vectors, ``H`` the centring matrix and ``L`` the delta kernel on class labels (categorical:
  ``L = Y Yᵀ`` with ``Y`` one-hot) or an RBF kernel on the standardised values (continuous,
  median-heuristic bandwidth). By default the penalty is the *normalised* HSIC
  ``HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))`` (the CKA form, in [0, 1]): its scale does not
  depend on the embedding size, the number of bandwidths or the attribute, so one weight means
  the same thing everywhere, and it cannot be lowered by merely shrinking every vector.

Kernel on the vectors: ``K = Σ_b exp(−‖x − y‖² / (2 (m_b σ)²))`` with ``σ`` the median of the
sample's pairwise distances, computed on detached vectors (the median heuristic), and ``m_b``
the bandwidth multipliers of :class:`DependenceSpec`. Several bandwidths are *summed*, so an
unnormalised MMD grows with their number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from privrec.data.attributes import Attribute, UserAttributes
from privrec.errors import ConfigError
from privrec.training.penalty import UserPenalty

DEFAULT_BANDWIDTHS: tuple[float, ...] = (0.5, 1.0, 2.0)
"""Bandwidth multipliers used when :attr:`DependenceSpec.bandwidths` is empty."""
OBJECTIVES = ("two-sided", "excess", "raw")
"""Allowed values of :attr:`DependenceSpec.objective`."""


@dataclass(frozen=True)
class DependenceSpec:
    """Which attributes the dependence penalties purge, with what weight and kernel."""

    mmd: Mapping[str, float] = field(default_factory=dict)
    """Attribute name → weight of its MMD penalty (categorical attributes only; ≥ 0)."""
    hsic: Mapping[str, float] = field(default_factory=dict)
    """Attribute name → weight of its HSIC penalty (categorical or continuous; ≥ 0)."""
    bandwidths: tuple[float, ...] = ()
    """Multipliers of the median-heuristic bandwidth; their RBF kernels are summed. Empty means
    :data:`DEFAULT_BANDWIDTHS` ``(0.5, 1, 2)``: a spread of scales, so neither fine nor coarse
    structure of the vectors escapes."""
    sample_size: int = 512
    """At most this many of the batch's users (with a known label) enter each estimate; the
    kernel matrices are ``sample_size²``. Users beyond it are subsampled at random (seeded)."""
    unbiased: bool = True
    """MMD: unbiased U-statistic (``True``) or biased V-statistic (``False``, always ≥ 0 but
    biased upwards by O(1/n), and the bias does not depend on the vectors)."""
    normalize_hsic: bool = True
    """HSIC: penalise the normalised HSIC (CKA form, in [0, 1]) instead of the raw estimate."""
    objective: str = "two-sided"
    """How an estimate becomes a loss. Estimates are centred on their mean under a random
    permutation of the labels (exactly 0 for the MMD U-statistic; ``tr(HKH) tr(HLH) / (n − 1)``
    is subtracted from ``tr(KHLH)``), so a random labelling gives ≈ 0 and below-chance values are
    possible. ``two-sided``: ``weight × |estimate|``: "more mixed than chance" (same-label users
    pushed apart, which a held-out attacker reads *inverted*, ROC-AUC well below 0.5) is
    penalised like dependence. ``excess``: ``weight × max(estimate, 0)``. ``raw``: the textbook
    estimators as they are (no centring), ``weight × estimate``."""
    seed: int = 0
    """Seed of the subsampling generators."""

    def __post_init__(self) -> None:
        for family in ("mmd", "hsic"):
            weights = getattr(self, family)
            if not isinstance(weights, Mapping):
                raise ConfigError(f"{family} must map attribute names to weights")
            for name, w in weights.items():
                try:
                    w = float(w)
                except (TypeError, ValueError):
                    raise ConfigError(
                        f"{family} weight of '{name}' is not a number: {w!r}"
                    ) from None
                if not math.isfinite(w) or w < 0:
                    raise ConfigError(
                        f"{family} weight of '{name}' must be finite and >= 0, got {w}"
                    )
            object.__setattr__(self, family, {str(k): float(v) for k, v in weights.items()})
        bws = tuple(float(b) for b in self.bandwidths)
        for b in bws:
            if not math.isfinite(b) or b <= 0:
                raise ConfigError(f"bandwidth multipliers must be finite and > 0, got {b}")
        object.__setattr__(self, "bandwidths", bws)
        if self.objective not in OBJECTIVES:
            raise ConfigError(
                f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}"
            )
        if isinstance(self.sample_size, bool) or int(self.sample_size) != self.sample_size:
            raise ConfigError(f"sample_size must be an integer, got {self.sample_size!r}")
        if self.sample_size < 4:
            raise ConfigError(f"sample_size must be >= 4, got {self.sample_size}")

    @property
    def multipliers(self) -> tuple[float, ...]:
        """The bandwidth multipliers in effect."""
        return self.bandwidths or DEFAULT_BANDWIDTHS

    @property
    def empty(self) -> bool:
        return not self.mmd and not self.hsic

    def to_dict(self) -> dict:
        return {
            "mmd": dict(self.mmd),
            "hsic": dict(self.hsic),
            "bandwidths": list(self.bandwidths),
            "sample_size": self.sample_size,
            "unbiased": self.unbiased,
            "normalize_hsic": self.normalize_hsic,
            "objective": self.objective,
            "seed": self.seed,
        }


# ---------------------------------------------------------------------------------------------
# Pure estimators (tensors in, tensor out; differentiable in the vectors)
# ---------------------------------------------------------------------------------------------


def _sq_dists(x: torch.Tensor) -> torch.Tensor:
    sq = x.pow(2).sum(-1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    return d2.clamp_min(0.0)


def median_bandwidth(x: torch.Tensor) -> float:
    """Median pairwise distance between the rows of ``x`` (detached; 1.0 if degenerate)."""
    with torch.no_grad():
        n = x.shape[0]
        d2 = _sq_dists(x.detach())
        iu = torch.triu_indices(n, n, offset=1)
        med = float(d2[iu[0], iu[1]].median().sqrt()) if n > 1 else 0.0
    return med if math.isfinite(med) and med > 1e-12 else 1.0


def rbf_kernel(x: torch.Tensor, multipliers: tuple[float, ...] = (1.0,)) -> torch.Tensor:
    """Sum over ``multipliers`` of Gaussian kernels with bandwidth ``m · median distance``."""
    d2 = _sq_dists(x)
    sigma = median_bandwidth(x)
    k = torch.zeros_like(d2)
    for m in multipliers:
        k = k + torch.exp(-d2 / (2.0 * (m * sigma) ** 2))
    return k


def mmd_classes(
    k: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    unbiased: bool = True,
    excess: bool = False,
) -> torch.Tensor:
    """``Σ_c π_c MMD²(P_c, P)`` from a kernel matrix and integer labels in ``0..n_classes−1``.

    ``π_c`` is the class share of the sample; ``MMD²(P_c, P) = (1 − π_c)² MMD²(P_c, P_rest)``.
    Classes with < 2 members or < 2 non-members contribute nothing. ``excess`` subtracts the
    estimate's mean under a random permutation of the labels (a no-op for the unbiased
    U-statistic, whose permutation mean is exactly 0).
    """
    n = k.shape[0]
    y = torch.nn.functional.one_hot(labels, n_classes).to(k.dtype)  # n × C
    counts = y.sum(0)  # C
    rest = n - counts
    if unbiased:
        k_off = k - torch.diag_embed(torch.diagonal(k))
        s = y.T @ k_off @ y  # C × C, sums over i≠j
        total = k_off.sum()
        within = torch.diagonal(s)
        row = s.sum(1)  # i in c, j anywhere (≠ i)
        cross = row - within
        rest_rest = total - 2.0 * row + within
        cc = within / (counts * (counts - 1)).clamp_min(1.0)
        rr = rest_rest / (rest * (rest - 1)).clamp_min(1.0)
    else:
        s = y.T @ k @ y
        total = k.sum()
        within = torch.diagonal(s)
        row = s.sum(1)
        cross = row - within
        rest_rest = total - 2.0 * row + within
        cc = within / (counts**2).clamp_min(1.0)
        rr = rest_rest / (rest**2).clamp_min(1.0)
    cr = cross / (counts * rest).clamp_min(1.0)
    mmd2_rest = cc + rr - 2.0 * cr
    if excess and not unbiased:
        # V-statistic = dᵀ K d with d = 1_c / n_c − 1_rest / n_rest (centred); its mean over
        # label permutations is tr(HKH) ‖d‖² / (n − 1).
        tr_kc = torch.diagonal(k).sum() - k.sum() / n
        d2 = 1.0 / counts.clamp_min(1.0) + 1.0 / rest.clamp_min(1.0)
        mmd2_rest = mmd2_rest - tr_kc * d2 / (n - 1)
    prior = counts / n
    valid = (counts >= 2) & (rest >= 2)
    terms = prior * (1.0 - prior) ** 2 * mmd2_rest
    return torch.where(valid, terms, torch.zeros_like(terms)).sum()


def _centre(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def hsic(
    k: torch.Tensor,
    l: torch.Tensor,  # noqa: E741
    normalize: bool = False,
    excess: bool = False,
) -> torch.Tensor:
    """Biased HSIC ``tr(K H L H) / (n − 1)²``.

    ``normalize`` divides by ``sqrt(HSIC(K, K) · HSIC(L, L))`` (the CKA form, in [0, 1]);
    ``excess`` first subtracts the mean of ``tr(KHLH)`` under a random permutation of the
    samples of ``L``, ``tr(HKH) tr(HLH) / (n − 1)``, so that independence gives ≈ 0 whatever n.
    """
    n = k.shape[0]
    kc = _centre(k)
    lc = _centre(l)
    raw = (kc * lc).sum()
    if excess:
        raw = raw - torch.trace(kc) * torch.trace(lc) / (n - 1)
    value = raw / (n - 1) ** 2
    if not normalize:
        return value
    denom = torch.sqrt((kc * kc).sum() * (lc * lc).sum()) / (n - 1) ** 2
    return value / denom.clamp_min(1e-12)


def label_kernel(values: torch.Tensor, kind: str, n_classes: int = 0) -> torch.Tensor:
    """Delta kernel on class codes (categorical) or RBF on standardised values (continuous)."""
    if kind == "categorical":
        y = torch.nn.functional.one_hot(values.long(), n_classes).to(torch.float32)
        return y @ y.T
    v = values.to(torch.float32)
    v = (v - v.mean()) / v.std().clamp_min(1e-12)
    return rbf_kernel(v[:, None], (1.0,))


# ---------------------------------------------------------------------------------------------
# Penalties
# ---------------------------------------------------------------------------------------------


class _DependencePenalty(UserPenalty):
    prefix = "dep"

    def __init__(self, attribute: Attribute, weight: float, spec: DependenceSpec) -> None:
        super().__init__()
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(f"weight of '{attribute.name}' must be finite and >= 0, got {weight}")
        known = attribute.known
        if known.sum() < 2:
            raise ConfigError(
                f"attribute '{attribute.name}' has fewer than 2 known values: nothing to purge"
            )
        self.attribute_name = attribute.name
        self.name = f"{self.prefix}_{attribute.name}"
        self.kind = attribute.kind
        self.n_classes = attribute.n_classes
        self.weight = float(weight)
        self.spec = spec
        self._gen = torch.Generator().manual_seed(spec.seed * 1_000_003 + _stable_hash(self.name))
        if attribute.kind == "categorical":
            target = torch.from_numpy(np.where(known, attribute.values, 0).astype(np.int64))
        else:
            target = torch.from_numpy(np.nan_to_num(attribute.values).astype(np.float32))
        self.register_buffer("target", target, persistent=False)
        self.register_buffer("known", torch.from_numpy(known.copy()), persistent=False)

    def _sample(self, user_vecs: torch.Tensor, users: torch.Tensor):
        mask = self.known[users]
        idx = torch.nonzero(mask, as_tuple=True)[0]
        if idx.numel() > self.spec.sample_size:
            pick = torch.randperm(idx.numel(), generator=self._gen)[: self.spec.sample_size]
            idx = idx[pick]
        return user_vecs[idx], self.target[users[idx]]

    def estimate(self, vecs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, user_vecs, users, progress):
        vecs, labels = self._sample(user_vecs, users)
        if vecs.shape[0] < 4:
            # Too few labelled users in this batch for an estimate: no loss, no number.
            return user_vecs.sum() * 0.0, {}
        value = self.estimate(vecs, labels)
        if self.spec.objective == "two-sided":
            loss = value.abs()
        elif self.spec.objective == "excess":
            loss = value.clamp_min(0.0)
        else:
            loss = value
        return self.weight * loss, {self.name: float(value.detach())}


class MMDPenalty(_DependencePenalty):
    """``weight × Σ_c π_c MMD²(P_c, P)`` between each class's vectors and the pooled vectors
    (categorical attributes; see the module docstring)."""

    prefix = "mmd"

    def __init__(self, attribute: Attribute, weight: float, spec: DependenceSpec) -> None:
        if attribute.kind != "categorical":
            raise ConfigError(
                f"MMD needs a categorical attribute; '{attribute.name}' is {attribute.kind} "
                "(use hsic for continuous attributes)"
            )
        super().__init__(attribute, weight, spec)

    def estimate(self, vecs, labels):
        k = rbf_kernel(vecs, self.spec.multipliers)
        return mmd_classes(
            k, labels, self.n_classes, self.spec.unbiased, excess=self.spec.objective != "raw"
        )


class HSICPenalty(_DependencePenalty):
    """``weight × HSIC`` (normalised by default) between the vectors and the attribute."""

    prefix = "hsic"

    def estimate(self, vecs, labels):
        k = rbf_kernel(vecs, self.spec.multipliers)
        l = label_kernel(labels, self.kind, self.n_classes)  # noqa: E741
        return hsic(k, l, self.spec.normalize_hsic, excess=self.spec.objective != "raw")


def build_dependence_penalties(
    attributes: UserAttributes, spec: DependenceSpec, dim: int | None = None
) -> list[UserPenalty]:
    """One :class:`MMDPenalty` per ``spec.mmd`` entry, then one :class:`HSICPenalty` per
    ``spec.hsic`` entry (``dim`` is accepted for symmetry with ``build_adversaries``; the
    penalties have no parameters)."""
    names = [*spec.mmd, *spec.hsic]
    missing = sorted({n for n in names if n not in attributes})
    if missing:
        raise ConfigError(
            f"unknown attribute(s) {', '.join(missing)} for the dependence penalties; "
            f"available: {', '.join(attributes.names) or 'none'}"
        )
    out: list[UserPenalty] = []
    out += [MMDPenalty(attributes[n], w, spec) for n, w in spec.mmd.items()]
    out += [HSICPenalty(attributes[n], w, spec) for n, w in spec.hsic.items()]
    return out


def _stable_hash(s: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(s)) % 100_003


__all__ = [
    "DEFAULT_BANDWIDTHS",
    "DependenceSpec",
    "HSICPenalty",
    "MMDPenalty",
    "build_dependence_penalties",
    "hsic",
    "label_kernel",
    "median_bandwidth",
    "mmd_classes",
    "rbf_kernel",
]
