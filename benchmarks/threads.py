"""The default thread choice next to fixed thread counts, on an idle and on a loaded machine.

For each load (0 or more busy processes, ``while True: pass``, started before and stopped after
each measurement) and each model, trains on MovieLens 1M for a few epochs in a fresh process
per setting: the default (``num_threads=None``: :func:`privrec.cpus.auto_threads`) and each
fixed count from 1 to the usable cores (the largest is torch's own default). The settings are
interleaved over repeats; the table gives the median seconds per epoch (validation excluded)
and the default's ratio to the best fixed count measured in the same run.

    python benchmarks/threads.py                                  # loads 0 and 2, bpr-mf, multvae
    python benchmarks/threads.py --loads 0,2 --models bpr-mf --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _common import cache_ml1m, default_data_dir, machine_info  # noqa: E402


def _busy() -> None:  # pragma: no cover - a competing CPU load
    while True:
        pass


def worker(cache: str, model: str, threads: str, epochs: int) -> None:
    """Train ``model`` for ``epochs`` with ``threads`` (``auto`` = the default), print JSON."""
    from _common import load_cached, timed_evaluation

    from privrec.training import TrainConfig, Trainer

    split, _ = load_cached(cache)
    n = None if threads == "auto" else int(threads)
    cfg = TrainConfig.for_model(model, epochs=epochs, patience=0, eval_every=10**9, num_threads=n)
    with timed_evaluation() as evals:
        trained = Trainer(cfg).fit(split)
    secs = [float(r["seconds"]) for r in trained.history]
    if evals.calls:
        secs[-1] -= evals.calls[-1]
    print(json.dumps({"seconds": secs[1:] or secs, "threads": trained.threads}))


def measure(cache: Path, model: str, threads: str, epochs: int, load: int, timeout: float) -> dict:
    """One run in a fresh process under ``load`` busy processes; a run that takes longer than
    ``timeout`` seconds is stopped and reported as ``timeout`` (an epoch of at least
    ``timeout / epochs`` seconds)."""
    busy = [mp.Process(target=_busy, daemon=True) for _ in range(load)]
    for b in busy:
        b.start()
    try:
        time.sleep(1.0 if load else 0.0)  # let the load settle before the run starts
        cmd = [sys.executable, __file__, "--worker", str(cache), model, threads, str(epochs)]
        try:
            out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"seconds": [], "threads": None, "timeout": True}
    finally:
        for b in busy:
            b.terminate()
            b.join()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=default_data_dir())
    p.add_argument("--loads", default="0,2", help="busy processes, comma-separated")
    p.add_argument("--models", default="bpr-mf,multvae")
    p.add_argument("--epochs", type=int, default=3, help="per run (the first is dropped)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--timeout", type=float, default=240.0, help="seconds per run at most")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    from privrec.cpus import usable_cpus

    counts = [str(t) for t in range(1, usable_cpus() + 1)]
    settings = ["auto", *counts]
    info = machine_info()
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "ml1m.npz"
        cache_ml1m(args.data_dir, cache)
        for load in (int(x) for x in args.loads.split(",")):
            for model in args.models.split(","):
                secs: dict[str, list[float]] = {s: [] for s in settings}
                timeouts: set[str] = set()
                chosen = []
                for r in range(args.repeats):
                    for s in settings if r % 2 == 0 else settings[::-1]:
                        res = measure(cache, model, s, args.epochs, load, args.timeout)
                        secs[s] += res["seconds"]
                        if res.get("timeout"):
                            timeouts.add(s)
                        if s == "auto":
                            chosen.append(res["threads"])
                        print(f"load {load} {model} {s}: {res}", flush=True)
                bound = args.timeout / args.epochs  # a run stopped at the timeout
                med = {
                    s: statistics.median(v) if v and s not in timeouts else math.inf
                    for s, v in secs.items()
                }
                best = min(med[c] for c in counts)
                rows.append((load, model, chosen, med, med["auto"] / best, bound))
                raw.append(
                    {
                        "load": load,
                        "model": model,
                        "auto_threads": chosen,
                        "seconds": secs,
                        "timeouts": sorted(timeouts),
                    }
                )
    head = " | ".join(f"{c} thread(s)" for c in counts)
    lines = [
        f"ML-1M, {args.epochs} epochs per run (first dropped), {args.repeats} interleaved "
        f"repeats; {info['cpu_model']}, {info['nproc']} cores. Command: `python benchmarks/threads.py "
        f"{' '.join(sys.argv[1:])}`.",
        "",
        f"| busy processes | model | default chose | default s/epoch | {head} | default / best |",
        "|---|---|---|---:|" + "---:|" * len(counts) + "---:|",
    ]

    def cell(v: float, bound: float) -> str:
        return f"> {bound:.0f} (stopped)" if math.isinf(v) else f"{v:.2f}"

    for load, model, chosen, med, ratio, bound in rows:
        fixed = " | ".join(cell(med[c], bound) for c in counts)
        lines.append(
            f"| {load} | {model} | {sorted(set(chosen))} | {cell(med['auto'], bound)} | "
            f"{fixed} | {ratio:.2f}× |"
        )
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"rows": raw, "table": lines}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
