"""The post-hoc check every defended run ends with: does a fresh attacker read what the
defence was meant to hide?

A defence can make leakage *worse* and still train without error: gradient reversal with a
large λ maximises an unbounded loss and can encode the attribute inverted, so the in-training
heads report chance while a fresh reader sees the attribute perfectly. After training (and
erasure), :func:`check_defence` fits two fresh probes the defence never saw — a logistic
regression and an MLP — cross-validated over users (over the users whose labels an eraser did
not see, when it saw only some), for every categorical attribute the run defends, and gives
its verdict:

* ``leaky`` when, for some attribute, the vectors give it away: the probes' ROC-AUC is at least
  :data:`GIVEAWAY_AUC`, more than two fold spreads above it; or the vectors are clearly more
  readable than the in-training heads claim: the more accurate fresh probe's accuracy exceeds
  the heads' (or the majority rate, when the heads do worse than that) by more than
  :data:`HEAD_MARGIN` and three fold spreads;
* for a post-hoc defence (erasure, purge), ``leaky`` also when a fresh probe reads an attribute
  better after the defence than before it (ROC-AUC higher by more than :data:`SOURCE_MARGIN`
  and three combined fold spreads) — the defence made it worse; the same rule for a
  training-time defence against its plain twin (the same model, split and seed trained
  without the defence), which the pipeline trains when the defence makes no claim of its own
  to check (MMD/HSIC penalties without heads; :attr:`privrec.runs.run_spec.RunSpec.baseline_check`);
* ``ok`` otherwise — which is no claim of privacy: the audit, with the strongest attackers,
  measures how much is left.

A ``leaky`` run gets ``status: "leaky"`` and the reason in ``metrics.json``; the CLI exits
with status 4 and says why; sweeps and reports never count it as a result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from privrec.data.attributes import UserAttributes

PROBES: tuple[str, ...] = ("logistic", "mlp")
"""The fresh attackers of the check."""
FOLDS = 3
"""Cross-validation folds of the check."""
GIVEAWAY_AUC = 0.95
"""A defended attribute read at this ROC-AUC (or more) is given away."""
SOURCE_MARGIN = 0.02
"""How much more readable (ROC-AUC) than before a post-hoc defence a fresh probe may find an
attribute before the defence is called counter-productive."""
HEAD_MARGIN = 0.05
"""How much better than the in-training heads (accuracy) a fresh probe may read an attribute
before the heads' claim is called false."""


_SOURCES = {
    "before": ("after the defence", "before it"),
    "twin": ("with the defence", "without it (its plain twin, same seed)"),
}


def defended_attributes(spec: Any, erasure_attributes: Sequence[str] = ()) -> list[str]:
    """The attributes a run's defences target: adversarial heads with λ ≠ 0, dependence
    penalties with a weight > 0, and the erased attributes."""
    names = [a for a, w in spec.adversary.weights.items() if w != 0]
    if spec.dependence is not None:
        for weights in spec.dependence.weights().values():
            names += [a for a, w in weights.items() if w > 0]
    names += list(erasure_attributes)
    return list(dict.fromkeys(names))


def check_defence(
    user_ids: np.ndarray,
    vectors: np.ndarray,
    attributes: UserAttributes,
    names: Sequence[str],
    head_accuracy: Mapping[str, float],
    seed: int,
    population: str,
    audit: Any = None,
    audit_folds: int = 5,
    source_vectors: np.ndarray | None = None,
    source_audit: Any = None,
    source: str = "before",
) -> dict:
    """Probe ``vectors`` for the categorical ``names`` and return the check's record:
    ``{"probes", "folds", "population", "attributes": {name: figures}, "verdict", "reason"}``.

    ``head_accuracy``: the in-training heads' accuracy per attribute at the kept epoch (only
    for adversarial defences). ``audit``: the run's own audit of the same vectors on the same
    users, if it has one; when it already ran both probes on every attribute, its figures are
    used (with its ``audit_folds``) instead of fitting the probes again.

    ``source_vectors``: for a post-hoc defence (erasure, purge), the vectors before it (rows
    aligned to ``vectors``; ``source_audit`` their audit, used the same way). The run is then
    also ``leaky`` when the fresh probes read an attribute *better* than on the source vectors,
    by more than :data:`SOURCE_MARGIN` and three combined fold spreads of ROC-AUC.
    ``source``: what ``source_vectors`` are — ``before`` (the vectors before a post-hoc
    defence) or ``twin`` (the vectors of the run's plain twin: the same model, split and seed
    trained without the defence); the same rule applies, the reason names which."""
    if source not in _SOURCES:
        raise ValueError(f"source must be one of {', '.join(_SOURCES)}, got {source!r}")

    categorical = [n for n in names if n in attributes and attributes[n].kind == "categorical"]
    record: dict[str, Any] = {
        "probes": list(PROBES),
        "folds": FOLDS,
        "population": population,
        "attributes": {},
        "verdict": "ok",
        "reason": "",
    }
    if not categorical:
        return record
    if audit is not None and _covers(audit.table, categorical):
        record["folds"] = audit_folds
        record["from_audit"] = True
    table = _probe_table(user_ids, vectors, attributes, categorical, seed, audit)
    reasons = []
    before = None
    if source_vectors is not None:
        before = _probe_table(user_ids, source_vectors, attributes, categorical, seed, source_audit)
    for name in categorical:
        rows = table[table["attribute"] == name]
        if rows.empty:
            continue
        best = rows.iloc[int(np.nanargmax(rows["roc_auc"].to_numpy(dtype=float)))]
        reader = rows.iloc[int(np.nanargmax(rows["accuracy"].to_numpy(dtype=float)))]
        figures: dict[str, Any] = {
            "roc_auc": float(best["roc_auc"]),
            "roc_auc_spread": float(best["roc_auc_std"]),
            "strongest_probe": str(best["attacker"]),
            "probe_accuracy": float(reader["accuracy"]),
            "probe_accuracy_spread": float(reader["accuracy_std"]),
            "most_accurate_probe": str(reader["attacker"]),
            "majority": float(reader["majority"]),
            "n_users": int(best["n_users"]),
        }
        head = head_accuracy.get(name)
        if head is not None and np.isfinite(head):
            figures["head_accuracy"] = float(head)
        record["attributes"][name] = figures
        auc, spread = figures["roc_auc"], figures["roc_auc_spread"]
        if auc >= GIVEAWAY_AUC and auc - 2 * spread > 0.5:
            reasons.append(
                f"{name}: a fresh {figures['strongest_probe']} reads it at ROC-AUC {auc:.3f} "
                f"(± {spread:.3f}) — the defence gave it away"
            )
        elif before is not None and _best(before, name) is not None:
            auc0, spread0 = _best(before, name)  # type: ignore[misc]
            figures["source_roc_auc"] = auc0
            figures["source_roc_auc_spread"] = spread0
            if auc - auc0 > max(SOURCE_MARGIN, 3 * float(np.hypot(spread, spread0))):
                with_, without = _SOURCES[source]
                reasons.append(
                    f"{name}: a fresh {figures['strongest_probe']} reads it at ROC-AUC {auc:.3f}"
                    f" (± {spread:.3f}) {with_} but {auc0:.3f} (± {spread0:.3f}) "
                    f"{without} — the defence made it more readable"
                )
        elif "head_accuracy" in figures:
            # reaching the majority rate reads nothing: heads below it claim no less than that
            claim = max(figures["head_accuracy"], figures["majority"])
            gap = figures["probe_accuracy"] - claim
            if gap > max(HEAD_MARGIN, 3 * figures["probe_accuracy_spread"]):
                reasons.append(
                    f"{name}: the in-training heads claim accuracy {head:.3f} but a fresh "
                    f"{figures['most_accurate_probe']} probe reads "
                    f"{figures['probe_accuracy']:.3f} (± {figures['probe_accuracy_spread']:.3f};"
                    f" majority {figures['majority']:.3f}) — the vectors hide it from the "
                    "heads, not from attackers"
                )
    if before is not None:
        record["compared_with"] = "plain twin" if source == "twin" else "source vectors"
    if reasons:
        record["verdict"] = "leaky"
        record["reason"] = "; ".join(reasons)
    return record


def _probe_table(
    user_ids: np.ndarray,
    vectors: np.ndarray,
    attributes: UserAttributes,
    names: Sequence[str],
    seed: int,
    audit: Any,
) -> Any:
    """The probes' rows for ``names``: from ``audit`` when it ran them all, else fitted."""
    from privrec.audit.core import audit_vectors

    if audit is not None and _covers(audit.table, names):
        table = audit.table
    else:
        table = audit_vectors(
            user_ids,
            vectors,
            attributes,
            names=list(names),
            attackers=list(PROBES),
            folds=FOLDS,
            seed=seed,
            jobs=1,
            progress=False,
        ).table
    return table[table["attacker"].isin(PROBES)]


def _best(table: Any, name: str) -> tuple[float, float] | None:
    """``(ROC-AUC, its fold spread)`` of the strongest probe of ``name``."""
    rows = table[table["attribute"] == name]
    if rows.empty:
        return None
    best = rows.iloc[int(np.nanargmax(rows["roc_auc"].to_numpy(dtype=float)))]
    return float(best["roc_auc"]), float(best["roc_auc_std"])


def _covers(table: Any, names: Sequence[str]) -> bool:
    have = set(zip(table["attribute"], table["attacker"], strict=True))
    return all((n, p) in have for n in names for p in PROBES)
