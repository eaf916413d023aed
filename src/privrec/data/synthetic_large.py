"""A fast synthetic generator for large data (millions of interactions), with a planted attribute.

:func:`~privrec.data.synthetic.make_synthetic` scores every (user, item) pair, so it costs
O(users × items) time; it is right for the small tests and demos. This generator costs
O(interactions × log(interactions)) time and O(interactions) memory (10M interactions in
seconds), so it can feed scaling benchmarks and load tests.

Generative story (all draws from one seeded ``numpy.random.Generator``):

1. Each user ``u`` has a hidden attribute ``a_u`` drawn from ``class_probs`` and a taste cluster
   ``c_u`` among ``n_clusters``: with probability ``strength`` the cluster is drawn from a
   class-specific preference over clusters (``Dirichlet(cluster_concentration)`` per class), else
   uniformly. So the interactions reveal the cluster, and the cluster reveals the attribute.
2. Items have a global popularity order and, per cluster, a preference order (independent random
   permutations); weight of rank ``r`` in either order ∝ ``(r + 1) ** -popularity_exponent``.
3. Each user's activity is heavy-tailed (log-normal weights, at least ``min_per_user`` and at most
   ``max_user_fraction`` of the catalogue), scaled so the activities add up to
   ``n_interactions``.
4. Each interaction of ``u`` comes from ``c_u``'s preference order with probability
   ``cluster_share``, else from the global popularity order (inverse-CDF sampling, vectorised).
   Repeated (user, item) pairs are dropped and redrawn, in a few vectorised rounds, so the result
   has exactly ``n_interactions`` distinct pairs (unless the limits make that impossible).
5. A user's interactions get random order and strictly increasing timestamps.

A second attribute ``noise`` (3 balanced classes independent of everything) is a negative
control, as in the small generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from privrec.data.dataset import Dataset
from privrec.data.synthetic import assemble_synthetic
from privrec.errors import ConfigError


@dataclass(frozen=True)
class LargeSyntheticConfig:
    """Parameters of :func:`make_synthetic_large`."""

    n_users: int = 10_000
    """Number of users."""
    n_items: int = 2_000
    """Number of items."""
    n_interactions: int = 1_000_000
    """Number of distinct (user, item) interactions."""
    seed: int = 0
    """Seed of the generator."""
    n_clusters: int | None = None
    """Taste clusters (default: ``n_items // 100`` clipped to [4, 64])."""
    strength: float = 0.6
    """Probability that a user's cluster follows their attribute's cluster preference, in [0, 1]."""
    cluster_share: float = 0.6
    """Probability that an interaction follows the user's cluster (else global popularity)."""
    popularity_exponent: float = 0.9
    """Zipf exponent of the item weights along an order (0 = uniform)."""
    cluster_concentration: float = 0.3
    """Dirichlet concentration of each class's preference over clusters (small = peaked)."""
    class_probs: tuple[float, ...] = (0.7, 0.3)
    """Distribution of the planted attribute ``attr`` over its classes."""
    activity_sigma: float = 1.0
    """Log-normal spread of user activity (0 = every user equally active)."""
    min_per_user: int = 3
    """Fewest interactions per user (3 = every user gets train, validation and test items)."""
    max_user_fraction: float = 0.2
    """Most interactions per user, as a fraction of the catalogue."""

    def __post_init__(self) -> None:
        if self.n_users < 2 or self.n_items < 4:
            raise ConfigError("synthetic data needs at least 2 users and 4 items")
        if self.min_per_user < 1:
            raise ConfigError(f"min_per_user must be >= 1, got {self.min_per_user}")
        if not 0 < self.max_user_fraction <= 1:
            raise ConfigError(f"max_user_fraction must be in (0, 1], got {self.max_user_fraction}")
        cap = self.per_user_cap
        if cap < self.min_per_user:
            raise ConfigError(
                f"n_items={self.n_items} is too small: max_user_fraction allows {cap} "
                f"interactions per user, fewer than min_per_user={self.min_per_user}"
            )
        lo, hi = self.min_per_user * self.n_users, cap * self.n_users
        if not lo <= self.n_interactions <= hi:
            raise ConfigError(
                f"n_interactions must be in [{lo}, {hi}] for {self.n_users} users with "
                f"{self.min_per_user}..{cap} interactions each, got {self.n_interactions}"
            )
        for name in ("strength", "cluster_share"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {v}")
        if self.popularity_exponent < 0 or self.activity_sigma < 0:
            raise ConfigError("popularity_exponent and activity_sigma must be >= 0")
        if not self.cluster_concentration > 0:
            raise ConfigError("cluster_concentration must be > 0")
        if self.n_clusters is not None and self.n_clusters < 1:
            raise ConfigError(f"n_clusters must be >= 1, got {self.n_clusters}")
        p = np.asarray(self.class_probs, dtype=float)
        if len(p) < 2 or (p <= 0).any() or abs(p.sum() - 1) > 1e-6:
            raise ConfigError(f"class_probs must be ≥ 2 positive shares summing to 1, got {p}")

    @property
    def per_user_cap(self) -> int:
        return max(1, int(self.max_user_fraction * self.n_items))

    @property
    def clusters(self) -> int:
        if self.n_clusters is not None:
            return self.n_clusters
        return int(np.clip(self.n_items // 100, 4, 64))


def make_synthetic_large(
    n_users: int = 10_000,
    n_items: int = 2_000,
    n_interactions: int = 1_000_000,
    seed: int = 0,
    **options,
) -> Dataset:
    """Generate a large :class:`Dataset` (see the module docstring for the story).

    ``options`` are the other :class:`LargeSyntheticConfig` fields. Same arguments ⇒ same data.
    """
    cfg = LargeSyntheticConfig(
        n_users=n_users, n_items=n_items, n_interactions=n_interactions, seed=seed, **options
    )
    rng = np.random.default_rng(cfg.seed)
    n_u, n_i, k = cfg.n_users, cfg.n_items, cfg.clusters
    probs = np.asarray(cfg.class_probs, dtype=float)
    probs = probs / probs.sum()

    # 1. attribute -> cluster
    attr = rng.choice(len(probs), size=n_u, p=probs)
    prefs = rng.dirichlet(np.full(k, cfg.cluster_concentration), size=len(probs))
    p_cluster = (1 - cfg.strength) / k + cfg.strength * prefs  # (classes, k), rows sum to 1
    cum = np.cumsum(p_cluster, axis=1)
    cum[:, -1] = 1.0
    cluster = _inverse_cdf(cum[attr], rng.random(n_u))
    noise_attr = rng.integers(0, 3, size=n_u)

    # 2. item orders and the weight of each rank
    global_order = rng.permutation(n_i)
    cluster_order = rng.permuted(np.tile(np.arange(n_i, dtype=np.int32), (k, 1)), axis=1)
    rank_cdf = np.cumsum((np.arange(n_i) + 1.0) ** -cfg.popularity_exponent)
    rank_cdf /= rank_cdf[-1]

    # 3. activity
    counts = _activity(cfg, rng)

    # 4. draw, deduplicate, redraw the shortfall
    def draw(users: np.ndarray, uniform: bool) -> np.ndarray:
        if uniform:
            return rng.integers(0, n_i, size=len(users), dtype=np.int64)
        rank = np.searchsorted(rank_cdf, rng.random(len(users)), side="right").clip(max=n_i - 1)
        from_cluster = rng.random(len(users)) < cfg.cluster_share
        items = global_order[rank].astype(np.int64)
        sel = np.flatnonzero(from_cluster)
        items[sel] = cluster_order[cluster[users[sel]], rank[sel]]
        return items

    keys = np.zeros(0, dtype=np.int64)  # sorted, distinct user * n_items + item
    deficit = counts
    for round_ in range(60):
        if not deficit.any():
            break
        users = np.repeat(np.arange(n_u, dtype=np.int64), deficit)
        # skewed draws first; uniform rounds finish users whose favourites are exhausted
        keys = _merge_distinct(keys, users * n_i + draw(users, uniform=round_ >= 4))
        deficit = counts - np.bincount(keys // n_i, minlength=n_u)
    users = keys // n_i
    items = keys % n_i
    del keys

    # 5. random order within each user, increasing timestamps; ids, attributes
    return assemble_synthetic(
        "synthetic-large",
        users,
        items,
        n_u,
        n_i,
        attr,
        len(probs),
        noise_attr,
        rng,
        f"synthetic-large {cfg}",
    )


def _merge_distinct(keys: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Sorted distinct union of sorted distinct ``keys`` and any ``new`` keys.

    Sort-based (``np.unique`` is several times slower on large int64 arrays).
    """
    new = np.sort(new)
    if len(new):
        new = new[np.concatenate(([True], new[1:] != new[:-1]))]
    if len(keys) and len(new):
        pos = np.searchsorted(keys, new).clip(max=len(keys) - 1)
        new = new[keys[pos] != new]
    if not len(keys):
        return new
    return np.sort(np.concatenate([keys, new]), kind="stable")  # a merge of two sorted runs


def _inverse_cdf(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Row-wise inverse CDF: index of the first ``cum[r, j] > u[r]``."""
    return (cum <= u[:, None]).sum(axis=1).clip(max=cum.shape[1] - 1)


def _activity(cfg: LargeSyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Interactions per user: heavy-tailed, in [min_per_user, cap], adding up to the total."""
    n_u, cap = cfg.n_users, cfg.per_user_cap
    weights = rng.lognormal(0.0, cfg.activity_sigma, size=n_u)
    counts = np.full(n_u, cfg.min_per_user, dtype=np.int64)
    rest = cfg.n_interactions - counts.sum()
    while rest > 0:
        open_ = counts < cap
        w = np.where(open_, weights, 0.0)
        counts += rng.multinomial(rest, w / w.sum())
        over = np.maximum(counts - cap, 0)
        counts -= over
        rest = int(over.sum())
    return counts
