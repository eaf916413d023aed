"""The run directory: the one place that writes and reads a run on disk.

Layout (schema version 2; every file is written under a temporary directory that is renamed
into place at the end, so a run directory that exists is complete):

===========================  =================================================================
``config.json``              ``schema_version``, ``privrec_version``, ``run_id``, ``spec`` (the
                             :class:`~privrec.runs.run_spec.RunSpec`), ``dataset``,
                             ``dataset_notes``, ``split`` (counts), ``audit_attributes``,
                             ``erasure`` (what the erasure did, or null), ``source_run``
``metrics.json``             status, validation/test HR@k and NDCG@k, history, and for erased
                             runs ``before_erasure`` and ``erasure``; ``leakage`` (headline of
                             the audit) for audited runs
``summary.json``             the run's row of a sweep's results table
``embeddings.npz``           ``user_ids``, ``user_vectors``, ``item_ids``, ``item_vectors``,
                             ``item_bias`` (the final vectors; absent for a diverged run)
``embeddings_trained.npz``   the vectors as trained, before erasure (erased runs)
``seen.npz``                 training interactions (CSR ``indptr``/``indices``/``shape``, rows
                             and columns in the order of ``embeddings.npz``)
``audit.json|csv|md``        the audit of the final vectors (audited runs)
``audit_trained/``           the audit of the vectors before erasure (erased, audited runs)
===========================  =================================================================

Run directories of privrec 0.1 (no ``schema_version``: written by ``privrec train``, by sweeps
or by ``privrec erase``) load too, with the settings rebuilt from their ``train`` /
``adversary`` / ``spec`` records where possible.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from privrec._version import __version__
from privrec.artifacts import (
    Embeddings,
    atomic_dir,
    atomic_write_bytes,
    atomic_write_json,
    load_embeddings,
    read_json,
    save_embeddings,
)
from privrec.errors import ConfigError, DataError
from privrec.runs.run_result import Run

SCHEMA_VERSION = 2
"""Version of the run-directory layout written by :func:`write_run`."""


def config_record(run: Run) -> dict:
    """The content of a run's ``config.json``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "privrec_version": __version__,
        "run_id": run.run_id,
        "spec": run.spec.to_dict() if run.spec is not None else None,
        "dataset": run.dataset,
        "dataset_notes": list(run.dataset_notes),
        "split": dict(run.split),
        "audit_attributes": list(run.audit_attributes),
        "erasure": dict(run.erasure) if run.erasure is not None else None,
        "source_run": run.source_run,
    }


def write_run(path: str | Path, run: Run, overwrite: bool = False) -> Path:
    """Write ``run`` as a complete run directory at ``path`` (atomically).

    An existing ``path`` is an error unless ``overwrite``; nothing appears at ``path`` if
    writing fails.
    """
    from privrec.audit.report import write_audit

    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        atomic_write_json(tmp / "config.json", config_record(run))
        atomic_write_json(tmp / "metrics.json", run.metrics)
        if run.spec is not None:
            atomic_write_json(tmp / "summary.json", run.summary)
        if run.embeddings is not None:
            save_embeddings(tmp / "embeddings.npz", run.embeddings)
        if run.trained_embeddings is not None:
            save_embeddings(tmp / "embeddings_trained.npz", run.trained_embeddings)
        if run.seen is not None:
            _save_seen(tmp / "seen.npz", run.seen)
        if run.audit is not None:
            write_audit(run.audit, tmp)
        if run.trained_audit is not None:
            write_audit(run.trained_audit, tmp / "audit_trained")
    return path


def read_run(path: str | Path) -> Run:
    """Load a run directory (this schema or privrec 0.1's) as a :class:`Run`."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such run directory")
    config = read_json(path / "config.json")
    metrics = read_json(path / "metrics.json")
    version = int(config.get("schema_version", 1))
    if version > SCHEMA_VERSION:
        raise DataError(
            f"{path}/config.json: run-directory schema {version} is newer than this privrec "
            f"reads ({SCHEMA_VERSION}); upgrade privrec"
        )
    ok = metrics.get("status", "ok") == "ok"
    embeddings = load_embeddings(path / "embeddings.npz") if ok else None
    trained_file = path / "embeddings_trained.npz"
    trained = load_embeddings(trained_file) if trained_file.is_file() else None
    spec = _spec_of(config, path)
    erasure = config.get("erasure")
    return Run(
        spec=spec,
        metrics=metrics,
        embeddings=embeddings,
        dataset=str(config.get("dataset") or (spec.dataset if spec else "")),
        dataset_notes=tuple(config.get("dataset_notes") or ()),
        split=dict(config.get("split") or {}),
        audit_attributes=tuple(config.get("audit_attributes") or _audited(path)),
        audit=_read_audit(path / "audit.json"),
        trained_embeddings=trained,
        trained_audit=_read_audit(
            *(
                path / name
                for name in ("audit_trained/audit.json", "audit_trained.json", "source_audit/audit.json")
            )
        ),
        erasure=erasure,
        source_run=config.get("source_run") or (erasure or {}).get("source_run"),
        seen=_load_seen(path / "seen.npz", embeddings),
        run_id=config.get("run_id") or (spec.run_id if spec is not None else None),
        schema_version=version,
        path=str(path.resolve()),
    )


def read_summary(run_dir: str | Path) -> dict:
    """The results-table row stored in a run directory (``summary.json``)."""
    return read_json(Path(run_dir) / "summary.json")


def _spec_of(config: dict, path: Path):
    from privrec.runs.run_spec import RunSpec

    record = config.get("spec")
    if record is None and "train" in config:  # privrec 0.1's `privrec train` / `erase`
        record = {
            "dataset": config.get("dataset", "synthetic"),
            "train": config["train"],
            "adversary": config.get("adversary") or {},
            "seed": int(config["train"].get("seed", 0)),
            "attackers": None,
        }
        if config.get("dependence"):
            dep = dict(config["dependence"])
            if dep.get("mmd") or dep.get("hsic"):
                record["dependence"] = dep
    if record is None:
        return None
    try:
        return RunSpec.from_dict(record, where=f"{path}/config.json: spec")
    except ConfigError as exc:
        warnings.warn(f"{path}: the run's settings could not be rebuilt ({exc})", stacklevel=3)
        return None


def _audited(path: Path) -> list[str]:
    record = path / "audit.json"
    if not record.is_file():
        return []
    return [h["attribute"] for h in read_json(record).get("headline", [])]


def _read_audit(*candidates: Path):
    from privrec.audit.result import AuditResult

    for file in candidates:
        if file.is_file():
            d = read_json(file)
            return AuditResult(
                table=pd.DataFrame(d.get("table") or []),
                headline=pd.DataFrame(d.get("headline") or []),
                info=dict(d.get("info") or {}),
            )
    return None


def _save_seen(path: Path, seen: sp.csr_matrix) -> None:
    m = sp.csr_matrix(seen)
    buf = io.BytesIO()
    np.savez(
        buf,
        indptr=m.indptr.astype(np.int64),
        indices=m.indices.astype(np.int32),
        shape=np.asarray(m.shape, dtype=np.int64),
    )
    atomic_write_bytes(path, buf.getvalue())


def _load_seen(path: Path, embeddings: Embeddings | None) -> sp.csr_matrix | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            indptr, indices, shape = z["indptr"], z["indices"], tuple(int(s) for s in z["shape"])
    except (KeyError, ValueError, OSError) as exc:
        raise DataError(f"{path}: not a seen-items file ({exc})") from None
    if len(shape) != 2 or len(indptr) != shape[0] + 1 or (indices.size and indices.max() >= shape[1]):
        raise DataError(f"{path}: malformed seen-items matrix")
    if embeddings is not None and shape != (len(embeddings.user_ids), len(embeddings.item_ids)):
        raise DataError(
            f"{path}: seen items are {shape[0]} × {shape[1]}, the embeddings "
            f"{len(embeddings.user_ids)} × {len(embeddings.item_ids)}"
        )
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=shape)
