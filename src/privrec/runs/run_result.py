"""A run: what the pipeline produced or what a run directory holds, as one typed object.

A :class:`Run` carries the run's specification, its metrics, its vectors (after erasure when
the run erased), the audit of those vectors, and the training interactions needed to serve
recommendations that exclude what each user has already seen. Runs made in this process and
runs loaded from disk (:func:`read_run`) behave the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from privrec._version import __version__
from privrec.artifacts import Embeddings
from privrec.errors import ConfigError, DataError

if TYPE_CHECKING:
    from privrec.audit.result import AuditResult
    from privrec.runs.run_spec import RunSpec
    from privrec.training.trainer import TrainedModel


@dataclass(frozen=True, eq=False)
class Run:
    """One run of privrec: trained (and optionally erased and audited) user and item vectors.

    Attributes:
        spec: the run's :class:`~privrec.runs.run_spec.RunSpec` (``None`` for a run directory
            of privrec 0.1 whose settings cannot be rebuilt).
        metrics: the content of ``metrics.json`` (``status``, validation/test HR@k and
            NDCG@k, history, erasure and leakage records).
        embeddings: the final user and item vectors (after erasure, when the run erased);
            ``None`` for a diverged run.
        dataset: name of the dataset the run was trained on.
        dataset_notes: provenance notes of that dataset.
        split: summary of its leave-last-out split (counts), to check a dataset matches.
        audit_attributes: the attributes the run audits.
        audit: the audit of :attr:`embeddings` (``None`` when not audited).
        trained_embeddings: the vectors as trained, before erasure (erased runs only).
        trained_audit: the audit of :attr:`trained_embeddings` (erased, audited runs only).
        list_audit: the audit of every user's top-k list, training items excluded
            (:func:`~privrec.audit.audit_recommendations`; runs with ``audit_lists``).
        erasure: what the erasure did (method, attributes, rank removed, holdout...).
        source_run: the run directory an erasure started from, when it started from one.
        seen: training interactions, users × items in the order of :attr:`embeddings`
            (items a user has seen are never recommended to them); ``None`` if unknown.
        run_id: the stable id of :attr:`spec` (sweeps name run directories by it).
        schema_version: version of the run-directory layout it was read from (or will be
            written with).
        trained: the trained model itself (only for runs trained in this process).
        warnings: the distinct warnings raised while the run was computed.
        timings: seconds spent loading, training, erasing and auditing.
        path: the run directory it was read from (``None`` for a run not read from disk).
        label_users: ids of the users whose labels the defences could use (``None``: every
            user's; see :attr:`RunSpec.label_fraction <privrec.runs.run_spec.RunSpec>`); the
            audit scored the others.
    """

    spec: RunSpec | None
    metrics: dict
    embeddings: Embeddings | None
    dataset: str
    dataset_notes: tuple[str, ...] = ()
    split: Mapping[str, Any] = field(default_factory=dict)
    audit_attributes: tuple[str, ...] = ()
    audit: AuditResult | None = None
    trained_embeddings: Embeddings | None = None
    trained_audit: AuditResult | None = None
    list_audit: AuditResult | None = None
    erasure: Mapping[str, Any] | None = None
    source_run: str | None = None
    seen: sp.csr_matrix | None = None
    run_id: str | None = None
    schema_version: int = 2
    trained: TrainedModel | None = None
    warnings: tuple[str, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    path: str | None = None
    label_users: np.ndarray | None = None

    # -- what a user reads -------------------------------------------------------------------

    @property
    def status(self) -> str:
        """``ok``, or ``diverged`` (a diverged run has no vectors and is never a result)."""
        return str(self.metrics.get("status", "ok"))

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def _require_vectors(self) -> Embeddings:
        if self.embeddings is None:
            raise DataError(
                f"the run is recorded as {self.status!r}: it has no vectors "
                f"({self.metrics.get('message', 'no reason recorded')})"
            )
        return self.embeddings

    @property
    def user_vectors(self) -> pd.DataFrame:
        """User vectors, one row per user, indexed by the dataset's user id."""
        emb = self._require_vectors()
        return _frame(emb.user_vectors, emb.user_ids, "user")

    @property
    def item_vectors(self) -> pd.DataFrame:
        """Item vectors plus a ``bias`` column, indexed by the dataset's item id; the score of
        (u, i) is ``user_vectors.loc[u] · item_vectors.loc[i, dims] + bias``."""
        emb = self._require_vectors()
        frame = _frame(emb.item_vectors, emb.item_ids, "item")
        frame["bias"] = emb.item_bias
        return frame

    @property
    def embedding_size(self) -> int:
        return int(self._require_vectors().user_vectors.shape[1])

    def recommend(
        self,
        users: Sequence[Any] | np.ndarray | None = None,
        k: int = 10,
        exclude_seen: bool = True,
    ) -> pd.DataFrame:
        """Top-``k`` items for each of ``users`` (original user ids; default: every user).

        Scores are ``user · item + bias`` of :attr:`embeddings`. With ``exclude_seen`` the
        items of a user's training interactions are never recommended to them (a run that
        records no training interactions raises :class:`~privrec.errors.DataError`; pass
        ``exclude_seen=False`` to rank every item). Ties are broken by item order.

        Returns:
            A DataFrame with columns ``user``, ``rank`` (1 = best), ``item``, ``score``:
            ``k`` rows per user, users in the order given.
        """
        emb = self._require_vectors()
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        rows = self._user_rows(users)
        n_items = len(emb.item_ids)
        k = min(int(k), n_items)
        if exclude_seen and self.seen is None:
            raise DataError(
                "this run records no training interactions, so seen items cannot be excluded; "
                "pass exclude_seen=False to rank every item"
            )
        users_out: list[Any] = []
        ranks: list[int] = []
        items_out: list[Any] = []
        scores_out: list[float] = []
        item_vectors = emb.item_vectors.astype(np.float32)
        bias = emb.item_bias.astype(np.float32)
        for lo in range(0, len(rows), 1024):
            chunk = rows[lo : lo + 1024]
            scores = emb.user_vectors[chunk].astype(np.float32) @ item_vectors.T + bias
            if exclude_seen and self.seen is not None:
                seen = self.seen[chunk].tocoo()
                scores[seen.row, seen.col] = -np.inf
            top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            for r, row in enumerate(chunk):
                picked = top[r]
                valid = np.isfinite(scores[r, picked])
                picked = picked[valid]
                users_out.extend([emb.user_ids[row]] * len(picked))
                ranks.extend(range(1, len(picked) + 1))
                items_out.extend(emb.item_ids[picked].tolist())
                scores_out.extend(scores[r, picked].tolist())
        return pd.DataFrame(
            {
                "user": np.asarray(users_out, dtype=emb.user_ids.dtype),
                "rank": np.asarray(ranks, dtype=np.int64),
                "item": np.asarray(items_out, dtype=emb.item_ids.dtype),
                "score": np.asarray(scores_out, dtype=np.float64),
            }
        )

    def _user_rows(self, users: Sequence[Any] | np.ndarray | None) -> np.ndarray:
        emb = self._require_vectors()
        if users is None:
            return np.arange(len(emb.user_ids))
        wanted = np.atleast_1d(np.asarray(users))
        pos = {str(u): i for i, u in enumerate(np.asarray(emb.user_ids).tolist())}
        missing = [u for u in wanted.tolist() if str(u) not in pos]
        if missing:
            shown = ", ".join(map(str, missing[:5]))
            raise DataError(
                f"{len(missing)} unknown user id(s): {shown}; the run has {len(pos):,} users"
            )
        return np.array([pos[str(u)] for u in wanted.tolist()], dtype=np.int64)

    # -- persistence -------------------------------------------------------------------------

    def config_record(self) -> dict:
        """The content of the run's ``config.json`` (see :mod:`privrec.runs.run_directory`)."""
        return {
            "privrec_version": __version__,
            "versions": package_versions(),
            "run_id": self.run_id,
            "spec": self.spec.to_dict() if self.spec is not None else None,
            "dataset": self.dataset,
            "dataset_notes": list(self.dataset_notes),
            "split": dict(self.split),
            "audit_attributes": list(self.audit_attributes),
            "erasure": dict(self.erasure) if self.erasure is not None else None,
            "source_run": self.source_run,
        }

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the run as a run directory (:mod:`privrec.runs.run_directory`); an existing
        ``path`` is an error unless ``overwrite``."""
        from privrec.runs.run_directory import write_run_directory

        return write_run_directory(
            path,
            config=self.config_record(),
            metrics=self.metrics,
            summary=self.stored_results() if self.spec is not None else None,
            embeddings=self.embeddings,
            trained_embeddings=self.trained_embeddings,
            seen=self.seen,
            audit=self.audit,
            trained_audit=self.trained_audit,
            list_audit=self.list_audit,
            label_users=self.label_users,
            overwrite=overwrite,
        )

    @property
    def summary(self) -> dict:
        """The run's row in a sweep's wide results table (derived from its records)."""
        from privrec.runs.result_records import summarise

        return summarise(self)

    def stored_results(self) -> dict:
        """The run's facts and long records (the content of ``summary.json``)."""
        from privrec.runs.result_records import stored_results

        return stored_results(self)


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages a run's numbers depend on."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("torch", "numpy", "scipy", "scikit-learn", "pandas", "concept-erasure"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def read_run(path: str | Path) -> Run:
    """Load a run directory (this schema or privrec 0.1's) as a :class:`Run`."""
    from privrec.runs.run_directory import read_run_directory

    stored = read_run_directory(path)
    config = stored.config
    facts = (stored.summary or {}).get("run", stored.summary or {})
    timings = {
        key: float(facts[key])
        for key in ("load_seconds", "train_seconds", "audit_seconds", "seconds")
        if isinstance(facts.get(key), int | float)
    }
    recorded = facts.get("warnings") or ()
    if isinstance(recorded, str):  # privrec 0.1's flat row joins them
        recorded = [w for w in recorded.split(" | ") if w]
    spec = stored.spec
    # privrec 0.1's sweeps recorded the erasure in metrics.json only
    erasure = config.get("erasure") or stored.metrics.get("erasure")
    return Run(
        spec=spec,
        metrics=stored.metrics,
        embeddings=stored.embeddings,
        dataset=str(config.get("dataset") or (spec.dataset if spec else "")),
        dataset_notes=tuple(config.get("dataset_notes") or ()),
        split=dict(config.get("split") or {}),
        audit_attributes=stored.audit_attributes,
        audit=_audit_result(stored.audit),
        trained_embeddings=stored.trained_embeddings,
        trained_audit=_audit_result(stored.trained_audit),
        list_audit=_audit_result(stored.list_audit),
        erasure=erasure,
        source_run=config.get("source_run") or (erasure or {}).get("source_run"),
        seen=stored.seen,
        run_id=config.get("run_id") or (spec.run_id if spec is not None else None),
        schema_version=stored.schema_version,
        label_users=stored.label_users,
        warnings=tuple(recorded),
        timings=timings,
        path=str(stored.path.resolve()),
    )


def _audit_result(record: dict | None) -> AuditResult | None:
    if record is None:
        return None
    from privrec.audit.result import AuditResult

    return AuditResult(
        table=pd.DataFrame(record.get("table") or []),
        headline=pd.DataFrame(record.get("headline") or []),
        info=dict(record.get("info") or {}),
    )


def _frame(values: np.ndarray, ids: np.ndarray, name: str) -> pd.DataFrame:
    dims = [f"d{j}" for j in range(values.shape[1])]
    return pd.DataFrame(values, index=pd.Index(ids, name=name), columns=dims)
