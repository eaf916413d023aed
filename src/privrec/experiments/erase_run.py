"""Erase attributes from the user vectors of a run directory and write the result as a new run.

The new run directory is a run like any other (``config.json``, ``metrics.json``,
``embeddings.npz``; item vectors and biases unchanged), plus ``audit.*`` for the erased vectors
and ``source_audit/audit.*`` for the source vectors (same attackers and seed) when
:mod:`privrec.audit` is available. Erasing an adversarially trained run gives the combined
defence (adversarial training, then post-hoc erasure).
"""

from __future__ import annotations

import ast
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from privrec import __version__
from privrec.artifacts import (
    Embeddings,
    atomic_dir,
    atomic_write_json,
    load_embeddings,
    read_json,
    save_embeddings,
)
from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.dataset import Dataset
from privrec.data.split import Split, leave_last_out
from privrec.defences.erasure.affine import aligned_attributes
from privrec.defences.erasure.fitting import METHODS, fit_eraser
from privrec.errors import ConfigError, DataError
from privrec.evaluation.protocol import evaluate_split, vectors_scorer


def erase_run(
    run_dir: str | Path,
    dataset: Dataset,
    names: Sequence[str],
    method: str,
    out_dir: str | Path,
    seed: int = 0,
    attackers: str | Sequence[str] | None = "paper",
    k: int = 10,
    overwrite: bool = False,
    *,
    options: dict | None = None,
    folds: int = 5,
    jobs: int = 1,
    audit_source: bool = True,
    holdout: float = 0.0,
    progress: bool = False,
) -> dict:
    """Erase ``names`` from the user vectors of ``run_dir``; write a new run to ``out_dir``.

    Args:
        run_dir: a complete run directory (``config.json``, ``metrics.json``,
            ``embeddings.npz``) trained on ``dataset``.
        dataset: the dataset the run was trained on (its user and item ids must be the
            embeddings' ids, and its leave-last-out split the one recorded in the run).
        names: attributes to erase (list or comma-separated string).
        method: ``"leace"`` or ``"inlp"``.
        out_dir: the new run directory (must not exist unless ``overwrite``).
        seed: seed of the eraser and of the audit.
        attackers: attacker suite of :func:`privrec.audit.audit_vectors`; ``None`` skips the audit
            (it is also skipped, with a warning, when :mod:`privrec.audit` is not installed).
        k: cut-off of HR@k / NDCG@k.
        overwrite: replace an existing ``out_dir``.
        options: method options (see :func:`privrec.defences.erasure.fit_eraser`).
        folds, jobs, progress: passed to the audit.
        audit_source: also audit the source vectors, for a before/after comparison.
        holdout: share of the labelled users (seeded draw) whose labels are hidden from the
            eraser; the audits then use only these users' labels. ``0`` (default) fits and
            audits on every labelled user, which tests the eraser in-sample: there exact
            decorrelation makes cross-validated linear attackers score slightly *below* chance
            (each training fold's correlation is minus its test fold's). ``holdout > 0``
            measures what an attacker learns about users whose labels the eraser never saw.

    Returns:
        ``{"out_dir", "config", "metrics", "audit", "source_audit"}``: the config and metrics
        written, and the audits' ``to_dict()`` (``None`` when not run).
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    if k < 1:
        raise ConfigError(f"k must be >= 1, got {k}")
    if not 0 <= holdout < 1:
        raise ConfigError(f"holdout must be in [0, 1), got {holdout}")
    if method not in METHODS:
        raise ConfigError(
            f"unknown erasure method {method!r}; expected one of: {', '.join(METHODS)}"
        )
    if attackers is not None:
        try:
            from privrec.audit.attackers import resolve_attackers
        except ModuleNotFoundError:
            pass
        else:
            resolve_attackers(attackers)  # a typo fails before the work, not after
    if out_dir.resolve() == run_dir.resolve():
        raise ConfigError("the output directory must differ from the source run directory")
    if out_dir.exists() and not overwrite:
        raise DataError(f"{out_dir} already exists (use --overwrite to replace it)")
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such run directory")
    source_config = read_json(run_dir / "config.json")
    source_metrics = read_json(run_dir / "metrics.json")
    if source_metrics.get("status", "ok") != "ok":
        raise DataError(
            f"{run_dir}: the run is recorded as {source_metrics.get('status')!r}, "
            "it has no vectors to erase"
        )
    emb = load_embeddings(run_dir / "embeddings.npz")
    recorded = source_config.get("dataset")
    if recorded is not None and recorded != dataset.name:
        raise DataError(f"{run_dir} was trained on dataset {recorded!r}, not {dataset.name!r}")
    inter = dataset.interactions
    u_order = _alignment(emb.user_ids, inter.user_ids, "user", run_dir, dataset.name)
    i_order = _alignment(emb.item_ids, inter.item_ids, "item", run_dir, dataset.name)
    split = leave_last_out(inter)
    _check_split(source_config.get("split"), split, run_dir)
    aligned_attributes(inter.user_ids, inter.n_users, dataset.attributes, names)  # fail early
    fit_attrs = audit_attrs = dataset.attributes
    n_hidden = 0
    if holdout > 0:
        any_known = np.logical_or.reduce([dataset.attributes[n].known for n in names])
        hidden = any_known & (np.random.default_rng(seed).random(inter.n_users) < holdout)
        n_hidden = int(hidden.sum())
        fit_attrs = _mask_labels(dataset.attributes, names, hidden)
        audit_attrs = _mask_labels(dataset.attributes, names, ~hidden)

    users = emb.user_vectors[u_order].astype(np.float32)
    items = emb.item_vectors[i_order]
    bias = emb.item_bias[i_order]
    opts = dict(options or {})
    start = time.perf_counter()
    eraser = fit_eraser(inter.user_ids, users, fit_attrs, names, method, seed, **opts)
    erased = eraser(users)
    erase_seconds = time.perf_counter() - start

    before = _evaluate(users, items, bias, split, k)
    after = _evaluate(erased, items, bias, split, k)

    audit_after = audit_before = None
    audit_fn = _audit_functions() if attackers is not None else None
    if audit_fn is not None:
        audit_vectors, _ = audit_fn
        kw = {"names": names, "attackers": attackers, "folds": folds, "seed": seed, "jobs": jobs}
        audit_after = audit_vectors(inter.user_ids, erased, audit_attrs, progress=progress, **kw)
        if audit_source:
            audit_before = audit_vectors(
                inter.user_ids, users, audit_attrs, progress=progress, **kw
            )

    # back to the source file's row order, so ids and shapes are exactly the source's
    erased_rows = np.empty_like(erased)
    erased_rows[u_order] = erased
    new_emb: Embeddings = emb.replace_users(erased_rows)

    erasure = {
        "source_run": str(run_dir.resolve()),
        "method": method,
        "attributes": names,
        "seed": seed,
        "options": opts,
        "k": k,
        "holdout": holdout,
        "holdout_users": n_hidden,
        "attackers": attackers
        if attackers is None or isinstance(attackers, str)
        else list(attackers),
        "fit": eraser.info,
        "rank_removed": eraser.rank_removed,
        "seconds": erase_seconds,
    }
    if "erasure" in source_config:
        erasure["source_erasure"] = source_config["erasure"]
    config = {
        **source_config,
        "privrec_version": __version__,
        "dataset": dataset.name,
        "split": split.summary(),
        "erasure": erasure,
    }
    metrics = {
        "status": "ok",
        "validation": after["validation"],
        "test": after["test"],
        "users_evaluated": after["users"],
        "source": {
            "validation": before["validation"],
            "test": before["test"],
            "recorded": {
                part: source_metrics.get(part)
                for part in ("validation", "test")
                if part in source_metrics
            },
        },
        "erasure": {
            "method": method,
            "attributes": names,
            "rank_removed": eraser.rank_removed,
            "seconds": erase_seconds,
            "holdout": holdout,
            "holdout_users": n_hidden,
        },
    }
    if audit_after is not None:
        metrics["leakage"] = {
            "after": _headline_records(audit_after),
            "before": _headline_records(audit_before) if audit_before is not None else None,
        }
    _, write_audit = audit_fn if audit_fn is not None else (None, None)
    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        save_embeddings(tmp / "embeddings.npz", new_emb)
        atomic_write_json(tmp / "config.json", config)
        atomic_write_json(tmp / "metrics.json", metrics)
        if audit_after is not None:
            write_audit(audit_after, tmp)
        if audit_before is not None:
            (tmp / "source_audit").mkdir()
            write_audit(audit_before, tmp / "source_audit")
    return {
        "out_dir": str(out_dir),
        "config": config,
        "metrics": metrics,
        "audit": audit_after.to_dict() if audit_after is not None else None,
        "source_audit": audit_before.to_dict() if audit_before is not None else None,
    }


def synthetic_options_from_notes(notes: Sequence[str]) -> dict | None:
    """Recover the synthetic generator's fields from a run's ``dataset_notes``.

    :func:`privrec.data.synthetic.make_synthetic` records ``"synthetic SyntheticConfig(...)"``;
    this parses its literal keyword arguments (never evaluates code). ``None`` if absent.
    """
    for note in notes or ():
        if not isinstance(note, str) or not note.startswith("synthetic SyntheticConfig("):
            continue
        try:
            call = ast.parse(note[len("synthetic ") :], mode="eval").body
            if isinstance(call, ast.Call) and not call.args:
                return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords if kw.arg}
        except (SyntaxError, ValueError):
            return None
    return None


def _mask_labels(attributes: UserAttributes, names: Sequence[str], hide: np.ndarray):
    """``attributes`` with the labels of ``names`` removed (missing) where ``hide``."""
    cols = dict(attributes.columns)
    for n in names:
        a = attributes[n]
        missing = -1 if a.kind == "categorical" else np.nan
        cols[n] = Attribute(n, a.kind, np.where(hide, missing, a.values), a.classes)
    return UserAttributes(attributes.user_ids, cols)


def _evaluate(users, items, bias, split: Split, k: int) -> dict:
    scorer = vectors_scorer(users, items, bias)
    out: dict = {}
    for which in ("validation", "test"):
        m = evaluate_split(scorer, split, which, k)
        out[which] = {f"hr@{k}": m[f"hr@{k}"], f"ndcg@{k}": m[f"ndcg@{k}"]}
        out["users"] = m["users"] if which == "test" else out.get("users")
    return out


def _alignment(
    emb_ids: np.ndarray, data_ids: np.ndarray, what: str, run_dir: Path, name: str
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
            f"{run_dir}: the embeddings have {len(e)} {what}s, dataset {name!r} has {len(d)}"
            f" ({len(missing)} dataset {what}s without a vector, {extra} vectors of unknown "
            f"{what}s); was the run trained on this dataset?"
        )
    return np.array([pos[u] for u in d.tolist()], dtype=np.int64)


def _check_split(recorded, split: Split, run_dir: Path) -> None:
    if not isinstance(recorded, dict):
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
            f"{run_dir}: the dataset's split differs from the one the run was trained on "
            f"({detail}); pass the same dataset (and generator options)"
        )


def _audit_functions():
    try:
        from privrec.audit import audit_vectors, write_audit
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("privrec.audit"):
            raise
        warnings.warn(
            "privrec.audit is not available: the erased vectors were not audited", stacklevel=3
        )
        return None
    except ImportError:
        warnings.warn(
            "privrec.audit does not provide audit_vectors/write_audit: no audit", stacklevel=3
        )
        return None
    return audit_vectors, write_audit


def _headline_records(result) -> list[dict]:
    head = getattr(result, "headline", None)
    if head is None:
        return []
    return head.to_dict(orient="records")
