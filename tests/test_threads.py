"""The default thread choice (privrec.cpus): pure rule, readings of the machine, the trainer."""

from __future__ import annotations

import json

import pytest

from privrec import cpus
from privrec.cpus import _cgroup_quota, busy_cpus, choose_threads


@pytest.mark.parametrize(
    ("ceiling", "n_cpus", "busy", "want"),
    [
        (2, 2, 0, 2),  # idle: torch's count
        (2, 2, 1, 1),  # one other busy process on two cores
        (2, 2, 2, 1),  # fully loaded: still one thread
        (2, 2, 5, 1),  # overloaded
        (2, 2, 0.5, 1),  # a partly busy core is not free
        (16, 16, 3, 13),
        (4, 16, 0, 4),  # never above the ceiling (torch's count / a worker's budget)
        (16, 8, 0, 8),  # never above the usable cores
    ],
)
def test_choose_threads(ceiling, n_cpus, busy, want):
    assert choose_threads(ceiling, n_cpus, busy) == want


def test_busy_cpus_reads_the_running_tasks_minus_itself(tmp_path):
    f = tmp_path / "loadavg"
    f.write_text("0.50 0.40 0.30 3/120 4242\n")
    assert busy_cpus(samples=3, interval=0.0, path=str(f)) == 2.0
    f.write_text("0.00 0.00 0.00 1/80 4242\n")
    assert busy_cpus(samples=1, path=str(f)) == 0.0


def test_busy_cpus_falls_back_to_the_load_average(tmp_path, monkeypatch):
    monkeypatch.setattr(cpus.os, "getloadavg", lambda: (1.75, 1.0, 0.5))
    assert busy_cpus(samples=2, interval=0.0, path=str(tmp_path / "absent")) == 1.75
    (tmp_path / "garbled").write_text("not a loadavg line")
    assert busy_cpus(samples=2, interval=0.0, path=str(tmp_path / "garbled")) == 1.75


def test_cgroup_quota(tmp_path):
    f = tmp_path / "cpu.max"
    f.write_text("200000 100000\n")
    assert _cgroup_quota(str(f)) == 2.0
    f.write_text("max 100000\n")
    assert _cgroup_quota(str(f)) is None
    assert _cgroup_quota(str(tmp_path / "absent")) is None
    f.write_text("garbage")
    assert _cgroup_quota(str(f)) is None


def _fit_recording_threads(split, num_threads):
    import torch

    from privrec.training import TrainConfig, Trainer

    seen = []
    cfg = TrainConfig(embedding_size=4, epochs=2, batch_size=1024, patience=0)
    cfg = cfg.replace(num_threads=num_threads)
    trained = Trainer(cfg, callback=lambda r: seen.append(torch.get_num_threads())).fit(split)
    return trained, seen


def test_a_loaded_machine_gets_one_thread_and_the_count_is_restored(tiny, monkeypatch):
    import torch

    from privrec.data.split import leave_last_out

    split = leave_last_out(tiny.interactions)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        monkeypatch.setattr(cpus, "usable_cpus", lambda: 2)
        monkeypatch.setattr(cpus, "busy_cpus", lambda: 2.0)  # two other busy processes
        trained, seen = _fit_recording_threads(split, None)
        assert trained.threads == 1 and seen == [1, 1]
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(cpus, "busy_cpus", lambda: 0.0)  # idle: torch's count
        trained, seen = _fit_recording_threads(split, None)
        assert trained.threads == 2 and seen == [2, 2]
        trained, seen = _fit_recording_threads(split, 1)  # an explicit count wins
        assert trained.threads == 1 and seen == [1, 1]
    finally:
        torch.set_num_threads(before)


def test_the_run_records_its_thread_count(tmp_path):
    from typer.testing import CliRunner

    from privrec.cli.app import app

    out = tmp_path / "run"
    res = CliRunner().invoke(
        app,
        [
            "train",
            *("--dataset", "synthetic", "--syn-users", "200", "--syn-items", "80", "-q"),
            *("-e", "4", "--epochs", "1", "--threads", "1", "--out", str(out)),
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((out / "metrics.json").read_text())["threads"] == 1
