"""Write an :class:`~privrec.audit.result.AuditResult` to disk and render it as text."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from privrec.artifacts import atomic_write_json, atomic_write_text
from privrec.audit.result import AuditResult
from privrec.audit.uncertainty import LEVEL, N_PERM


def write_audit(result: AuditResult, out_dir: Path) -> Path:
    """Write ``audit.json``, ``audit.csv`` (the per-attacker table) and ``audit.md``.

    ``out_dir`` is created if needed and may already exist; each file is replaced atomically.

    Returns:
        ``out_dir``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out_dir / "audit.json", result.to_dict())
    atomic_write_text(out_dir / "audit.csv", result.table.to_csv(index=False))
    atomic_write_text(out_dir / "audit.md", to_markdown(result))
    return out_dir


def headline_sentence(row: pd.Series | dict) -> str:
    """One line: ``strongest attacker: rbf_svm, AUC 0.80 ± 0.01, balanced accuracy …``."""
    r = dict(row)
    if r["kind"] == "continuous":
        return (
            f"strongest attacker: {r['strongest_attacker']}, R² {_f(r['r2'], 3)} ± "
            f"{_f(r['r2_std'], 3)}, MAE {_f(r['mae'], 3)} (baseline {_f(r['mae_baseline'], 3)})"
        )
    mi = r["mi_lower_bits"]
    mi_text = f", MI ≥ {_f(mi, 3)} bits" if not _nan(mi) else ""
    auc_ci = _ci(r.get("roc_auc_ci_low"), r.get("roc_auc_ci_high"), _f)
    bal_ci = _ci(r.get("balanced_accuracy_ci_low"), r.get("balanced_accuracy_ci_high"), _pct)
    return (
        f"strongest attacker: {r['strongest_attacker']}, AUC {_f(r['roc_auc'])} ± "
        f"{_f(r['roc_auc_std'])}{auc_ci}, balanced accuracy {_pct(r['balanced_accuracy'])}"
        f"{bal_ci} (chance {_pct(r['chance_balanced'])}), accuracy {_pct(r['accuracy'])} vs "
        f"majority {_pct(r['majority'])} (gap {_signed_pct(r['gap'])}){mi_text}"
        + _ordinal_clause(r)
        + chance_clause(r)
    )


def chance_clause(row: pd.Series | dict) -> str:
    """``; distinguishable from chance at 95% (permutation p = 0.012, …)`` — or
    ``NOT distinguishable`` — from a headline row's family-wise p-value ("" without one)."""
    value = dict(row).get("p_value_family")
    if value is None or _nan(value):
        return ""
    p = float(value)
    verdict = "distinguishable" if p < 1 - LEVEL else "NOT distinguishable"
    return (
        f"; {verdict} from chance at {LEVEL:.0%} (permutation p {_p(p)}, corrected for the "
        "maximum over attackers)"
    )


def _ordinal_clause(r: dict) -> str:
    mae, base = r.get("min_ordinal_mae"), r.get("ordinal_mae_baseline")
    if _nan(mae) or _nan(base):
        return ""
    return f", ordinal MAE {_f(mae)} groups (median-group guess {_f(base)})"


def _ci(low, high, fmt) -> str:
    return "" if _nan(low) or _nan(high) else f" [{LEVEL:.0%} CI {fmt(low)}–{fmt(high)}]"


def _p(p: float) -> str:
    """A permutation p-value; at its floor (no permutation reached the observed value) ``≤``."""
    floor = 1 / (N_PERM + 1)
    return f"≤ {floor:.3f}" if p <= floor * (1 + 1e-9) else f"= {p:.3f}"


def to_markdown(result: AuditResult) -> str:
    """A human-readable report: headline, per-attribute tables, join summary, warnings."""
    info = result.info
    lines = ["# Leakage audit", ""]
    lines.append(
        f"{info.get('n_matched', '?')} users matched of {info.get('n_vectors', '?')} vectors "
        f"({info.get('dim', '?')} dims); {info.get('folds', '?')}-fold CV, seed "
        f"{info.get('seed', '?')}; attackers: {', '.join(info.get('attackers', []))}."
    )
    if info.get("source") == "recommendations":
        lines.append(
            f"Input: top-{info.get('k')} recommendations as a bag of items "
            f"({info.get('n_items')} items)."
        )
    lines += ["", "## Headline (strongest attacker per attribute)", ""]
    for _, r in result.headline.iterrows():
        lines.append(f"- **{r['attribute']}**: {headline_sentence(r)}")
    for attribute in result.attributes:
        t = result.table[result.table["attribute"] == attribute]
        kind = t["kind"].iloc[0]
        lines += ["", f"## {attribute} ({kind}, {int(t['n_users'].iloc[0])} users)", ""]
        if kind == "categorical":
            header = ["attacker", *ATTACKER_COLUMNS, "MI ≥ (bits)", "seconds"]
            body = [
                [
                    r["attacker"],
                    *attacker_cells(r),
                    _f(r["mi_lower_bits"], 3),
                    _f(r["seconds"], 1),
                ]
                for _, r in t.iterrows()
            ]
        else:
            header = ["regressor", "R²", "MAE", "MAE (mean baseline)", "seconds"]
            body = [
                [
                    r["attacker"],
                    f"{_f(r['r2'], 3)} ± {_f(r['r2_std'], 3)}",
                    _f(r["mae"], 3),
                    _f(r["mae_baseline"], 3),
                    _f(r["seconds"], 1),
                ]
                for _, r in t.iterrows()
            ]
        lines += _md_table(header, body)
    skipped = {n: a["skipped"] for n, a in info.get("attributes", {}).items() if a.get("skipped")}
    if skipped:
        lines += ["", "## Skipped attributes", ""]
        lines += [f"- {n}: {why}" for n, why in skipped.items()]
    if info.get("warnings"):
        lines += ["", "## Warnings", ""]
        lines += [f"- {w}" for w in info["warnings"]]
    return "\n".join(lines) + "\n"


ATTACKER_COLUMNS: tuple[str, ...] = (
    "accuracy",
    "balanced acc.",
    "ROC-AUC",
    "macro-F1",
    "majority",
    "gap",
    "p vs chance",
)
"""The columns of an attacker's row of a categorical attribute (:func:`attacker_cells`)."""


def attacker_cells(row: pd.Series | dict) -> list[str]:
    """One attacker's figures on a categorical attribute, as text, in
    :data:`ATTACKER_COLUMNS` order (the markdown report and the CLI table)."""
    r = dict(row)
    p = r.get("p_value")
    return [
        f"{_pct(r['accuracy'])} ± {_pct(r['accuracy_std'])}",
        f"{_pct(r['balanced_accuracy'])} ± {_pct(r['balanced_accuracy_std'])}",
        f"{_f(r['roc_auc'])} ± {_f(r['roc_auc_std'])}",
        _f(r["macro_f1"]),
        _pct(r["majority"]),
        _signed_pct(r["gap"]),
        "–" if p is None or _nan(p) else _p(float(p)).removeprefix("= "),
    ]


def _md_table(header: list[str], body: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in body]
    return out


def _nan(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def _f(x, digits: int = 2) -> str:
    return "–" if _nan(x) else f"{float(x):.{digits}f}"


def _pct(x) -> str:
    return "–" if _nan(x) else f"{100 * float(x):.1f}%"


def _signed_pct(x) -> str:
    return "–" if _nan(x) else f"{100 * float(x):+.1f} pp"
