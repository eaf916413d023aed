"""The attacker suite: scikit-learn estimators that try to read an attribute off user vectors.

Every attacker has a classifier (categorical attributes) and names a regressor counterpart
(continuous attributes). Dense inputs are standardised (``StandardScaler``); sparse inputs
(bags of recommended items) are binary already and are passed through unscaled, and only the
attackers marked ``sparse_ok`` accept them.

Settings are chosen so that the ``paper`` preset audits 6,040 users × 50 dimensions on both
MovieLens attributes in about 60–70 s on one core; see :data:`ATTACKER_PRESETS`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, LinearSVC
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from privrec.errors import ConfigError

Factory = Callable[[int], BaseEstimator]


@dataclass(frozen=True)
class Attacker:
    """One attacker of the suite.

    Attributes:
        name: name used in presets, tables and ``--attackers``.
        classifier: ``seed → estimator`` for categorical attributes.
        regressor: name of the regressor used for continuous attributes (in :data:`REGRESSORS`).
        probabilistic: the classifier has ``predict_proba`` (enters log-loss and the MI bound);
            otherwise its ``decision_function`` is used for ROC-AUC only.
        sparse_ok: accepts a sparse bag-of-items matrix.
    """

    name: str
    classifier: Factory
    regressor: str
    probabilistic: bool = True
    sparse_ok: bool = False


@dataclass(frozen=True)
class Regressor:
    """A regressor for continuous attributes (``seed → estimator``)."""

    name: str
    build: Factory
    sparse_ok: bool = False


class TunedHistGB(BaseEstimator):
    """HistGradientBoosting with a small search over settings by early-stopping validation.

    Every candidate is fitted with early stopping on the same seeded inner validation split
    (``validation_fraction`` of the training fold); the one with the best validation loss is
    kept. No data outside the training fold is used, so the outer CV stays honest.
    """

    CANDIDATES: tuple[dict, ...] = (
        {"learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 20},
        {"learning_rate": 0.1, "max_depth": 3, "max_leaf_nodes": None, "min_samples_leaf": 40},
        {
            "learning_rate": 0.05,
            "max_leaf_nodes": 31,
            "min_samples_leaf": 20,
            "l2_regularization": 1.0,
        },
    )

    def __init__(self, regression: bool = False, random_state: int = 0, max_iter: int = 300):
        self.regression = regression
        self.random_state = random_state
        self.max_iter = max_iter

    def fit(self, X, y) -> TunedHistGB:
        base = HistGradientBoostingRegressor if self.regression else HistGradientBoostingClassifier
        best, best_score = None, -np.inf
        for params in self.CANDIDATES:
            est = base(
                max_iter=self.max_iter,
                early_stopping=True,
                validation_fraction=0.2,
                n_iter_no_change=10,
                random_state=self.random_state,
                **params,
            )
            est.fit(X, y)
            score = float(np.max(est.validation_score_))
            if score > best_score:
                best, best_score = est, score
        assert best is not None, "CANDIDATES is empty"
        self.estimator_ = best
        self.best_params_ = best.get_params()
        if not self.regression:
            self.classes_ = best.classes_
        return self

    def predict(self, X):
        return self.estimator_.predict(X)

    def predict_proba(self, X):
        return self.estimator_.predict_proba(X)


class TunedHistGBClassifier(ClassifierMixin, TunedHistGB):
    """Classifier face of :class:`TunedHistGB`."""


class TunedHistGBRegressor(RegressorMixin, TunedHistGB):
    """Regressor face of :class:`TunedHistGB`."""

    def __init__(self, regression: bool = True, random_state: int = 0, max_iter: int = 300):
        super().__init__(regression=regression, random_state=random_state, max_iter=max_iter)


GRAM_MAX_ROWS = 10_000
"""Largest training part for which the RBF SVMs work on an explicit Gram matrix (10,000 rows:
800 MB of float64); larger ones, and sparse inputs, let libsvm compute kernel values itself."""


class _GramRBF(BaseEstimator):
    """An RBF-kernel libsvm model (``gamma="scale"``, as ``SVC(kernel="rbf")``) fitted on the
    explicit Gram matrix of its training part, computed once with one matrix product.

    Same model and same predictions as libsvm's own RBF kernel up to floating-point rounding
    of the kernel values, in 0.70–0.95× the time on ML-1M's vectors (benchmarks/README.md):
    libsvm otherwise recomputes kernel rows for each of the one-vs-one sub-problems of a
    multi-class attribute. Sparse inputs and training parts over :data:`GRAM_MAX_ROWS` rows
    use libsvm's kernel directly.
    """

    _svm: type = SVC

    def __init__(self, C: float = 1.0, cache_size: float = 500, random_state: int | None = None):
        self.C = C
        self.cache_size = cache_size
        self.random_state = random_state

    def _model(self, kernel: str) -> BaseEstimator:
        kw = {"random_state": self.random_state} if self._svm is SVC else {}
        return self._svm(kernel=kernel, C=self.C, gamma="scale", cache_size=self.cache_size, **kw)

    def fit(self, X, y) -> _GramRBF:
        if sp.issparse(X) or X.shape[0] > GRAM_MAX_ROWS:
            self.X_fit_ = None
            self.model_ = self._model("rbf").fit(X, y)
        else:
            X = np.ascontiguousarray(X, dtype=np.float64)
            var = float(X.var())
            self.gamma_ = 1.0 / (X.shape[1] * var) if var != 0 else 1.0  # sklearn's "scale"
            self.X_fit_, self.sq_fit_ = X, np.einsum("ij,ij->i", X, X)
            self.model_ = self._model("precomputed").fit(self._kernel(X), y)
        if hasattr(self.model_, "classes_"):
            self.classes_ = self.model_.classes_
        return self

    def _kernel(self, X) -> np.ndarray:
        """``exp(−γ ‖x − x_i‖²)`` against every training row (libsvm's own formula)."""
        if self.X_fit_ is None:
            return X
        X = np.ascontiguousarray(X, dtype=np.float64)
        d2 = X @ self.X_fit_.T  # the one (n, n_fit) array: the rest happens in place
        d2 *= -2.0
        d2 += np.einsum("ij,ij->i", X, X)[:, None]
        d2 += self.sq_fit_[None, :]
        np.maximum(d2, 0.0, out=d2)
        d2 *= -self.gamma_
        return np.exp(d2, out=d2)

    def predict(self, X):
        return self.model_.predict(self._kernel(X))


class GramRBFSVC(ClassifierMixin, _GramRBF):
    """``SVC(kernel="rbf", gamma="scale")`` on an explicit Gram matrix (:class:`_GramRBF`)."""

    def decision_function(self, X):
        return self.model_.decision_function(self._kernel(X))


class GramRBFSVR(RegressorMixin, _GramRBF):
    """``SVR(kernel="rbf", gamma="scale")`` on an explicit Gram matrix (:class:`_GramRBF`)."""

    _svm = SVR


def _logistic(seed: int) -> BaseEstimator:
    # lbfgs on the multinomial loss: a softmax readout, the adversary's form.
    return LogisticRegression(C=1.0, max_iter=1000, random_state=seed)


def _linear_svm(c: float) -> Factory:
    def build(seed: int) -> BaseEstimator:
        return LinearSVC(C=c, dual="auto", max_iter=5000, tol=1e-4, random_state=seed)

    return build


def _rbf_svm(seed: int) -> BaseEstimator:
    return GramRBFSVC(C=1.0, cache_size=500, random_state=seed)


def _decision_tree(seed: int) -> BaseEstimator:
    return DecisionTreeClassifier(min_samples_leaf=5, random_state=seed)


def _random_forest(seed: int) -> BaseEstimator:
    return RandomForestClassifier(n_estimators=100, min_samples_leaf=5, n_jobs=1, random_state=seed)


def _gradient_boosting(seed: int) -> BaseEstimator:
    # Histogram boosting: same model family as GradientBoostingClassifier at a fraction of the
    # cost (7 classes × 100 stages of exact-split trees take minutes at 6k users).
    return HistGradientBoostingClassifier(
        max_iter=100, max_depth=3, learning_rate=0.1, early_stopping=False, random_state=seed
    )


def _mlp(seed: int) -> BaseEstimator:
    return MLPClassifier(
        hidden_layer_sizes=(128, 64),
        alpha=1e-3,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=10,
        max_iter=200,
        random_state=seed,
    )


def _knn(seed: int) -> BaseEstimator:
    return KNeighborsClassifier(n_neighbors=25, weights="distance")


def _hist_gb_tuned(seed: int) -> BaseEstimator:
    return TunedHistGBClassifier(random_state=seed)


ATTACKERS: dict[str, Attacker] = {
    a.name: a
    for a in (
        Attacker("logistic", _logistic, "ridge", sparse_ok=True),
        Attacker("linear_svm_c0.1", _linear_svm(0.1), "ridge", False, True),
        Attacker("linear_svm_c1", _linear_svm(1.0), "ridge", False, True),
        Attacker("linear_svm_c10", _linear_svm(10.0), "ridge", False, True),
        Attacker("rbf_svm", _rbf_svm, "rbf_svr", False, True),
        Attacker("decision_tree", _decision_tree, "decision_tree", sparse_ok=True),
        Attacker("random_forest", _random_forest, "random_forest", sparse_ok=True),
        Attacker("gradient_boosting", _gradient_boosting, "gradient_boosting"),
        Attacker("mlp", _mlp, "mlp", sparse_ok=True),
        Attacker("knn", _knn, "knn", sparse_ok=True),
        Attacker("hist_gb_tuned", _hist_gb_tuned, "hist_gb_tuned"),
    )
}

REGRESSORS: dict[str, Regressor] = {
    r.name: r
    for r in (
        Regressor("ridge", lambda seed: Ridge(alpha=1.0), True),
        Regressor("rbf_svr", lambda seed: GramRBFSVR(C=1.0, cache_size=500), True),
        Regressor(
            "decision_tree",
            lambda seed: DecisionTreeRegressor(min_samples_leaf=5, random_state=seed),
            True,
        ),
        Regressor(
            "random_forest",
            lambda seed: RandomForestRegressor(
                n_estimators=100, min_samples_leaf=2, max_features=0.33, n_jobs=1, random_state=seed
            ),
            True,
        ),
        Regressor(
            "gradient_boosting",
            lambda seed: HistGradientBoostingRegressor(
                max_iter=100, max_depth=3, early_stopping=False, random_state=seed
            ),
        ),
        Regressor(
            "mlp",
            lambda seed: MLPRegressor(
                hidden_layer_sizes=(128, 64),
                alpha=1e-3,
                early_stopping=True,
                validation_fraction=0.15,
                n_iter_no_change=10,
                max_iter=200,
                random_state=seed,
            ),
            True,
        ),
        Regressor(
            "knn", lambda seed: KNeighborsRegressor(n_neighbors=25, weights="distance"), True
        ),
        Regressor("hist_gb_tuned", lambda seed: TunedHistGBRegressor(random_state=seed)),
    )
}

ATTACKER_PRESETS: dict[str, tuple[str, ...]] = {
    "fast": ("logistic",),
    "paper": (
        "logistic",
        "linear_svm_c0.1",
        "linear_svm_c1",
        "linear_svm_c10",
        "rbf_svm",
        "decision_tree",
        "random_forest",
        "gradient_boosting",
    ),
    "strong": ("logistic", "rbf_svm", "random_forest", "mlp", "knn", "hist_gb_tuned"),
}
ATTACKER_PRESETS["all"] = tuple(
    dict.fromkeys(ATTACKER_PRESETS["paper"] + ATTACKER_PRESETS["strong"])
)


def resolve_attackers(attackers: str | Sequence[str]) -> tuple[str, ...]:
    """Attacker names from a preset name, a comma list, or a sequence of names/presets.

    Raises:
        ConfigError: an unknown preset or attacker name, or an empty selection.
    """
    items = attackers.split(",") if isinstance(attackers, str) else list(attackers)
    names: list[str] = []
    for raw in items:
        item = str(raw).strip()
        if not item:
            continue
        if item in ATTACKER_PRESETS:
            names.extend(ATTACKER_PRESETS[item])
        elif item in ATTACKERS:
            names.append(item)
        else:
            raise ConfigError(
                f"unknown attacker or preset {item!r}; presets: {', '.join(ATTACKER_PRESETS)}; "
                f"attackers: {', '.join(ATTACKERS)}"
            )
    if not names:
        raise ConfigError("no attackers selected")
    return tuple(dict.fromkeys(names))


def regressors_for(attackers: Sequence[str]) -> tuple[str, ...]:
    """The (deduplicated) regressors standing in for ``attackers`` on continuous attributes."""
    return tuple(dict.fromkeys(ATTACKERS[a].regressor for a in attackers))


def build_estimator(name: str, task: str, seed: int, sparse: bool = False) -> BaseEstimator:
    """A fresh estimator: ``task`` is ``"classification"`` (attacker name) or ``"regression"``
    (regressor name). Dense inputs get a ``StandardScaler`` in front; sparse ones none.

    Raises:
        ConfigError: unknown name, or an attacker that cannot take sparse input.
    """
    if task == "classification":
        spec = ATTACKERS.get(name)
        if spec is None:
            raise ConfigError(f"unknown attacker {name!r}")
        est, ok = spec.classifier(seed), spec.sparse_ok
    else:
        rspec = REGRESSORS.get(name)
        if rspec is None:
            raise ConfigError(f"unknown regressor {name!r}")
        est, ok = rspec.build(seed), rspec.sparse_ok
    if sparse:
        if not ok:
            raise ConfigError(f"attacker {name!r} does not accept sparse (bag-of-items) input")
        return clone(est)
    return Pipeline([("scale", StandardScaler()), ("model", est)])
