"""The Ray executor: the executors interface, identical sweep results, retries, kill and resume.

One local Ray instance (``ray.init(num_cpus=2)``, started by the executor itself: the same code
path as a cluster connection) serves the whole module; the CLI test's killed sweep starts its
own in a subprocess, and its rerun joins the module's instance as a cluster. Skipped when Ray
is not installed (``pip install 'privrec[ray]'``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'privrec[ray]')")

from privrec.errors import ConfigError  # noqa: E402
from privrec.experiments.executors import EXECUTORS, TaskOutcome, get_executor  # noqa: E402
from privrec.experiments.ray_executor import RayExecutor  # noqa: E402
from privrec.experiments.sweep_runner import run_sweep  # noqa: E402
from privrec.experiments.sweep_spec import SweepSpec  # noqa: E402
from privrec.runs.run_spec import RunSpec  # noqa: E402

# every test needs the module's local Ray instance (seconds to start, worker processes)
pytestmark = pytest.mark.slow

RAY_ENTRY = "privrec.experiments.ray_executor:RayExecutor"
RAY_REGISTERED = "ray" in EXECUTORS  # by privrec itself (else the tests register it)
TINY_DATA = {"n_users": 300, "n_items": 100, "density": 0.08, "strength": 0.6, "seed": 1}
TINY_TRAIN = {"embedding_size": 8, "epochs": 3, "batch_size": 512, "learning_rate": 0.01}

# the helpers below run in Ray workers, which cannot import this test module by name
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _square(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    time.sleep(0.3 if x == 3 else 0.0)
    return x * x


def _threads(_: int) -> tuple[int, str | None]:
    import torch

    return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")


def _die_once(marker: str) -> str:
    """Kills its own worker the first time (as the OOM killer or a lost node would)."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os.kill(os.getpid(), signal.SIGKILL)
    return "survived"


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray instance for the module, started (and stopped) by a RayExecutor."""
    temp = tempfile.mkdtemp(prefix="privrec-ray-")  # short: Ray's socket paths have a limit
    added = EXECUTORS.setdefault("ray", RAY_ENTRY) == RAY_ENTRY and not RAY_REGISTERED
    owner = RayExecutor(workers=2, address="local", init_kwargs={"_temp_dir": temp})
    try:
        owner.start()
        assert owner.owns_connection and owner.started_local and ray.is_initialized()
        assert ray.cluster_resources()["CPU"] >= 2
        yield owner
    finally:
        owner.close()
        if added:
            EXECUTORS.pop("ray", None)
        shutil.rmtree(temp, ignore_errors=True)
    assert not ray.is_initialized(), "the executor that started Ray must stop it"


def test_map_completion_order_errors_and_threads(ray_session):
    with RayExecutor(workers=2, address="local") as ex:
        outs = list(ex.map(_square, [3, -1, 2]))
        assert not ex.owns_connection  # Ray was already running: used, never shut down
        assert "1 CPU" in ex.describe() and ex.threads == 1
        threads = list(ex.map(_threads, [0]))
    assert ray.is_initialized()
    assert all(isinstance(o, TaskOutcome) for o in outs)
    assert sorted(o.index for o in outs) == [0, 1, 2]  # every task reported once
    by_index = sorted(outs, key=lambda o: o.index)
    assert [o.result for o in by_index] == [9, None, 4]
    assert by_index[1].error == "ValueError: negative" and "Traceback" in by_index[1].traceback
    assert threads[0].result == (1, "1")  # configure_worker(threads) ran in the worker
    with RayExecutor(workers=1, num_cpus=2) as ex:  # explicit per-task resources
        (out,) = ex.map(_threads, [0])
    assert out.result == (2, "2")


def test_dead_worker_is_retried_then_reported(ray_session, tmp_path: Path):
    marker = str(tmp_path / "died-once")
    with RayExecutor(workers=2, max_retries=1) as ex:
        (out,) = ex.map(_die_once, [marker])
    assert out.ok and out.result == "survived" and os.path.exists(marker)
    with RayExecutor(workers=2, max_retries=0) as ex:
        outs = sorted(ex.map(_square_or_die, [-2, 5]), key=_index)
    assert outs[0].error.startswith("WorkerCrashedError") and outs[0].result is None
    assert outs[1].ok and outs[1].result == 25  # the other task is unaffected


def _square_or_die(x: int) -> int:
    if x < 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def _index(o: TaskOutcome) -> int:
    return o.index


def test_registry_options_and_missing_ray(ray_session, monkeypatch):
    ex = get_executor("ray", workers=2)
    assert isinstance(ex, RayExecutor) and ex.workers == 2
    ex.close()
    ex = get_executor("ray", 2, address="auto", num_cpus=1.5, num_gpus=0.25)  # not connected yet
    assert (ex.address, ex.num_cpus, ex.num_gpus) == ("auto", 1.5, 0.25)
    with pytest.raises(ConfigError, match="does not take option.*gpus_per_task"):
        get_executor("ray", 2, gpus_per_task=1)
    for bad in ({"num_cpus": 0}, {"num_gpus": -1}, {"max_retries": -1}):
        with pytest.raises(ConfigError):
            RayExecutor(**bad)
    with pytest.raises(ConfigError, match="workers must be >= 1"):
        RayExecutor(workers=0)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ConfigError, match=r"pip install 'privrec\[ray\]'"):
        RayExecutor()


def _npz_members(path: Path) -> dict[str, bytes]:
    """The arrays' bytes (the zip headers also hold the file's write time, which differs)."""
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in sorted(z.namelist())}


def test_sweep_local_and_ray_identical_and_resumable(ray_session, tmp_path: Path):
    base = RunSpec.from_dict(
        {"dataset": "synthetic", "data": TINY_DATA, "train": TINY_TRAIN, "attackers": "fast"}
    )
    spec = SweepSpec(base=base, grid={"lambda": (0.0, 0.1)})
    local = run_sweep(spec, tmp_path / "local", executor="local", workers=2, progress=False)
    on_ray = run_sweep(spec, tmp_path / "ray", executor="ray", workers=2, progress=False)
    assert on_ray.executor.startswith("ray (the running Ray session") and on_ray.computed == 2
    a, b = local.results, on_ray.results
    assert list(a["run_id"]) == list(b["run_id"]) == [r.run_id for r in spec.runs]
    assert list(a["status"]) == list(b["status"]) and (a["status"] == "ok").any()
    timing = [c for c in a.columns if c.endswith("seconds")]  # wall times differ, nothing else
    numeric = [c for c in a.columns if c not in timing and pd.api.types.is_numeric_dtype(a[c])]
    assert "test_hr@10" in numeric and "attr_max_roc_auc" in numeric
    np.testing.assert_array_equal(a[numeric].to_numpy(float), b[numeric].to_numpy(float))
    for run_id in a["run_id"]:
        ea = tmp_path / "local" / "runs" / run_id / "embeddings.npz"
        eb = tmp_path / "ray" / "runs" / run_id / "embeddings.npz"
        assert ea.exists() == eb.exists()
        if ea.exists():  # same seeds ⇒ identical vectors, bit for bit
            assert _npz_members(ea) == _npz_members(eb)
    again = run_sweep(spec, tmp_path / "ray", executor="ray", workers=2, progress=False)
    assert again.skipped == 2 and again.computed == 0 and again.failed == 0


# --- the CLI: kill a Ray sweep midway, rerun it ------------------------------------------------


def _tagged_pids(tag: str) -> list[int]:
    """Processes (of this user) whose environment carries ``tag``: the sweep and its Ray."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if tag.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
    return found


def _wait_gone(tag: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _tagged_pids(tag)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_cli_ray_sweep_killed_midway_resumes(ray_session, tmp_path: Path):
    """The killed sweep starts (and loses) its own local Ray; the rerun joins the module's Ray
    as a cluster through ``--address``, which must still be running afterwards."""
    out = tmp_path / "sweep"
    args = [
        "sweep", "--out", str(out),
        "--dataset", "synthetic", "--syn-users", "300", "--syn-items", "100",
        "--sizes", "8", "--lambdas", "0,0.1", "--seeds", "0,1",
        "--epochs", "3", "--batch-size", "512", "--lr", "0.01",
        "--attackers", "fast", "--executor", "ray", "--workers", "1", "--quiet", "--no-report",
    ]  # fmt: skip
    if RAY_REGISTERED:
        cmd = [sys.executable, "-m", "privrec", *args]
    else:  # the registry has no "ray" entry yet: register it, then run the same CLI
        boot = (
            "import sys; from privrec.experiments.executors import register_executor; "
            f"register_executor('ray', {RAY_ENTRY!r}); "
            "from privrec.cli.app import main; sys.argv[0] = 'privrec'; main()"
        )
        cmd = [sys.executable, "-c", boot, *args]
    tag = f"privrec-ray-test-{uuid.uuid4().hex}"
    temp = tempfile.mkdtemp(prefix="privrec-ray-")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(PYTHONUNBUFFERED="1", PRIVREC_TEST_TAG=tag, RAY_TMPDIR=temp)
    runs = out / "runs"
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 150
        done: list[Path] = []
        runs.mkdir(parents=True, exist_ok=True)  # the sweep creates it too (exist_ok)
        while time.monotonic() < deadline and proc.poll() is None:
            done = [p for p in runs.glob("*") if not p.name.startswith(".")]
            if done:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep finished before it could be killed"
        assert done, "no run directory appeared in time"
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the Ray processes it started
        proc.wait(timeout=30)
        left = _wait_gone(tag, 30)
        assert not left, f"Ray processes outlived the killed sweep: {left}"
        first = sorted(p.name for p in runs.iterdir() if not p.name.startswith("."))
        assert 1 <= len(first) < 4
        cluster = ray.get_runtime_context().gcs_address
        rerun_cmd = [*cmd, "--address", cluster, "--task-cpus", "1"]  # no $RAY_ADDRESS
        rerun = subprocess.run(rerun_cmd, capture_output=True, text=True, env=env, timeout=300)
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        said = " ".join(rerun.stdout.split())
        assert f"{4 - len(first)} computed, {len(first)} reused" in said
        assert f"with ray (Ray cluster {cluster}" in said
        results = pd.read_csv(out / "results.csv")
        assert len(results) == 4 and results["run_id"].is_unique
        assert results["status"].isin(["ok", "diverged", "leaky"]).all()  # computed, none failed
        names = sorted(p.name for p in runs.iterdir())
        assert names == sorted(results["run_id"])  # one directory per grid point, no partials
        assert set(first) <= set(names)
        assert not _wait_gone(tag, 30), "the rerun left processes behind"
        assert ray.cluster_resources()["CPU"] >= 2  # a cluster it did not start: still up
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in _tagged_pids(tag):  # only the processes this test started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


def test_family12_impossible_resources_fail_fast(ray_session):
    """Runs asking for GPUs (or more CPUs) than the whole cluster has would queue forever:
    the executor refuses at start, with a message naming the option."""
    with pytest.raises(ConfigError, match=r"--task-gpus.*could never start"):
        RayExecutor(num_gpus=1).start()
    with pytest.raises(ConfigError, match=r"--task-cpus.*could never start"):
        RayExecutor(num_cpus=1000).start()
    ex = RayExecutor(num_cpus=1).start()  # a satisfiable request still starts
    ex.close()
