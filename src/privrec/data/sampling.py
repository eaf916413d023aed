"""Vectorised, seeded uniform negative sampling."""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import numpy as np

from privrec.data.interactions import Interactions
from privrec.errors import DataError

#: Largest users × items matrix whose membership bitset is built (bits; 2**30 bits = 128 MiB).
#: Above it, membership is a hashed bitset (a filter) confirmed by :meth:`Interactions.contains`.
BITSET_MAX_BITS = 2**30

#: Bits per interaction of the hashed filter (rounded up to a power of two): 64 bits = 8 bytes per
#: interaction, the size of the sorted keys, and a false-positive rate of at most 1/64.
FILTER_BITS_PER_KEY = 64

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing multiplier (2**64 / golden ratio)


@dataclass(frozen=True, eq=False)
class _Membership:
    """A packed bitset over interaction keys (``user * n_items + item``).

    ``shift is None``: one bit per user-item pair, exact. Otherwise bit ``(key * φ) >> shift``
    (Fibonacci hashing): a filter with no false negatives, whose hits are confirmed exactly.
    """

    bits: np.ndarray
    shift: int | None

    def maybe(self, keys: np.ndarray) -> np.ndarray:
        """Whether each key's bit is set (exact, or no false negatives when hashed)."""
        keys = _slots(keys, self.shift)
        return ((self.bits.take(keys >> 3) >> (keys & 7).astype(np.uint8)) & 1).astype(bool)


def _slots(keys: np.ndarray, shift: int | None) -> np.ndarray:
    """The bit each key maps to: the key itself, or its top ``64 - shift`` bits after a
    multiplication by φ·2⁶⁴ (which spreads nearby keys over the whole bitset)."""
    if shift is None:
        return keys
    return ((keys.astype(np.uint64) * _GOLDEN) >> np.uint64(shift)).astype(np.int64)


_MEMBERSHIP: weakref.WeakKeyDictionary[Interactions, _Membership] = weakref.WeakKeyDictionary()


def _pack(positions: np.ndarray, n_bits: int) -> np.ndarray:
    """Bits ``positions`` set in a zeroed bitset of ``n_bits`` bits (little-endian bit order
    within each byte), built without an ``n_bits``-byte temporary."""
    bits = np.zeros((n_bits + 7) // 8, dtype=np.uint8)
    np.bitwise_or.at(bits, positions >> 3, np.left_shift(1, positions & 7).astype(np.uint8))
    bits.setflags(write=False)
    return bits


def _membership(interactions: Interactions) -> _Membership:
    """The membership bitset of an (immutable) interaction log, cached: exact when the
    users × items matrix has at most :data:`BITSET_MAX_BITS` bits, else a hashed filter of
    :data:`FILTER_BITS_PER_KEY` bits per interaction — memory O(interactions), not
    O(users × items)."""
    n_bits = interactions.n_users * interactions.n_items
    shift = None
    if n_bits > BITSET_MAX_BITS:
        log2 = max(16, int(np.ceil(np.log2(FILTER_BITS_PER_KEY * max(1, len(interactions))))))
        n_bits, shift = 1 << log2, 64 - log2
    found = _MEMBERSHIP.get(interactions)
    if found is None or found.shift != shift:  # (the limits are module settings)
        keys = interactions.users * interactions.n_items + interactions.items
        found = _Membership(_pack(_slots(keys, shift), n_bits), shift)
        _MEMBERSHIP[interactions] = found
    return found


def _contains(interactions: Interactions, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Same answer as ``interactions.contains(users, items)``: one bit test per pair, and a
    binary search only for the pairs the hashed filter cannot rule out (large matrices)."""
    membership = _membership(interactions)
    found = membership.maybe(users * interactions.n_items + items)
    if membership.shift is not None:
        check = np.flatnonzero(found)
        found[check] = interactions.contains(users[check], items[check])
    return found


def sample_negatives(
    interactions: Interactions,
    users: np.ndarray,
    rng: np.random.Generator,
    max_rounds: int = 100,
) -> np.ndarray:
    """For each user in ``users``, an item drawn uniformly among those the user has not
    interacted with in ``interactions``.

    Draws all candidates at once and redraws only the collisions (rejection sampling), so the
    cost is a few vectorised passes whatever the number of users. The collision test is a
    cached bitset of the interaction matrix when it is small enough, else a cached hashed bitset
    whose hits are confirmed by binary search; either is exact, so the draws do not depend on it
    (same ``rng`` state ⇒ same negatives).
    """
    users = np.asarray(users, dtype=np.int64)
    n_items = interactions.n_items
    if len(users) and (users.min() < 0 or users.max() >= interactions.n_users):
        raise DataError("sample_negatives: a user index is outside 0..n_users-1")
    neg = rng.integers(0, n_items, size=len(users), dtype=np.int64)
    if len(interactions) == 0:
        bad = np.zeros(len(users), dtype=bool)
    else:
        bad = _contains(interactions, users, neg)
    for _ in range(max_rounds):
        if not bad.any():
            return neg
        idx = np.flatnonzero(bad)
        neg[idx] = rng.integers(0, n_items, size=len(idx), dtype=np.int64)
        bad[idx] = _contains(interactions, users[idx], neg[idx])
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
