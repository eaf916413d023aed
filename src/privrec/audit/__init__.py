"""Leakage audit: a suite of attackers that try to recover private attributes from user vectors.

Typical use::

    from privrec.audit import audit_vectors, load_vectors, write_audit

    user_ids, vectors = load_vectors(Path("runs/mf-50"))
    result = audit_vectors(user_ids, vectors, dataset.attributes, attackers="paper", jobs=2)
    result.leakage("gender")          # max ROC-AUC over attackers
    write_audit(result, Path("runs/mf-50/audit"))

Modules: :mod:`~privrec.audit.attackers` (the suite and presets), :mod:`~privrec.audit.metrics`
(metrics from out-of-fold predictions), :mod:`~privrec.audit.core` (join, validation,
cross-validation), :mod:`~privrec.audit.result` (:class:`AuditResult`),
:mod:`~privrec.audit.report` (files and text), :mod:`~privrec.audit.vectors_io`
(:func:`load_vectors`), :mod:`~privrec.audit.recommendations` (leakage through top-k lists).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from privrec.audit.attackers import ATTACKER_PRESETS, ATTACKERS, REGRESSORS, resolve_attackers
from privrec.audit.audit_run import audit_run
from privrec.audit.core import AuditWarning, audit_vectors
from privrec.audit.recommendations import audit_recommendations, recommendation_bags
from privrec.audit.report import headline_sentence, to_markdown, write_audit
from privrec.audit.result import HEADLINE_COLUMNS, TABLE_COLUMNS, AuditResult
from privrec.audit.vectors_io import load_vectors

__all__ = [
    "ATTACKERS",
    "ATTACKER_PRESETS",
    "HEADLINE_COLUMNS",
    "REGRESSORS",
    "TABLE_COLUMNS",
    "AuditResult",
    "AuditWarning",
    "audit_recommendations",
    "audit_run",
    "audit_vectors",
    "headline_sentence",
    "load_vectors",
    "recommendation_bags",
    "resolve_attackers",
    "to_markdown",
    "write_audit",
]


class _AuditModule(types.ModuleType):
    """This package is also the curated API's :func:`privrec.audit` function: once the
    package is imported, ``privrec.audit`` names it, and calling it audits a run."""

    def __call__(self, *args: Any, **kwargs: Any) -> AuditResult:
        return audit_run(*args, **kwargs)


sys.modules[__name__].__class__ = _AuditModule
