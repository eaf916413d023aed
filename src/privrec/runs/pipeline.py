"""The one run pipeline: train (or take a trained run) → evaluate → optional erasure → audit.

:func:`run_pipeline` is the only place that runs these stages; ``privrec train``, ``privrec
erase``, sweeps, ``reproduce``, ``demo`` and the Python API (:func:`privrec.train`,
:func:`privrec.erase`) all go through it, and :func:`privrec.runs.run_directory.write_run_directory` (through ``Run.save``)
is the only writer of its result.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from privrec.artifacts import Embeddings
from privrec.data.attributes import UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.interactions import Interactions
from privrec.data.split import Split, leave_last_out
from privrec.errors import ConfigError, DataError, FitError
from privrec.evaluation.protocol import evaluate_split, model_scorer, vectors_scorer
from privrec.runs.run_result import Run
from privrec.runs.run_spec import RunSpec, audit_attributes_for
from privrec.training.config import TrainConfig
from privrec.training.trainer import TrainedModel, Trainer

EpochCallback = Callable[[dict], None]


@dataclass(frozen=True)
class ErasureStep:
    """Post-hoc erasure of the user vectors (see :func:`privrec.defences.erasure.fit_eraser`).

    Attributes:
        method: ``leace``, ``inlp`` or ``purge``.
        attributes: attributes to erase (empty: the audited ones).
        options: method options.
        holdout: share of the labelled users (seeded draw) whose labels the eraser does not
            see; the audit then scores only these users.
        seed: seed of the eraser and of the holdout draw.
        refit_items: after the erasure, re-fit the item vectors and biases on the erased
            user vectors for at most this many epochs (:mod:`privrec.training.refit`; the
            user vectors do not move); 0: no re-fit.
    """

    method: str
    attributes: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)
    holdout: float = 0.0
    seed: int = 0
    refit_items: int = 0

    def __post_init__(self) -> None:
        from privrec.defences.erasure.fitting import METHODS

        if self.method not in METHODS:
            raise ConfigError(
                f"unknown erasure method {self.method!r}; expected one of: {', '.join(METHODS)}"
            )
        if not 0 <= self.holdout < 1:
            raise ConfigError(f"holdout must be in [0, 1), got {self.holdout}")
        refit = self.refit_items
        if isinstance(refit, bool) or not isinstance(refit, int) or refit < 0:
            raise ConfigError(f"refit_items must be a whole number of epochs >= 0, got {refit!r}")
        object.__setattr__(self, "attributes", tuple(self.attributes))
        object.__setattr__(self, "options", dict(self.options))


@dataclass(frozen=True)
class AuditStep:
    """The leakage audit of a run's vectors (see :func:`privrec.audit.audit_vectors`).

    Attributes:
        attackers: preset or attacker names.
        attributes: attributes to audit (empty: the run's default, see
            :func:`privrec.runs.run_spec.audit_attributes_for`).
        folds: cross-validation folds.
        seed: seed of the folds and attackers.
        jobs: worker processes.
        audit_trained: also audit the vectors before erasure (erased runs).
        lists: also audit each user's top-k list (see
            :attr:`~privrec.runs.run_spec.RunSpec.audit_lists`).
        progress: show a progress bar.
    """

    attackers: str | tuple[str, ...]
    attributes: tuple[str, ...] = ()
    folds: int = 5
    seed: int = 0
    jobs: int = 1
    audit_trained: bool = True
    progress: bool = False
    lists: bool = False

    def __post_init__(self) -> None:
        from privrec.audit.attackers import resolve_attackers

        resolve_attackers(self.attackers)  # an unknown attacker fails before any work
        object.__setattr__(self, "attributes", tuple(self.attributes))


def erasure_of(spec: RunSpec) -> ErasureStep | None:
    """The erasure stage a :class:`RunSpec` asks for (``None``: no erasure)."""
    if not spec.erasure:
        return None
    return ErasureStep(
        spec.erasure,
        spec.erasure_attributes,
        spec.erasure_options,
        spec.erasure_holdout,
        spec.seed,
        spec.erasure_refit_items,
    )


def audit_of(spec: RunSpec) -> AuditStep | None:
    """The audit stage a :class:`RunSpec` asks for (``None``: no audit)."""
    if spec.attackers is None:
        return None
    return AuditStep(
        spec.attackers, spec.audit_attributes, spec.folds, spec.seed, lists=spec.audit_lists
    )


def run_pipeline(
    spec: RunSpec,
    dataset: Dataset,
    split: Split | None = None,
    *,
    source: Run | None = None,
    erasure: ErasureStep | None = None,
    audit: AuditStep | None = None,
    callback: EpochCallback | None = None,
    record_warnings: bool = False,
    load_seconds: float = 0.0,
) -> Run:
    """Run ``spec`` on ``dataset``: train, evaluate, erase (optionally) and audit.

    Args:
        spec: what to run; its erasure and audit stages are :func:`erasure_of` and
            :func:`audit_of` unless ``erasure``/``audit`` are given.
        dataset: the data (its leave-last-out ``split`` is computed if not given).
        source: a trained run to start from instead of training (``privrec erase``); its
            vectors must be of ``dataset`` (same users, items and split).
        erasure: an erasure stage that replaces the spec's.
        audit: an audit stage that replaces the spec's.
        callback: called with each epoch's record during training.
        record_warnings: collect the warnings raised (into :attr:`Run.warnings`) instead of
            letting them through.
        load_seconds: time spent loading the data (recorded in :attr:`Run.timings`).

    Returns:
        The :class:`Run`. A diverged training returns a run with ``status: "diverged"`` and
        no vectors; it is never erased, audited or reported as a result.
    """
    started = time.perf_counter()
    erasure = erasure if erasure is not None else erasure_of(spec)
    audit = audit if audit is not None else audit_of(spec)
    split = split if split is not None else leave_last_out(dataset.interactions)
    names = _audit_names(spec, dataset, erasure, audit)
    if source is None:
        check_memory(spec, dataset)
    label_users = _label_users(spec, dataset, names, erasure, source)
    defence_attrs, held_attrs = _label_split(spec, dataset, names, erasure, label_users)
    with _warnings_recorded(record_warnings) as seen_warnings:
        t0 = time.perf_counter()
        if source is None:
            metrics, trained = train_and_evaluate(spec, dataset, split, callback, defence_attrs)
            order = None
            embeddings = _embeddings_of(trained, dataset) if trained is not None else None
        else:
            trained = None
            embeddings, order = _source_embeddings(source, dataset, split)
            metrics = _evaluate_vectors(embeddings, order, split, spec.train.k)
            metrics["before_erasure_recorded"] = {
                part: source.metrics.get(part)
                for part in ("validation", "test")
                if part in source.metrics
            }
        timings = {"load_seconds": load_seconds, "train_seconds": time.perf_counter() - t0}
        trained_embeddings = erasure_record = None
        audit_attrs = held_attrs
        if embeddings is not None and erasure is not None:
            erase_names = list(erasure.attributes) or names
            fit_attrs, audit_attrs, n_hidden = _holdout_labels(dataset, erase_names, erasure)
            if label_users is not None:
                fit_attrs, audit_attrs = defence_attrs, held_attrs
            trained_embeddings = embeddings
            embeddings, erasure_record = _erase(
                embeddings,
                order,
                dataset,
                split,
                fit_attrs,
                erase_names,
                erasure,
                metrics,
                spec.train,
            )
            erasure_record["holdout_users"] = n_hidden
            metrics["erasure"]["holdout_users"] = n_hidden
            if source is not None and source.erasure is not None:
                erasure_record["source_erasure"] = dict(source.erasure)
        if "before_erasure_recorded" in metrics:
            recorded = metrics.pop("before_erasure_recorded")
            if "before_erasure" in metrics:
                metrics["before_erasure"]["recorded"] = recorded
        final_audit = trained_audit = list_audit = None
        if embeddings is not None and audit is not None:
            t0 = time.perf_counter()
            final_audit = _audit(embeddings, order, dataset, audit_attrs, names, audit)
            if trained_embeddings is not None and audit.audit_trained:
                trained_audit = _audit(
                    trained_embeddings, order, dataset, audit_attrs, names, audit
                )
            timings["audit_seconds"] = time.perf_counter() - t0
            metrics["leakage"] = _headline(final_audit)
            if audit.lists:
                list_audit = _list_audit(
                    embeddings, order, dataset, split, audit_attrs, names, audit, spec.train.k
                )
                metrics["leakage_lists"] = _headline(list_audit)
            if trained_audit is not None:
                metrics["before_erasure"]["leakage"] = _headline(trained_audit)
        if embeddings is not None:
            t0 = time.perf_counter()
            baseline = None
            if trained is not None and erasure is None and wants_baseline(spec):
                baseline = _train_baseline(spec, dataset, split)
                timings["baseline_seconds"] = time.perf_counter() - t0
            _check_defence(
                spec,
                dataset,
                embeddings,
                order,
                audit_attrs,
                erasure_record,
                trained,
                final_audit,
                audit,
                metrics,
                label_users is not None,
                trained_embeddings,
                trained_audit,
                baseline,
            )
            timings["check_seconds"] = time.perf_counter() - t0
    timings["seconds"] = time.perf_counter() - started
    out_spec = spec
    if source is not None and erasure is not None:
        out_spec = dataclasses.replace(
            spec,
            erasure=erasure.method,
            erasure_attributes=tuple(erasure.attributes),
            erasure_options=dict(erasure.options),
            erasure_holdout=erasure.holdout,
            erasure_refit_items=erasure.refit_items,
            attackers=audit.attackers if audit is not None else None,
        )
    return Run(
        spec=out_spec,
        metrics=metrics,
        embeddings=embeddings,
        dataset=dataset.name,
        dataset_notes=tuple(dataset.notes),
        split=split.summary(),
        audit_attributes=tuple(names),
        audit=final_audit,
        trained_embeddings=trained_embeddings,
        trained_audit=trained_audit,
        list_audit=list_audit,
        erasure=erasure_record,
        source_run=source.path if source is not None else None,
        seen=_seen(split, order) if embeddings is not None else None,
        label_users=label_users,
        run_id=out_spec.run_id,
        trained=trained,
        warnings=tuple(seen_warnings),
        timings=timings,
    )


def check_run(spec: RunSpec, dataset: Dataset | None = None) -> None:
    """Check what can be checked of ``spec`` before any work: its attackers and erasure method
    and, given its ``dataset``, every attribute it names (defences, audit, erasure) and that
    its embedding tables fit in memory; and that its torch device exists on this machine."""
    from privrec.training.device import resolve_device

    erasure = erasure_of(spec)
    audit = audit_of(spec)
    resolve_device(spec.train.device)
    if dataset is None:
        return
    check_memory(spec, dataset)
    names = _audit_names(spec, dataset, erasure, audit)
    build_penalties(spec, dataset)
    if erasure is not None:
        from privrec.defences.erasure.affine import aligned_attributes
        from privrec.defences.erasure.fitting import checked_options

        inter = dataset.interactions
        erase_names = list(erasure.attributes) or names
        aligned_attributes(inter.user_ids, inter.n_users, dataset.attributes, erase_names)
        checked_options(erasure.method, erasure.options)


def check_memory(spec: RunSpec, dataset: Dataset) -> None:
    """Refuse, before allocating, a model whose weights (with their gradients and Adam's two
    moments) and largest activations cannot fit in this machine's memory
    (:func:`training_bytes`)."""
    need = training_bytes(spec.train, dataset.interactions)
    total = _physical_memory()
    if total and need > total:
        cfg = spec.train
        what = {
            "multvae": f"'train.vae_hidden' = {cfg.vae_hidden} and 'train.embedding_size' = "
            f"{cfg.embedding_size}",
            "lightgcn": f"'train.embedding_size' = {cfg.embedding_size} and 'train.gcn_layers' "
            f"= {cfg.gcn_layers}",
        }.get(cfg.model, f"'train.embedding_size' = {cfg.embedding_size}")
        raise ConfigError(
            f"{cfg.model} with {what} needs about {need / 2**30:,.1f} GiB for its weights, "
            f"their optimizer state and its activations; this machine has "
            f"{total / 2**30:,.1f} GiB"
        )


def training_bytes(config: TrainConfig, interactions: Interactions) -> int:
    """A lower bound on the memory a training run needs: every weight four times (value,
    gradient, Adam's two moments) plus the largest activations — LightGCN's K + 1 propagated
    tables and its normalised adjacency, a MultVAE batch's dense item rows."""
    users, items, d = interactions.n_users, interactions.n_items, config.embedding_size
    floats = 4
    if config.model == "multvae":
        h = config.vae_hidden
        weights = items * h + h + h * 2 * d + 2 * d + d * items + items
        activations = 3 * config.batch_size * items  # input rows, logits, their gradient
    else:
        weights = (users + items) * d + items
        if config.model == "tower-mf":
            weights += d * d + d
        activations = 0
        if config.model == "lightgcn":
            activations = (config.gcn_layers + 1) * (users + items) * d * 2  # forward, backward
            activations += 2 * 2 * len(interactions)  # CSR entries of Â, both directions
    return int((4 * weights + activations) * floats)


def _physical_memory() -> int:
    import os

    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not POSIX
        return 0


def train_and_evaluate(
    spec: RunSpec,
    dataset: Dataset,
    split: Split,
    callback: EpochCallback | None = None,
    attributes: UserAttributes | None = None,
) -> tuple[dict, TrainedModel | None]:
    """Train ``spec``'s recommender with its defences, then evaluate the kept weights.

    ``attributes``: the labels the defences may use (default: the dataset's, all of them).
    Returns ``(metrics, trained)``. A diverged run returns ``status: "diverged"`` with the
    reason and the history so far, and ``trained = None``.
    """
    config = spec.train
    penalties = build_penalties(spec, dataset, attributes)
    k = config.k
    start = time.perf_counter()
    try:
        trained = Trainer(config, penalties, callback).fit(split)
    except FitError as exc:
        return (
            {
                "status": "diverged",
                "reason": exc.reason,
                "message": str(exc),
                "epochs_run": len(exc.history),
                "wall_seconds": time.perf_counter() - start,
                "history": exc.history,
            },
            None,
        )
    test = evaluate_split(model_scorer(trained.model), split, "test", k)
    epoch_secs = [h["seconds"] for h in trained.history]
    metrics = {
        "status": "ok",
        "validation": {
            f"hr@{k}": trained.validation.get(f"hr@{k}"),
            f"ndcg@{k}": trained.validation.get(f"ndcg@{k}"),
        },
        "test": {f"hr@{k}": test[f"hr@{k}"], f"ndcg@{k}": test[f"ndcg@{k}"]},
        "users_evaluated": test["users"],
        "best_epoch": trained.best_epoch,
        "epochs_run": trained.epochs_run,
        "wall_seconds": time.perf_counter() - start,
        "seconds_per_epoch": sum(epoch_secs) / max(1, len(epoch_secs)),
        "device": trained.device,
        "threads": trained.threads,
        "history": list(trained.history),
    }
    return metrics, trained


def build_penalties(
    spec: RunSpec, dataset: Dataset, attributes: UserAttributes | None = None
) -> list:
    """The training-time defences of ``spec`` (adversarial heads, MMD/HSIC penalties), sized
    by the spec's one embedding size, on ``attributes`` (default: the dataset's).

    A head with λ = 0 is left out unless the spec asks for the per-epoch probe: it could not
    move the user vectors (its gradient to them is scaled by 0, for either objective), so the
    run's vectors are those it would train, without the heads' cost."""
    from privrec.defences.adversarial import build_adversaries
    from privrec.defences.penalties import build_dependence_penalties

    attrs = attributes if attributes is not None else dataset.attributes
    dim = spec.train.embedding_size
    adversary = spec.adversary
    if not adversary.probe:
        moving = {a: w for a, w in adversary.weights.items() if w != 0}
        adversary = dataclasses.replace(adversary, weights=moving)
    penalties: list = list(build_adversaries(attrs, adversary, dim))
    if spec.dependence is not None:
        penalties += build_dependence_penalties(attrs, spec.dependence, dim)
    return penalties


def label_users_mask(
    attributes: UserAttributes, names: Sequence[str], fraction: float, seed: int
) -> np.ndarray:
    """A stratified, seeded draw of ``fraction`` of the users (boolean mask over the user
    index): within every combination of the categorical ``names``' labels (missing counts as
    its own value), ``round(fraction × n)`` users, so the label users and the held-out users
    have the same class mix."""
    n = len(attributes.user_ids)
    cats = [attributes[a] for a in names if a in attributes and attributes[a].kind == "categorical"]
    strata = np.zeros(n, dtype=np.int64)
    for a in cats:
        strata = strata * (a.n_classes + 1) + (a.values.astype(np.int64) + 1)
    rng = np.random.default_rng(seed)
    mask = np.zeros(n, dtype=bool)
    for value in np.unique(strata):
        members = np.flatnonzero(strata == value)
        take = int(round(fraction * len(members)))
        mask[rng.permutation(members)[:take]] = True
    return mask


def _label_users(
    spec: RunSpec,
    dataset: Dataset,
    names: Sequence[str],
    erasure: ErasureStep | None,
    source: Run | None,
) -> np.ndarray | None:
    """Ids of the users whose labels the defences may use (``None``: every user)."""
    if source is not None and source.label_users is not None:
        if erasure is not None and erasure.holdout > 0:
            raise ConfigError(
                "the source run already hides labels from its defences (label_users.txt): "
                "erase it without a holdout"
            )
        return np.asarray(source.label_users)
    if spec.label_fraction >= 1:
        return None
    from privrec.runs.defence_check import defended_attributes

    erased = list(erasure.attributes) if erasure is not None else []
    strata = list(names) or defended_attributes(spec, erased)
    mask = label_users_mask(dataset.attributes, strata, spec.label_fraction, spec.seed)
    return np.asarray(dataset.interactions.user_ids)[mask]


def _label_split(
    spec: RunSpec,
    dataset: Dataset,
    names: Sequence[str],
    erasure: ErasureStep | None,
    label_users: np.ndarray | None,
) -> tuple[UserAttributes, UserAttributes]:
    """``(labels the defences may use, labels the audit scores)``: the label users' and the
    held-out users' labels of every defended and audited attribute."""
    if label_users is None:
        return dataset.attributes, dataset.attributes
    from privrec.runs.defence_check import defended_attributes

    erased = list(erasure.attributes) if erasure is not None else []
    hidden = list(dict.fromkeys([*defended_attributes(spec, erased), *names]))
    hidden = [a for a in hidden if a in dataset.attributes]
    ids = np.asarray(dataset.interactions.user_ids).astype(str)
    labelled = np.isin(ids, np.asarray(label_users).astype(str))
    return (
        dataset.attributes.without_labels(~labelled, hidden),
        dataset.attributes.without_labels(labelled, hidden),
    )


# -- stages --------------------------------------------------------------------------------------


def _audit_names(
    spec: RunSpec, dataset: Dataset, erasure: ErasureStep | None, audit: AuditStep | None
) -> list[str]:
    if audit is not None and audit.attributes:
        names = list(audit.attributes)
        unknown = [n for n in names if n not in dataset.attributes]
        if unknown:
            raise ConfigError(
                f"unknown attribute(s) {', '.join(unknown)} to audit; "
                f"available: {', '.join(dataset.attributes.names) or 'none'}"
            )
        return names
    if audit is None and erasure is None:
        return []
    if audit is None and erasure is not None and erasure.attributes:
        return list(erasure.attributes)
    return audit_attributes_for(spec, dataset.attributes)


@contextmanager
def _warnings_recorded(enabled: bool) -> Iterator[list[str]]:
    seen: list[str] = []
    if not enabled:
        yield seen
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield seen
    seen.extend(sorted({f"{w.category.__name__}: {w.message}" for w in caught}))


def _embeddings_of(trained: TrainedModel, dataset: Dataset) -> Embeddings:
    inter = dataset.interactions
    return Embeddings(
        inter.user_ids,
        trained.user_vectors(),
        inter.item_ids,
        trained.item_vectors(),
        trained.item_bias(),
    )


_Order = tuple[np.ndarray, np.ndarray]
"""``(user_order, item_order)``: rows of the embeddings file of each dataset user and item."""


def _source_embeddings(source: Run, dataset: Dataset, split: Split) -> tuple[Embeddings, _Order]:
    where = source.path or "the source run"
    if source.embeddings is None:
        raise DataError(
            f"{where}: the run is recorded as {source.status!r}, it has no vectors to erase"
        )
    if source.dataset and source.dataset != dataset.name:
        raise DataError(f"{where} was trained on dataset {source.dataset!r}, not {dataset.name!r}")
    emb = source.embeddings
    inter = dataset.interactions
    order = (
        _alignment(emb.user_ids, inter.user_ids, "user", where, dataset.name),
        _alignment(emb.item_ids, inter.item_ids, "item", where, dataset.name),
    )
    _check_split(source.split, split, where)
    return emb, order


def _rows(emb: Embeddings, order: _Order | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """User vectors, item vectors and item bias in the dataset's order."""
    if order is None:
        return emb.user_vectors, emb.item_vectors, emb.item_bias
    u, i = order
    return emb.user_vectors[u].astype(np.float32), emb.item_vectors[i], emb.item_bias[i]


def _evaluate_vectors(emb: Embeddings, order: _Order | None, split: Split, k: int) -> dict:
    users, items, bias = _rows(emb, order)
    out: dict[str, Any] = {"status": "ok", "device": "cpu"}  # stored vectors: scored on the CPU
    scorer = vectors_scorer(users, items, bias)
    for which in ("validation", "test"):
        m = evaluate_split(scorer, split, which, k)
        out[which] = {f"hr@{k}": m[f"hr@{k}"], f"ndcg@{k}": m[f"ndcg@{k}"]}
        if which == "test":
            out["users_evaluated"] = m["users"]
    return out


def _holdout_labels(
    dataset: Dataset, names: Sequence[str], erasure: ErasureStep
) -> tuple[UserAttributes, UserAttributes, int]:
    """``(labels the eraser may fit on, labels the audit scores, hidden users)``."""
    from privrec.defences.erasure.affine import aligned_attributes

    inter = dataset.interactions
    aligned_attributes(inter.user_ids, inter.n_users, dataset.attributes, names)  # fail early
    if erasure.holdout <= 0:
        return dataset.attributes, dataset.attributes, 0
    any_known = np.logical_or.reduce([dataset.attributes[n].known for n in names])
    draw = np.random.default_rng(erasure.seed).random(inter.n_users)
    hidden = any_known & (draw < erasure.holdout)
    return (
        dataset.attributes.without_labels(hidden, names),
        dataset.attributes.without_labels(~hidden, names),
        int(hidden.sum()),
    )


def _erase(
    emb: Embeddings,
    order: _Order | None,
    dataset: Dataset,
    split: Split,
    fit_attrs: UserAttributes,
    names: Sequence[str],
    step: ErasureStep,
    metrics: dict,
    train: TrainConfig,
) -> tuple[Embeddings, dict]:
    from privrec.defences.erasure.fitting import fit_eraser

    k = train.k
    t0 = time.perf_counter()
    users, items, bias = _rows(emb, order)
    ids = dataset.interactions.user_ids
    extra: dict[str, Any] = {}
    if step.method == "purge":  # it keeps each user's served list: items and seen items
        extra = {"items": (items, bias), "seen": split.train.csr}
    eraser = fit_eraser(
        ids, users, fit_attrs, list(names), step.method, step.seed, **extra, **step.options
    )
    erased = eraser(users)
    seconds = time.perf_counter() - t0
    refit = None
    if step.refit_items:
        from privrec.training.refit import refit_config, refit_items

        config = refit_config(train, erased.shape[1], step.refit_items)
        refit = refit_items(erased, items, bias, split, config)
        items, bias = refit.item_vectors, refit.item_bias
    scorer = vectors_scorer(erased, items, bias)
    metrics["before_erasure"] = {"validation": metrics["validation"], "test": metrics["test"]}
    for which in ("validation", "test"):
        m = evaluate_split(scorer, split, which, k)
        metrics[which] = {f"hr@{k}": m[f"hr@{k}"], f"ndcg@{k}": m[f"ndcg@{k}"]}
    metrics["erasure"] = {
        "method": step.method,
        "attributes": list(names),
        "rank_removed": eraser.rank_removed,
        "seconds": seconds,
        "holdout": step.holdout,
    }
    overlap = {k: v for k, v in eraser.info.items() if k.endswith("_overlap")}
    metrics["erasure"].update(overlap)
    if refit is not None:
        metrics["erasure"]["refit_items"] = refit.info
    if order is not None:  # back to the source file's row order
        erased = _to_file_order(erased, order[0])
        if refit is not None:
            items, bias = _to_file_order(items, order[1]), _to_file_order(bias, order[1])
    record = {
        "method": step.method,
        "attributes": list(names),
        "seed": step.seed,
        "options": dict(step.options),
        "k": k,
        "holdout": step.holdout,
        "fit": eraser.info,
        "rank_removed": eraser.rank_removed,
        "seconds": seconds,
    }
    out = emb.replace_users(erased)
    if refit is not None:
        record["refit_items"] = refit.info
        out = out.replace_items(items, bias)
    return out, record


def _to_file_order(rows: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``rows`` in the dataset's order back to the embeddings file's (``order[k]``: the file
    row of dataset row ``k``)."""
    out = np.empty_like(rows)
    out[order] = rows
    return out


def _audit(
    emb: Embeddings,
    order: _Order | None,
    dataset: Dataset,
    attributes: UserAttributes,
    names: Sequence[str],
    step: AuditStep,
):
    from privrec.audit import audit_vectors

    users, _, _ = _rows(emb, order)
    return audit_vectors(
        dataset.interactions.user_ids,
        users,
        attributes,
        names=list(names),
        attackers=step.attackers,
        folds=step.folds,
        seed=step.seed,
        jobs=step.jobs,
        progress=step.progress,
    )


def _list_audit(
    emb: Embeddings,
    order: _Order | None,
    dataset: Dataset,
    split: Split,
    attributes: UserAttributes,
    names: Sequence[str],
    step: AuditStep,
    k: int,
):
    """The audit of every user's top-``k`` list (training items excluded) on ``attributes``'
    users, by the sparse-capable attackers."""
    from privrec.audit.recommendations import RECOMMENDATION_ATTACKERS, audit_recommendations

    users, items, bias = _rows(emb, order)
    inter = dataset.interactions
    served = Embeddings(inter.user_ids, users, inter.item_ids, items, bias)
    return audit_recommendations(
        served,
        split,
        attributes,
        k=k,
        names=list(names),
        attackers=RECOMMENDATION_ATTACKERS,
        folds=step.folds,
        seed=step.seed,
        jobs=step.jobs,
    )


def _check_defence(
    spec: RunSpec,
    dataset: Dataset,
    emb: Embeddings,
    order: _Order | None,
    attributes: UserAttributes,
    erasure_record: dict | None,
    trained: TrainedModel | None,
    final_audit: Any,
    audit: AuditStep | None,
    metrics: dict,
    held_out: bool = False,
    source: Embeddings | None = None,
    source_audit: Any = None,
    baseline: _Baseline | None = None,
) -> None:
    """The post-hoc defence check (:mod:`privrec.runs.defence_check`), recorded in
    ``metrics["defence_check"]``; a leaky verdict makes the run's status ``leaky``.

    ``source``: the vectors before a post-hoc defence; ``baseline``: the plain twin of a
    training run (the vectors without its defences). Either is what the defended vectors
    must not be more readable than."""
    from privrec.runs.defence_check import check_defence, defended_attributes

    erased = list(erasure_record["attributes"]) if erasure_record is not None else []
    names = defended_attributes(spec, erased)
    if not names:
        return
    heads: dict[str, float] = {}
    if trained is not None and erasure_record is None and trained.best_epoch:
        kept = trained.history[trained.best_epoch - 1]
        heads = {a: kept[f"adv_{a}_acc"] for a in names if f"adv_{a}_acc" in kept}
    holdout = bool(erasure_record and erasure_record.get("holdout"))
    if held_out:
        population = "users whose labels the defences did not see"
    elif holdout:
        population = "users whose labels the eraser did not see"
    else:
        population = "all labelled users"
    users, _, _ = _rows(emb, order)
    before, kind = None, "before"
    if source is not None:
        before = _rows(source, order)[0]
    elif baseline is not None and baseline.embeddings is not None:
        before, kind = baseline.embeddings.user_vectors, "twin"
    check = check_defence(
        dataset.interactions.user_ids,
        users,
        attributes,
        names,
        heads,
        spec.seed,
        population,
        audit=final_audit,
        audit_folds=audit.folds if audit is not None else 5,
        source_vectors=before,
        source_audit=source_audit,
        source=kind,
    )
    if baseline is not None:
        check["baseline"] = baseline.record
    metrics["defence_check"] = check
    if check["verdict"] == "leaky":
        metrics["status"] = "leaky"
        metrics["reason"] = "defence check: " + check["reason"]
        metrics["message"] = (
            "the defended vectors leak what the defence was meant to hide: " + check["reason"]
        )


def wants_baseline(spec: RunSpec) -> bool:
    """Whether the defence check of a training run of ``spec`` trains its plain twin (see
    :attr:`RunSpec.baseline_check`): ``auto`` when the run trains with dependence penalties
    and no adversarial head (no in-training claim to check), ``always`` for any training-time
    defence."""
    heads = any(w != 0 for w in spec.adversary.weights.values())
    dep = spec.dependence
    penalties = dep is not None and any(
        w > 0 for fam in dep.weights().values() for w in fam.values()
    )
    if spec.baseline_check == "never" or spec.erasure:
        return False
    if spec.baseline_check == "always":
        return heads or penalties
    return penalties and not heads


@dataclass(frozen=True)
class _Baseline:
    """The plain twin of a defended run: its vectors (``None`` when it diverged) and record."""

    embeddings: Embeddings | None
    record: dict


def baseline_spec(spec: RunSpec) -> RunSpec:
    """``spec`` without its training-time defences (and erasure): the run's plain twin."""
    from privrec.defences.adversarial.adversary import AdversarySpec

    return dataclasses.replace(
        spec,
        adversary=AdversarySpec(),
        dependence=None,
        erasure=None,
        erasure_attributes=(),
        erasure_options={},
        erasure_holdout=0.0,
        label_fraction=1.0,
        baseline_check="never",
    )


def _train_baseline(spec: RunSpec, dataset: Dataset, split: Split) -> _Baseline:
    """Train the plain twin of ``spec`` on the same split, with the same seed."""
    twin = baseline_spec(spec)
    started = time.perf_counter()
    metrics, trained = train_and_evaluate(twin, dataset, split)
    record: dict[str, Any] = {
        "run_id": twin.run_id,
        "status": metrics["status"],
        "seconds": time.perf_counter() - started,
    }
    if trained is None:
        record["reason"] = metrics.get("reason", "")
        return _Baseline(None, record)
    record["test"] = metrics["test"]
    record["epochs_run"] = metrics["epochs_run"]
    return _Baseline(_embeddings_of(trained, dataset), record)


def _headline(result) -> list[dict]:
    return result.to_dict()["headline"]


def _seen(split: Split, order: _Order | None) -> sp.csr_matrix:
    """Training interactions as a users × items matrix, rows/columns in the embeddings'
    order."""
    seen = sp.csr_matrix(split.train.csr, dtype=np.float32)
    if order is None:
        return seen
    u, i = order
    return seen[np.argsort(u)][:, np.argsort(i)].tocsr()


def _alignment(
    emb_ids: np.ndarray, data_ids: np.ndarray, what: str, where: str, name: str
) -> np.ndarray:
    """``order`` such that ``emb_ids[order] == data_ids`` (as strings), else DataError."""
    e = np.asarray(emb_ids).astype(str)
    d = np.asarray(data_ids).astype(str)
    if e.shape == d.shape and np.array_equal(e, d):
        return np.arange(len(e))
    pos = {u: i for i, u in enumerate(e.tolist())}
    missing = [u for u in d.tolist() if u not in pos]
    if len(e) != len(d) or missing:
        extra = len(set(e.tolist()) - set(d.tolist()))
        raise DataError(
            f"{where}: the embeddings have {len(e)} {what}s, dataset {name!r} has {len(d)}"
            f" ({len(missing)} dataset {what}s without a vector, {extra} vectors of unknown "
            f"{what}s); was the run trained on this dataset?"
        )
    return np.array([pos[u] for u in d.tolist()], dtype=np.int64)


def _check_split(recorded: Mapping[str, Any], split: Split, where: str) -> None:
    if not recorded:
        return
    now = split.summary()
    diff = {
        key: (recorded[key], now[key])
        for key in now
        if key in recorded and recorded[key] != now[key]
    }
    if diff:
        detail = ", ".join(f"{key}: run {a} vs now {b}" for key, (a, b) in diff.items())
        raise DataError(
            f"{where}: the dataset's split differs from the one the run was trained on "
            f"({detail}); pass the same dataset (and generator options)"
        )


def load_spec_dataset(spec: RunSpec, progress: bool = False) -> Dataset:
    """Load the dataset a :class:`RunSpec` names, with its options."""
    from privrec.data.registry import load_dataset

    opts = dict(spec.data_options)
    return load_dataset(
        spec.dataset,
        spec.data_dir,
        progress=progress,
        synthetic=opts if spec.dataset == "synthetic" else None,
        csv=opts if spec.dataset == "csv" else None,
    )
