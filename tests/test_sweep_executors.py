"""Sweep executors: the common interface, custom backends, identical results across backends."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from privrec.errors import ConfigError
from privrec.experiments.executors import (
    EXECUTORS,
    SerialExecutor,
    get_executor,
    register_executor,
)
from privrec.experiments.sweep_runner import run_sweep
from privrec.experiments.sweep_spec import SweepSpec
from privrec.runs.run_spec import RunSpec

pytestmark = pytest.mark.slow  # process pools and whole sweeps on every backend

TINY_DATA = {"n_users": 300, "n_items": 100, "density": 0.08, "strength": 0.6, "seed": 1}
TINY_TRAIN = {"embedding_size": 8, "epochs": 3, "batch_size": 512, "learning_rate": 0.01}


def tiny_run(**changes) -> RunSpec:
    d = {"dataset": "synthetic", "data": TINY_DATA, "train": TINY_TRAIN, "attackers": "fast"}
    d.update(changes)
    return RunSpec.from_dict(d)


def _square(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x * x


def test_executors_yield_every_outcome_and_capture_errors():
    for name in ("serial", "local"):
        with get_executor(name, workers=1) as ex:
            outs = sorted(ex.map(_square, [3, -1, 2]), key=lambda o: o.index)
        assert [o.result for o in outs] == [9, None, 4]
        assert outs[1].error == "ValueError: negative" and "Traceback" in outs[1].traceback
    with pytest.raises(ConfigError, match="unknown executor 'nope'"):
        get_executor("nope")
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        get_executor("local", workers=0)


class ReversedExecutor(SerialExecutor):
    """A custom backend: completes tasks in reverse order (the sweep must not care)."""

    name = "reversed"

    def map(self, fn, tasks):
        tasks = list(tasks)
        outs = list(super().map(fn, tasks))
        yield from reversed(outs)


def test_sweep_serial_and_local_give_identical_results(tmp_path: Path):
    spec = SweepSpec(base=tiny_run(), grid={"lambda": (0.0, 0.1)})
    serial = run_sweep(spec, tmp_path / "serial", executor="serial", progress=False)
    local = run_sweep(spec, tmp_path / "local", executor="local", workers=2, progress=False)
    register_executor("reversed", ReversedExecutor)
    try:
        rev = run_sweep(spec, tmp_path / "rev", executor="reversed", progress=False)
    finally:
        EXECUTORS.pop("reversed")
    a, b, c = serial.results, local.results, rev.results
    assert list(a["run_id"]) == [r.run_id for r in spec.runs]  # grid order
    # diverged only by the reversal rule, leaky only by the defence check: none failed
    assert a["status"].isin(["ok", "diverged", "leaky"]).all()
    assert a.loc[a["status"] == "diverged", "reason"].str.startswith("reversal").all()
    numeric = [
        col
        for col in a.columns
        if not col.endswith("seconds")  # timings differ, numbers must not
        and pd.api.types.is_numeric_dtype(a[col])
    ]
    for other in (b, c):
        assert list(other["run_id"]) == list(a["run_id"])
        np.testing.assert_allclose(
            a[numeric].to_numpy(float), other[numeric].to_numpy(float), rtol=0, atol=1e-9
        )
    for col in ("val_hr@10", "test_hr@10", "attr_max_roc_auc", "attr_acc_logistic"):
        assert col in a.columns and a[col].notna().all()
    # files
    out = tmp_path / "serial"
    for name in ("results.csv", "results.json", "results.parquet", "sweep.json"):
        assert (out / name).is_file()
    assert len(json.loads((out / "results.json").read_text())) == 2
    run_dir = out / "runs" / a["run_id"][0]
    for name in ("config.json", "metrics.json", "embeddings.npz", "audit.json", "summary.json"):
        assert (run_dir / name).is_file()
    # a rerun reuses every run
    again = run_sweep(spec, out, executor="serial", progress=False)
    assert again.skipped == 2 and again.computed == 0
