"""Resume: a sweep killed with SIGKILL and rerun computes each grid point exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # subprocess sweeps, killed and rerun


def test_resume_after_sigkill(tmp_path: Path):
    out = tmp_path / "sweep"
    cmd = [
        sys.executable, "-m", "privrec", "sweep", "--out", str(out),
        "--dataset", "synthetic", "--syn-users", "300", "--syn-items", "100",
        "--sizes", "8", "--lambdas", "0,0.1", "--seeds", "0,1",
        "--epochs", "5", "--batch-size", "512", "--lr", "0.01",
        "--attackers", "fast", "--workers", "1", "--quiet", "--no-report",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    runs = out / "runs"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = (
                [p for p in runs.glob("*") if not p.name.startswith(".")] if runs.exists() else []
            )
            if done or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        assert done, "no run directory appeared in time"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    time.sleep(0.5)  # let the worker follow its parent (PR_SET_PDEATHSIG)
    first = sorted(p.name for p in runs.iterdir() if not p.name.startswith("."))
    assert 1 <= len(first) < 4
    (runs / ".stale.abc.partial").mkdir()  # a leftover like the killed run's
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{4 - len(first)} computed, {len(first)} reused" in rerun.stdout.replace("\n", " ")
    results = pd.read_csv(out / "results.csv")
    assert len(results) == 4 and results["run_id"].is_unique
    # every run finished; on this tiny data λ = 0.1 may be flagged (reversal or defence check)
    assert results["status"].isin(["ok", "diverged", "leaky"]).all()
    reasons = results.loc[results["status"] == "diverged", "reason"].astype(str)
    assert reasons.str.startswith("reversal").all()
    names = sorted(p.name for p in runs.iterdir())
    assert names == sorted(results["run_id"])  # one directory per grid point, no partials
    assert set(first) <= set(names)
