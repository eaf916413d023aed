"""``privrec demo``: the whole pipeline on synthetic data, offline."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from privrec.cli.app import app
from privrec.experiments import demo


@pytest.fixture
def small_demo(monkeypatch):
    """The demo's pipeline at a fraction of its size (the real one is timed by hand)."""
    monkeypatch.setattr(demo, "DEMO_DATA", {**demo.DEMO_DATA, "n_users": 400, "n_items": 100})
    monkeypatch.setattr(demo, "DEMO_TRAIN", {**demo.DEMO_TRAIN, "epochs": 3})
    monkeypatch.setattr(demo, "DEMO_ATTACKERS", ("logistic",))


def test_demo_spec_is_the_documented_grid():
    spec = demo.demo_sweep()
    assert [r.adversary.weights for r in spec.runs] == [{"attr": v} for v in demo.DEMO_LAMBDAS]
    assert all(r.dataset == "synthetic" for r in spec.runs)


@pytest.mark.slow
def test_demo_cli_writes_report(tmp_path: Path, small_demo):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "Pareto front" in result.output and "accuracy@10" in result.output
    assert str(out.resolve()) in result.output.replace("\n", "")
    for name in ("report.md", "report.html", "tradeoff.png", "results.csv"):
        assert (out / name).is_file()
    res = pd.read_csv(out / "results.csv")
    assert len(res) == len(demo.DEMO_LAMBDAS) and res["attr_max_roc_auc"].notna().any()
