"""Fitting an eraser by method name (LEACE, INLP or the purge) and applying it."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from privrec.config_types import convert
from privrec.data.attributes import UserAttributes
from privrec.defences.erasure.affine import AffineEraser, aligned_attributes, check_vectors
from privrec.defences.erasure.inlp import fit_inlp
from privrec.defences.erasure.leace import fit_leace
from privrec.defences.erasure.purge import PurgeMap, fit_purge
from privrec.errors import ConfigError, DataError

METHODS: tuple[str, ...] = ("leace", "inlp", "purge")
"""Erasure methods accepted by :func:`fit_eraser`."""


def fit_eraser(
    user_ids: np.ndarray,
    user_vectors: np.ndarray,
    attributes: UserAttributes,
    names: Sequence[str],
    method: str = "leace",
    seed: int = 0,
    items: tuple[np.ndarray, np.ndarray] | None = None,
    seen: Any = None,
    **options,
) -> AffineEraser | PurgeMap:
    """Fit an eraser of ``names`` on the users whose labels are known.

    Args:
        user_ids: identifier of each row of ``user_vectors`` (matched to ``attributes.user_ids``).
        user_vectors: (n_users, dim) vectors.
        attributes: private attributes (any order; every user id must have a row).
        names: attributes to erase (a list, or a comma-separated string).
        method: ``"leace"`` (:func:`privrec.defences.erasure.leace.fit_leace`), ``"inlp"``
            (:func:`privrec.defences.erasure.inlp.fit_inlp`) or ``"purge"``
            (:func:`privrec.defences.erasure.purge.fit_purge`, a non-affine map).
        seed: seed of every random choice (INLP's held-out split, the purge's initialisation
            and samples; LEACE is deterministic).
        items: ``(item_vectors, item_bias)`` scoring the vectors (the purge keeps each
            user's top-k list; required for it, unused by the others).
        seen: (users × items) training interactions, in the rows' order (the purge leaves
            them out of the lists it keeps).
        **options (object): method options (keyword arguments of the chosen method), see the
            two functions.
    """
    if method not in METHODS:
        raise ConfigError(
            f"unknown erasure method {method!r}; expected one of: {', '.join(METHODS)}"
        )
    x = check_vectors(user_vectors)
    attrs = aligned_attributes(user_ids, len(x), attributes, names)
    if x.shape[1] < 1:
        raise DataError("user vectors have dimension 0")
    x64 = x.astype(np.float64)
    if method == "leace":
        return fit_leace(x64, attrs, **checked_options(method, options))
    if method == "purge":
        if items is None:
            raise ConfigError("the purge needs the item vectors and biases (items=) it keeps")
        return fit_purge(x64, attrs, items, seen, seed=seed, **checked_options(method, options))
    return fit_inlp(x64, attrs, seed=seed, **checked_options(method, options))


def erase_vectors(
    user_ids: np.ndarray,
    user_vectors: np.ndarray,
    attributes: UserAttributes,
    names: Sequence[str],
    method: str = "leace",
    seed: int = 0,
    items: tuple[np.ndarray, np.ndarray] | None = None,
    seen: Any = None,
    **options,
) -> np.ndarray:
    """Erase ``names`` from ``user_vectors``: fit on users with known labels, apply to all.

    Returns float32 vectors of the same shape, in the same row order. See :func:`fit_eraser`.
    """
    eraser = fit_eraser(
        user_ids, user_vectors, attributes, names, method, seed, items, seen, **options
    )
    return eraser(user_vectors)


def option_types(method: str) -> dict[str, Any]:
    """The options of an erasure method and their types (its fitting function's keyword-only
    parameters, less the seed)."""
    fn = {"leace": fit_leace, "inlp": fit_inlp, "purge": fit_purge}.get(method)
    if fn is None:
        raise ConfigError(
            f"unknown erasure method {method!r}; expected one of: {', '.join(METHODS)}"
        )
    hints = typing.get_type_hints(fn)
    return {k: hints[k] for k in _keyword_only(fn) if k != "seed"}


def checked_options(method: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` of ``method`` checked against the option types: an unknown name or a value
    of the wrong type (``shrinkage="off"``: a string where a boolean is expected) is an
    error naming the option."""
    types = option_types(method)
    check_options(method, dict(options), list(types))
    return {k: convert(v, types[k], f"{method} option {k}") for k, v in options.items()}


def _keyword_only(fn) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def check_options(method: str, options: dict, allowed: Sequence[str]) -> None:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(
            f"unknown {method} option(s) {', '.join(unknown)}; "
            f"expected: {', '.join(allowed) or 'none'}"
        )
