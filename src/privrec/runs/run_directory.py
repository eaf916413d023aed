"""The run directory: the one place that writes and reads a run on disk.

Layout (schema version 2; every file is written under a temporary directory that is renamed
into place at the end, ``config.json`` last with the manifest of all the others, so a run
directory that exists and matches its manifest is complete):

===========================  =================================================================
``config.json``              ``schema_version``, ``privrec_version``, ``run_id``, ``spec`` (the
                             :class:`~privrec.runs.run_spec.RunSpec`), ``dataset``,
                             ``dataset_notes``, ``split`` (counts), ``audit_attributes``,
                             ``erasure`` (what the erasure did, or null), ``source_run``,
                             ``manifest`` (size and SHA-256 of every other file, see
                             :func:`privrec.artifacts.file_manifest`; written last)
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
``audit_lists/``             the audit of each user's top-k list (runs with ``audit_lists``)
``label_users.txt``          one user id per line: the users whose labels the defences could
                             use (``label_fraction < 1``); audits score the others
===========================  =================================================================

:func:`read_run_directory` checks the files against the manifest (a file missing, truncated or
changed is a one-line :class:`~privrec.errors.DataError` naming it, as is any unreadable JSON or
``.npz`` file); :func:`check_run_directory` is the cheap test of completeness a resumed sweep
uses. Both first repair an overwrite that a killed process left half done
(:func:`privrec.artifacts.recover_swap`).

This module reads and writes the files; :class:`~privrec.runs.run_result.Run` (``Run.save``,
:func:`~privrec.runs.run_result.read_run`) turns them into a run and back.

Run directories of privrec 0.1 (no ``schema_version``: written by ``privrec train``, by sweeps
or by ``privrec erase``) load too, with the settings rebuilt from their ``train`` /
``adversary`` / ``spec`` records where possible. They have no manifest: they are checked file
by file as they are read.
"""

from __future__ import annotations

import io
import warnings
import zipfile
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
    atomic_write_text,
    file_manifest,
    load_embeddings,
    manifest_mismatches,
    open_npz,
    read_json,
    recover_swap,
    save_embeddings,
)
from privrec.defence_names import PENALTY_FAMILIES
from privrec.errors import ConfigError, DataError
from privrec.runs.run_spec import RunSpec

SCHEMA_VERSION = 2
"""Version of the run-directory layout written by :func:`write_run_directory`."""

MANIFEST_KEY = "manifest"
"""The entry of ``config.json`` listing every other file of the run directory."""


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
    label_users: np.ndarray | None = None
    list_audit: dict | None = None


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
    label_users: np.ndarray | None = None,
    list_audit: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write a complete run directory at ``path`` (atomically; see the module docstring).

    ``audit``/``trained_audit``/``list_audit`` are :class:`~privrec.audit.result.AuditResult`
    objects. An
    existing ``path`` is an error unless ``overwrite``; nothing appears at ``path`` if
    writing fails.
    """
    from privrec.audit.report import write_audit

    path = Path(path)
    with atomic_dir(path, overwrite=overwrite) as tmp:
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
        if list_audit is not None:
            write_audit(list_audit, tmp / "audit_lists")
        if label_users is not None:
            text = "".join(f"{u}\n" for u in np.asarray(label_users).tolist())
            atomic_write_text(tmp / LABEL_USERS, text)
        record = {"schema_version": SCHEMA_VERSION, **config}
        record[MANIFEST_KEY] = file_manifest(tmp)  # every file above; config.json is last
        atomic_write_json(tmp / "config.json", record)
    return path


def read_run_directory(path: str | Path) -> StoredRun:
    """Read a run directory (this schema or privrec 0.1's).

    Raises:
        DataError: one line naming the file: not a run directory, a file missing, truncated or
            changed since it was written (per the manifest in ``config.json``), unreadable
            JSON or ``.npz``.
    """
    path = Path(path)
    recover_swap(path)
    if not path.is_dir():
        raise DataError(f"{path}: no such run directory")
    config, metrics, version = _read_head(path, hashes=True)
    has_vectors = metrics.get("status", "ok") != "diverged" and (path / "embeddings.npz").exists()
    embeddings = load_embeddings(path / "embeddings.npz") if has_vectors else None
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
        label_users=read_label_users(path, embeddings),
        list_audit=_read_json_if(path / "audit_lists" / "audit.json"),
    )


def check_run_directory(path: str | Path, *, hashes: bool = False) -> str | None:
    """Why ``path`` is not a complete run directory (one line naming the file), or ``None``.

    Cheap enough to call on every run of a sweep before reusing it: ``config.json`` and
    ``metrics.json`` must parse, the files listed in the manifest of ``config.json`` must exist,
    and one whose size (with ``hashes``, SHA-256) differs from the manifest must still read;
    every JSON file must parse and every ``.npz`` must be a readable archive (its directory, not
    its data). A directory without a manifest (privrec 0.1) gets the same file checks, and a
    finished run of it must have its ``embeddings.npz``. A swap a killed overwrite left half
    done is repaired first (:func:`~privrec.artifacts.recover_swap`). The reasons are those
    :func:`read_run_directory` would raise.
    """
    path = Path(path)
    recover_swap(path)
    if not path.is_dir():
        return f"{path}: no such run directory"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a file changed on purpose is not a reason
            _read_head(path, hashes=hashes)
        for file in sorted(path.rglob("*")):
            if file == path / "config.json" or not file.is_file():
                continue
            if file.suffix == ".json":
                read_json(file)
            elif file.suffix == ".npz":
                _check_zip(file)
    except DataError as exc:
        return str(exc)
    return None


LABEL_USERS = "label_users.txt"
"""The file of a run directory listing, one id per line, the users whose labels the defences
could use (runs with ``label_fraction < 1``); an auditor scores the others."""


def read_label_users(path: str | Path, embeddings: Embeddings | None = None) -> np.ndarray | None:
    """The ids in a run directory's ``label_users.txt`` (``None`` when it has none), typed like
    the embeddings' user ids; an id that is not one of them is an error naming the line."""
    file = Path(path) / LABEL_USERS
    if not file.is_file():
        return None
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    ids = np.asarray([line for line in lines if line])
    if embeddings is None:
        return ids
    known = {str(u): u for u in np.asarray(embeddings.user_ids).tolist()}
    for number, line in enumerate(lines, 1):
        if line and line not in known:
            raise DataError(f"{file}:{number}: {line!r} is not a user of the run")
    return np.asarray([known[u] for u in ids.tolist()], dtype=embeddings.user_ids.dtype)


def read_summary(run_dir: str | Path) -> dict:
    """A run directory's ``summary.json``: ``{"run": facts, "records": [...]}`` (schema 2) or
    privrec 0.1's flat results row.

    The directory is checked first (:func:`check_run_directory`): a resumed sweep reuses a run
    only when this succeeds, so an incomplete one (a file deleted or truncated) is a
    :class:`~privrec.errors.DataError` here, and is recomputed."""
    problem = check_run_directory(run_dir)
    if problem is not None:
        raise DataError(problem)
    return _read_object(Path(run_dir) / "summary.json")


def _read_head(path: Path, *, hashes: bool) -> tuple[dict, dict, int]:
    """``(config without its manifest, metrics, schema version)`` of a run directory, once its
    files match the manifest (sizes, and SHA-256 with ``hashes``).

    Raises:
        DataError: naming the file that is missing, truncated, changed or unreadable.
    """
    file = path / "config.json"
    config = _read_object(file)
    raw = config.get("schema_version", 1)
    if not isinstance(raw, int) or isinstance(raw, bool):
        raise DataError(f"{file}: schema_version {raw!r} is not an integer")
    if raw > SCHEMA_VERSION:
        raise DataError(
            f"{file}: run-directory schema {raw} is newer than this privrec "
            f"reads ({SCHEMA_VERSION}); upgrade privrec"
        )
    manifest = config.pop(MANIFEST_KEY, None)
    if manifest is not None:
        _check_manifest(path, manifest, file, hashes=hashes)
    metrics = _read_object(path / "metrics.json")
    if manifest is None and metrics.get("status", "ok") == "ok":
        # privrec 0.1 (no manifest; its runs were "ok" or "diverged"): a finished run's
        # vectors belong to it
        vectors = path / "embeddings.npz"
        if not vectors.is_file():
            raise DataError(f"{vectors}: missing (the run finished, its vectors belong here)")
    return config, metrics, raw


def _check_manifest(path: Path, manifest: Any, where: Path, *, hashes: bool) -> None:
    """Compare the run's files with its manifest.

    A file missing, or truncated or changed so that it no longer reads (JSON that does not
    parse, an ``.npz`` that does not load), is a :class:`~privrec.errors.DataError` with the
    manifest's diagnosis ("truncated (120 of 4096 bytes, …)"). A file changed on purpose that
    still reads (vectors replaced by a valid ``.npz``, say) is used as it is, with a warning.
    """
    for mismatch in manifest_mismatches(path, manifest, where, hashes=hashes):
        if mismatch.kind in ("malformed", "missing") or not _still_reads(mismatch.file, hashes):
            raise DataError(mismatch.message)
        warnings.warn(
            f"{mismatch.file}: changed since it was written (it does not match the manifest in "
            f"{where}); read as it is now",
            stacklevel=4,
        )


def _still_reads(file: Path, thorough: bool) -> bool:
    """Whether a file that differs from its manifest entry is still a valid file of its kind
    (``thorough``: every array of an ``.npz`` is read, checking its CRC; else its directory)."""
    try:
        if file.suffix == ".json":
            read_json(file)
        elif file.suffix == ".npz" and thorough:
            with open_npz(file) as z:
                for name in z.files:
                    z[name]
        elif file.suffix == ".npz":
            _check_zip(file)
    except (DataError, KeyError):
        return False
    return True


def _read_object(file: Path) -> dict:
    record = read_json(file)
    if not isinstance(record, dict):
        raise DataError(f"{file}: expected a JSON object, found {type(record).__name__}")
    return record


def _check_zip(file: Path) -> None:
    """A readable zip archive (its central directory; a truncated file has none)."""
    try:
        with zipfile.ZipFile(file) as zf:
            zf.infolist()
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise DataError(f"{file}: truncated or corrupt .npz ({exc})") from None


def _read_json_if(*candidates: Path) -> dict | None:
    for file in candidates:
        if file.is_file():
            return _read_object(file)
    return None


def _spec_of(config: dict, path: Path) -> RunSpec | None:
    record = config.get("spec")
    try:
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
                if any(dep.get(family) for family in PENALTY_FAMILIES):
                    record["dependence"] = dep
        if record is None:
            return None
        if not isinstance(record, dict):
            raise ConfigError(f"expected a JSON object, found {type(record).__name__}")
        return RunSpec.from_record(record, where=f"{path}/config.json: spec")
    except (ConfigError, AttributeError, TypeError, ValueError) as exc:
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
    with open_npz(path) as z:
        try:
            indptr, indices, shape = z["indptr"], z["indices"], tuple(int(s) for s in z["shape"])
        except (KeyError, TypeError) as exc:
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
