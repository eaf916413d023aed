"""Helpers shared by the benchmark scripts (not part of the privrec package).

* :func:`cache_ml1m` parses MovieLens 1M once, splits it, and writes the arrays to a private
  ``.npz`` (no pickle) that each measurement subprocess reloads in a fraction of a second.
* :func:`timed_evaluation` wraps the trainer's validation call so that evaluation time can be
  subtracted from the epoch time.
* :func:`peak_rss_mib` / :func:`reset_peak_rss` read and reset the process's peak resident set.
"""

from __future__ import annotations

import os
import platform
import resource
import time
from pathlib import Path

import numpy as np

from privrec.data.attributes import Attribute, UserAttributes
from privrec.data.interactions import Interactions
from privrec.data.split import Split

SPLIT_PARTS = ("train", "validation", "test")


def default_data_dir() -> str:
    """``$PRIVREC_DATA_DIR/ml-1m`` (the project's convention), else ``../shared/data/ml-1m``."""
    root = os.environ.get("PRIVREC_DATA_DIR")
    return os.path.join(root, "ml-1m") if root else "../shared/data/ml-1m"


ATTRS = ("gender", "age")


def cache_ml1m(data_dir: str | Path, path: Path) -> dict:
    """Load ML-1M, apply the leave-last-out split and save it (and gender/age) to ``path``."""
    from privrec.data.movielens import load_ml1m
    from privrec.data.split import leave_last_out

    t0 = time.perf_counter()
    ds = load_ml1m(data_dir)
    split = leave_last_out(ds.interactions)
    arrays: dict[str, np.ndarray] = {
        "user_ids": np.asarray(split.train.user_ids).astype(str),
        "item_ids": np.asarray(split.train.item_ids).astype(str),
    }
    for part in SPLIT_PARTS:
        inter: Interactions = getattr(split, part)
        for col in ("users", "items", "timestamps", "order"):
            arrays[f"{part}_{col}"] = getattr(inter, col)
    for name in ATTRS:
        attr = ds.attributes[name]
        arrays[f"attr_{name}_values"] = attr.values
        arrays[f"attr_{name}_classes"] = np.asarray(attr.classes, dtype=str)
    np.savez(path, **arrays)
    return {"load_split_seconds": time.perf_counter() - t0, **split.summary()}


def load_cached(path: str | Path) -> tuple[Split, UserAttributes]:
    """The split and the gender/age attributes saved by :func:`cache_ml1m`."""
    with np.load(path, allow_pickle=False) as z:
        uid, iid = z["user_ids"], z["item_ids"]
        parts = [
            Interactions(
                z[f"{p}_users"], z[f"{p}_items"], z[f"{p}_timestamps"], z[f"{p}_order"], uid, iid
            )
            for p in SPLIT_PARTS
        ]
        attrs = UserAttributes(
            uid,
            {
                n: Attribute(n, "categorical", z[f"attr_{n}_values"], tuple(z[f"attr_{n}_classes"]))
                for n in ATTRS
            },
        )
    return Split(*parts), attrs


class timed_evaluation:
    """Context manager replacing ``privrec.training.trainer.evaluate_split`` with a timed
    wrapper; ``calls`` holds the seconds of each evaluation, in order."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __enter__(self) -> timed_evaluation:
        import privrec.training.trainer as trainer_mod

        self._mod = trainer_mod
        self._orig = trainer_mod.evaluate_split

        def wrapped(*args, **kwargs):
            t0 = time.perf_counter()
            out = self._orig(*args, **kwargs)
            self.calls.append(time.perf_counter() - t0)
            return out

        trainer_mod.evaluate_split = wrapped
        return self

    def __exit__(self, *exc) -> None:
        self._mod.evaluate_split = self._orig


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process; False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> dict[str, float | None]:
    """``vmhwm``: peak RSS since the last :func:`reset_peak_rss` (Linux); ``ru_maxrss``: peak
    RSS over the whole process life (KiB on Linux), both in MiB."""
    hwm = None
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return {"vmhwm": hwm, "ru_maxrss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def machine_info() -> dict:
    """CPU model, core count, load and library versions (for the report header)."""
    import torch

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import implicit

        implicit_version = implicit.__version__
    except ImportError:
        implicit_version = None
    import privrec

    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "torch": torch.__version__,
        "torch_default_threads": torch.get_num_threads(),
        "numpy": np.__version__,
        "implicit": implicit_version,
        "privrec": getattr(privrec, "__version__", "?"),
        "python": platform.python_version(),
        "loadavg_start": list(os.getloadavg()),
    }


def median(xs) -> float:
    xs = [x for x in xs if x is not None and np.isfinite(x)]
    return float(np.median(xs)) if xs else float("nan")
