"""Distribution alignment: a sliced-Wasserstein penalty towards the groups' common barycenter.

The optimal-transport view of attribute hiding (e.g. RAID, 2025): the vectors hide a
categorical attribute when every class's distribution equals one common distribution, and the
natural common distribution is the classes' Wasserstein barycenter (the one the classes reach by
moving least). Along one direction ``θ`` this is exact and cheap: the barycenter of 1-D
distributions has as quantile function the prior-weighted mean of the classes' quantile
functions, ``Q_B = Σ_c π_c Q_c``, and ``W₂²(P_c, B) = ∫₀¹ (Q_c(t) − Q_B(t))² dt``. The penalty is
the sliced version,

    SW²(attribute) = E_θ [ Σ_c π_c W₂²(θᵀP_c, θᵀB) ],

averaged over ``n_projections`` random unit directions drawn afresh at every step (a fixed set
would be gamed: the vectors could hide the attribute from those directions only) and estimated
from ``n_quantiles`` quantile levels of the projected samples. The vectors are divided by their
root-mean-square spread first (with gradient), as for the kernel penalties, so shrinking every
vector does not lower the penalty and a weight means the same at every embedding size.

Sorting makes it O(n log n) per direction, so it is estimated on large samples: up to
``DependenceSpec.swd_sample_size`` (2,048) of the batch's users with a known label. Like the
MMD/HSIC penalties it plugs into the trainer's :class:`~privrec.training.penalty.UserPenalty`
seam and takes their objective, tolerance and schedule; because the sample estimate is positive
even for a random labelling, the ``z2``/``abs`` objectives first subtract its mean over label
permutations of the same sample (and divide by their standard deviation for ``z2``).

With ``DependenceSpec.pseudo_labels`` the users whose labels the defence does not see enter the
estimate too, each with its class probabilities from a logistic labeller refitted on the label
users' vectors at every epoch's end (:func:`pseudo_memberships`): a class's distribution is then
the membership-weighted distribution of all users. Without it, a model with free user vectors
(BPR-MF) moves only the label users, and an attacker of the others reads them as before.

Why hand-written rather than POT's ``ot.sliced_wasserstein_distance``: that function compares two
samples, while the barycenter penalty needs every class against the quantile mean of all of
them, one batched sort of the ``(classes × users × directions)`` tensor; the 1-D quantile
algebra is all there is to it (tests check it against NumPy's quantiles and sorted samples).
"""

from __future__ import annotations

import numpy as np
import torch

from privrec.data.attributes import Attribute
from privrec.defences.dependence import DependenceSpec, _DependencePenalty, _spread


def class_quantiles(
    proj: torch.Tensor, weights: torch.Tensor, n_quantiles: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class weighted quantiles of projected samples.

    Args:
        proj: ``(n, L)`` projections of n samples on L directions.
        weights: ``(n, C)`` or ``(P, n, C)`` class memberships ≥ 0 of the samples: one-hot
            rows for known labels, class probabilities for pseudo-labelled samples (P
            labellings, e.g. permutations of the rows, in one batched computation).
        n_quantiles: K levels ``t_k = (k + ½) / K``.

    Returns:
        ``(quantiles, mass)``: ``(…, C, L, K)`` and ``(…, C)`` with ``…`` = ``(P,)`` or none.
        The quantile at level ``t`` is the smallest projected value whose class's cumulative
        membership reaches ``t`` of the class's mass (the inverse of the weighted empirical
        CDF; NumPy's ``method="inverted_cdf"``), so the gradient reaches the samples at those
        ranks.
    """
    w = weights if weights.ndim == 3 else weights[None]
    ordered, order = proj.sort(dim=0)  # (n, L), one sort for every class
    # cumulative membership of each class along each direction's sorted order: (P, C, L, n)
    cdf = w.transpose(1, 2)[:, :, order.T].cumsum(-1)
    mass = cdf[:, :, 0, -1]  # (P, C)
    levels = (torch.arange(n_quantiles, dtype=proj.dtype, device=proj.device) + 0.5) / n_quantiles
    target = (mass[:, :, None, None] * levels).expand(-1, -1, cdf.shape[2], -1)  # (P, C, L, K)
    idx = torch.searchsorted(cdf, target.contiguous()).clamp_(max=proj.shape[0] - 1)
    quant = ordered.T.expand(*cdf.shape[:2], -1, -1).gather(-1, idx)  # (P, C, L, K)
    if weights.ndim == 2:
        return quant[0], mass[0]
    return quant, mass


def sliced_barycenter_distance(
    proj: torch.Tensor, weights: torch.Tensor, n_quantiles: int = 64
) -> torch.Tensor:
    """``Σ_c π_c W₂²(P_c, B)`` averaged over the directions of ``proj`` (``(n, L)``), with
    ``P_c`` the class-``c`` membership-weighted sample (``weights``: ``(n, C)``, see
    :func:`class_quantiles`), ``B`` the classes' 1-D Wasserstein barycenter along each direction
    (quantile function ``Σ_c π_c Q_c``) and ``π_c`` the classes' shares of the mass among the
    classes with a mass ≥ 2. ``weights`` ``(P, n, C)`` gives a ``(P,)`` tensor; fewer than two
    usable classes give 0. Differentiable in ``proj``."""
    quant, mass = class_quantiles(proj, weights, n_quantiles)
    usable = (mass >= 2).to(proj.dtype)
    share = mass * usable
    prior = share / share.sum(-1, keepdim=True).clamp_min(1e-12)  # (…, C)
    bary = (prior[..., None, None] * quant).sum(-3, keepdim=True)  # (…, 1, L, K)
    per_class = (quant - bary).pow(2).mean((-2, -1))  # (…, C)
    value = (prior * per_class).sum(-1)
    enough = usable.sum(-1) >= 2
    return torch.where(enough, value, torch.zeros_like(value))


def random_directions(
    n: int, dim: int, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """``(dim, n)``: ``n`` random unit directions as columns (drawn on the CPU from the
    seeded generator, then moved, so a GPU run draws the same ones)."""
    w = torch.randn(n, dim, generator=generator)
    w = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return w.T.contiguous().to(device)


class SlicedWassersteinPenalty(_DependencePenalty):
    """Penalises the sliced-Wasserstein distance of each class's user vectors to the classes'
    barycenter (categorical attributes; see the module docstring)."""

    prefix = "swd"
    title = "the sliced-Wasserstein alignment"
    categorical_only = True
    permutation_centred = True
    # buffers, registered in __init__
    memberships: torch.Tensor
    usable: torch.Tensor

    def __init__(
        self, attribute: Attribute, weight: float, spec: DependenceSpec, dim: int | None = None
    ) -> None:
        super().__init__(attribute, weight, spec, None)
        self.sample_size = spec.swd_sample_size
        onehot = torch.nn.functional.one_hot(self.target, self.n_classes).to(torch.float32)
        onehot[~self.known] = 0.0
        self.register_buffer("memberships", onehot, persistent=False)
        self.register_buffer("usable", self.known.clone(), persistent=False)
        self.pseudo_labelled = 0
        self._null: tuple[int, int, tuple[torch.Tensor, torch.Tensor]] | None = None

    def null_moments(self, rep, labels):
        """The permutation null of :class:`_DependencePenalty`, recomputed every
        ``DependenceSpec.null_every`` calls (or when the sample size changes by more than a
        tenth) and reused in between."""
        n = int(labels.shape[0])
        if self._null is not None:
            age, size, moments = self._null
            if age < self.spec.null_every and abs(n - size) <= 0.1 * size:
                self._null = (age + 1, size, moments)
                return moments
        moments = super().null_moments(rep, labels)
        self._null = (1, n, moments)
        return moments

    def _sample(self, user_vecs: torch.Tensor, users: torch.Tensor):
        idx = torch.nonzero(self.usable[users], as_tuple=True)[0]
        if idx.numel() > self.sample_size:
            pick = torch.randperm(idx.numel(), generator=self._gen)[: self.sample_size]
            idx = idx[pick.to(idx.device)]
        return user_vecs[idx], self.memberships[users[idx]]

    def represent(self, vecs: torch.Tensor) -> torch.Tensor:
        """``(1, n, L)``: the spread-scaled vectors projected on ``L`` fresh random directions
        (one "bandwidth", so the shapes match the kernel penalties')."""
        if self.spec.scaling == "standardize":
            vecs = (vecs - vecs.mean(0, keepdim=True)) / vecs.std(0, keepdim=True).clamp_min(1e-12)
        else:
            vecs = vecs / _spread(vecs)
        dirs = random_directions(self.spec.n_projections, vecs.shape[1], self._gen, vecs.device)
        return (vecs @ dirs.to(vecs.dtype))[None]

    def statistic(self, rep, labels):
        weights = labels.to(rep.dtype)  # (n, C) memberships, or (P, n, C)
        value = sliced_barycenter_distance(rep[0], weights, self.spec.n_quantiles)
        return value[..., None]  # (1,) or (P, 1)

    def null_values(self, rep, labels, perms):
        return self.statistic(rep, labels[perms])  # (P, 1)

    def epoch_end(self, model, epoch: int) -> dict[str, float]:
        """With ``DependenceSpec.pseudo_labels``: refit the labeller on the label users'
        current vectors and give every other user its predicted class probabilities."""
        if not self.spec.pseudo_labels or bool(self.known.all()):
            return {}
        with torch.no_grad():
            vecs = model.all_user_vectors().detach().cpu().numpy()
        known = self.known.cpu().numpy()
        probs = pseudo_memberships(
            vecs, self.target.cpu().numpy(), known, self.n_classes, self.spec.seed
        )
        fill = torch.from_numpy(probs).to(self.memberships)
        self.memberships[~self.known] = fill[~self.known]
        self.usable[:] = True
        self.pseudo_labelled = int((~known).sum())
        return {f"{self.name}_pseudo_labelled": float(self.pseudo_labelled)}


def pseudo_memberships(
    vectors: np.ndarray, labels: np.ndarray, known: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """``(n, C)`` class probabilities of every user from a logistic labeller fitted on the
    users with a known label (standardised vectors, scikit-learn's multinomial
    ``LogisticRegression``): what the defence guesses of the users whose labels it does not
    see. Classes absent from the label users get probability 0."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(vectors, dtype=np.float64)
    y = np.asarray(labels)[known]
    out = np.zeros((x.shape[0], n_classes))
    present = np.unique(y)
    if present.size < 2:
        out[:, present] = 1.0
        return out
    labeller = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=seed))
    labeller.fit(x[known], y)
    out[:, labeller.classes_] = labeller.predict_proba(x)
    return out


__all__ = [
    "SlicedWassersteinPenalty",
    "class_quantiles",
    "pseudo_memberships",
    "random_directions",
    "sliced_barycenter_distance",
]
