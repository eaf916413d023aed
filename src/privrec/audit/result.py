"""The result of an audit: the per-attacker table, the per-attribute headline, and run info."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from privrec.audit.metrics import CATEGORICAL_METRICS, CONTINUOUS_METRICS
from privrec.audit.uncertainty import LEVEL, UNCERTAINTY_METRICS
from privrec.errors import DataError

TABLE_COLUMNS: tuple[str, ...] = (
    "attribute",
    "kind",
    "attacker",
    "n_users",
    *CATEGORICAL_METRICS,
    *UNCERTAINTY_METRICS,
    *CONTINUOUS_METRICS,
    "seconds",
)

#: Metrics of the strongest attacker copied into the headline.
_STRONGEST_METRICS: tuple[str, ...] = (
    "n_users",
    "accuracy",
    "accuracy_std",
    "balanced_accuracy",
    "balanced_accuracy_std",
    "roc_auc",
    "roc_auc_std",
    "roc_auc_ci_low",
    "roc_auc_ci_high",
    "balanced_accuracy_ci_low",
    "balanced_accuracy_ci_high",
    "p_value_family",
    "macro_f1",
    "gap",
    "chance_balanced",
    "log_loss",
    "r2",
    "r2_std",
    "mae",
    "mae_baseline",
)

HEADLINE_COLUMNS: tuple[str, ...] = (
    "attribute",
    "kind",
    "strongest_attacker",
    *_STRONGEST_METRICS,
    "max_roc_auc",
    "max_balanced_accuracy",
    "max_accuracy",
    "max_r2",
    "majority",
    "mi_lower_bits",
    "min_ordinal_mae",
    "ordinal_mae_baseline",
    "beats_chance",
)


def build_headline(table: pd.DataFrame) -> pd.DataFrame:
    """One row per attribute: its strongest attacker (by ROC-AUC for categorical attributes,
    R² for continuous ones; ties go to the first attacker in suite order) with that attacker's
    metrics, plus maxima over all attackers (which may come from different attackers), the
    MI lower bound of the best probabilistic attacker, for an ordered attribute (numeric class
    names, more than two) the smallest ordinal MAE over attackers next to that of guessing the
    median group, and ``beats_chance``: whether the
    strongest attacker is distinguishable from chance at :data:`~privrec.audit.uncertainty.LEVEL`
    (its family-wise permutation p-value, corrected for the maximum over attackers, below
    ``1 − LEVEL``; None where the table has no p-value, e.g. continuous attributes or
    results from before these columns existed)."""
    rows = []
    for attribute in dict.fromkeys(table["attribute"]):
        t = table[table["attribute"] == attribute]
        kind = t["kind"].iloc[0]
        key = "roc_auc" if kind == "categorical" else "r2"
        vals = t[key].to_numpy(dtype=float)
        i = int(np.nanargmax(vals)) if not np.isnan(vals).all() else 0
        best = t.iloc[i]
        row = {"attribute": attribute, "kind": kind, "strongest_attacker": best["attacker"]}
        row.update({m: best[m] for m in _STRONGEST_METRICS})
        for m in ("roc_auc", "balanced_accuracy", "accuracy", "r2"):
            row[f"max_{m}"] = _nanmax(t[m])
        row["majority"] = best["majority"]
        row["mi_lower_bits"] = _nanmax(t["mi_lower_bits"])
        row["min_ordinal_mae"] = _nanmin(t["ordinal_mae"])
        row["ordinal_mae_baseline"] = _nanmax(t["ordinal_mae_baseline"])  # one per attribute
        p = row.get("p_value_family")
        row["beats_chance"] = None if p is None or p != p else bool(p < 1 - LEVEL)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(HEADLINE_COLUMNS))


def _nanmin(s: pd.Series) -> float:
    v = s.to_numpy(dtype=float)
    return math.nan if np.isnan(v).all() else float(np.nanmin(v))


def _nanmax(s: pd.Series) -> float:
    v = s.to_numpy(dtype=float)
    return math.nan if np.isnan(v).all() else float(np.nanmax(v))


@dataclass(frozen=True, eq=False)
class AuditResult:
    """What an audit found.

    Attributes:
        table: one row per (attribute, attacker), columns :data:`TABLE_COLUMNS` (NaN where a
            metric does not apply: classification metrics for continuous attributes and vice
            versa, log-loss/MI for attackers without probabilities).
        headline: one row per attribute, columns :data:`HEADLINE_COLUMNS`.
        info: users matched/unmatched overall and per attribute, folds, seed, attackers,
            skipped attributes, dropped classes and every warning raised.
    """

    table: pd.DataFrame
    headline: pd.DataFrame
    info: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain-JSON form (NaN → None): ``{"info", "headline", "table"}``."""
        return {
            "info": self.info,
            "headline": _records(self.headline),
            "table": _records(self.table),
        }

    def leakage(self, attribute: str, metric: str = "roc_auc") -> float:
        """The largest value of ``metric`` over all attackers for ``attribute``.

        Raises:
            DataError: the attribute was not audited or ``metric`` is not a table column.
        """
        if metric not in self.table.columns or metric in ("attribute", "kind", "attacker"):
            raise DataError(
                f"unknown metric {metric!r}; one of: "
                + ", ".join(c for c in TABLE_COLUMNS if c not in ("attribute", "kind", "attacker"))
            )
        t = self.table[self.table["attribute"] == attribute]
        if t.empty:
            audited = ", ".join(dict.fromkeys(self.table["attribute"])) or "none"
            raise DataError(f"attribute {attribute!r} was not audited; audited: {audited}")
        return _nanmax(t[metric])

    @property
    def attributes(self) -> list[str]:
        """Audited attribute names, in order."""
        return list(dict.fromkeys(self.table["attribute"]))


def _records(df: pd.DataFrame) -> list[dict]:
    out = []
    for rec in df.to_dict(orient="records"):
        clean = {}
        for k, v in rec.items():
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and math.isnan(v):
                v = None
            clean[str(k)] = v
        out.append(clean)
    return out
