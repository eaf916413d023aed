"""Post-hoc concept erasure of user vectors: the affine eraser every method fits.

An eraser is an affine map ``x ↦ x @ matrix + offset`` fitted on the users whose labels are known
and applied to every user. Fitting needs the labels; applying does not, so users without a label
are erased too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from privrec.data.attributes import Attribute, UserAttributes
from privrec.errors import ConfigError, DataError


@dataclass(frozen=True, eq=False)
class AffineEraser:
    """A fitted eraser: ``erase(x) = x @ matrix + offset``.

    Attributes:
        method: ``"leace"`` or ``"inlp"``.
        names: the attributes erased.
        matrix: (dim, dim) linear part.
        offset: (dim,) translation (keeps the fit users' mean where the method is affine).
        info: what the fit did (users used per attribute, rank removed, INLP iterations...).
    """

    method: str
    names: tuple[str, ...]
    matrix: np.ndarray
    offset: np.ndarray
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = np.asarray(self.matrix, dtype=np.float64)
        o = np.asarray(self.offset, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] != m.shape[1] or o.shape != (m.shape[0],):
            raise DataError("eraser: matrix must be (dim, dim) and offset (dim,)")
        object.__setattr__(self, "matrix", m)
        object.__setattr__(self, "offset", o)

    @property
    def dim(self) -> int:
        return self.matrix.shape[0]

    @property
    def rank_removed(self) -> int:
        """Rank of ``I - matrix``: how many directions the eraser edits."""
        delta = np.eye(self.dim) - self.matrix
        if not np.any(delta):
            return 0
        return int(np.linalg.matrix_rank(delta, tol=1e-8 * max(1.0, np.abs(delta).max())))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        """Erase ``vectors`` (n, dim); returns float32 of the same shape."""
        x = check_vectors(vectors)
        if x.shape[1] != self.dim:
            raise DataError(f"eraser was fitted on dimension {self.dim}, got vectors of {x.shape}")
        return (x.astype(np.float64) @ self.matrix + self.offset).astype(np.float32)

    def then(self, other: AffineEraser) -> AffineEraser:
        """The composition: first ``self``, then ``other``."""
        return AffineEraser(
            self.method,
            tuple(dict.fromkeys(self.names + other.names)),
            self.matrix @ other.matrix,
            self.offset @ other.matrix + other.offset,
            {},
        )


def identity_eraser(method: str, dim: int) -> AffineEraser:
    return AffineEraser(method, (), np.eye(dim), np.zeros(dim))


def check_vectors(vectors: np.ndarray) -> np.ndarray:
    """A 2-D array of finite numbers, else :class:`DataError`."""
    x = np.asarray(vectors)
    if x.ndim != 2:
        raise DataError(f"user vectors must be a 2-D array (n_users, dim), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise DataError(f"user vectors must be numeric, got dtype {x.dtype}")
    if x.size and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).any(axis=1).sum())
        raise DataError(f"user vectors contain NaN or infinite values ({bad} user(s))")
    return x


def aligned_attributes(
    user_ids: np.ndarray, n_vectors: int, attributes: UserAttributes, names: Sequence[str]
) -> list[Attribute]:
    """The attributes ``names`` re-indexed to ``user_ids`` (the rows of the vectors).

    ``user_ids`` must be unique, one per vector, and every one of them must have a row in
    ``attributes`` (its label may be missing). Order may differ: rows are matched by id.
    """
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    if not names:
        raise ConfigError("name at least one attribute to erase")
    if len(set(names)) != len(names):
        raise ConfigError(f"attribute named twice in {names}")
    unknown = [n for n in names if n not in attributes]
    if unknown:
        raise ConfigError(
            f"unknown attribute(s) {', '.join(map(repr, unknown))}; "
            f"available: {', '.join(attributes.names) or 'none'}"
        )
    ids = np.asarray(user_ids)
    if ids.ndim != 1 or len(ids) != n_vectors:
        raise DataError(
            f"user_ids has {ids.size} entries but there are {n_vectors} user vectors: "
            "ids must be aligned to the vector rows"
        )
    sids = ids.astype(str)
    if len(np.unique(sids)) != len(sids):
        raise DataError("user_ids contains duplicate identifiers")
    attr_ids = np.asarray(attributes.user_ids).astype(str)
    if not (attr_ids.shape == sids.shape and np.array_equal(attr_ids, sids)):
        known_ids = set(attr_ids.tolist())
        absent = [u for u in sids.tolist() if u not in known_ids]
        if absent:
            raise DataError(
                f"{len(absent)} of {len(sids)} user ids have no row in the attributes "
                f"(first: {absent[0]!r}); the vectors and attributes are not aligned"
            )
        attributes = attributes.align_to(sids)
    out = []
    for n in names:
        a = attributes[n]
        known = a.known
        if known.sum() < 2:
            raise DataError(f"attribute '{n}' has fewer than 2 users with a known value")
        if a.kind == "categorical":
            if len(np.unique(a.values[known])) < 2:
                raise DataError(f"attribute '{n}': all known users are in one class")
        elif np.nanstd(a.values) == 0:
            raise DataError(f"attribute '{n}': every known value is the same")
        out.append(a)
    return out


def encode_target(attribute: Attribute) -> np.ndarray:
    """Regression targets of an attribute for every user (rows of unknown users are junk).

    Categorical: one-hot indicators minus the last class column (the dropped column is the
    complement of the others, so decorrelating from the rest decorrelates from it too).
    Continuous: the standardised value.
    """
    if attribute.kind == "categorical":
        codes = attribute.values.clip(min=0)
        onehot = np.eye(attribute.n_classes)[codes]
        return onehot[:, :-1]
    v = attribute.values
    mu, sd = np.nanmean(v), np.nanstd(v)
    return np.nan_to_num((v - mu) / (sd or 1.0))[:, None]
