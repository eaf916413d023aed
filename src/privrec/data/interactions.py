"""The frozen, self-validating interaction log shared by every part of privrec."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import scipy.sparse as sp

from privrec.errors import DataError


def _frozen(a: np.ndarray, dtype: type | np.dtype) -> np.ndarray:
    out = np.ascontiguousarray(a, dtype=dtype)
    if out is a:
        out = out.copy()
    out.setflags(write=False)
    return out


@dataclass(frozen=True, eq=False)
class Interactions:
    """Implicit-feedback interactions between users and items.

    Users and items are stored as contiguous indices ``0..n_users-1`` / ``0..n_items-1``; the
    original identifiers are kept in ``user_ids`` / ``item_ids`` (position = index). A split
    (train/validation/test) shares its parent's id maps, so indices mean the same everywhere.

    Attributes:
        users: user index of each interaction (int64).
        items: item index of each interaction (int64).
        timestamps: time of each interaction (int64; the file order if the source has none).
        order: position of each interaction in its source file (int64), used to break
            timestamp ties (later line = later interaction).
        user_ids: original user identifiers, one per user index.
        item_ids: original item identifiers, one per item index.
    """

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray
    order: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.users)
        for name in ("items", "timestamps", "order"):
            if len(getattr(self, name)) != n:
                raise DataError(
                    f"Interactions: '{name}' has {len(getattr(self, name))} entries, "
                    f"expected {n} (one per interaction)"
                )
        object.__setattr__(self, "users", _frozen(self.users, np.int64))
        object.__setattr__(self, "items", _frozen(self.items, np.int64))
        object.__setattr__(self, "timestamps", _frozen(self.timestamps, np.int64))
        object.__setattr__(self, "order", _frozen(self.order, np.int64))
        for name in ("user_ids", "item_ids"):
            ids = np.asarray(getattr(self, name))
            if ids.dtype == object:
                ids = ids.astype(str)
            if _has_duplicates(ids):
                raise DataError(f"Interactions: '{name}' contains duplicate identifiers")
            ids = ids.copy()
            ids.setflags(write=False)
            object.__setattr__(self, name, ids)
        if n:
            if self.users.min() < 0 or self.users.max() >= self.n_users:
                raise DataError("Interactions: a user index is outside 0..n_users-1")
            if self.items.min() < 0 or self.items.max() >= self.n_items:
                raise DataError("Interactions: an item index is outside 0..n_items-1")
            keys = self.users * self.n_items + self.items
            sorted_keys = np.sort(keys)  # a sort, not np.unique (hash-based, slower here)
            if (sorted_keys[1:] == sorted_keys[:-1]).any():
                dup = _first_duplicate(keys)
                u, i = divmod(int(keys[dup]), self.n_items)
                raise DataError(
                    "Interactions: duplicate (user, item) pair "
                    f"({self.user_ids[u]}, {self.item_ids[i]}); each pair may appear once"
                )
            sorted_keys.setflags(write=False)
            self.__dict__["sorted_keys"] = sorted_keys  # prime the cached property

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_ids(
        cls,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        timestamps: np.ndarray | None = None,
        *,
        all_user_ids: np.ndarray | None = None,
        all_item_ids: np.ndarray | None = None,
    ) -> Interactions:
        """Build from raw identifier columns (file order = row order).

        ``all_user_ids`` / ``all_item_ids`` fix the index (e.g. every user of an attribute file);
        by default the index is the sorted distinct ids seen.
        """
        user_ids = np.asarray(user_ids)
        item_ids = np.asarray(item_ids)
        uid = np.unique(user_ids) if all_user_ids is None else np.asarray(all_user_ids)
        iid = np.unique(item_ids) if all_item_ids is None else np.asarray(all_item_ids)
        users = _index_of(uid, user_ids, "user")
        items = _index_of(iid, item_ids, "item")
        order = np.arange(len(users), dtype=np.int64)
        ts = order if timestamps is None else np.asarray(timestamps, dtype=np.int64)
        return cls(users, items, ts, order, uid, iid)

    # ------------------------------------------------------------------ sizes and views
    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    @cached_property
    def csr(self) -> sp.csr_matrix:
        """Binary user × item matrix (rows sorted, duplicates impossible)."""
        data = np.ones(len(self), dtype=np.float32)
        m = sp.csr_matrix((data, (self.users, self.items)), shape=(self.n_users, self.n_items))
        m.sort_indices()
        return m

    @cached_property
    def sorted_keys(self) -> np.ndarray:
        """Sorted ``user * n_items + item`` keys: fast vectorised membership tests."""
        keys = np.sort(self.users * self.n_items + self.items)
        keys.setflags(write=False)
        return keys

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: is each (user, item) pair an interaction?"""
        keys = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, np.int64)
        sk = self.sorted_keys
        if len(sk) == 0:
            return np.zeros(keys.shape, dtype=bool)
        flat = keys.ravel()
        order = np.argsort(flat, kind="stable")  # sorted queries: cache-friendly search
        pos = np.empty_like(flat)
        pos[order] = np.searchsorted(sk, flat[order])
        pos = pos.clip(max=len(sk) - 1)
        return (sk[pos] == flat).reshape(keys.shape)

    def user_counts(self) -> np.ndarray:
        return np.bincount(self.users, minlength=self.n_users)

    def item_counts(self) -> np.ndarray:
        return np.bincount(self.items, minlength=self.n_items)

    def subset(self, mask: np.ndarray) -> Interactions:
        """The interactions selected by a boolean mask, with the same id maps."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise DataError(f"subset mask has shape {mask.shape}, expected ({len(self)},)")
        return Interactions(
            self.users[mask],
            self.items[mask],
            self.timestamps[mask],
            self.order[mask],
            self.user_ids,
            self.item_ids,
        )

    def summary(self) -> dict[str, float | int]:
        n = len(self)
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n,
            "active_users": int((self.user_counts() > 0).sum()),
            "active_items": int((self.item_counts() > 0).sum()),
            "density": n / max(1, self.n_users * self.n_items),
        }


def _has_duplicates(values: np.ndarray) -> bool:
    s = np.sort(values)
    return bool((s[1:] == s[:-1]).any())


def _first_duplicate(keys: np.ndarray) -> int:
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    dup = np.flatnonzero(sk[1:] == sk[:-1])
    return int(order[dup[0] + 1])


def _index_of(universe: np.ndarray, values: np.ndarray, what: str) -> np.ndarray:
    """Map identifiers to positions in ``universe``; unknown identifiers are an error."""
    if len(universe) == 0:
        if len(values):
            raise DataError(f"no {what} identifiers to index into")
        return np.zeros(0, dtype=np.int64)
    sorter = np.argsort(universe, kind="stable")
    pos = np.searchsorted(universe, values, sorter=sorter).clip(max=len(universe) - 1)
    idx = sorter[pos]
    bad = universe[idx] != values
    if bad.any():
        first = values[np.flatnonzero(bad)[0]]
        raise DataError(f"unknown {what} id '{first}': not in the {what} index")
    return idx.astype(np.int64)
