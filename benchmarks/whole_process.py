"""Whole-process time of ``privrec train --dataset ml-1m -e 10`` next to implicit's BPR.

Each repeat runs, one after the other and each as a fresh process timed from start to exit:

* ``privrec``: the default command ``privrec train --dataset ml-1m -e 10 --out TMP`` (its
  default thread choice, early stopping, test evaluation, run directory written);
* ``implicit``: ``implicit.cpu.bpr.BayesianPersonalizedRanking`` with its defaults (100
  factors, 100 epochs, lr 0.01, reg 0.01, its own thread choice) on the same leave-last-out
  split, loaded with privrec's loader, scored on the test items with privrec's full-ranking
  evaluation (so both processes load the data, train and evaluate).

The order alternates between repeats (the machine is shared: medians, and the ratio of the
medians measured in the same run). For privrec it also reports the first epoch against the
median of the later ones (start-up costs land in the first epoch).

    python benchmarks/whole_process.py                 # 3 repeats
    python benchmarks/whole_process.py --repeats 5 --json out.json
    python benchmarks/whole_process.py --privrec-args "--lr 0.003"   # a non-default setting
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import machine_info  # noqa: E402


def implicit_worker() -> None:
    """Load ML-1M, split, train implicit's BPR with its defaults, print test HR@10 as JSON."""
    import numpy as np
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from privrec import load_dataset
    from privrec.data.split import leave_last_out
    from privrec.evaluation.protocol import evaluate_split, vectors_scorer

    split = leave_last_out(load_dataset("ml-1m").interactions)
    model = BayesianPersonalizedRanking(random_state=0)
    model.fit(split.train.csr, show_progress=False)
    zero = np.zeros(split.train.n_items, dtype=np.float32)  # implicit's bias is a factor
    test = evaluate_split(
        vectors_scorer(model.user_factors, model.item_factors, zero), split, "test", 10
    )
    print(json.dumps({"test_hr": test["hr@10"]}))


def run_privrec(out: Path, extra: list[str]) -> dict:
    t0 = time.perf_counter()
    cmd = ["privrec", "train", "--dataset", "ml-1m", "-e", "10", *extra, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"error: `{' '.join(cmd)}` failed (exit {done.returncode}): {last}")
    wall = time.perf_counter() - t0
    metrics = json.loads((out / "metrics.json").read_text())
    secs = [h["seconds"] for h in metrics["history"]]
    return {
        "wall": wall,
        "test_hr": metrics["test"]["hr@10"],
        "first_epoch": secs[0],
        "later_epoch_median": statistics.median(secs[1:]),
        "epochs": len(secs),
        "threads": metrics.get("threads"),
    }


def run_implicit() -> dict:
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--worker", "implicit"],
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    return {"wall": wall, **json.loads(done.stdout.strip().splitlines()[-1])}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--privrec-args",
        default="",
        help="extra options for the privrec command, e.g. --privrec-args='--lr 0.003'",
    )
    p.add_argument("--worker", choices=["implicit"], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        implicit_worker()
        return 0
    if "PRIVREC_DATA_DIR" not in os.environ:
        p.error("set PRIVREC_DATA_DIR to the folder that holds ml-1m/")
    runs: dict[str, list[dict]] = {"privrec": [], "implicit": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            order = ("privrec", "implicit") if r % 2 == 0 else ("implicit", "privrec")
            for name in order:
                if name == "privrec":
                    res = run_privrec(Path(tmp) / f"run{r}", shlex.split(args.privrec_args))
                else:
                    res = run_implicit()
                runs[name].append(res)
                print(f"[{r + 1}/{args.repeats}] {name}: {json.dumps(res)}", flush=True)
    med = {n: statistics.median(x["wall"] for x in v) for n, v in runs.items()}
    pr = runs["privrec"]
    summary = {
        "machine": machine_info(),
        "privrec_args": args.privrec_args,
        "wall_median": med,
        "ratio": med["privrec"] / med["implicit"],
        "test_hr_median": {n: statistics.median(x["test_hr"] for x in v) for n, v in runs.items()},
        "privrec_first_over_later": statistics.median(
            x["first_epoch"] / x["later_epoch_median"] for x in pr
        ),
        "runs": runs,
    }
    print(
        f"whole process, median of {args.repeats}: privrec {med['privrec']:.1f} s, implicit "
        f"{med['implicit']:.1f} s, ratio {summary['ratio']:.2f}; test HR@10 "
        f"{summary['test_hr_median']['privrec']:.4f} vs {summary['test_hr_median']['implicit']:.4f}"
        f"; privrec first epoch / later = {summary['privrec_first_over_later']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
