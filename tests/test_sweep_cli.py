"""``privrec sweep`` and ``privrec reproduce`` through the CLI, and the paper grid's spec."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from privrec.cli.app import app
from privrec.experiments.reproduce import paper_sweep

TINY = [
    "--dataset", "synthetic", "--syn-users", "300", "--syn-items", "100",
    "--epochs", "3", "--batch-size", "512", "--lr", "0.01", "--attackers", "fast",
]  # fmt: skip


@pytest.mark.slow
def test_sweep_cli_end_to_end(tmp_path: Path):
    out = tmp_path / "sw"
    args = ["sweep", "--out", str(out), *TINY, "--sizes", "8", "--lambdas", "0,0.1"]
    result = CliRunner().invoke(app, [*args, "--seeds", "0", "--executor", "serial", "-q"])
    assert result.exit_code == 0, result.output
    assert "2 runs: " in result.output and "0 failed (2 computed, 0 reused)" in result.output
    res = pd.read_csv(out / "results.csv")
    assert list(res["lambda"]) == [0.0, 0.1] and (res["embedding_size"] == 8).all()
    assert (out / "report.md").is_file() and (out / "tradeoff.png").is_file()
    again = CliRunner().invoke(app, [*args, "--seeds", "0", "--executor", "serial", "-q"])
    assert "(0 computed, 2 reused)" in again.output


def test_sweep_cli_config_file_and_errors(tmp_path: Path):
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        '[run]\ndataset = "synthetic"\n[run.data]\nn_users = 300\nn_items = 100\n'
        "[run.train]\nepochs = 2\nbatch_size = 512\n[grid]\nlambda = [0]\n",
        encoding="utf-8",
    )
    out = tmp_path / "sw"
    result = CliRunner().invoke(
        app, ["sweep", "--config", str(cfg), "--out", str(out), "--executor", "serial", "-q",
              "--no-report"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not (out / "report.md").exists()
    cfg.write_text("[run.train]\nepoch = 2\n", encoding="utf-8")
    bad = CliRunner().invoke(app, ["sweep", "--config", str(cfg), "--out", str(out)])
    assert bad.exit_code == 2
    assert "unknown key 'run.train.epoch' (did you mean 'epochs'?)" in bad.output
    bad = CliRunner().invoke(app, ["sweep", "--out", str(out), "--lambdas", "0,x"])
    assert bad.exit_code == 2 and "--lambdas expects comma-separated numbers" in bad.output
    bad = CliRunner().invoke(app, ["sweep", "--out", str(out), "--executor", "nope"])
    assert bad.exit_code == 2 and "unknown executor 'nope'" in bad.output
    bad = CliRunner().invoke(
        app, ["sweep", "--out", str(out), "--address", "auto", "--task-gpus", "1"]
    )
    assert bad.exit_code == 2
    assert "--address, --task-gpus apply to --executor ray only (got 'local')" in bad.output
    cfg.write_text(
        '[run]\ndataset = "synthetic"\n[[series]]\nname = "conf"\ngrid = { lambda = [1] }\n',
        encoding="utf-8",
    )
    bad = CliRunner().invoke(app, ["sweep", "-c", str(cfg), "--out", str(out), "--lambdas", "0"])
    assert bad.exit_code == 2
    assert "--lambdas: the series conf of the sweep file set their own 'lambda'" in bad.output


def test_paper_grid_spec():
    spec = paper_sweep("ml-1m", "/data/ml-1m", seeds=3)
    runs = spec.runs
    assert len(runs) == 45 and len({r.run_id for r in runs}) == 45
    assert {r.train.embedding_size for r in runs} == {10, 20, 50}
    assert {r.adversary.weights["gender"] for r in runs} == {0.0, 0.01, 0.1, 1.0, 10.0}
    assert all(r.adversary.weights["gender"] == r.adversary.weights["age"] for r in runs)
    paper = [r for r in runs if r.attackers == "paper"]
    assert len(paper) == 3  # Table 1's model, one per seed
    assert all(r.train.embedding_size == 10 and r.adversary.weights["age"] == 0.1 for r in paper)
    assert all(r.attackers == "fast" for r in runs if r not in paper)
    assert all(r.train.epochs == 40 and r.train.patience == 5 for r in runs)
    full = paper_sweep("ml-1m", seeds=1, grid_attackers="paper")
    assert {r.attackers for r in full.runs} == {"paper"}


def test_reproduce_cli_rejects_bad_input(tmp_path: Path):
    bad = CliRunner().invoke(app, ["reproduce", "--seeds", "0", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "seeds must be >= 1" in bad.output
    bad = CliRunner().invoke(app, ["reproduce", "--out", str(tmp_path), "--task-cpus", "2"])
    assert bad.exit_code == 2 and "--task-cpus apply to --executor ray only" in bad.output
