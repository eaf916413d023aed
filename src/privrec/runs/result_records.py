"""A run's results as data: its facts and a long table of measurements.

The stored form of a run's results is tidy (``summary.json``: ``{"run": facts, "records":
[...]}``, and a sweep's ``results_long.*``): one record per measurement, with columns
:data:`RECORD_COLUMNS` —

==============  ===================================================================================
``run_id``      the run
``stage``       ``final`` (the run's vectors) or ``trained`` (an erased run's vectors before erasure)
``attribute``   the private attribute measured ("" for ranking accuracy)
``kind``        ``categorical`` / ``continuous`` ("" for ranking accuracy)
``attacker``    the attacker ("" for ranking accuracy)
``metric``      ``val_hr@10``, ``test_ndcg@10``, ``roc_auc``, ``balanced_accuracy``, ``majority`` …
``value``       the figure
``spread``      its standard deviation over the cross-validation folds (NaN where none)
``population``  which users it was measured on (e.g. ``all labelled users, 5-fold CV``)
``n_users``     how many
==============  ===================================================================================

and the run's facts (:func:`run_facts`: id, dataset, method, knobs, status, timings). Wide
views — one row per run with ``<attr>_max_roc_auc``, ``<attr>_auc_<attacker>`` … columns, as
in a sweep's ``results.csv`` — are *derived* from the records by :func:`wide_row`
(:func:`summarise` for one run), never parsed back.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from privrec.defence_names import PENALTY_FAMILIES

if TYPE_CHECKING:
    from privrec.audit.result import AuditResult
    from privrec.runs.run_result import Run

RECORD_COLUMNS: tuple[str, ...] = (
    "run_id",
    "stage",
    "attribute",
    "kind",
    "attacker",
    "metric",
    "value",
    "spread",
    "population",
    "n_users",
)
"""Columns of the long results table."""
HEADLINE_KEYS: tuple[str, ...] = (
    "max_roc_auc",
    "max_balanced_accuracy",
    "max_accuracy",
    "strongest_attacker",
    "majority",
    "mi_lower_bits",
    "roc_auc_ci_low",
    "roc_auc_ci_high",
    "p_value_family",
)
"""Headline figures of each audited attribute in a run's wide row (``<attr>_<key>``); the
interval is the strongest attacker's (the one of ``max_roc_auc``), the p-value the
family-wise one (:mod:`privrec.audit.uncertainty`)."""
ATTACKER_KEYS: dict[str, str] = {"accuracy": "acc", "balanced_accuracy": "bacc", "roc_auc": "auc"}
"""Per-attacker metrics in a run's wide row (``<attr>_<short>_<attacker>``)."""
_TIMINGS: tuple[str, ...] = ("load_seconds", "train_seconds", "audit_seconds", "seconds")


def _attack_metrics() -> tuple[str, ...]:
    from privrec.audit.metrics import CATEGORICAL_METRICS, CONTINUOUS_METRICS
    from privrec.audit.uncertainty import UNCERTAINTY_METRICS

    metrics = (*CATEGORICAL_METRICS, *UNCERTAINTY_METRICS, *CONTINUOUS_METRICS)
    return tuple(m for m in metrics if not m.endswith("_std"))


# -- from a run to facts and records ---------------------------------------------------------


def run_facts(run: Run) -> dict:
    """What a run *is*: id, dataset, method, size, seed, defence knobs, status, timings."""
    spec = run.spec
    if spec is None:
        raise ValueError("a run without a specification has no results-table row")
    metrics = run.metrics
    knobs: dict[str, dict[str, float]] = {"lambda": dict(spec.adversary.weights)}
    if spec.dependence is not None:
        for family in PENALTY_FAMILIES:
            if family != "swd" or spec.dependence.swd:  # older runs' rows stay as they were
                knobs[family] = dict(getattr(spec.dependence, family))
    return {
        "run_id": spec.run_id,
        "dataset": spec.dataset,
        "method": spec.method,
        "model": spec.train.model,
        "embedding_size": spec.train.embedding_size,
        "seed": spec.seed,
        "k": spec.train.k,
        "weights": knobs,
        "erasure": spec.erasure or "",
        "attackers": (
            spec.attackers
            if spec.attackers is None or isinstance(spec.attackers, str)
            else ",".join(spec.attackers)
        ),
        "audit_attributes": list(run.audit_attributes),
        "folds": spec.folds,
        "erased": run.erasure is not None,
        "status": metrics.get("status", "error"),
        "reason": metrics.get("reason", ""),
        "best_epoch": metrics.get("best_epoch") if run.embeddings is not None else None,
        "epochs_run": metrics.get("epochs_run"),
        "device": metrics.get("device", ""),
        **{key: run.timings.get(key) for key in _TIMINGS},
        "warnings": list(run.warnings),
    }


def run_records(run: Run) -> list[dict]:
    """Every measurement of ``run`` as long records (see the module docstring)."""
    spec = run.spec
    run_id = spec.run_id if spec is not None else (run.run_id or "")
    k = spec.train.k if spec is not None else 10
    metrics = run.metrics
    out: list[dict] = []
    if run.embeddings is None:  # diverged: nothing was measured
        return out
    stages: list[tuple[str, Mapping, AuditResult | None]] = [("final", metrics, run.audit)]
    if run.erasure is not None:
        stages.append(("trained", metrics.get("before_erasure", {}), run.trained_audit))
    if run.list_audit is not None:
        stages.append(("lists", {}, run.list_audit))
    population = _population(run)
    for stage, ranking, audit in stages:
        out += _ranking_records(run_id, stage, ranking, metrics.get("users_evaluated"), k)
        if audit is not None:
            out += _audit_records(run_id, stage, audit, population)
    return out


def _population(run: Run) -> str:
    erasure = run.erasure or {}
    folds = run.spec.folds if run.spec is not None else 5
    if run.label_users is not None:
        return f"users whose labels the defences did not see, {folds}-fold CV"
    if erasure.get("holdout"):
        return f"users whose labels the eraser did not see, {folds}-fold CV"
    return f"all labelled users, {folds}-fold CV"


def _ranking_records(run_id: str, stage: str, ranking: Mapping, users: Any, k: int) -> list[dict]:
    out = []
    for part, short in (("validation", "val"), ("test", "test")):
        for m in (f"hr@{k}", f"ndcg@{k}"):
            value = (ranking.get(part) or {}).get(m)
            out.append(
                _record(
                    run_id, stage, "", "", "", f"{short}_{m}", value, None, f"{part} users", users
                )
            )
    return out


def _audit_records(run_id: str, stage: str, audit: AuditResult, population: str) -> list[dict]:
    out = []
    table = audit.table
    for row in table.to_dict(orient="records"):
        for m in _attack_metrics():
            if m not in row:
                continue
            out.append(
                _record(
                    run_id,
                    stage,
                    row["attribute"],
                    row.get("kind", ""),
                    row["attacker"],
                    m,
                    row.get(m),
                    row.get(f"{m}_std"),
                    population,
                    row.get("n_users"),
                )
            )
    return out


def _record(run_id, stage, attribute, kind, attacker, metric, value, spread, population, n):
    return {
        "run_id": run_id,
        "stage": stage,
        "attribute": attribute,
        "kind": kind,
        "attacker": attacker,
        "metric": metric,
        "value": _num(value),
        "spread": _num(spread),
        "population": population,
        "n_users": None if n is None or _isnan(n) else int(n),
    }


def _num(v: Any) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _isnan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


# -- from facts and records to a wide row ------------------------------------------------------


def audit_table(records: Iterable[Mapping], stage: str = "final") -> pd.DataFrame:
    """The per-attacker audit table of one run's ``stage``, rebuilt from its records (columns
    of :data:`privrec.audit.result.TABLE_COLUMNS` that records carry), attackers in their
    recorded order."""
    from privrec.audit.result import TABLE_COLUMNS

    rows: dict[tuple[str, str], dict] = {}
    for r in records:
        if r["stage"] != stage or not r["attacker"]:
            continue
        key = (r["attribute"], r["attacker"])
        row = rows.setdefault(
            key,
            {
                "attribute": r["attribute"],
                "kind": r["kind"],
                "attacker": r["attacker"],
                "n_users": r.get("n_users"),
            },
        )
        row[r["metric"]] = _num(r["value"])
        if f"{r['metric']}_std" in TABLE_COLUMNS:
            row[f"{r['metric']}_std"] = _num(r.get("spread"))
    frame = pd.DataFrame(list(rows.values()))

    for col in TABLE_COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan if col not in ("attribute", "kind", "attacker") else ""
    return frame


def wide_row(facts: Mapping, records: Sequence[Mapping]) -> dict:
    """The run's row of a wide results table (the columns of a sweep's ``results.csv``)."""
    nan = float("nan")
    k = int(facts.get("k", 10))
    row: dict[str, Any] = {key: facts[key] for key in ("run_id", "dataset", "method")}
    row["embedding_size"] = facts["embedding_size"]
    row["seed"] = facts["seed"]
    weights = facts.get("weights", {})
    lam = weights.get("lambda", {})
    shared = set(lam.values())
    row["lambda"] = next(iter(shared)) if len(shared) == 1 else nan
    for a, w in lam.items():
        row[f"lambda_{a}"] = w
    for fam in PENALTY_FAMILIES:
        for a, w in weights.get(fam, {}).items():
            row[f"{fam}_{a}"] = w
    row["weights"] = {fam: dict(w) for fam, w in weights.items()}
    row["erasure"] = facts.get("erasure", "")
    row["attackers"] = facts.get("attackers")
    row["folds"] = facts.get("folds", 5)
    row["status"] = facts.get("status", "error")
    row["reason"] = facts.get("reason", "")
    ok = row["status"] in ("ok", "leaky")  # a leaky run was measured (and is no result)
    values = {(r["stage"], r["metric"]): r["value"] for r in records if not r["attribute"]}
    for short in ("val", "test"):
        for m in (f"hr@{k}", f"ndcg@{k}"):
            row[f"{short}_{m}"] = _num(values.get(("final", f"{short}_{m}"))) if ok else nan
    best, run = facts.get("best_epoch"), facts.get("epochs_run")
    row["best_epoch"] = best if ok and best is not None else nan
    row["epochs_run"] = run if run is not None else nan
    for key in _TIMINGS:
        row[key] = _num(facts.get(key))
    names = list(facts.get("audit_attributes", []))
    row.update(_audit_columns(audit_table(records, "final"), names))
    if facts.get("erased"):
        for short in ("val", "test"):
            for m in (f"hr@{k}", f"ndcg@{k}"):
                row[f"trained_{short}_{m}"] = _num(values.get(("trained", f"{short}_{m}")))
        trained = audit_table(records, "trained")
        if len(trained):
            for key, v in _audit_columns(trained, names, headline_only=True).items():
                row[f"trained_{key}"] = v
    row["warnings"] = " | ".join(facts.get("warnings", []))
    return row


def stored_results(run: Run) -> dict:
    """What a run directory's ``summary.json`` holds: ``{"run": facts, "records": [...]}``."""
    return {"run": run_facts(run), "records": run_records(run)}


def summarise(run: Run) -> dict:
    """The wide results-table row of one run (derived from its facts and records)."""
    return wide_row(run_facts(run), run_records(run))


def _spread_of_max(table: pd.DataFrame, attribute: str) -> float:
    """Fold spread of the attacker with the largest ROC-AUC on ``attribute``."""
    if not len(table):
        return float("nan")
    rows = table[table["attribute"] == attribute]
    aucs = pd.to_numeric(rows["roc_auc"], errors="coerce")
    if rows.empty or aucs.isna().all():
        return float("nan")
    best = int(np.nanargmax(aucs.to_numpy(dtype=float)))
    return _num(rows["roc_auc_std"].iloc[best])


def _audit_columns(table: pd.DataFrame, names: Sequence[str], headline_only: bool = False) -> dict:
    from privrec.audit.result import build_headline

    nan = float("nan")
    out: dict[str, Any] = {}
    heads = {}
    if len(table):
        heads = {h["attribute"]: h for h in build_headline(table).to_dict(orient="records")}
    for a in names:
        h = heads.get(a, {})
        for key in HEADLINE_KEYS:
            v = h.get(key)
            if v is None or (key != "strongest_attacker" and _isnan(_num(v))):
                v = "" if key == "strongest_attacker" else nan
            out[f"{a}_{key}"] = v
        out[f"{a}_max_roc_auc_spread"] = _spread_of_max(table, a)
    if headline_only:
        return out
    for rec in table.to_dict(orient="records"):
        attribute = rec.get("attribute")
        if attribute not in names:
            continue
        for metric, short in ATTACKER_KEYS.items():
            v = rec.get(metric)
            out[f"{attribute}_{short}_{rec['attacker']}"] = nan if v is None else v
    return out
