"""Dependence penalties: MMD and HSIC between user vectors and private attributes.

(The third family of :class:`DependenceSpec`, the sliced-Wasserstein alignment ``swd``, lives
in :mod:`privrec.defences.alignment` and shares this module's sampling, objectives and
schedule.)

An adversarial head only removes what *its own* function class can read: a linear head behind
gradient reversal leaves a non-linearly encoded attribute (e.g. in the length of the vectors)
untouched, and a stronger attacker still reads it. A kernel dependence measure with a
characteristic kernel (Gaussian) is zero only when the vectors' distribution does not depend on
the attribute, so penalising it targets every attacker at once, with no inner max-player.

Both penalties plug into the trainer's :class:`~privrec.training.penalty.UserPenalty` seam. At
each step they take the batch's unique users with a known label, subsample at most
``sample_size`` of them (seeded), and compute, for each bandwidth ``b``:

- **MMD** (categorical attributes): ``Σ_c π_c · MMD²_b(P_c, P)``, the prior-weighted squared
  distance between the kernel mean embedding of each class ``c`` and that of the pooled sample.
  With ``π_c`` the class share of the sample this is ``Σ_c π_c (1 − π_c)² MMD²(P_c, P_rest)``;
  the class-vs-rest MMD² is the unbiased U-statistic (default) or the biased V-statistic.
  Classes with fewer than 2 members (or 2 non-members) in the sample are skipped.
- **HSIC**: ``tr(K H L H) / (n − 1)²`` with ``K`` the kernel on the vectors, ``H`` the centring
  matrix and ``L`` the delta kernel on class labels (``L = Y Yᵀ``, ``Y`` one-hot) or a Gaussian
  kernel on the standardised values of a continuous attribute. By default normalised,
  ``HSIC(K, L) / sqrt(HSIC(K, K) · HSIC(L, L))`` (the CKA form): scale-free, so a weight means
  the same for every embedding size and attribute, and not lowered by shrinking all vectors.

Estimates are *null-centred*: the mean of the statistic under a random permutation of the labels
is subtracted (it is exactly 0 for the MMD U-statistic; ``tr(HKH) tr(HLH) / (n − 1)`` for
``tr(KHLH)``), so a random labelling gives ≈ 0. The reported number ``mmd_<attr>`` /
``hsic_<attr>`` is the sum over bandwidths.

The loss (``DependenceSpec.objective``, default ``z2``) is ``weight × Σ_b z_b²`` with
``z_b = estimate_b / sd_b`` and ``sd_b`` the standard deviation of the estimate over a few label
permutations of the same sample (detached): a scale-free, smooth, two-sided penalty whose
minimum is "looks like a random labelling". ``abs`` is ``weight × Σ_b |estimate_b|`` and
``raw`` the textbook ``weight × Σ_b estimate_b`` (no centring; one-sided, unbounded below for
the U-statistic).

Kernel on the vectors (``DependenceSpec.kernel``): the vectors are first divided by their
root-mean-square spread (with gradient), then the bandwidth is ``m_b · σ`` with ``σ`` the median
pairwise distance (detached; the median heuristic). Without the division the gradient at a
detached bandwidth rewards shrinking *every* vector (a flatter kernel), a pull towards
popularity-only ranking that has nothing to do with the attribute. ``rff`` (default) uses a
*fixed* set of random Fourier features per bandwidth, ``φ(x) = sqrt(2/D) cos(W x / (m_b σ) +
c)``, drawn once per penalty, and ``K = Φ Φᵀ``; ``rbf`` uses the exact Gaussian kernel
``exp(−‖x − y‖² / (2 (m_b σ)²))``. Why the approximation is the default: (1) cost — the
statistics are computed from the ``n × D`` features in O(n·D·C) instead of O(n²) (measured
costs: ``benchmarks/defence_cost.py``); (2) the gradient an exact kernel sends to a user is a sum of bumps centred on the other
users of the sample, i.e. it can push a user away from its *nearest same-label neighbours*,
which recommendation training does not resist; fixed Fourier features give a band-limited
witness that moves nearby same-label users together. Both kernels remove a planted non-linear
attribute on synthetic data (``tests/test_defences.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch

from privrec.config_types import check_fields
from privrec.data.attributes import Attribute
from privrec.defence_names import PENALTY_FAMILIES
from privrec.errors import ConfigError
from privrec.training.penalty import UserPenalty
from privrec.training.schedule import ScheduleName, schedule_factor

DEFAULT_BANDWIDTHS: tuple[float, ...] = (0.5, 1.0, 2.0)
"""Bandwidth multipliers used when :attr:`DependenceSpec.bandwidths` is empty."""
DependenceObjective = Literal["z2", "abs", "raw"]
"""Loss forms of the dependence penalty (see :attr:`DependenceSpec.objective`)."""
KernelName = Literal["rff", "rbf"]
"""Kernels of the dependence estimates."""
ScalingName = Literal["spread", "standardize"]
"""How the vectors are scaled before the kernel."""
OBJECTIVES: tuple[str, ...] = get_args(DependenceObjective)
"""Allowed values of :attr:`DependenceSpec.objective`."""
KERNELS: tuple[str, ...] = get_args(KernelName)
"""Allowed values of :attr:`DependenceSpec.kernel`."""
SCALINGS: tuple[str, ...] = get_args(ScalingName)
"""Allowed values of :attr:`DependenceSpec.scaling`."""


@dataclass(frozen=True)
class DependenceSpec:
    """Which attributes the dependence penalties purge, with what weight and kernel."""

    mmd: Mapping[str, float] = field(default_factory=dict)
    """Attribute name → weight of its MMD penalty (categorical attributes only; ≥ 0)."""
    hsic: Mapping[str, float] = field(default_factory=dict)
    """Attribute name → weight of its HSIC penalty (categorical or continuous; ≥ 0)."""
    swd: Mapping[str, float] = field(default_factory=dict)
    """Attribute name → weight of its sliced-Wasserstein alignment penalty (categorical
    attributes only; ≥ 0; :mod:`privrec.defences.alignment`)."""
    bandwidths: tuple[float, ...] = ()
    """Multipliers of the median-heuristic bandwidth, one kernel each (the reported estimate is
    their sum; the ``z2`` loss sums per-bandwidth terms). Empty means :data:`DEFAULT_BANDWIDTHS`
    ``(0.5, 1, 2)``: a spread of scales, so neither fine nor coarse structure escapes."""
    sample_size: int = 512
    """At most this many of the batch's users (with a known label) enter each estimate; the
    kernel matrices are ``sample_size²``. Users beyond it are subsampled at random (seeded)."""
    kernel: KernelName = "rff"
    """``rff``: fixed random Fourier features (default; see the module docstring for why);
    ``rbf``: exact Gaussian kernels."""
    n_features: int = 128
    """Random Fourier features per bandwidth (``rff`` only)."""
    objective: DependenceObjective = "z2"
    """``z2``: ``weight × Σ_b max(|z_b| − tolerance, 0)²`` with ``z_b`` the null-centred estimate
    in units of its permutation standard deviation; ``abs``: ``weight × Σ_b max(|estimate_b| −
    tolerance · sd_b, 0)``; ``raw``: ``weight × Σ_b estimate_b`` with the textbook estimators
    (no centring)."""
    tolerance: float = 0.0
    """Dead zone of ``z2`` / ``abs`` in permutation standard deviations: dependence within what a
    random labelling shows is left alone (0 = off; ignored by ``raw``)."""
    n_permutations: int = 8
    """Label permutations per step used to estimate the null standard deviation (``z2``, or
    ``abs`` with a tolerance)."""
    unbiased: bool = True
    """MMD: unbiased U-statistic (``True``) or biased V-statistic (``False``; always ≥ 0 and
    biased upwards by O(1/n) unless centred)."""
    normalize_hsic: bool = True
    """HSIC: the normalised HSIC (CKA form) instead of the raw estimate."""
    scaling: ScalingName = "spread"
    """How the vectors are scaled before the kernel (with gradient, so the penalty is
    scale-free): ``spread`` divides them by their root-mean-square spread (one factor, the
    geometry kept); ``standardize`` centres each dimension and divides it by its standard
    deviation, as the audit's attackers do (``StandardScaler``), so dependence hidden in a
    low-variance dimension weighs as much as in a high-variance one."""
    schedule: ScheduleName = "constant"
    """``constant`` weight, or ``ramp``: weight · (2 / (1 + exp(−γ p)) − 1) with p the training
    progress (the recommender learns tastes first; see :func:`~privrec.training.schedule.
    schedule_factor`)."""
    gamma: float = 10.0
    """Steepness of the ramp."""
    n_projections: int = 32
    """``swd``: random directions per step (drawn afresh at every step)."""
    n_quantiles: int = 64
    """``swd``: quantile levels per direction."""
    swd_sample_size: int = 2048
    """``swd``: at most this many of the batch's users with a known label enter each estimate
    (it sorts instead of forming ``n²`` kernels, so it affords large samples)."""
    null_every: int = 10
    """``swd``: recompute the permutation null (mean and spread of the estimate under random
    labellings, what ``z2``/``abs`` centre and scale by) every this many steps, and reuse it
    in between (it depends on the sample size and spread-scaled geometry, which change
    slowly; it costs several times the estimate itself)."""
    pseudo_labels: bool = False
    """``swd``: after every epoch, give the users without a known label the class
    probabilities of a logistic labeller fitted on the label users' vectors, and let them
    enter the estimate with those memberships (:mod:`privrec.defences.alignment`)."""
    seed: int = 0
    """Seed of the subsampling, permutation, Fourier-feature and projection generators."""

    def __post_init__(self) -> None:
        check_fields(self)
        for family in PENALTY_FAMILIES:
            for name, w in getattr(self, family).items():
                if w < 0:
                    raise ConfigError(f"{family} weight of '{name}' must be >= 0, got {w}")
        bws = tuple(float(b) for b in self.bandwidths)
        for b in bws:
            if not math.isfinite(b) or b <= 0:
                raise ConfigError(f"bandwidth multipliers must be finite and > 0, got {b}")
        object.__setattr__(self, "bandwidths", bws)
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ConfigError(f"tolerance must be finite and >= 0, got {self.tolerance}")
        if self.n_permutations < 2:
            raise ConfigError(f"n_permutations must be >= 2, got {self.n_permutations}")
        if not math.isfinite(self.gamma) or self.gamma <= 0:
            raise ConfigError(f"gamma must be finite and > 0, got {self.gamma}")
        if isinstance(self.n_features, bool) or self.n_features < 1:
            raise ConfigError(f"n_features must be >= 1, got {self.n_features}")
        for key in ("sample_size", "swd_sample_size"):
            if getattr(self, key) < 4:
                raise ConfigError(f"'dependence.{key}' must be >= 4, got {getattr(self, key)}")
        if self.pseudo_labels and not self.swd:
            raise ConfigError(
                "'dependence.pseudo_labels' applies to the swd penalty: give it an swd weight"
            )
        if self.pseudo_labels and (self.mmd or self.hsic):
            raise ConfigError(
                "'dependence.pseudo_labels' applies to the swd penalty only; "
                "mmd and hsic use the label users alone"
            )
        for key in ("n_projections", "n_quantiles", "null_every"):
            value = getattr(self, key)
            if isinstance(value, bool) or value < 1:
                raise ConfigError(f"'dependence.{key}' must be >= 1, got {value}")

    @property
    def multipliers(self) -> tuple[float, ...]:
        """The bandwidth multipliers in effect."""
        return self.bandwidths or DEFAULT_BANDWIDTHS

    @property
    def empty(self) -> bool:
        return not any(getattr(self, family) for family in PENALTY_FAMILIES)

    def weights(self) -> dict[str, dict[str, float]]:
        """Family (``mmd``, ``hsic``, ``swd``) → its attribute weights, families with none left
        out."""
        return {f: dict(getattr(self, f)) for f in PENALTY_FAMILIES if getattr(self, f)}

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for family in PENALTY_FAMILIES:
            out[family] = dict(getattr(self, family))
        out["bandwidths"] = list(self.bandwidths)
        return out


# ---------------------------------------------------------------------------------------------
# Pure estimators (tensors in, tensor out; differentiable in the vectors)
# ---------------------------------------------------------------------------------------------


def _sq_dists(x: torch.Tensor) -> torch.Tensor:
    sq = x.pow(2).sum(-1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    return d2.clamp_min(0.0)


def median_bandwidth(x: torch.Tensor, max_points: int = 256) -> float:
    """Median pairwise distance between the rows of ``x`` (the first ``max_points`` of them;
    detached; 1.0 if degenerate)."""
    with torch.no_grad():
        pts = x.detach()[:max_points]
        med = _lower_median(torch.pdist(pts)) if pts.shape[0] > 1 else 0.0
    return med if math.isfinite(med) and med > 1e-12 else 1.0


def _lower_median(values: torch.Tensor) -> float:
    """``float(values.median())`` (the lower of the two middle values), by a linear-time
    selection (``np.partition``) instead of torch's CPU median, several times slower at this
    size; NaNs are given to torch, which propagates them."""
    flat = values.detach().reshape(-1).cpu().numpy()
    if np.isnan(flat).any():
        return float(values.median())
    k = (flat.size - 1) // 2
    return float(np.partition(flat, k)[k])


def rbf_kernels(x: torch.Tensor, multipliers: tuple[float, ...] = (1.0,)) -> torch.Tensor:
    """Gaussian kernel matrices with bandwidths ``m · median distance``, stacked: (B, n, n)."""
    d2 = _sq_dists(x)
    sigma = median_bandwidth(x)
    return torch.stack([torch.exp(-d2 / (2.0 * (m * sigma) ** 2)) for m in multipliers])


def rbf_kernel(x: torch.Tensor, multipliers: tuple[float, ...] = (1.0,)) -> torch.Tensor:
    """Sum over ``multipliers`` of Gaussian kernels with bandwidth ``m · median distance``."""
    return rbf_kernels(x, multipliers).sum(0)


def _diag(k: torch.Tensor) -> torch.Tensor:
    return torch.diagonal(k, dim1=-2, dim2=-1)


def _mmd_from_sums(
    s: torch.Tensor,
    total: torch.Tensor,
    diag_c: torch.Tensor,
    trace: torch.Tensor,
    counts: torch.Tensor,
    n: int,
    unbiased: bool,
    excess: bool,
) -> torch.Tensor:
    """The class-prior-weighted MMD² from kernel sums: ``s[c, c']`` = Σ over i∈c, j∈c' of
    k(i, j) (diagonal included), ``total`` = Σ k, ``diag_c[c]`` = Σ_{i∈c} k(i, i),
    ``trace`` = Σ_i k(i, i). All may carry leading batch dimensions."""
    rest = n - counts
    if unbiased:
        s = s - torch.diag_embed(diag_c)
        total = total - trace
        pairs_c, pairs_r = counts * (counts - 1), rest * (rest - 1)
    else:
        pairs_c, pairs_r = counts**2, rest**2
    within = _diag(s)
    row = s.sum(-1)  # i in c, j anywhere
    cross = row - within
    rest_rest = total[..., None] - 2.0 * row + within
    mmd2_rest = (
        within / pairs_c.clamp_min(1.0)
        + rest_rest / pairs_r.clamp_min(1.0)
        - 2.0 * cross / (counts * rest).clamp_min(1.0)
    )
    if excess and not unbiased:
        # V-statistic = dᵀ K d with d = 1_c / n_c − 1_rest / n_rest (centred); its mean over
        # label permutations is tr(HKH) ‖d‖² / (n − 1).
        tr_kc = (trace - total / n)[..., None]
        d2 = 1.0 / counts.clamp_min(1.0) + 1.0 / rest.clamp_min(1.0)
        mmd2_rest = mmd2_rest - tr_kc * d2 / (n - 1)
    prior = counts / n
    valid = (counts >= 2) & (rest >= 2)
    terms = prior * (1.0 - prior) ** 2 * mmd2_rest
    return torch.where(valid, terms, torch.zeros_like(terms)).sum(-1)


def _one_hot(labels: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    return torch.nn.functional.one_hot(labels.long(), n_classes).to(dtype)


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
    U-statistic, whose permutation mean is exactly 0). ``k`` may carry leading batch
    dimensions (one estimate per kernel matrix).
    """
    n = k.shape[-1]
    y = _one_hot(labels, n_classes, k.dtype)  # n × C
    kd = _diag(k)
    return _mmd_from_sums(
        y.T @ k @ y, k.sum((-2, -1)), kd @ y, kd.sum(-1), y.sum(0), n, unbiased, excess
    )


def mmd_classes_features(
    f: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    unbiased: bool = True,
    excess: bool = False,
) -> torch.Tensor:
    """:func:`mmd_classes` for the kernel ``K = F Fᵀ`` given by features ``f`` (``(n, D)`` or
    ``(B, n, D)``), in O(n · C · D) instead of O(n²). ``labels`` may be ``(P, n)`` (e.g. P
    permutations): the result is then ``(P, B)`` (or ``(P,)``)."""
    n = f.shape[-2]
    f3 = f if f.ndim == 3 else f[None]
    y = _one_hot(labels, n_classes, f.dtype)
    y3 = y if labels.ndim == 2 else y[None]
    sums = torch.einsum("pnc,bnd->pbcd", y3, f3)  # feature sums per class
    sq = f3.pow(2).sum(-1)  # (B, n): k(i, i)
    out = _mmd_from_sums(
        sums @ sums.transpose(-2, -1),
        sums.sum(-2).pow(2).sum(-1),
        torch.einsum("bn,pnc->pbc", sq, y3),
        sq.sum(-1),
        y3.sum(-2)[:, None, :],
        n,
        unbiased,
        excess,
    )  # (P, B)
    if f.ndim == 2:
        out = out[:, 0]
    return out if labels.ndim == 2 else out[0]


def _centre(k: torch.Tensor) -> torch.Tensor:
    return k - k.mean(-2, keepdim=True) - k.mean(-1, keepdim=True) + k.mean((-2, -1), keepdim=True)


def _hsic_from_terms(
    cross: torch.Tensor,
    tr_kc: torch.Tensor,
    tr_lc: torch.Tensor,
    kk: torch.Tensor,
    ll: torch.Tensor,
    n: int,
    normalize: bool,
    excess: bool,
) -> torch.Tensor:
    raw = cross - tr_kc * tr_lc / (n - 1) if excess else cross
    value = raw / (n - 1) ** 2
    if not normalize:
        return value
    return raw / torch.sqrt(kk * ll).clamp_min(1e-12)


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
    ``k`` may carry leading batch dimensions (one estimate per kernel matrix).
    """
    n = k.shape[-1]
    kc, lc = _centre(k), _centre(l)
    return _hsic_from_terms(
        (kc * lc).sum((-2, -1)),
        _diag(kc).sum(-1),
        _diag(lc).sum(-1),
        (kc * kc).sum((-2, -1)),
        (lc * lc).sum((-2, -1)),
        n,
        normalize,
        excess,
    )


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``aᵀ b`` over the sample axis (−2), leading dimensions broadcast, as one contraction:
    a broadcast ``@`` of features ``(B, n, D)`` against the null's permuted labels
    ``(P, 1, n, E)`` would copy the features once per permutation (7–9× slower at B = 3,
    n = 512, D = 128, P = 8)."""
    return torch.einsum("...nd,...ne->...de", a, b)


def hsic_features(
    f: torch.Tensor,
    g: torch.Tensor,
    normalize: bool = False,
    excess: bool = False,
) -> torch.Tensor:
    """:func:`hsic` for ``K = F Fᵀ`` and ``L = G Gᵀ`` given by features ``f`` (``(..., n, D)``)
    and ``g`` (``(..., n, E)``), in O(n · D · (D + E)) instead of O(n²)."""
    n = f.shape[-2]
    fc = f - f.mean(-2, keepdim=True)
    gc = g - g.mean(-2, keepdim=True)
    fg = _cross(fc, gc)  # (..., D, E)
    kk = ll = torch.ones(())
    if normalize:
        kk = (fc.transpose(-2, -1) @ fc).pow(2).sum((-2, -1))
        ll = (gc.transpose(-2, -1) @ gc).pow(2).sum((-2, -1))
    return _hsic_from_terms(
        fg.pow(2).sum((-2, -1)),
        fc.pow(2).sum((-2, -1)),
        gc.pow(2).sum((-2, -1)),
        kk,
        ll,
        n,
        normalize,
        excess,
    )


def label_kernel(values: torch.Tensor, kind: str, n_classes: int = 0) -> torch.Tensor:
    """Delta kernel on class codes (categorical) or RBF on standardised values (continuous)."""
    if kind == "categorical":
        y = torch.nn.functional.one_hot(values.long(), n_classes).to(torch.float32)
        return y @ y.T
    v = values.to(torch.float32)
    v = (v - v.mean()) / v.std().clamp_min(1e-12)
    return rbf_kernel(v[:, None], (1.0,))


def _spread(x: torch.Tensor) -> torch.Tensor:
    """Root-mean-square distance of the rows of ``x`` to their mean (with gradient)."""
    return (x - x.mean(0, keepdim=True)).pow(2).sum(-1).mean().sqrt().clamp_min(1e-12)


def fourier_features(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, sigma: float, multipliers: tuple[float, ...]
) -> torch.Tensor:
    """Random Fourier features of Gaussian kernels with bandwidths ``m · sigma``: ``(B, n, D)``
    with ``F_b F_bᵀ ≈ exp(−‖x − y‖² / (2 (m_b sigma)²))``."""
    scale = math.sqrt(2.0 / w.shape[0])
    inv = torch.tensor([1.0 / (m * sigma) for m in multipliers], dtype=x.dtype, device=x.device)
    proj = x @ w.T
    return torch.cos(torch.addcmul(b, proj[None], inv[:, None, None])) * scale


# ---------------------------------------------------------------------------------------------
# Penalties
# ---------------------------------------------------------------------------------------------


class _DependencePenalty(UserPenalty):
    """Shared machinery: label lookup, subsampling, kernels, null scale and objective."""

    prefix = "dep"
    title = "the dependence penalty"
    categorical_only = False
    """Whether the penalty is defined for categorical attributes only (then a continuous one
    is refused with a pointer to HSIC)."""
    permutation_centred = False
    """Subtract the estimate's mean over label permutations (detached) before the objective:
    for estimators not centred in closed form (the sliced-Wasserstein one)."""
    # buffers, registered in __init__
    target: torch.Tensor
    known: torch.Tensor

    def __init__(
        self, attribute: Attribute, weight: float, spec: DependenceSpec, dim: int | None = None
    ) -> None:
        super().__init__()
        if self.categorical_only and attribute.kind != "categorical":
            raise ConfigError(
                f"{self.title} needs a categorical attribute; '{attribute.name}' is "
                f"{attribute.kind} (use hsic for continuous attributes)"
            )
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
        self.sample_size = spec.sample_size
        self._gen = torch.Generator().manual_seed(spec.seed * 1_000_003 + _stable_hash(self.name))
        if attribute.kind == "categorical":
            target = torch.from_numpy(np.where(known, attribute.values, 0).astype(np.int64))
        else:
            target = torch.from_numpy(np.nan_to_num(attribute.values).astype(np.float32))
        self.register_buffer("target", target, persistent=False)
        self.register_buffer("known", torch.from_numpy(known.copy()), persistent=False)
        self._rff: tuple[torch.Tensor, torch.Tensor] | None = None
        self._label_rff: tuple[torch.Tensor, torch.Tensor] | None = None
        if dim is not None and spec.kernel == "rff":
            self._draw_features(dim)

    def _draw_features(self, dim: int) -> None:
        g = torch.Generator().manual_seed(self.spec.seed * 7_919 + _stable_hash(self.name) + 1)
        d = self.spec.n_features
        w = torch.randn(d, dim, generator=g)
        b = torch.rand(d, generator=g) * (2 * math.pi)
        self._rff = (w, b)
        # features of a continuous label's Gaussian kernel (HSIC)
        self._label_rff = (torch.randn(d, 1, generator=g), torch.rand(d, generator=g) * 2 * math.pi)

    def _sample(self, user_vecs: torch.Tensor, users: torch.Tensor):
        mask = self.known[users]
        idx = torch.nonzero(mask, as_tuple=True)[0]
        if idx.numel() > self.sample_size:
            pick = torch.randperm(idx.numel(), generator=self._gen)[: self.sample_size]
            pick = pick.to(idx.device)
            idx = idx[pick]
        return user_vecs[idx], self.target[users[idx]]

    def represent(self, vecs: torch.Tensor) -> torch.Tensor:
        """``rbf``: the kernel matrices ``(B, n, n)``; ``rff``: the features ``(B, n, D)``, one
        per bandwidth, with ``K_b = F_b F_bᵀ``."""
        # Scale-free in value *and* gradient: the median heuristic alone is computed on
        # detached vectors, so its gradient would reward shrinking every vector (a flatter
        # kernel at a fixed bandwidth), which hands the ranking to the item biases.
        if self.spec.scaling == "standardize":
            vecs = (vecs - vecs.mean(0, keepdim=True)) / vecs.std(0, keepdim=True).clamp_min(1e-12)
        else:
            vecs = vecs / _spread(vecs)
        if self.spec.kernel == "rbf":
            return rbf_kernels(vecs, self.spec.multipliers)
        if self._rff is None or self._rff[0].shape[1] != vecs.shape[1]:
            self._draw_features(vecs.shape[1])
        assert self._rff is not None  # drawn just above
        w, b = (t.to(vecs.device) for t in self._rff)
        return fourier_features(vecs, w, b, median_bandwidth(vecs), self.spec.multipliers)

    def kernels(self, vecs: torch.Tensor) -> torch.Tensor:
        """``(B, n, n)``: the kernel matrix of ``vecs`` at each of the B bandwidths."""
        rep = self.represent(vecs)
        return rep if self.spec.kernel == "rbf" else rep @ rep.transpose(-2, -1)

    def statistic(self, rep: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One estimate per bandwidth from :meth:`represent`'s output (``(B,)``): what the loss
        is computed from."""
        raise NotImplementedError

    def report(self, rep: torch.Tensor, labels: torch.Tensor, values: torch.Tensor) -> float:
        """The number reported as ``<family>_<attribute>``: the sum over bandwidths."""
        return float(values.detach().sum())

    def estimate(self, vecs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The reported estimate (sum over bandwidths; differentiable in ``vecs``)."""
        return self.statistic(self.represent(vecs), labels).sum()

    def null_values(
        self, rep: torch.Tensor, labels: torch.Tensor, perms: torch.Tensor
    ) -> torch.Tensor:
        """``(P, B)``: the estimates with the labels permuted by each row of ``perms``."""
        raise NotImplementedError

    @torch.no_grad()
    def null_moments(
        self, rep: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bandwidth mean and standard deviation of the estimate over random label
        permutations (all permutations in one batched computation)."""
        n = labels.shape[0]
        perms = torch.stack(
            [torch.randperm(n, generator=self._gen) for _ in range(self.spec.n_permutations)]
        ).to(labels.device)
        values = self.null_values(rep.detach(), labels, perms)
        return values.mean(0), values.std(0).clamp_min(1e-12)

    def forward(self, user_vecs, users, progress):
        vecs, labels = self._sample(user_vecs, users)
        if vecs.shape[0] < 4:
            # Too few labelled users in this batch for an estimate: no loss, no number.
            return user_vecs.sum() * 0.0, {}
        k = self.represent(vecs)
        values = self.statistic(k, labels)  # (B,)
        stats = {self.name: self.report(k, labels, values)}
        objective, tol = self.spec.objective, self.spec.tolerance
        weight = self.weight * schedule_factor(self.spec.schedule, progress, self.spec.gamma)
        if self.spec.schedule != "constant":
            stats[f"{self.name}_weight"] = weight
        if objective == "raw":
            return weight * values.sum(), stats
        if objective == "z2" or tol > 0 or self.permutation_centred:
            mean, sd = self.null_moments(k, labels)
            if self.permutation_centred:
                values = values - mean
            z = values / sd
            stats[f"{self.name}_z"] = float(z.detach().abs().max())
        if objective == "z2":
            loss = ((z.abs() - tol).clamp_min(0.0) ** 2).sum()
        else:
            excess = values.abs() - tol * sd if tol > 0 else values.abs()
            loss = excess.clamp_min(0.0).sum()
        return weight * loss, stats


class MMDPenalty(_DependencePenalty):
    """Penalises ``Σ_c π_c MMD²(P_c, P)`` between each class's vectors and the pooled vectors
    (categorical attributes; see the module docstring)."""

    prefix = "mmd"
    title = "MMD"
    categorical_only = True

    def statistic(self, rep, labels):
        fn = mmd_classes if self.spec.kernel == "rbf" else mmd_classes_features
        return fn(rep, labels, self.n_classes, self.spec.unbiased, self.spec.objective != "raw")

    def null_values(self, rep, labels, perms):
        if self.spec.kernel == "rff":
            return self.statistic(rep, labels[perms])  # (P, B)
        # permuting the labels = permuting the users' rows and columns of the kernel
        rep = rep[:, perms[:, :, None], perms[:, None, :]]  # (B, P, n, n)
        return self.statistic(rep, labels).T


class HSICPenalty(_DependencePenalty):
    """Penalises the HSIC (normalised by default) between the vectors and the attribute."""

    prefix = "hsic"

    def label_rep(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``rbf``: the label kernel ``(n, n)``; ``rff``: label features ``(n, E)``."""
        if self.spec.kernel == "rbf":
            return label_kernel(labels, self.kind, self.n_classes).to(dtype)
        if self.kind == "categorical":
            return _one_hot(labels, self.n_classes, dtype)  # the delta kernel, exactly
        v = labels.to(dtype)
        v = ((v - v.mean()) / v.std().clamp_min(1e-12))[:, None]
        assert self._label_rff is not None, "represent() draws the features first"
        w, b = (t.to(v.device) for t in self._label_rff)
        return fourier_features(v, w, b, median_bandwidth(v), (1.0,))[0]

    @property
    def _loss_normalized(self) -> bool:
        # The normalisation sqrt(HSIC(K, K) HSIC(L, L)) does not change under label
        # permutations, so z-scores are the same without it: z2 skips its cost and gradient.
        return self.spec.normalize_hsic and self.spec.objective != "z2"

    def _hsic(self, rep, lab, normalize: bool):
        fn = hsic if self.spec.kernel == "rbf" else hsic_features
        return fn(rep, lab, normalize, self.spec.objective != "raw")

    def statistic(self, rep, labels):
        return self._hsic(rep, self.label_rep(labels, rep.dtype), self._loss_normalized)

    def report(self, rep, labels, values):
        if self.spec.normalize_hsic and not self._loss_normalized:
            with torch.no_grad():
                values = self._hsic(rep.detach(), self.label_rep(labels, rep.dtype), True)
        return float(values.detach().sum())

    def estimate(self, vecs, labels):
        """The reported estimate (normalised if configured; sum over bandwidths)."""
        rep = self.represent(vecs)
        return self._hsic(rep, self.label_rep(labels, rep.dtype), self.spec.normalize_hsic).sum()

    def null_values(self, rep, labels, perms):
        lab = self.label_rep(labels, rep.dtype)
        rbf = self.spec.kernel == "rbf"
        lab = lab[perms[:, :, None], perms[:, None, :]] if rbf else lab[perms]  # (P, n, ·)
        return self._hsic(rep, lab[:, None], self._loss_normalized)  # (P, B)


def _stable_hash(s: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(s)) % 100_003


__all__ = [
    "DEFAULT_BANDWIDTHS",
    "DependenceSpec",
    "HSICPenalty",
    "MMDPenalty",
    "KERNELS",
    "OBJECTIVES",
    "PENALTY_FAMILIES",
    "hsic",
    "hsic_features",
    "label_kernel",
    "median_bandwidth",
    "mmd_classes",
    "mmd_classes_features",
    "rbf_kernel",
    "rbf_kernels",
]
