"""INLP: iterative nullspace projection (Ravfogel et al., 2020) with scikit-learn classifiers.

Each iteration trains one linear classifier per attribute (logistic regression or a linear SVM,
class-balanced; ridge regression for a continuous attribute) on part of the users with a known
label, scores it on the held-out rest, and projects the vectors onto the nullspace of the weight
vectors of every attribute still readable. Iterations stop when every attribute's held-out
classifier is at chance (balanced accuracy ≤ 1/classes + ``tol``; R² ≤ ``tol``), when every
direction is gone, or after ``n_iterations``.

The projection is orthogonal and centred on the fit users' mean: ``x ↦ x − (x − μ) B Bᵀ`` with
``B`` an orthonormal basis of every direction removed, so the removed directions carry the same
(mean) value for all users instead of 0. Several attributes share one projection (the union of
their directions). A k-class attribute removes up to k (SVM, one-vs-rest) or k − 1 (multinomial
logistic regression) directions per iteration, which is a lot on small vectors.

INLP removes what *its* classifiers find, so unlike LEACE it gives no guarantee: a linear attacker
trained differently may still read a little.
"""

from __future__ import annotations

import warnings

import numpy as np

from privrec.data.attributes import Attribute
from privrec.defences.erasure.affine import AffineEraser
from privrec.errors import ConfigError

CLASSIFIERS = ("logistic", "svm")


def fit_inlp(
    x: np.ndarray,
    attributes: list[Attribute],
    *,
    seed: int = 0,
    n_iterations: int = 10,
    classifier: str = "logistic",
    C: float = 1.0,
    tol: float = 0.01,
    dev_fraction: float = 0.3,
    rank_per_iteration: int | None = None,
) -> AffineEraser:
    """Fit INLP on ``x`` (n, dim) for ``attributes`` (aligned to the rows of ``x``).

    Args:
        seed: seed of the train/held-out split of the labelled users (and of the SVM).
        n_iterations: most iterations (each removes the current classifiers' directions).
        classifier: ``logistic`` (multinomial, class-balanced) or ``svm`` (``LinearSVC``,
            one-vs-rest, class-balanced). Continuous attributes always use ridge regression.
        C: inverse regularisation strength of the classifiers (ridge: ``alpha = 1 / C``).
        tol: an attribute is at chance when its held-out balanced accuracy is at most
            ``1 / n_classes + tol`` (continuous: R² at most ``tol``).
        dev_fraction: share of each attribute's labelled users held out for the stopping test.
        rank_per_iteration: remove at most this many directions per attribute per iteration
            (the top singular directions of its classifier's weights); ``None`` = the whole
            row space (classic INLP). ``1`` erases gradually, which matters on small vectors.
    """
    if classifier not in CLASSIFIERS:
        raise ConfigError(
            f"INLP classifier must be one of {', '.join(CLASSIFIERS)}, got {classifier!r}"
        )
    if int(n_iterations) != n_iterations or n_iterations < 1:
        raise ConfigError(f"INLP n_iterations must be an integer >= 1, got {n_iterations}")
    if not C > 0:
        raise ConfigError(f"INLP C must be > 0, got {C}")
    if not 0 < dev_fraction < 1:
        raise ConfigError(f"INLP dev_fraction must be in (0, 1), got {dev_fraction}")
    if rank_per_iteration is not None and (
        int(rank_per_iteration) != rank_per_iteration or rank_per_iteration < 1
    ):
        raise ConfigError(
            f"INLP rank_per_iteration must be an integer >= 1, got {rank_per_iteration}"
        )
    if not tol >= 0:
        raise ConfigError(f"INLP tol must be >= 0, got {tol}")
    n_iterations = int(n_iterations)
    d = x.shape[1]
    tasks = [_Task(a, dev_fraction, seed) for a in attributes]
    fit_mask = np.logical_or.reduce([a.known for a in attributes])
    mu = x[fit_mask].mean(axis=0)
    xc = x - mu
    basis = np.zeros((d, 0))
    active = list(tasks)
    history: list[dict] = []
    stopped = "max_iterations"
    for it in range(1, n_iterations + 1):
        xp = xc - (xc @ basis) @ basis.T
        record: dict = {"iteration": it}
        rows = []
        for task in list(active):
            coef, score = task.fit(xp, classifier, C, seed)
            record[task.name] = score
            if score <= task.chance + tol:
                active.remove(task)
            else:
                coef = coef - (coef @ basis) @ basis.T
                if rank_per_iteration is not None and coef.shape[0] > rank_per_iteration:
                    _, _, vt = np.linalg.svd(coef, full_matrices=False)
                    coef = vt[: int(rank_per_iteration)]
                rows.append(coef)
        if not rows:
            record["removed"] = 0
            history.append(record)
            stopped = "chance"
            break
        w = np.vstack(rows)
        w = w - (w @ basis) @ basis.T
        _, s, vt = np.linalg.svd(w, full_matrices=False)
        keep = s > 1e-9 * max(1.0, float(s.max(initial=0.0)))
        new = vt[keep].T
        record["removed"] = int(new.shape[1])
        history.append(record)
        if new.shape[1] == 0:
            stopped = "no_direction"
            break
        basis, _ = np.linalg.qr(np.hstack([basis, new]))
        if basis.shape[1] >= d:
            stopped = "all_directions"
            break
    else:
        stopped = "max_iterations"
    xp = xc - (xc @ basis) @ basis.T
    final = {t.name: t.fit(xp, classifier, C, seed)[1] for t in tasks}
    proj = basis @ basis.T
    info = {
        "classifier": classifier,
        "C": float(C),
        "tol": float(tol),
        "dev_fraction": float(dev_fraction),
        "n_iterations": n_iterations,
        "rank_per_iteration": rank_per_iteration,
        "iterations_run": len(history),
        "stopped": stopped,
        "rank_removed": int(basis.shape[1]),
        "chance": {t.name: t.chance for t in tasks},
        "held_out_score": {
            t.name: ("balanced_accuracy" if t.kind == "categorical" else "r2") for t in tasks
        },
        "held_out_final": final,
        "history": history,
        "fit_users": {t.name: int(t.known.sum()) for t in tasks},
    }
    return AffineEraser(
        "inlp", tuple(a.name for a in attributes), np.eye(d) - proj, mu @ proj, info
    )


class _Task:
    """One attribute's labelled users, split into a training and a held-out part."""

    def __init__(self, attribute: Attribute, dev_fraction: float, seed: int) -> None:
        self.name = attribute.name
        self.kind = attribute.kind
        self.known = attribute.known
        idx = np.flatnonzero(self.known)
        y = attribute.values[idx]
        rng = np.random.default_rng(seed)
        dev = np.zeros(len(idx), dtype=bool)
        if self.kind == "categorical":
            for c in np.unique(y):  # stratified: the same share of each class held out
                members = np.flatnonzero(y == c)
                n_dev = int(round(len(members) * dev_fraction))
                if len(members) >= 2:
                    dev[rng.choice(members, size=min(n_dev, len(members) - 1), replace=False)] = (
                        True
                    )
        else:
            dev[
                rng.choice(
                    len(idx), size=max(1, int(round(len(idx) * dev_fraction))), replace=False
                )
            ] = True
        if dev.all() or not dev.any():
            dev[:] = False
            dev[rng.choice(len(idx), size=max(1, len(idx) // 3), replace=False)] = True
        self.train_idx, self.dev_idx = idx[~dev], idx[dev]
        self.y_train, self.y_dev = y[~dev], y[dev]
        if self.kind == "categorical":
            self.y_train = self.y_train.astype(np.int64)
            self.y_dev = self.y_dev.astype(np.int64)
            self.chance = 1.0 / max(1, len(np.unique(self.y_train)))
        else:
            self.chance = 0.0

    def fit(self, x: np.ndarray, classifier: str, C: float, seed: int) -> tuple[np.ndarray, float]:
        """Train on the training part of ``x``; return (weight rows, held-out score)."""
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.metrics import balanced_accuracy_score, r2_score
        from sklearn.svm import LinearSVC

        xt, xd = x[self.train_idx], x[self.dev_idx]
        if self.kind == "continuous":
            model = Ridge(alpha=1.0 / C).fit(xt, self.y_train)
            score = float(r2_score(self.y_dev, model.predict(xd))) if len(xd) > 1 else 0.0
            return np.atleast_2d(model.coef_), score
        if len(np.unique(self.y_train)) < 2:
            return np.zeros((1, x.shape[1])), self.chance
        if classifier == "logistic":
            model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000)
        else:
            model = LinearSVC(C=C, class_weight="balanced", random_state=seed, max_iter=5000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter near chance
            model.fit(xt, self.y_train)
            score = float(balanced_accuracy_score(self.y_dev, model.predict(xd)))
        return np.atleast_2d(model.coef_), score
