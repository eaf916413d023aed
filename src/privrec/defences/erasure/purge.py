"""Purge: post-training attribute unlearning of user vectors with ranking preservation.

After Li et al. (ACM MM 2023, "Making users indistinguishable: attribute-wise unlearning in
recommender systems") and its follow-ups: only the user vectors move; the item side stays as
trained. The purge learns a small residual map ``x ↦ x + g(x)`` (an MLP on the standardised
vectors whose output layer starts at zero, so the map starts as the identity) that minimises

    rank_loss + weight × distance

* **distance**: for every attribute, ``Σ_c π_c MMD²(P_c, P)`` between each class's vectors and
  the pooled vectors of the users with a known label (:func:`~privrec.defences.dependence.mmd_classes`,
  unbiased), for several Gaussian bandwidths (multiples of the current median distance, so
  shrinking every vector does not lower it), over *all* those users (at most ``sample`` per
  step, drawn afresh each step) — not a training batch. Each attribute's term is divided by its
  value at the start, so ``weight`` means the same on any data: ``weight = 1`` trades the whole
  initial distance against one unit of the ranking loss.
* **rank_loss**: each user's original top-``top_k`` list (unseen items, by ``user · item +
  bias``) must keep its order and stay above the items ranked just below it and a few random
  ones: a hinge ``max(0, min(gap₀, margin) − gap)`` on every such pair, with gaps in units of
  the original scores' spread. It is exactly 0 at the start, so it only resists change.

Because the purge is a *map*, it applies to every user, also to those whose label the purge did
not see (the held-out users the audit scores). ``leace=True`` follows it with LEACE fitted on the
purged vectors of the labelled users, which also guards against every linear reader.

Unlike LEACE and INLP the map is not affine, so the record carries no removed rank; it records
the distance and ranking loss at the start and end, and the top-``k`` overlap of the purged lists
with the original ones over all users.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from privrec.data.attributes import Attribute
from privrec.defences.dependence import (
    fourier_features,
    median_bandwidth,
    mmd_classes,
    mmd_classes_features,
    rbf_kernels,
)
from privrec.defences.erasure.affine import AffineEraser, check_vectors
from privrec.errors import ConfigError, DataError

HARD_NEGATIVES = 2
"""Items ranked just below the top-k that every step compares with, per top-k item."""


@dataclass(frozen=True, eq=False)
class PurgeMap:
    """A fitted purge: ``x ↦ x + tanh(z W₁ + b₁) W₂ + b₂`` with ``z`` the standardised ``x``,
    then the optional LEACE eraser.

    Attributes:
        names: the attributes purged.
        weights: ``(W1, b1, W2, b2)`` as float64 arrays.
        mean, scale: standardisation of the input (per dimension).
        leace: the LEACE eraser applied after the map, if any.
        info: what the fit did (losses before/after, steps, top-k overlap...).
    """

    names: tuple[str, ...]
    weights: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    mean: np.ndarray
    scale: np.ndarray
    leace: AffineEraser | None = None
    info: dict = field(default_factory=dict)
    method: str = "purge"

    @property
    def rank_removed(self) -> None:
        """Not defined: the purge is not an affine map."""
        return None

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """Purge ``vectors`` (n, dim); returns float32 of the same shape."""
        x = check_vectors(vectors).astype(np.float64)
        w1, b1, w2, b2 = self.weights
        if x.shape[1] != w1.shape[0]:
            raise DataError(
                f"the purge was fitted on dimension {w1.shape[0]}, got vectors of {x.shape}"
            )
        out = x + np.tanh(((x - self.mean) / self.scale) @ w1 + b1) @ w2 + b2
        if self.leace is not None:
            return self.leace(out)
        return out.astype(np.float32)


def fit_purge(
    x: np.ndarray,
    attributes: list[Attribute],
    items: tuple[np.ndarray, np.ndarray],
    seen: sp.csr_matrix | None = None,
    *,
    seed: int = 0,
    weight: float = 3.0,
    steps: int = 300,
    learning_rate: float = 0.01,
    hidden: int = 64,
    top_k: int = 10,
    margin: float = 1.0,
    random_negatives: int = 10,
    bandwidths: tuple[float, ...] = (0.5, 1.0, 2.0),
    sample: int = 4096,
    kernel: Literal["rff", "rbf"] = "rff",
    features: int = 1024,
    leace: bool = False,
    pseudo_labels: bool = False,
) -> PurgeMap:
    """Fit the purge of ``attributes`` (categorical, aligned to the rows of ``x``).

    Args:
        x: (n_users, dim) user vectors.
        attributes: the attributes to purge; the users with a known label are the ones whose
            vectors enter the distance (all users enter the ranking loss).
        items: ``(item_vectors, item_bias)`` that score ``x`` (unchanged by the purge).
        seen: (n_users, n_items) training interactions; their items are left out of each
            user's top-k (as in the served lists). ``None``: every item counts.
        seed: seed of the map's initialisation and of every sample.
        weight: weight of the distance against the ranking loss (both scale-free, see the
            module docstring).
        steps: full-batch Adam steps.
        learning_rate: Adam's step size.
        hidden: hidden width of the map.
        top_k: length of the lists the ranking loss keeps.
        margin: the largest gap (in units of the original scores' standard deviation) the
            hinge asks a pair to keep.
        random_negatives: random items per user and step the top-k must stay above.
        bandwidths: Gaussian kernel bandwidths, as multiples of the median distance.
        sample: most labelled users per step in the distance (all of them if fewer).
        kernel: ``rff`` (default): random Fourier features of the Gaussian kernels, drawn
            afresh at every step — an unbiased, O(n) estimate of the exact kernel's distance
            that a learned map cannot game, since no feature set lasts more than a step;
            ``rbf``: the exact kernels (O(n²) per step).
        features: random features per bandwidth (``rff``).
        leace: follow the map with LEACE fitted on the purged vectors of the labelled users.
        pseudo_labels: also make the groups indistinguishable among the users *without* a
            label, weighted by the class probabilities a logistic regression fitted on the
            labelled users' original vectors gives them (a weighted MMD, its own term
            normalised like the others), so that the map is fitted where those users are.
            Needs ``kernel = "rff"``.
    """
    _check_options(
        weight, steps, learning_rate, hidden, top_k, margin, random_negatives, bandwidths, sample
    )
    if kernel not in ("rff", "rbf"):
        raise ConfigError(f"purge option kernel must be rff or rbf, got {kernel!r}")
    if features < 1:
        raise ConfigError(f"purge option features must be ≥ 1, got {features}")
    if pseudo_labels and kernel != "rff":
        raise ConfigError("purge option pseudo_labels needs kernel = rff")
    for a in attributes:
        if a.kind != "categorical":
            raise ConfigError(
                f"purge: attribute '{a.name}' is continuous; the purge handles categorical "
                "attributes (use LEACE for a continuous one)"
            )
    x = check_vectors(x).astype(np.float64)
    item_vectors = np.asarray(items[0], dtype=np.float64)
    item_bias = np.asarray(items[1], dtype=np.float64).reshape(-1)
    if item_vectors.ndim != 2 or item_vectors.shape[1] != x.shape[1]:
        raise DataError(
            f"purge: item vectors of shape {item_vectors.shape} do not match user vectors "
            f"of dimension {x.shape[1]}"
        )
    n, dim = x.shape
    n_items = len(item_vectors)
    if top_k * (1 + HARD_NEGATIVES) + 1 > n_items:
        raise ConfigError(
            f"purge: top_k = {top_k} needs more than {top_k * (1 + HARD_NEGATIVES)} items, "
            f"the data has {n_items}"
        )
    gen = torch.Generator().manual_seed(int(seed))
    ranked, spread = _original_lists(x, item_vectors, item_bias, seen, top_k * (1 + HARD_NEGATIVES))
    mean = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale > 1e-12, scale, 1.0)

    dtype = torch.float32
    xt = torch.as_tensor(x, dtype=dtype)
    zt = torch.as_tensor((x - mean) / scale, dtype=dtype)
    vt = torch.as_tensor(item_vectors / spread, dtype=dtype)
    bt = torch.as_tensor(item_bias / spread, dtype=dtype)
    ranked_t = torch.as_tensor(ranked, dtype=torch.long)
    original = _list_scores(xt, vt, bt, ranked_t)
    labelled = [(torch.as_tensor(np.flatnonzero(a.known)), a) for a in attributes]
    pseudo = _pseudo_labels(x, attributes, seed, dtype) if pseudo_labels else []

    w1 = torch.nn.Parameter(torch.randn(dim, hidden, generator=gen, dtype=dtype) / math.sqrt(dim))
    b1 = torch.nn.Parameter(torch.zeros(hidden, dtype=dtype))
    w2 = torch.nn.Parameter(torch.zeros(hidden, dim, dtype=dtype))
    b2 = torch.nn.Parameter(torch.zeros(dim, dtype=dtype))
    params = [w1, b1, w2, b2]
    optimizer = torch.optim.Adam(params, lr=learning_rate)

    def purged() -> torch.Tensor:
        return xt + torch.tanh(zt @ w1 + b1) @ w2 + b2

    def distances(out: torch.Tensor, exact: bool = False) -> list[torch.Tensor]:
        """Each attribute's distance; one kernel (or feature draw) per distinct user set."""
        terms, made = [], {}
        for rows, attr in labelled:
            if len(rows) > sample:
                rows = rows[torch.randperm(len(rows), generator=gen)[:sample]]
            key = rows.numpy().tobytes()
            if key not in made:
                made[key] = _kernel_or_features(out[rows], bandwidths, exact, features, gen)
            codes = torch.as_tensor(attr.values[rows.numpy()], dtype=torch.long)
            if exact:
                est = mmd_classes(made[key], codes, attr.n_classes)
            else:
                est = mmd_classes_features(made[key], codes, attr.n_classes)
            terms.append(est.clamp_min(0.0).sum())
        for rows, probs in pseudo:
            if len(rows) > sample:
                keep = torch.randperm(len(rows), generator=gen)[:sample]
                rows, probs = rows[keep], probs[keep]
            feats = _kernel_or_features(out[rows], bandwidths, False, features, gen)
            terms.append(_weighted_mmd(feats, probs))
        return terms

    with torch.no_grad():
        start = [float(t) for t in distances(xt, exact=True)]
        if pseudo:  # the weighted terms have no exact form here: their first estimate
            start[len(labelled) :] = [float(t) for t in distances(xt)[len(labelled) :]]
    norms = [max(s, 1e-12) for s in start]
    history = []
    for step in range(steps):
        optimizer.zero_grad(set_to_none=True)
        out = purged()
        negatives = torch.randint(0, n_items, (n, random_negatives), generator=gen)
        rank = _rank_loss(out, xt, vt, bt, ranked_t, original, top_k, negatives, margin)
        dist = torch.stack(
            [t / s for t, s in zip(distances(out, kernel == "rbf"), norms, strict=True)]
        ).sum()
        loss = rank + weight * dist
        if not torch.isfinite(loss):
            raise DataError(f"purge diverged at step {step + 1}: lower learning_rate or weight")
        loss.backward()
        optimizer.step()
        if step == 0 or (step + 1) % 50 == 0 or step + 1 == steps:
            history.append(
                {
                    "step": step + 1,
                    "rank_loss": float(rank.detach()),
                    "distance": float(dist.detach()),
                }
            )

    weights = tuple(p.detach().to(torch.float64).numpy().copy() for p in params)
    fmap = PurgeMap(tuple(a.name for a in attributes), weights, mean, scale)  # type: ignore[arg-type]
    out_np = fmap(x).astype(np.float64)
    with torch.no_grad():
        end = [float(t) for t in distances(torch.as_tensor(out_np, dtype=dtype), exact=True)]
    names = [a.name for a in attributes]
    names += [f"{a.name} (pseudo-labels)" for a in attributes] if pseudo else []
    eraser = None
    if leace:
        from privrec.defences.erasure.leace import fit_leace

        eraser = fit_leace(out_np, attributes)
        out_np = eraser(out_np).astype(np.float64)
    after, _ = _original_lists(out_np, item_vectors, item_bias, seen, top_k)
    overlap = _overlap(ranked[:, :top_k], after)
    info = {
        "users": n,
        "labelled_users": {a.name: int(a.known.sum()) for a in attributes},
        "steps": steps,
        "distance_start": dict(zip(names, start, strict=True)),
        "distance_end": dict(zip(names, end, strict=True)),
        "pseudo_labelled_users": {
            a.name: int(len(rows)) for a, (rows, _) in zip(attributes, pseudo, strict=False)
        },
        "history": history,
        f"top{top_k}_overlap": overlap,
        "leace": leace,
        "shift_rms": float(np.sqrt(((fmap(x) - x) ** 2).sum(1).mean())),
        "vector_rms": float(np.sqrt((x**2).sum(1).mean())),
    }
    return PurgeMap(fmap.names, fmap.weights, mean, scale, eraser, info)


def _check_options(
    weight, steps, learning_rate, hidden, top_k, margin, negatives, bandwidths, sample
) -> None:
    problems = []
    if not (math.isfinite(weight) and weight >= 0):
        problems.append(f"weight must be a finite number ≥ 0, got {weight}")
    if not (math.isfinite(learning_rate) and learning_rate > 0):
        problems.append(f"learning_rate must be a finite number > 0, got {learning_rate}")
    if not (math.isfinite(margin) and margin > 0):
        problems.append(f"margin must be a finite number > 0, got {margin}")
    for name, value in (("steps", steps), ("hidden", hidden), ("top_k", top_k), ("sample", sample)):
        if value < 1:
            problems.append(f"{name} must be ≥ 1, got {value}")
    if sample == 1:
        problems.append("sample must be ≥ 2")
    if negatives < 0:
        problems.append(f"random_negatives must be ≥ 0, got {negatives}")
    if not bandwidths or not all(math.isfinite(b) and b > 0 for b in bandwidths):
        problems.append(f"bandwidths must be positive numbers, got {bandwidths}")
    if problems:
        raise ConfigError("purge option " + "; ".join(problems))


def _pseudo_labels(
    x: np.ndarray, attributes: list[Attribute], seed: int, dtype: torch.dtype
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per attribute, the users without a label and their class probabilities from a
    logistic regression fitted on the labelled users' (standardised) vectors."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    out = []
    for a in attributes:
        known = np.flatnonzero(a.known)
        unknown = np.flatnonzero(~a.known)
        probs = np.zeros((len(unknown), a.n_classes))
        if len(unknown) >= 2 and len(np.unique(a.values[known])) >= 2:
            scaler = StandardScaler().fit(x[known])
            clf = LogisticRegression(max_iter=2000, random_state=seed)
            clf.fit(scaler.transform(x[known]), a.values[known])
            probs[:, clf.classes_] = clf.predict_proba(scaler.transform(x[unknown]))
        out.append((torch.as_tensor(unknown), torch.as_tensor(probs, dtype=dtype)))
    return out


def _weighted_mmd(features: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``Σ_c π_c ‖μ_c − μ‖²`` summed over bandwidths, for features ``(B, n, D)`` and soft class
    weights ``(n, C)`` (rows summing to 1): ``μ_c`` the weighted feature mean of class ``c``,
    ``μ`` the overall mean, ``π_c`` the class's share of the weight (a biased, V-statistic
    MMD² of soft groups)."""
    mass = weights.sum(0)  # (C,)
    present = mass > 1e-6
    means = torch.einsum("nc,bnd->bcd", weights, features) / mass.clamp_min(1e-6)[None, :, None]
    overall = features.mean(1, keepdim=True)  # (B, 1, D)
    share = mass / mass.sum()
    gaps = (means - overall).pow(2).sum(-1)  # (B, C)
    return (gaps * (share * present)[None, :]).sum()


def _kernel_or_features(
    x: torch.Tensor,
    bandwidths: tuple[float, ...],
    exact: bool,
    features: int,
    gen: torch.Generator,
) -> torch.Tensor:
    """Exact Gaussian kernels ``(B, n, n)`` or fresh random Fourier features ``(B, n, D)``,
    bandwidths ``m · median distance`` (detached)."""
    if exact:
        return rbf_kernels(x, tuple(bandwidths))
    w = torch.randn(features, x.shape[1], generator=gen, dtype=x.dtype)
    b = torch.rand(features, generator=gen, dtype=x.dtype) * (2 * math.pi)
    return fourier_features(x, w, b, median_bandwidth(x), tuple(bandwidths))


def _scores(x: np.ndarray, items: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return x @ items.T + bias


def _original_lists(
    x: np.ndarray,
    items: np.ndarray,
    bias: np.ndarray,
    seen: sp.csr_matrix | None,
    length: int,
    chunk: int = 2048,
) -> tuple[np.ndarray, float]:
    """Each user's ``length`` best unseen items, best first, and the scores' standard
    deviation (over those lists)."""
    if seen is not None and seen.shape != (len(x), len(items)):
        raise DataError(
            f"purge: training matrix of shape {seen.shape} does not match "
            f"{len(x)} users × {len(items)} items"
        )
    out = np.empty((len(x), length), dtype=np.int64)
    picked = []
    for lo in range(0, len(x), chunk):
        s = _scores(x[lo : lo + chunk], items, bias)
        if seen is not None:
            block = seen[lo : lo + chunk].tocoo()
            s[block.row, block.col] = -np.inf
        top = np.argpartition(-s, length - 1, axis=1)[:, :length]
        rows = np.arange(len(s))[:, None]
        order = np.argsort(-s[rows, top], axis=1, kind="stable")
        out[lo : lo + chunk] = top[rows, order]
        picked.append(s[rows, out[lo : lo + chunk]])
    vals = np.concatenate(picked)
    vals = vals[np.isfinite(vals)]
    spread = float(vals.std()) if vals.size else 1.0
    return out, spread if spread > 1e-12 else 1.0


def _list_scores(u: torch.Tensor, v: torch.Tensor, b: torch.Tensor, idx: torch.Tensor):
    return torch.einsum("nd,nkd->nk", u, v[idx]) + b[idx]


def _rank_loss(
    out: torch.Tensor,
    x0: torch.Tensor,
    v: torch.Tensor,
    b: torch.Tensor,
    ranked: torch.Tensor,
    original: torch.Tensor,
    top_k: int,
    negatives: torch.Tensor,
    margin: float,
) -> torch.Tensor:
    """Mean hinge over the pairs each user's top-k list must keep (see the module docstring)."""
    s = _list_scores(out, v, b, ranked)
    top, top0 = s[:, :top_k], original[:, :top_k]
    order = torch.relu(
        torch.clamp(top0[:, :-1] - top0[:, 1:], max=margin) - (top[:, :-1] - top[:, 1:])
    )
    below = s[:, top_k:]
    below0 = original[:, top_k:]
    if negatives.shape[1]:
        below = torch.cat([below, _list_scores(out, v, b, negatives)], 1)
        with torch.no_grad():
            below0 = torch.cat([below0, _list_scores(x0, v, b, negatives)], 1)
    gap0 = top0[:, :, None] - below0[:, None, :]
    gap = top[:, :, None] - below[:, None, :]
    keep = torch.relu(torch.clamp(gap0, max=margin) - gap)
    # a random item that happens to be in (or above) the list is no constraint
    keep = torch.where(gap0 > 0, keep, torch.zeros_like(keep))
    return order.sum(1).mean() + keep.sum((1, 2)).mean() / max(1, below.shape[1])


def _overlap(before: np.ndarray, after: np.ndarray) -> float:
    """Mean share of each user's top-k kept in the new top-k."""
    kept = [
        len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(before, after, strict=True)
    ]
    return float(np.mean(kept) / before.shape[1]) if len(kept) else 1.0


__all__ = ["PurgeMap", "fit_purge"]
