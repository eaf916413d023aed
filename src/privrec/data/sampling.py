"""Vectorised, seeded uniform negative sampling."""

from __future__ import annotations

import numpy as np

from privrec.data.interactions import Interactions
from privrec.errors import DataError


def sample_negatives(
    interactions: Interactions,
    users: np.ndarray,
    rng: np.random.Generator,
    max_rounds: int = 100,
) -> np.ndarray:
    """For each user in ``users``, an item drawn uniformly among those the user has not
    interacted with in ``interactions``.

    Draws all candidates at once and redraws only the collisions (rejection sampling), so the
    cost is a few vectorised passes whatever the number of users.
    """
    users = np.asarray(users, dtype=np.int64)
    n_items = interactions.n_items
    neg = rng.integers(0, n_items, size=len(users), dtype=np.int64)
    bad = interactions.contains(users, neg)
    for _ in range(max_rounds):
        if not bad.any():
            return neg
        idx = np.flatnonzero(bad)
        neg[idx] = rng.integers(0, n_items, size=len(idx), dtype=np.int64)
        bad[idx] = interactions.contains(users[idx], neg[idx])
    full = np.flatnonzero(interactions.user_counts() >= n_items)
    if len(full):
        raise DataError(
            f"user {interactions.user_ids[full[0]]} has interacted with every item: "
            "no negative item to sample"
        )
    # Extremely dense users: fall back to an exact draw from their complement.
    for k in np.flatnonzero(bad):
        u = users[k]
        seen = interactions.csr.indices[interactions.csr.indptr[u] : interactions.csr.indptr[u + 1]]
        pool = np.setdiff1d(np.arange(n_items), seen, assume_unique=True)
        neg[k] = rng.choice(pool)
    return neg
