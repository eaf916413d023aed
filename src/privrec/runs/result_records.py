"""A run's results as table rows: the sweep's wide row of one run.

:func:`summarise` turns a :class:`~privrec.runs.run_result.Run` into the flat row a sweep's
``results.csv`` holds (one row per run): its configuration, status, HR@k/NDCG@k, timings and,
per audited attribute, the strongest attacker's figures (``<attr>_max_roc_auc`` ...) and every
attacker's accuracy, balanced accuracy and ROC-AUC (``<attr>_acc_<attacker>`` ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privrec.runs.run_result import Run

HEADLINE_KEYS: tuple[str, ...] = (
    "max_roc_auc",
    "max_balanced_accuracy",
    "max_accuracy",
    "strongest_attacker",
    "majority",
    "mi_lower_bits",
)
"""Headline figures of each audited attribute in a run's row (``<attr>_<key>``)."""
ATTACKER_KEYS: dict[str, str] = {"accuracy": "acc", "balanced_accuracy": "bacc", "roc_auc": "auc"}
"""Per-attacker metrics in a run's row (``<attr>_<short>_<attacker>``)."""


def summarise(run: Run) -> dict:
    """The flat results-table row of one run."""
    spec = run.spec
    if spec is None:
        raise ValueError("a run without a specification has no results-table row")
    k = spec.train.k
    nan = float("nan")
    metrics = run.metrics
    names = list(run.audit_attributes)
    row: dict[str, Any] = {
        "run_id": spec.run_id,
        "dataset": spec.dataset,
        "method": spec.method,
        "embedding_size": spec.train.embedding_size,
        "seed": spec.seed,
    }
    weights = spec.adversary.weights
    shared = set(weights.values())
    row["lambda"] = next(iter(shared)) if len(shared) == 1 else nan
    for a, w in weights.items():
        row[f"lambda_{a}"] = w
    if spec.dependence is not None:
        for fam in ("mmd", "hsic"):
            for a, w in getattr(spec.dependence, fam).items():
                row[f"{fam}_{a}"] = w
    row["erasure"] = spec.erasure or ""
    row["attackers"] = (
        spec.attackers
        if spec.attackers is None or isinstance(spec.attackers, str)
        else ",".join(spec.attackers)
    )
    row["status"] = metrics.get("status", "error")
    row["reason"] = metrics.get("reason", "")
    ok = row["status"] == "ok"
    for part, short in (("validation", "val"), ("test", "test")):
        for m in (f"hr@{k}", f"ndcg@{k}"):
            row[f"{short}_{m}"] = metrics[part][m] if ok else nan
    row["best_epoch"] = metrics.get("best_epoch", nan) if ok else nan
    row["epochs_run"] = metrics.get("epochs_run", nan)
    timings = run.timings
    for key in ("load_seconds", "train_seconds", "audit_seconds", "seconds"):
        row[key] = timings.get(key, nan)
    final = run.audit.to_dict() if run.audit is not None else None
    row.update(_audit_columns(final, names))
    if run.erasure is not None:
        before = metrics.get("before_erasure", {})
        for part, short in (("validation", "val"), ("test", "test")):
            for m in (f"hr@{k}", f"ndcg@{k}"):
                row[f"trained_{short}_{m}"] = before.get(part, {}).get(m, nan)
        trained = run.trained_audit.to_dict() if run.trained_audit is not None else None
        if trained is not None:
            for key, v in _audit_columns(trained, names, headline_only=True).items():
                row[f"trained_{key}"] = v
    row["warnings"] = " | ".join(run.warnings)
    return row


def _audit_columns(audit: dict | None, names: Sequence[str], headline_only: bool = False) -> dict:
    nan = float("nan")
    out: dict[str, Any] = {}
    heads = {h["attribute"]: h for h in (audit or {}).get("headline", [])}
    for a in names:
        h = heads.get(a, {})
        for key in HEADLINE_KEYS:
            v = h.get(key)
            if v is None:
                v = "" if key == "strongest_attacker" else nan
            out[f"{a}_{key}"] = v
    if headline_only:
        return out
    for rec in (audit or {}).get("table", []):
        a = rec.get("attribute")
        if a not in names:
            continue
        for metric, short in ATTACKER_KEYS.items():
            v = rec.get(metric)
            out[f"{a}_{short}_{rec['attacker']}"] = nan if v is None else v
    return out
