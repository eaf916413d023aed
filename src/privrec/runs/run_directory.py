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
``summary.json``             the run's facts and long results records
                             (:mod:`privrec.runs.result_records`)
``embeddings.npz``           ``user_ids``, ``user_vectors``, ``item_ids``, ``item_vectors``,
                             ``item_bias`` (the final vectors; absent for a diverged run)
``embeddings_trained.npz``   the vectors as trained, before erasure (erased runs)
``seen.npz``                 training interactions (CSR ``indptr``/``indices``/``shape``, rows
                             and columns in the order of ``embeddings.npz``)
``audit.json|csv|md``        the audit of the final vectors (audited runs)
``audit_trained/``           the audit of the vectors before erasure (erased, audited runs)
===========================  =================================================================

This module reads and writes the files; :class:`~privrec.runs.run_result.Run` (``Run.save``,
:func:`~privrec.runs.run_result.read_run`) turns them into a run and back.

Run directories of privrec 0.1 (no ``schema_version``: written by ``privrec train``, by sweeps
or by ``privrec erase``) load too, with the settings rebuilt from their ``train`` /
``adversary`` / ``spec`` records where possible.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

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
from privrec.runs.run_spec import RunSpec

SCHEMA_VERSION = 2
"""Version of the run-directory layout written by :func:`write_run_directory`."""


@dataclass(frozen=True, eq=False)
class StoredRun:
    """The content of a run directory, file by file (audits as their JSON records).

    ``spec`` is rebuilt from ``config.json`` (``None`` when it cannot be: a 0.1 directory
    without training settings)."""

    path: Path
    schema_version: int
    config: dict
    metrics: dict
    spec: RunSpec | None
    embeddings: Embeddings | None
    trained_embeddings: Embeddings | None
    seen: sp.csr_matrix | None
    audit: dict | None
    trained_audit: dict | None
    audit_attributes: tuple[str, ...]
    summary: dict | None


def write_run_directory(
    path: str | Path,
    *,
    config: dict,
    metrics: dict,
    summary: dict | None = None,
    embeddings: Embeddings | None = None,
    trained_embeddings: Embeddings | None = None,
    seen: sp.csr_matrix | None = None,
    audit: Any = None,
    trained_audit: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete run directory at ``path`` (atomically; see the module docstring).

    ``audit``/``trained_audit`` are :class:`~privrec.audit.result.AuditResult` objects. An
    existing ``path`` is an error unless ``overwrite``; nothing appears at ``path`` if
    writing fails.
    """
    from privrec.audit.report import write_audit

    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
        atomic_write_json(tmp / "config.json", {"schema_version": SCHEMA_VERSION, **config})
        atomic_write_json(tmp / "metrics.json", metrics)
        if summary is not None:
            atomic_write_json(tmp / "summary.json", summary)
        if embeddings is not None:
            save_embeddings(tmp / "embeddings.npz", embeddings)
        if trained_embeddings is not None:
            save_embeddings(tmp / "embeddings_trained.npz", trained_embeddings)
        if seen is not None:
            _save_seen(tmp / "seen.npz", seen)
        if audit is not None:
            write_audit(audit, tmp)
        if trained_audit is not None:
            write_audit(trained_audit, tmp / "audit_trained")
    return path


def read_run_directory(path: str | Path) -> StoredRun:
    """Read a run directory (this schema or privrec 0.1's)."""
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
    audit = _read_json_if(path / "audit.json")
    trained_audit = _read_json_if(
        path / "audit_trained" / "audit.json",  # schema 2
        path / "audit_trained.json",  # 0.1 sweeps
        path / "source_audit" / "audit.json",  # 0.1 `privrec erase`
    )
    audited = config.get("audit_attributes") or [
        h["attribute"] for h in (audit or {}).get("headline", [])
    ]
    return StoredRun(
        path=path,
        schema_version=version,
        config=config,
        metrics=metrics,
        spec=_spec_of(config, path),
        embeddings=embeddings,
        trained_embeddings=load_embeddings(trained_file) if trained_file.is_file() else None,
        seen=_load_seen(path / "seen.npz", embeddings),
        audit=audit,
        trained_audit=trained_audit,
        audit_attributes=tuple(audited),
        summary=_read_json_if(path / "summary.json"),
    )


def read_summary(run_dir: str | Path) -> dict:
    """A run directory's ``summary.json``: ``{"run": facts, "records": [...]}`` (schema 2) or
    privrec 0.1's flat results row."""
    return read_json(Path(run_dir) / "summary.json")


def _read_json_if(*candidates: Path) -> dict | None:
    for file in candidates:
        if file.is_file():
            return read_json(file)
    return None


def _spec_of(config: dict, path: Path) -> RunSpec | None:
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
    if (
        len(shape) != 2
        or len(indptr) != shape[0] + 1
        or (indices.size and indices.max() >= shape[1])
    ):
        raise DataError(f"{path}: malformed seen-items matrix")
    if embeddings is not None and shape != (len(embeddings.user_ids), len(embeddings.item_ids)):
        raise DataError(
            f"{path}: seen items are {shape[0]} × {shape[1]}, the embeddings "
            f"{len(embeddings.user_ids)} × {len(embeddings.item_ids)}"
        )
    data = np.ones(len(indices), dtype=np.float32)
    return sp.csr_matrix((data, indices, indptr), shape=shape)
