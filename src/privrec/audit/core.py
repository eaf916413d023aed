"""Run the attacker suite on user vectors: join to attributes, validate, cross-validate.

Protocol (docs/protocol.md, Leakage audit): for every attribute, the users with a known value
are split into ``folds`` seeded folds (stratified for categorical attributes, plain ``KFold`` for
continuous ones); every attacker is fitted on each training part and predicts the held-out part,
and the metrics (:mod:`privrec.audit.metrics`) are computed on the pooled out-of-fold
predictions.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp
from joblib import Parallel, delayed
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from privrec.audit.attackers import (
    ATTACKERS,
    build_estimator,
    regressors_for,
    resolve_attackers,
)
from privrec.audit.metrics import (
    CATEGORICAL_METRICS,
    CONTINUOUS_METRICS,
    classification_metrics,
    entropy_bits,
    ordinal_metrics,
    regression_metrics,
)
from privrec.audit.result import TABLE_COLUMNS, AuditResult, build_headline
from privrec.audit.uncertainty import (
    LEVEL,
    N_BOOT,
    N_PERM,
    bootstrap_intervals,
    bootstrap_weights,
    permutation_test,
)
from privrec.data.attributes import UserAttributes
from privrec.errors import ConfigError, DataError
from privrec.progress import progress as progress_steps

if TYPE_CHECKING:
    pass


class AuditWarning(UserWarning):
    """A problem the audit worked around (skipped attribute, dropped class, poor join)."""


@dataclass(frozen=True, eq=False)
class _Target:
    """One attribute prepared for the audit: the rows of ``X`` it uses and their labels."""

    name: str
    kind: str
    rows: np.ndarray  # indices into X
    y: np.ndarray  # int codes 0..K-1 (categorical) or floats
    classes: tuple[str, ...]  # class names of codes 0..K-1; () for continuous
    folds: tuple[tuple[np.ndarray, np.ndarray], ...]  # (train, test) as indices into rows
    ranks: np.ndarray | None = None  # position of each class in the order of its numeric name


def audit_vectors(
    user_ids: np.ndarray,
    vectors: np.ndarray,
    attributes: UserAttributes,
    names: Sequence[str] | None = None,
    attackers: str | Sequence[str] = "paper",
    folds: int = 5,
    seed: int = 0,
    jobs: int = 1,
    progress: bool = False,
) -> AuditResult:
    """Audit how well each attribute can be predicted from user vectors.

    Args:
        user_ids: original user id of every row of ``vectors`` (joined to
            ``attributes.user_ids``; compared as strings, so ``7`` matches ``"7"``).
        vectors: ``(n_users, dim)`` finite numbers.
        attributes: the private attributes.
        names: attributes to audit (default: all of them).
        attackers: a preset (``fast``, ``paper``, ``strong``, ``all``), a comma list or a
            sequence of attacker names/presets.
        folds: cross-validation folds (≥ 2).
        seed: seed of the fold split and of every attacker.
        jobs: parallel worker processes over (attacker, fold).
        progress: show a Rich progress bar over (attribute × attacker) on stderr.

    Returns:
        The :class:`AuditResult`.

    Raises:
        DataError: malformed vectors (not 2-D, non-numeric, NaN/inf, duplicate ids, length
            mismatch), no user in common with ``attributes``, or nothing left to audit.
        ConfigError: unknown attacker/preset, ``folds < 2`` or ``jobs < 1``.
    """
    X = _check_vectors(user_ids, vectors)
    return run_audit(
        np.asarray(user_ids), X, attributes, names, attackers, folds, seed, jobs, progress
    )


def run_audit(
    user_ids: np.ndarray,
    X: np.ndarray | sp.csr_matrix,
    attributes: UserAttributes,
    names: Sequence[str] | None,
    attackers: str | Sequence[str],
    folds: int,
    seed: int,
    jobs: int,
    progress: bool,
    extra_info: dict | None = None,
) -> AuditResult:
    """The engine behind :func:`audit_vectors` (also used on sparse bags of items)."""
    started = time.perf_counter()
    if folds < 2:
        raise ConfigError(f"folds must be at least 2, got {folds}")
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}")
    chosen = resolve_attackers(attackers)
    sparse = sp.issparse(X)
    for name in chosen:
        build_estimator(name, "classification", seed, sparse)  # fail early on sparse misuse
    log: list[str] = []
    info = _join_info(user_ids, attributes, log)
    aligned = attributes.align_to(user_ids)
    if names is None:
        names = attributes.names
        if not names:
            raise DataError("the attributes hold no columns to audit")
    names = list(dict.fromkeys(names))
    for n in names:
        attributes[n]  # DataError naming the available attributes
    info.update(
        {
            "folds": folds,
            "seed": seed,
            "jobs": jobs,
            "attackers": list(chosen),
            "regressors": list(regressors_for(chosen)),
            "dim": int(X.shape[1]),
            "auc": "one-vs-rest macro over classes on predict_proba or decision_function "
            "scores, pooled out-of-fold; _std = std over folds (ddof=0)",
            "attributes": {},
        }
    )
    info.update(extra_info or {})
    targets = []
    for n in names:
        target, ainfo = _prepare(aligned[n], folds, seed, log)
        info["attributes"][n] = ainfo
        if target is not None:
            targets.append(target)
    if not targets:
        info["warnings"] = log
        raise DataError(
            "no attribute could be audited: " + "; ".join(log) if log else "nothing to audit"
        )

    tasks = []
    for t in targets:
        models = chosen if t.kind == "categorical" else regressors_for(chosen)
        for m in models:
            for f, (tr, te) in enumerate(t.folds):
                tasks.append((t, m, f, tr, te))
    results: dict[tuple[str, str], list] = {}
    per_model = {(t.name, m): len(t.folds) for t, m, *_ in tasks}
    with progress_steps("audit", len(per_model), enabled=progress) as advance:
        outputs = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(_fit_fold)(
                m, t.kind, seed, X, t.rows[tr], t.y[tr], t.rows[te], t.y[te], len(t.classes)
            )
            for t, m, f, tr, te in tasks
        )
        for (t, m, f, _tr, te), out in zip(tasks, outputs, strict=True):
            results.setdefault((t.name, m), []).append((f, te, out))
            if len(results[(t.name, m)]) == per_model[(t.name, m)]:
                advance(f"{t.name}: {m}")

    rows = []
    for i, t in enumerate(targets):
        models = chosen if t.kind == "categorical" else regressors_for(chosen)
        pooled = {m: _pooled(t, results[(t.name, m)]) for m in models}
        block = [_row(t, m, pooled[m]) for m in models]
        if t.kind == "categorical":
            _add_uncertainty(t, block, pooled, (seed, i))
        rows += block
    info["uncertainty"] = (
        f"{LEVEL:.0%} bootstrap intervals over users ({N_BOOT} resamples of the out-of-fold "
        "scores; for the strongest attacker by ROC-AUC and by balanced accuracy of each "
        f"attribute); permutation tests against chance ({N_PERM} within-fold label permutations; "
        "p_value_family: the strongest attacker, corrected for the maximum over attackers)"
    )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    info["warnings"] = log
    info["seconds"] = time.perf_counter() - started
    return AuditResult(table=table, headline=build_headline(table), info=info)


def _warn(log: list[str], message: str) -> None:
    log.append(message)
    warnings.warn(message, AuditWarning, stacklevel=4)


def _check_vectors(user_ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors)
    if v.ndim != 2:
        raise DataError(f"user vectors must be a 2-D array (users × dims), got shape {v.shape}")
    if not (np.issubdtype(v.dtype, np.number) or v.dtype == bool) or np.iscomplexobj(v):
        raise DataError(f"user vectors must be real numbers, got dtype {v.dtype}")
    ids = np.asarray(user_ids)
    if ids.ndim != 1 or len(ids) != len(v):
        raise DataError(
            f"{len(v)} user vectors but {ids.size} user ids: need one id per row of vectors"
        )
    if len(v) == 0 or v.shape[1] == 0:
        raise DataError(f"user vectors are empty (shape {v.shape})")
    v = v.astype(np.float64, copy=False)
    bad = ~np.isfinite(v).all(axis=1)
    if bad.any():
        first = ", ".join(str(u) for u in ids[bad][:5])
        raise DataError(
            f"{int(bad.sum())} of {len(v)} user vectors contain NaN or inf "
            f"(users {first}{', …' if bad.sum() > 5 else ''})"
        )
    keys = ids.astype(str)
    uniq, counts = np.unique(keys, return_counts=True)
    if (counts > 1).any():
        dups = uniq[counts > 1]
        raise DataError(
            f"{len(dups)} user id(s) appear more than once among the vectors "
            f"(e.g. {', '.join(dups[:5])}); each user needs exactly one vector"
        )
    return v


def _join_info(user_ids: np.ndarray, attributes: UserAttributes, log: list[str]) -> dict:
    mine = np.asarray(user_ids).astype(str)
    theirs = np.asarray(attributes.user_ids).astype(str)
    matched = int(np.isin(mine, theirs).sum())
    info = {
        "n_vectors": len(mine),
        "n_attribute_users": len(theirs),
        "n_matched": matched,
        "n_unmatched_vectors": len(mine) - matched,
        "n_attribute_users_without_vector": int((~np.isin(theirs, mine)).sum()),
    }
    if matched == 0:
        raise DataError(
            f"none of the {len(mine)} vector user ids matches one of the {len(theirs)} attribute "
            f"user ids (e.g. vectors: {', '.join(mine[:3])}; attributes: "
            f"{', '.join(theirs[:3])}); are these vectors of this dataset?"
        )
    if matched < 0.5 * len(mine) or matched < 0.5 * len(theirs):
        _warn(
            log,
            f"only {matched} users joined: {matched / len(mine):.0%} of the {len(mine)} vectors, "
            f"{matched / len(theirs):.0%} of the {len(theirs)} attribute rows",
        )
    return info


def _prepare(attr, folds: int, seed: int, log: list[str]) -> tuple[_Target | None, dict]:
    """Known-value users of one attribute, rare classes dropped, folds assigned."""
    known = attr.known
    rows = np.flatnonzero(known)
    info: dict = {
        "kind": attr.kind,
        "n_known": int(known.sum()),  # matched users with a known value
        "n_unknown_or_unmatched": int((~known).sum()),
        "skipped": None,
    }
    if attr.kind == "categorical":
        codes = attr.values[rows]
        counts = np.bincount(codes, minlength=attr.n_classes)
        info["class_counts"] = {c: int(n) for c, n in zip(attr.classes, counts, strict=True)}
        present = np.flatnonzero(counts > 0)
        if len(present) < 2:
            only = attr.classes[present[0]] if len(present) else "none"
            return _skip(
                attr.name,
                info,
                log,
                f"attribute '{attr.name}': {len(present)} known class ({only}) among the "
                f"{len(rows)} matched users; skipped (nothing to predict)",
            )
        rare = [int(c) for c in present if counts[c] < folds]
        info["dropped_classes"] = {attr.classes[c]: int(counts[c]) for c in rare}
        if rare:
            _warn(
                log,
                f"attribute '{attr.name}': class(es) "
                + ", ".join(f"{attr.classes[c]} ({counts[c]} users)" for c in rare)
                + f" have fewer members than the {folds} folds; their users are left out of "
                "this attribute's audit",
            )
            keep = ~np.isin(codes, rare)
            rows, codes = rows[keep], codes[keep]
        kept = [int(c) for c in present if c not in rare]
        if len(kept) < 2:
            return _skip(
                attr.name,
                info,
                log,
                f"attribute '{attr.name}': fewer than 2 classes with at least {folds} users; "
                "skipped",
            )
        remap = np.full(attr.n_classes, -1, dtype=np.int64)
        remap[kept] = np.arange(len(kept))
        y = remap[codes]
        classes = tuple(attr.classes[c] for c in kept)
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        split = tuple(splitter.split(np.zeros(len(y)), y))
        info["entropy_bits"] = entropy_bits(y, len(kept))
        info["majority"] = float(np.bincount(y).max() / len(y))
        ranks = _ordinal_ranks(classes)
        info["ordinal"] = ranks is not None
    else:
        y = attr.values[rows].astype(np.float64)
        if len(rows) < 2 * folds:
            return _skip(
                attr.name,
                info,
                log,
                f"attribute '{attr.name}': only {len(rows)} users with a known value, need at "
                f"least {2 * folds} for {folds} folds; skipped",
            )
        if np.ptp(y) == 0:
            return _skip(
                attr.name,
                info,
                log,
                f"attribute '{attr.name}': the same value ({y[0]:g}) for every matched user; "
                "skipped (nothing to predict)",
            )
        classes = ()
        split = tuple(KFold(n_splits=folds, shuffle=True, random_state=seed).split(y))
        ranks = None
    info["n_used"] = len(rows)
    return _Target(attr.name, attr.kind, rows, y, classes, split, ranks), info


def _ordinal_ranks(classes: Sequence[str]) -> np.ndarray | None:
    """Position of each class in numeric order when every class name is a number (age
    groups ``1, 18, 25…``) and there are more than two classes; else None."""
    if len(classes) < 3:
        return None
    try:
        values = np.array([float(c) for c in classes])
    except ValueError:
        return None
    if not np.isfinite(values).all() or len(set(values)) < len(values):
        return None
    return np.argsort(np.argsort(values, kind="stable"), kind="stable")


def _skip(name: str, info: dict, log: list[str], message: str) -> tuple[None, dict]:
    _warn(log, message)
    info["skipped"] = message
    info["n_used"] = 0
    return None, info


def _fit_fold(
    name: str,
    kind: str,
    seed: int,
    X,
    train_rows: np.ndarray,
    y_train: np.ndarray,
    test_rows: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
) -> dict:
    """Fit one attacker on one training part; predict the held-out part.

    Runs single-threaded (BLAS and OpenMP limited to one thread): parallelism comes from
    ``jobs`` alone. OpenMP-parallel estimators (histogram boosting) slow down by orders of
    magnitude on small folds when the cores are busy.
    """
    with threadpool_limits(limits=1):
        return _fit_fold_inner(
            name, kind, seed, X, train_rows, y_train, test_rows, y_test, n_classes
        )


def _fit_fold_inner(
    name: str,
    kind: str,
    seed: int,
    X,
    train_rows: np.ndarray,
    y_train: np.ndarray,
    test_rows: np.ndarray,
    y_test: np.ndarray,
    n_classes: int,
) -> dict:
    started = time.perf_counter()
    sparse = sp.issparse(X)
    Xtr, Xte = X[train_rows], X[test_rows]
    if kind == "continuous":
        est = build_estimator(name, "regression", seed, sparse)
        est.fit(Xtr, y_train)
        return {
            "pred": np.asarray(est.predict(Xte), dtype=np.float64),
            "baseline": np.full(len(test_rows), float(np.mean(y_train))),
            "seconds": time.perf_counter() - started,
        }
    est = build_estimator(name, "classification", seed, sparse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter of linear SVMs / MLP
        est.fit(Xtr, y_train)
    fitted = np.asarray(est.classes_)
    proba = None
    if ATTACKERS[name].probabilistic:
        proba = _expand(est.predict_proba(Xte), fitted, n_classes)
        scores = proba
    else:
        d = np.asarray(est.decision_function(Xte), dtype=np.float64)
        if d.ndim == 1:
            d = np.column_stack([-d, d])
        scores = _expand(d, fitted, n_classes, fill=-np.inf)
    pred = np.asarray(est.predict(Xte), dtype=np.int64)
    return {
        "pred": pred,
        "scores": scores,
        "proba": proba,
        "seconds": time.perf_counter() - started,
    }


def _expand(cols: np.ndarray, fitted: np.ndarray, n_classes: int, fill: float = 0.0) -> np.ndarray:
    """Scores for all ``n_classes`` from the columns of the classes a fold model saw."""
    if len(fitted) == n_classes:
        return np.asarray(cols, dtype=np.float64)
    out = np.full((len(cols), n_classes), fill, dtype=np.float64)
    out[:, fitted] = cols
    return out


@dataclass(frozen=True, eq=False)
class _Pooled:
    """One attacker's out-of-fold outputs on one attribute, in the target's row order."""

    fold: np.ndarray
    pred: np.ndarray
    scores: np.ndarray | None  # categorical only
    proba: np.ndarray | None  # probabilistic classifiers only
    baseline: np.ndarray | None  # continuous only
    seconds: float


def _pooled(t: _Target, parts: list) -> _Pooled:
    n = len(t.y)
    fold = np.empty(n, dtype=np.int64)
    seconds = sum(out["seconds"] for _f, _te, out in parts)
    if t.kind == "continuous":
        pred, base = np.empty(n), np.empty(n)
        for f, te, out in parts:
            fold[te], pred[te], base[te] = f, out["pred"], out["baseline"]
        return _Pooled(fold, pred, None, None, base, seconds)
    k = len(t.classes)
    pred = np.empty(n, dtype=np.int64)
    scores = np.empty((n, k))
    proba = np.empty((n, k)) if parts[0][2]["proba"] is not None else None
    for f, te, out in parts:
        fold[te], pred[te], scores[te] = f, out["pred"], out["scores"]
        if proba is not None:
            proba[te] = out["proba"]
    return _Pooled(fold, pred, scores, proba, None, seconds)


def _row(t: _Target, model: str, p: _Pooled) -> dict:
    row: dict = {c: math.nan for c in TABLE_COLUMNS}
    row.update({"attribute": t.name, "kind": t.kind, "attacker": model, "n_users": len(t.y)})
    if t.kind == "continuous":
        assert p.baseline is not None
        metrics = regression_metrics(t.y, p.pred, p.baseline, p.fold)
        assert set(metrics) <= set(CONTINUOUS_METRICS)
    else:
        assert p.scores is not None
        metrics = classification_metrics(t.y, p.pred, p.scores, p.proba, p.fold, len(t.classes))
        if t.ranks is not None:
            metrics.update(ordinal_metrics(t.y, p.pred, p.proba, p.fold, t.ranks))
        assert set(metrics) <= set(CATEGORICAL_METRICS)
    row.update(metrics)
    row["seconds"] = p.seconds
    return row


def _add_uncertainty(
    t: _Target, rows: list[dict], pooled: dict[str, _Pooled], seed: tuple[int, int]
) -> None:
    """Permutation p-values (:mod:`privrec.audit.uncertainty`) of one categorical attribute's
    attackers, and bootstrap intervals of the two headline attackers (the strongest by
    ROC-AUC and the most balanced-accurate), into their ``rows``; the resamples and
    permutations are shared by the attackers (paired)."""
    k = len(t.classes)
    weights = bootstrap_weights(len(t.y), N_BOOT, seed)
    fold = next(iter(pooled.values())).fold
    scores = {m: p.scores for m, p in pooled.items() if p.scores is not None}
    test = permutation_test(t.y, fold, scores, k, N_PERM, seed)
    headline = {_first_max(rows, "roc_auc"), _first_max(rows, "balanced_accuracy")}
    for i, row in enumerate(rows):
        p = pooled[row["attacker"]]
        assert p.scores is not None
        if i in headline:
            row.update(bootstrap_intervals(t.y, p.pred, p.scores, k, weights))
        row["p_value"] = test["p_value"][row["attacker"]]  # type: ignore[index]
        row["p_value_family"] = test["p_value_family"]


def _first_max(rows: list[dict], metric: str) -> int:
    """Index of the row with the largest ``metric`` (the first on ties, NaN never)."""
    values = np.array([r[metric] for r in rows], dtype=float)
    return int(np.nanargmax(values)) if not np.isnan(values).all() else 0
