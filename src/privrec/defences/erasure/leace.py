"""LEACE: least-squares concept erasure (Belrose et al., 2023) via ``concept_erasure``.

LEACE finds the smallest affine edit of the vectors after which their cross-covariance with the
label indicators is exactly zero on the fit users, so **no linear classifier** can do better than
a constant one on them (linear guardedness). Non-linear readouts may still find the attribute.

Several attributes:

- ``strategy="joint"`` (default): one LEACE fit on the concatenated targets (one-hot minus one
  column per categorical attribute, the standardised value per continuous one), over the users
  whose every named attribute is known. It is the least-squares-minimal edit that guards all of
  them at once.
- ``strategy="sequential"``: one fit per attribute, in the order given, each on the users that
  know that attribute, each applied to the output of the previous. An affine map keeps a zero
  cross-covariance zero, so the later fits do not undo the earlier ones; use it when different
  users know different attributes.
"""

from __future__ import annotations

import warnings

import numpy as np

from privrec.data.attributes import Attribute
from privrec.defences.erasure.affine import AffineEraser, encode_target, identity_eraser
from privrec.errors import ConfigError, DataError

STRATEGIES = ("joint", "sequential")


def fit_leace(
    x: np.ndarray,
    attributes: list[Attribute],
    *,
    strategy: str = "joint",
    projection: str = "leace",
    shrinkage: bool = True,
    svd_tol: float = 1e-6,
    constrain_cov_trace: bool = False,
) -> AffineEraser:
    """Fit LEACE on ``x`` (n, dim) for ``attributes`` (aligned to the rows of ``x``).

    Args:
        strategy: ``joint`` or ``sequential`` (module docstring).
        projection: ``leace`` (oblique, least-squares optimal) or ``orth`` (orthogonal
            projection out of the cross-covariance directions; also guards, edits more).
        shrinkage: shrink the covariance estimate of ``x`` (concept_erasure's default).
        svd_tol: singular values of the whitened cross-covariance below this are treated as 0.
            The library default (0.01) can leave a weak but real correlation in place; ours is
            small so weak attributes are erased too.
        constrain_cov_trace: concept_erasure's option to blend towards an orthogonal projection
            when the edit would increase the total variance. Off by default: the blend can
            re-introduce correlation, breaking the guarantee.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(
            f"LEACE strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}"
        )
    if projection not in ("leace", "orth"):
        raise ConfigError(f"LEACE projection must be 'leace' or 'orth', got {projection!r}")
    if not svd_tol > 0:
        raise ConfigError(f"LEACE svd_tol must be > 0, got {svd_tol}")
    kw = {
        "projection": projection,
        "shrinkage": bool(shrinkage),
        "svd_tol": float(svd_tol),
        "constrain_cov_trace": bool(constrain_cov_trace),
    }
    names = tuple(a.name for a in attributes)
    fit_users: dict[str, int] = {}
    if strategy == "joint":
        mask = np.logical_and.reduce([a.known for a in attributes])
        if mask.sum() < 2:
            raise DataError(
                f"no users know all of {', '.join(names)}: a joint LEACE fit is impossible "
                "(use strategy='sequential')"
            )
        z = np.concatenate([encode_target(a) for a in attributes], axis=1)
        eraser = _fit_one(x, z, mask, names, kw)
        fit_users = {a.name: int(mask.sum()) for a in attributes}
    else:
        eraser = identity_eraser("leace", x.shape[1])
        for a in attributes:
            step = _fit_one(eraser(x).astype(np.float64), encode_target(a), a.known, (a.name,), kw)
            eraser = eraser.then(step)
            fit_users[a.name] = int(a.known.sum())
    info = {
        "strategy": strategy,
        "projection": projection,
        "shrinkage": bool(shrinkage),
        "svd_tol": float(svd_tol),
        "constrain_cov_trace": bool(constrain_cov_trace),
        "fit_users": fit_users,
    }
    out = AffineEraser("leace", names, eraser.matrix, eraser.offset, info)
    out.info["rank_removed"] = out.rank_removed
    return out


def _fit_one(
    x: np.ndarray, z: np.ndarray, mask: np.ndarray, names: tuple[str, ...], kw: dict
) -> AffineEraser:
    try:
        import torch

        with warnings.catch_warnings():  # the package uses torch.jit.script, now deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            from concept_erasure import LeaceFitter
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError(
            f"LEACE needs the concept-erasure package ({exc}); "
            "install it with: pip install 'privrec[erasure]'"
        ) from None
    xt = torch.from_numpy(np.ascontiguousarray(x[mask], dtype=np.float64))
    zt = torch.from_numpy(np.ascontiguousarray(z[mask], dtype=np.float64))
    fitter = LeaceFitter(
        x.shape[1],
        z.shape[1],
        method=kw["projection"],
        affine=True,
        constrain_cov_trace=kw["constrain_cov_trace"],
        dtype=torch.float64,
        shrinkage=kw["shrinkage"],
        svd_tol=kw["svd_tol"],
    )
    fitter.update(xt, zt)
    e = fitter.eraser
    # erase(x) = x - (x - b) @ R^T @ L^T = x @ (I - L R)^T + b @ (L R)^T
    lr = (e.proj_left @ e.proj_right).numpy()
    b = e.bias.numpy() if e.bias is not None else np.zeros(x.shape[1])
    return AffineEraser("leace", names, np.eye(x.shape[1]) - lr.T, b @ lr.T)
