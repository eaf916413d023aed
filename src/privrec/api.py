"""The curated Python API: load data, train (with defences), audit, erase or purge, save, load,
recommend.

Every function here is a thin front to the one run pipeline
(:func:`privrec.runs.pipeline.run_pipeline`) and the one run-directory schema
(:mod:`privrec.runs.run_directory`); the ``privrec`` command uses the same functions.

Example::

    import privrec

    ds = privrec.load_dataset("synthetic", seed=0)
    run = privrec.train(ds, embedding_size=16, epochs=20, adversaries={"attr": 0.5}, seed=0)
    run.metrics["test"]["hr@10"]
    audit = privrec.audit(run, ds, attackers="fast")
    recs = run.recommend(users=ds.user_ids[:5], k=10)
    run.save("out/run"); again = privrec.load_run("out/run")
    erased = privrec.erase(run, ds, method="leace", attributes=["attr"])
    purged = privrec.purge("vectors.npz", ds, attributes=["attr"], label_fraction=0.5)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from privrec.audit.audit_run import audit_run as audit
from privrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from privrec.data.dataset import Dataset
    from privrec.runs.run_result import Run
    from privrec.runs.run_spec import RunSpec


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    seed: int | None = None,
    download: bool = True,
    progress: bool = False,
    **options: Any,
) -> Dataset:
    """Load a dataset by name: ``synthetic``, ``ml-100k``, ``ml-1m`` or ``csv``.

    Args:
        name: the dataset.
        data_dir: folder of the MovieLens files (default: ``$PRIVREC_DATA_DIR/<name>/``, then
            the user cache, then a verified download).
        seed: seed of the synthetic generator.
        download: allow downloading MovieLens when no local copy is found.
        progress: show a download progress bar.
        **options: synthetic generator fields (:class:`~privrec.data.synthetic.SyntheticConfig`:
            ``n_users``, ``n_items``, ``strength``, ``mode``...) or, for ``csv``, the
            arguments of :func:`~privrec.data.tabular.load_csv` (``interactions_path``,
            ``attributes_path``...).

    Returns:
        The :class:`~privrec.data.dataset.Dataset` (its ``user_ids`` are the original ids).
    """
    from privrec.data.registry import load_dataset as _load

    if seed is not None:
        if name != "synthetic":
            raise ConfigError("seed= applies to the synthetic dataset only")
        options["seed"] = seed
    if options and name in ("ml-1m", "ml-100k"):
        raise ConfigError(f"dataset {name!r} takes no options, got {', '.join(options)}")
    return _load(
        name,
        data_dir,
        download=download,
        progress=progress,
        synthetic=options if name == "synthetic" else None,
        csv=options if name == "csv" else None,
    )


def train_spec(
    dataset: Dataset | None,
    *,
    embedding_size: int = 32,
    epochs: int | None = None,
    adversaries: Mapping[str, float] | None = None,
    adversary: Mapping[str, Any] | None = None,
    mmd: Mapping[str, float] | None = None,
    hsic: Mapping[str, float] | None = None,
    swd: Mapping[str, float] | None = None,
    dependence: Mapping[str, Any] | None = None,
    attackers: str | Sequence[str] | None = None,
    audit_attributes: Sequence[str] = (),
    folds: int = 5,
    seed: int = 0,
    label_fraction: float = 1.0,
    baseline_check: str = "auto",
    **train_options: Any,
) -> RunSpec:
    """The :class:`~privrec.runs.run_spec.RunSpec` that :func:`train` runs (same arguments;
    ``dataset=None`` checks the settings alone, before any data is loaded)."""
    from privrec.defences.adversarial import AdversarySpec
    from privrec.defences.dependence import DependenceSpec
    from privrec.runs.run_spec import RUN_TRAIN_DEFAULTS, RunSpec
    from privrec.training.config import TrainConfig

    for name, given in (("adversary", adversary), ("dependence", dependence)):
        for key in ("weights", "mmd", "hsic", "swd", "seed"):
            if given and key in given:
                raise ConfigError(
                    f"{name}[{key!r}]: give the weights as adversaries=/mmd=/hsic=/swd= and "
                    "the seed as seed="
                )
    try:
        options = {**RUN_TRAIN_DEFAULTS, **train_options}
        model = options.pop("model", "bpr-mf")
        if epochs is not None:
            options["epochs"] = epochs
        config = TrainConfig.for_model(model, **options, embedding_size=embedding_size, seed=seed)
        adv = AdversarySpec(weights=dict(adversaries or {}), seed=seed, **dict(adversary or {}))
        dep = DependenceSpec(
            mmd=dict(mmd or {}),
            hsic=dict(hsic or {}),
            swd=dict(swd or {}),
            seed=seed,
            **dict(dependence or {}),
        )
    except TypeError as exc:  # an unknown keyword
        raise ConfigError(str(exc)) from None
    return RunSpec(
        dataset=dataset.name if dataset is not None else "synthetic",
        data_options=dict(dataset.options) if dataset is not None else {},
        train=config,
        adversary=adv,
        dependence=None if dep.empty else dep,
        audit_attributes=tuple(audit_attributes),
        attackers=attackers
        if attackers is None or isinstance(attackers, str)
        else tuple(attackers),
        folds=folds,
        seed=seed,
        label_fraction=label_fraction,
        baseline_check=baseline_check,
    )


def train(
    dataset: Dataset,
    *,
    embedding_size: int = 32,
    epochs: int | None = None,
    adversaries: Mapping[str, float] | None = None,
    adversary: Mapping[str, Any] | None = None,
    mmd: Mapping[str, float] | None = None,
    hsic: Mapping[str, float] | None = None,
    swd: Mapping[str, float] | None = None,
    dependence: Mapping[str, Any] | None = None,
    attackers: str | Sequence[str] | None = None,
    audit_attributes: Sequence[str] = (),
    folds: int = 5,
    seed: int = 0,
    label_fraction: float = 1.0,
    baseline_check: str = "auto",
    callback: Callable[[dict], None] | None = None,
    **train_options: Any,
) -> Run:
    """Train a recommender on ``dataset`` (optionally with defences) and evaluate it.

    Args:
        dataset: from :func:`load_dataset`.
        embedding_size: dimension of the user and item vectors (the defences use the same).
        epochs: maximum epochs (early stopping on validation HR@10, see ``patience``).
        adversaries: attribute → λ of adversarial heads behind gradient reversal.
        adversary: other :class:`~privrec.defences.adversarial.AdversarySpec` fields
            (``head``, ``n_heads``, ``steps``, ``schedule``, ``objective``...).
        mmd: attribute → weight of an MMD dependence penalty.
        hsic: attribute → weight of an HSIC dependence penalty.
        swd: attribute → weight of the sliced-Wasserstein alignment of its groups' vectors to
            their barycenter (:mod:`privrec.defences.alignment`).
        dependence: other :class:`~privrec.defences.dependence.DependenceSpec` fields.
        attackers: audit the trained vectors with this attacker preset or list (default: no
            audit; :func:`audit` audits later).
        audit_attributes: attributes to audit (default: those the defences name, else the
            dataset's usual ones).
        folds: cross-validation folds of the audit.
        seed: seed of initialisation, sampling, heads and audit.
        label_fraction: share of the users (stratified, seeded) whose labels the defences may
            use; the audit and the defence check score only the others, and ``run.label_users``
            lists them (``label_users.txt`` in the run directory).
        baseline_check: ``auto`` (default), ``always`` or ``never``: whether the defence check
            also trains the plain twin (same model, split and seed, no defence) and calls the
            run ``leaky`` when the defended vectors are more readable than the twin's
            (``auto``: for MMD/HSIC penalties without adversarial heads, whose training makes
            no claim to check; see :attr:`~privrec.runs.run_spec.RunSpec.baseline_check`).
        callback: called with each epoch's record.
        **train_options: other :class:`~privrec.training.config.TrainConfig` fields
            (``learning_rate``, ``batch_size``, ``optimizer``, ``patience``, ``model``...).

    Returns:
        The :class:`~privrec.runs.run_result.Run`; ``run.status`` is ``"diverged"`` (and
        it has no vectors) when training diverged.
    """
    from privrec.runs.pipeline import run_pipeline

    spec = train_spec(
        dataset,
        embedding_size=embedding_size,
        epochs=epochs,
        adversaries=adversaries,
        adversary=adversary,
        mmd=mmd,
        hsic=hsic,
        swd=swd,
        dependence=dependence,
        attackers=attackers,
        audit_attributes=audit_attributes,
        folds=folds,
        seed=seed,
        label_fraction=label_fraction,
        baseline_check=baseline_check,
        **train_options,
    )
    return run_pipeline(spec, dataset, callback=callback)


def erase(
    run: Run | str | Path,
    dataset: Dataset,
    *,
    method: str = "leace",
    attributes: Sequence[str] | str,
    holdout: float = 0.0,
    label_fraction: float | None = None,
    options: Mapping[str, Any] | None = None,
    refit_items: int = 0,
    attackers: str | Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    jobs: int = 1,
    audit_trained: bool = True,
    progress: bool = False,
) -> Run:
    """Erase ``attributes`` from ``run``'s user vectors (LEACE, INLP or the purge) and
    re-evaluate.

    Args:
        run: a trained or loaded run of ``dataset``, a run directory, or an ``.npz`` of any
            system's vectors (arrays ``user_ids``, ``user_vectors``, ``item_ids``,
            ``item_vectors`` and optionally ``item_bias``; scores ``user · item + bias``).
        dataset: the dataset the vectors were trained on (same users and items; HR@k is
            measured on its leave-last-out split).
        method: ``leace``, ``inlp`` or ``purge`` (see :func:`purge`).
        attributes: attributes to erase (a list or a comma-separated string).
        holdout: share of the labelled users whose labels the eraser does not see; the
            audit then scores only these users.
        label_fraction: share of the users (stratified, seeded draw, recorded as
            ``label_users``) whose labels the eraser may use; the audit scores the others.
            Default: the source run's own record, else every user (1.0).
        options: method options (see :func:`privrec.defences.erasure.fit_eraser`).
        refit_items: then re-fit the item vectors and biases on the erased user vectors for
            at most this many epochs (BPR, user vectors fixed, best validation epoch kept;
            :mod:`privrec.training.refit`); 0: the items stay as they were.
        attackers: also audit the vectors before and after (default: no audit).
        folds: cross-validation folds of the audit.
        jobs: worker processes of the audit.
        progress: show the audit's progress bar.
        seed: seed of the eraser, the holdout draw and the audit.
        audit_trained: with ``attackers``, also audit the vectors before erasure.

    Returns:
        A new :class:`~privrec.runs.run_result.Run` with the erased user vectors (item
        vectors unchanged unless ``refit_items``), ``metrics["before_erasure"]`` and the
        erasure record.
    """
    from privrec.runs.pipeline import AuditStep, ErasureStep, run_pipeline
    from privrec.runs.run_spec import RunSpec

    names = _names(attributes)
    step = ErasureStep(method, tuple(names), dict(options or {}), holdout, seed, refit_items)
    run = source_run(run, dataset.name)
    audit_step = None
    if attackers is not None and not (isinstance(attackers, str) and attackers == "none"):
        audit_step = AuditStep(
            attackers if isinstance(attackers, str) else tuple(attackers),
            tuple(names),
            folds,
            seed,
            jobs,
            audit_trained,
            progress,
        )
    spec = run.spec
    if spec is None:
        spec = RunSpec(
            dataset=dataset.name, data_options=dict(dataset.options), attackers=None, seed=seed
        )
    if label_fraction is not None:
        if run.label_users is not None:
            raise ConfigError(
                "the source run already records the users whose labels its defences saw "
                "(label_users.txt): erase it without label_fraction"
            )
        spec = dataclasses.replace(spec, label_fraction=label_fraction)
    return run_pipeline(spec, dataset, source=run, erasure=step, audit=audit_step)


def purge(
    vectors: Run | str | Path,
    dataset: Dataset,
    *,
    attributes: Sequence[str] | str,
    label_fraction: float | None = None,
    leace: bool = False,
    options: Mapping[str, Any] | None = None,
    refit_items: int = 0,
    attackers: str | Sequence[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    jobs: int = 1,
    audit_trained: bool = True,
    progress: bool = False,
) -> Run:
    """Purge ``attributes`` from trained user vectors (attribute unlearning with ranking
    preservation, :mod:`privrec.defences.erasure.purge`) and re-evaluate.

    Only the user vectors move: a learned map makes each attribute's groups
    indistinguishable (multi-bandwidth MMD over all labelled users) while keeping every
    user's top-k list; ``leace=True`` follows it with LEACE. The map applies to every user, so
    with ``label_fraction < 1`` the users whose labels it never saw are purged too, and the
    audit scores exactly them.

    Args:
        vectors: a run, a run directory or an ``.npz`` of any system's vectors (see
            :func:`erase`).
        dataset: the dataset the vectors were trained on.
        attributes: categorical attributes to purge.
        label_fraction: share of the users whose labels the purge may use (see :func:`erase`).
        leace: follow the purge with LEACE (fitted on the purged label users).
        options: other options of :func:`~privrec.defences.erasure.purge.fit_purge`
            (``weight``, ``steps``, ``top_k``, ``margin``...).
        refit_items: then re-fit the items on the purged user vectors (see :func:`erase`).
        attackers: also audit the vectors before and after (default: no audit).
        folds: cross-validation folds of the audit.
        seed: seed of the purge, the label draw and the audit.
        jobs: worker processes of the audit.
        audit_trained: with ``attackers``, also audit the vectors before the purge.
        progress: show the audit's progress bar.

    Returns:
        The purged :class:`~privrec.runs.run_result.Run` (``metrics["erasure"]`` records the
        top-k overlap with the original lists; ``run.save(path)`` writes the run directory).
    """
    if "leace" in dict(options or {}):
        raise ConfigError("give leace= as its own argument, not in options")
    return erase(
        vectors,
        dataset,
        method="purge",
        attributes=attributes,
        label_fraction=label_fraction,
        options={**dict(options or {}), "leace": leace},
        refit_items=refit_items,
        attackers=attackers,
        folds=folds,
        seed=seed,
        jobs=jobs,
        audit_trained=audit_trained,
        progress=progress,
    )


def source_run(vectors: Run | str | Path, dataset: str | None = None) -> Run:
    """The run a post-hoc defence starts from: ``vectors`` as given, read from a run directory,
    or built from a model's ``.npz`` (:func:`privrec.audit.vectors_io.load_model_vectors`),
    which records no dataset: ``dataset`` names it (required then)."""
    from privrec.runs.run_result import Run

    if isinstance(vectors, Run):
        return vectors
    path = Path(vectors)
    if not path.exists():
        raise DataError(f"{path}: no such run directory or .npz file")
    if path.is_dir():
        return load_run(path)
    if dataset is None:
        raise ConfigError(
            f"{path} is not a run directory: name the dataset its vectors were trained on"
        )
    from privrec.audit.vectors_io import load_model_vectors

    emb = load_model_vectors(path)
    return Run(spec=None, metrics={}, embeddings=emb, dataset=dataset, path=str(path))


def load_run(path: str | Path) -> Run:
    """Load a run directory written by :meth:`Run.save <privrec.runs.run_result.Run.save>`,
    ``privrec train``, ``privrec erase`` or a sweep (privrec 0.1's layout too)."""
    from privrec.runs.run_result import read_run

    return read_run(path)


def _names(attributes: Sequence[str] | str) -> list[str]:
    if isinstance(attributes, str):
        names = [n.strip() for n in attributes.split(",") if n.strip()]
    else:
        names = [str(n) for n in attributes]
    if not names:
        raise ConfigError("name at least one attribute (e.g. gender,age)")
    return names


def dataset_of_run(run: Run, progress: bool = False, **overrides: Any) -> Dataset:
    """Reload the dataset a run was trained on, from the options its spec records
    (``overrides`` replace recorded options, e.g. a ``data_dir``)."""
    from privrec.runs.pipeline import load_spec_dataset

    if run.spec is None:
        raise DataError(
            f"{run.path or 'the run'} records no settings to rebuild its dataset from; "
            "load the dataset yourself"
        )
    spec = run.spec
    data_dir = overrides.pop("data_dir", spec.data_dir)
    opts = {**spec.data_options, **{k: v for k, v in overrides.items() if v is not None}}
    spec = dataclasses.replace(spec, data_options=opts, data_dir=data_dir)
    return load_spec_dataset(spec, progress=progress)


__all__ = [
    "audit",
    "dataset_of_run",
    "erase",
    "load_dataset",
    "load_run",
    "purge",
    "source_run",
    "train",
    "train_spec",
]
