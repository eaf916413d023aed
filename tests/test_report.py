"""The report: paper-style tables, the figure, self-contained HTML, the CLI."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from privrec.cli.app import app
from privrec.errors import DataError
from privrec.experiments.report import build_report, write_report
from privrec.experiments.sweep_results import write_results
from privrec.experiments.sweep_spec import SweepSpec
from privrec.runs.run_spec import RunSpec

PAPER = ("logistic", "linear_svm_c1", "rbf_svm", "decision_tree")


def _fake_ml1m_sweep(out: Path) -> pd.DataFrame:
    """A hand-made ML-1M sweep: sizes 10/20 × λ 0/0.1/1 × 2 seeds; size 20 λ=1 diverged."""
    base = RunSpec.from_dict({"dataset": "ml-1m", "train": {"epochs": 2}})
    spec = SweepSpec(
        base=base, grid={"embedding_size": (10, 20), "lambda": (0.0, 0.1, 1.0), "seed": (0, 1)}
    )
    rng = np.random.default_rng(0)
    rows = []
    records = []
    for values, run in spec.expand():
        size, lam, seed = values["embedding_size"], values["lambda"], values["seed"]
        diverged = size == 20 and lam == 1.0
        row = {
            "run_id": run.run_id,
            "dataset": "ml-1m",
            "method": "adversarial",
            "embedding_size": size,
            "lambda": lam,
            "seed": seed,
            "status": "diverged" if diverged else "ok",
            "reason": "collapse" if diverged else "",
            "attackers": "paper" if (size, lam) == (10, 0.1) else "fast",
            "train_seconds": 20.0,
            "audit_seconds": 2.0,
        }
        if not diverged:
            leak = 1.0 / (1.0 + 10 * lam)
            row.update(
                {
                    "val_hr@10": 0.06 - 0.01 * lam + 0.001 * seed,
                    "val_ndcg@10": 0.03,
                    "test_hr@10": 0.061 - 0.01 * lam,
                    "test_ndcg@10": 0.031,
                    "epochs_run": 20,
                }
            )
            for attr, maj in (("gender", 0.717), ("age", 0.347)):
                auc = 0.5 + 0.3 * leak + 0.01 * rng.random()
                acc = maj + 0.06 * leak
                row.update(
                    {
                        f"{attr}_max_roc_auc": auc,
                        f"{attr}_max_balanced_accuracy": 0.5 + 0.1 * leak,
                        f"{attr}_max_accuracy": acc,
                        f"{attr}_strongest_attacker": "logistic",
                        f"{attr}_majority": maj,
                        f"{attr}_mi_lower_bits": 0.1 * leak,
                    }
                )
                names = PAPER if row["attackers"] == "paper" else ("logistic",)
                for att in names:
                    row[f"{attr}_acc_{att}"] = acc - 0.01 * names.index(att)
                    row[f"{attr}_bacc_{att}"] = 0.5 + 0.1 * leak
                    row[f"{attr}_auc_{att}"] = auc
                    for metric, short in (
                        ("accuracy", "acc"),
                        ("balanced_accuracy", "bacc"),
                        ("roc_auc", "auc"),
                    ):
                        records.append(
                            {
                                "run_id": run.run_id,
                                "stage": "final",
                                "attribute": attr,
                                "kind": "categorical",
                                "attacker": att,
                                "metric": metric,
                                "value": row[f"{attr}_{short}_{att}"],
                                "spread": 0.01,
                                "population": "all labelled users, 5-fold CV",
                                "n_users": 6040,
                            }
                        )
        else:
            row["epochs_run"] = 3
        rows.append(row)
    df = pd.DataFrame(rows)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(
        json.dumps(
            {
                "spec": spec.to_dict(),
                "points": [{"run_id": r.run_id, "grid": v} for v, r in spec.expand()],
            }
        )
    )
    write_results(df, out, pd.DataFrame(records))
    return df


def test_report_tables_match_the_paper_layout(tmp_path: Path):
    df = _fake_ml1m_sweep(tmp_path)
    rep = build_report(tmp_path)
    assert "ML-1M (reconstructed ratings.dat)" in rep.title
    t1 = rep.table("table1_accuracy")
    assert "size 10, λ = 0.1, 2 seed(s)" in t1.title
    assert t1.columns == [
        "classifier",
        "gender (ours)",
        "gender (paper)",
        "age (ours)",
        "age (paper)",
    ]
    labels = [r[0] for r in t1.rows]
    assert labels[0] == "large class baseline" and "SVM (RBF kernel)" in labels
    assert t1.rows[0][2] == "71.70" and t1.rows[0][4] == "34.70"
    rbf = t1.rows[labels.index("SVM (RBF kernel)")]
    assert rbf[2] == "71.71" and rbf[4] == "29.20"

    t2 = rep.table("gender_acc_paper_attacker")
    assert t2.title.startswith("Table 2 — gender")
    assert t2.columns == ["size", "", "λ=0", "λ=0.1", "λ=1"]
    assert t2.rows[1] == ["10", "paper", "76.97", "71.33", "71.70"]
    ours = df[(df.embedding_size == 10) & (df["lambda"] == 0.0)]["gender_acc_logistic"] * 100
    assert t2.rows[0][2] == f"{ours.mean():.2f} ± {ours.std():.2f}"
    assert t2.rows[2][4] == "diverged (2/2)"  # size 20, λ=1: never averaged
    assert "naïve (majority): 71.70%" in t2.note
    assert rep.table("age_acc_paper_attacker").title.startswith("Table 3 — age")
    t4 = rep.table("hr")
    assert t4.title.startswith("Table 4 — accuracy@10")
    assert t4.rows[1] == ["10", "paper", "3.05", "2.88", "2.43"]
    assert t4.rows[0][2] == "6.10 ± 0.00"
    for key in ("gender_max_balanced_accuracy", "age_max_roc_auc", "pareto_combined"):
        rep.table(key)
    diverged = rep.table("diverged")
    assert len(diverged.rows) == 2 and all(r[1] == "diverged" for r in diverged.rows)
    front = rep.table("pareto_combined")
    assert front.rows and not any("e20 λ=1" in r[0] for r in front.rows)


@pytest.mark.slow
def test_report_files_and_self_contained_html(tmp_path: Path):
    _fake_ml1m_sweep(tmp_path / "sweep")
    rep = write_report(tmp_path / "sweep", tmp_path / "out")
    md = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    png = (tmp_path / "out" / "tradeoff.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(rep.files) == {"markdown", "html", "figure"}
    assert "| 10 | paper | 76.97 | 71.33 | 71.70 |" in md
    assert "![accuracy vs leakage](tradeoff.png)" in md
    m = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert m and base64.b64decode(m.group(1)) == png
    assert "<table>" in html and "tradeoff.png" not in html.replace("data:image/png", "")


@pytest.mark.slow
def test_report_cli(tmp_path: Path):
    _fake_ml1m_sweep(tmp_path)
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "Table 2" in result.output and "report.html" in result.output
    assert (tmp_path / "r" / "report.html").is_file()
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "no sweep.json" in bad.output


def test_report_needs_a_sweep_dir(tmp_path: Path):
    with pytest.raises(DataError, match="no sweep.json"):
        build_report(tmp_path)


def test_leaky_runs_are_named_leaky_not_diverged(tmp_path):
    """A run the defence check marked leaky is never averaged and is reported as leaky."""
    from privrec.experiments.report_tables import _cell

    g = pd.DataFrame({"status": ["leaky", "leaky"], "x": [0.5, 0.6]})
    assert _cell(g, "x") == "leaky (2/2)"
    g = pd.DataFrame({"status": ["diverged", "leaky", "diverged"], "x": [0.5, 0.6, 0.7]})
    assert _cell(g, "x") == "diverged (2/3)"
    g = pd.DataFrame({"status": ["ok", "leaky"], "x": [0.5, 0.6]})
    assert _cell(g, "x").startswith("50.00") and "†1/2" in _cell(g, "x")
