"""Audit a run: the curated API's :func:`privrec.audit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from privrec.audit.core import audit_vectors
from privrec.errors import DataError

if TYPE_CHECKING:
    from privrec.audit.result import AuditResult
    from privrec.data.dataset import Dataset


def audit_run(
    run: Any,
    dataset: Dataset,
    *,
    attributes: Sequence[str] | None = None,
    attackers: str | Sequence[str] = "paper",
    folds: int = 5,
    seed: int = 0,
    jobs: int = 1,
    progress: bool = False,
) -> AuditResult:
    """Audit how well ``dataset``'s private attributes can be read from ``run``'s user vectors.

    Args:
        run: a trained, erased or loaded run (:class:`privrec.Run`; anything with
            ``embeddings`` holding ``user_ids``/``user_vectors`` and ``audit_attributes``).
        dataset: the dataset holding the attributes (matched to the run's users by id).
        attributes: attributes to audit (default: the run's audited attributes, else all).
        attackers: preset (``fast``, ``paper``, ``strong``, ``all``) or attacker names.
        folds: cross-validation folds over users.
        seed: seed of the folds and attackers.
        jobs: worker processes.
        progress: show a progress bar.

    Returns:
        The :class:`~privrec.audit.result.AuditResult` (``.table`` per attacker,
        ``.headline`` per attribute: the strongest attacker).
    """
    emb = getattr(run, "embeddings", None)
    if emb is None:
        raise DataError(
            f"the run is recorded as {getattr(run, 'status', 'unknown')!r}: it has no vectors"
        )
    names = list(attributes) if attributes is not None else list(run.audit_attributes) or None
    return audit_vectors(
        emb.user_ids,
        emb.user_vectors,
        dataset.attributes,
        names=names,
        attackers=attackers if isinstance(attackers, str) else list(attackers),
        folds=folds,
        seed=seed,
        jobs=jobs,
        progress=progress,
    )
