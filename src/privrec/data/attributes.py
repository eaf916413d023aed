"""Private user attributes aligned to an :class:`~privrec.data.interactions.Interactions` index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from privrec.errors import DataError

Kind = Literal["categorical", "continuous"]


@dataclass(frozen=True, eq=False)
class Attribute:
    """One private attribute for every user of an index.

    Attributes:
        name: attribute name (e.g. ``"gender"``).
        kind: ``"categorical"`` or ``"continuous"``.
        values: categorical: int64 class codes with ``-1`` for missing; continuous: float64 with
            NaN for missing.
        classes: categorical class names, ``classes[code]``; empty for continuous attributes.
    """

    name: str
    kind: Kind
    values: np.ndarray
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind == "categorical":
            v = np.asarray(self.values)
            if not np.issubdtype(v.dtype, np.integer):
                raise DataError(f"attribute '{self.name}': categorical codes must be integers")
            v = v.astype(np.int64)
            if len(self.classes) == 0:
                raise DataError(f"attribute '{self.name}': categorical attribute needs class names")
            if v.size and (v.min() < -1 or v.max() >= len(self.classes)):
                raise DataError(
                    f"attribute '{self.name}': codes must be in -1..{len(self.classes) - 1}"
                )
        elif self.kind == "continuous":
            v = np.asarray(self.values, dtype=np.float64)
            if np.isinf(v).any():
                raise DataError(f"attribute '{self.name}': infinite value")
        else:
            raise DataError(f"attribute '{self.name}': kind must be categorical or continuous")
        v = v.copy()
        v.setflags(write=False)
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))

    @property
    def known(self) -> np.ndarray:
        """Mask of users whose value is known."""
        if self.kind == "categorical":
            return self.values >= 0
        return ~np.isnan(self.values)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def distribution(self) -> dict[str, float]:
        """Class shares among users with a known value (categorical only)."""
        if self.kind != "categorical":
            raise DataError(f"attribute '{self.name}' is continuous: no class distribution")
        v = self.values[self.known]
        counts = np.bincount(v, minlength=self.n_classes)
        total = max(1, counts.sum())
        return {c: float(n / total) for c, n in zip(self.classes, counts, strict=True)}

    def majority(self) -> tuple[str, float]:
        """Majority class and its share: the accuracy of always guessing it."""
        dist = self.distribution()
        best = max(dist, key=dist.__getitem__)
        return best, dist[best]

    def take(self, index: np.ndarray) -> Attribute:
        return Attribute(self.name, self.kind, self.values[index], self.classes)

    @classmethod
    def categorical(cls, name: str, raw: np.ndarray, classes: list | None = None) -> Attribute:
        """Encode raw labels (None/NaN/"" = missing); ``classes`` fixes the class order."""
        raw = np.asarray(raw, dtype=object)
        missing = np.array([_is_missing(x) for x in raw], dtype=bool)
        labels = np.array([str(x) for x in raw], dtype=object)
        if classes is None:
            classes = sorted(set(labels[~missing]), key=_natural_key)
        classes = [str(c) for c in classes]
        lookup = {c: i for i, c in enumerate(classes)}
        codes = np.full(len(raw), -1, dtype=np.int64)
        for i in np.flatnonzero(~missing):
            code = lookup.get(labels[i])
            if code is None:
                raise DataError(f"attribute '{name}': value {labels[i]!r} is not one of {classes}")
            codes[i] = code
        return cls(name, "categorical", codes, tuple(classes))


def _is_missing(x: object) -> bool:
    if x is None:
        return True
    if isinstance(x, float) and np.isnan(x):
        return True
    return isinstance(x, str) and x.strip() == ""


def _natural_key(s: str) -> tuple:
    try:
        return (0, float(s), s)
    except ValueError:
        return (1, 0.0, s)


@dataclass(frozen=True, eq=False)
class UserAttributes:
    """A set of attributes, all aligned to the same user index.

    Attributes:
        user_ids: original user identifiers, position = user index (same as the interactions').
        columns: attribute name → :class:`Attribute` with one value per user.
    """

    user_ids: np.ndarray
    columns: Mapping[str, Attribute]

    def __post_init__(self) -> None:
        n = len(self.user_ids)
        for name, attr in self.columns.items():
            if len(attr.values) != n:
                raise DataError(
                    f"attribute '{name}' has {len(attr.values)} values, expected {n} (one per user)"
                )
            if attr.name != name:
                raise DataError(f"attribute stored under '{name}' is named '{attr.name}'")
        object.__setattr__(self, "columns", dict(self.columns))

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __getitem__(self, name: str) -> Attribute:
        try:
            return self.columns[name]
        except KeyError:
            raise DataError(
                f"unknown attribute '{name}'; available: {', '.join(self.names) or 'none'}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def without_labels(
        self, hide: np.ndarray, names: Sequence[str] | None = None
    ) -> UserAttributes:
        """A copy where the users of the boolean mask ``hide`` have no label (missing) for
        ``names`` (default: every attribute) — e.g. the users whose labels a defence may not
        see, or the users an audit must not score."""
        hide = np.asarray(hide, dtype=bool)
        cols = dict(self.columns)
        for n in names if names is not None else self.names:
            a = self[n]
            missing = -1 if a.kind == "categorical" else np.nan
            cols[n] = Attribute(n, a.kind, np.where(hide, missing, a.values), a.classes)
        return UserAttributes(self.user_ids, cols)

    def select(self, names: list[str]) -> UserAttributes:
        return UserAttributes(self.user_ids, {n: self[n] for n in names})

    def align_to(self, user_ids: np.ndarray) -> UserAttributes:
        """Re-index to ``user_ids``; users absent here get missing values."""
        pos = {str(u): i for i, u in enumerate(self.user_ids)}
        idx = np.array([pos.get(str(u), -1) for u in user_ids], dtype=np.int64)
        cols = {}
        for name, a in self.columns.items():
            if a.kind == "categorical":
                vals = np.where(idx >= 0, a.values[idx.clip(min=0)], -1)
            else:
                vals = np.where(idx >= 0, a.values[idx.clip(min=0)], np.nan)
            cols[name] = Attribute(name, a.kind, vals, a.classes)
        return UserAttributes(np.asarray(user_ids), cols)
