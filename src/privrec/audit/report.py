"""Write an :class:`~privrec.audit.result.AuditResult` to disk and render it as text."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from privrec.artifacts import atomic_write_json, atomic_write_text
from privrec.audit.result import AuditResult


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
    return (
        f"strongest attacker: {r['strongest_attacker']}, AUC {_f(r['roc_auc'])} ± "
        f"{_f(r['roc_auc_std'])}, balanced accuracy {_pct(r['balanced_accuracy'])} "
        f"(chance {_pct(r['chance_balanced'])}), accuracy {_pct(r['accuracy'])} vs majority "
        f"{_pct(r['majority'])} (gap {_signed_pct(r['gap'])}){mi_text}"
    )


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
            header = [
                "attacker",
                "accuracy",
                "balanced acc.",
                "ROC-AUC",
                "macro-F1",
                "majority",
                "gap",
                "MI ≥ (bits)",
                "seconds",
            ]
            body = [
                [
                    r["attacker"],
                    f"{_pct(r['accuracy'])} ± {_pct(r['accuracy_std'])}",
                    f"{_pct(r['balanced_accuracy'])} ± {_pct(r['balanced_accuracy_std'])}",
                    f"{_f(r['roc_auc'])} ± {_f(r['roc_auc_std'])}",
                    _f(r["macro_f1"]),
                    _pct(r["majority"]),
                    _signed_pct(r["gap"]),
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
