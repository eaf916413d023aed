"""One BPR epoch of privrec's ``sparse-adam`` against one of implicit's, on the same data.

Synthetic data of ``N`` interactions (``N/100`` users × ``N/500`` items, the scaling benchmark's
:func:`privrec.data.synthetic_large.make_synthetic_large`, seed 0), split leave-last-out once;
then, in one process and interleaved over repeats, ``E`` epochs of each: privrec
(``TrainConfig(embedding_size=32, batch_size=8192, optimizer="sparse-adam")``, its default
thread choice, validation only after the last epoch, which is left out of the timing) and
implicit's ``BayesianPersonalizedRanking(factors=32)`` with its default threads (all cores).
Reports the median epoch time of each (all epochs but privrec's first, which carries the
start-up, over all repeats) and their ratio.

    python benchmarks/epoch_vs_implicit.py                     # 10M, 3 epochs × 2 repeats
    python benchmarks/epoch_vs_implicit.py --size 1M --epochs 4 --repeats 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, timed_evaluation  # noqa: E402
from scaling import median, parse_size, shape_of  # noqa: E402


def privrec_epochs(split, epochs: int, seed: int) -> tuple[list[float], int]:
    """Seconds of each training epoch (the last one's validation taken out) and the threads."""
    from privrec.training.config import TrainConfig
    from privrec.training.trainer import Trainer

    cfg = TrainConfig(
        embedding_size=32,
        batch_size=8192,
        epochs=epochs,
        eval_every=10**9,
        patience=0,
        learning_rate=0.01,
        seed=seed,
        optimizer="sparse-adam",
    )
    with timed_evaluation() as evals:
        trained = Trainer(cfg).fit(split)
    secs = [float(r["seconds"]) for r in trained.history]
    if evals.calls:
        secs[-1] -= evals.calls[-1]  # the last epoch ran the validation
    import torch

    return secs, torch.get_num_threads()


def implicit_epochs(split, epochs: int, seed: int) -> list[float]:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(factors=32, iterations=epochs, random_state=seed)
    secs: list[float] = []
    last = [time.perf_counter()]

    def callback(iteration, elapsed, correct, skipped):
        now = time.perf_counter()
        secs.append(now - last[0])
        last[0] = now

    last[0] = time.perf_counter()
    model.fit(split.train.csr, show_progress=False, callback=callback)
    return secs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", default="10M", help="interactions (e.g. 1M, 10M)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    from privrec.data.split import leave_last_out
    from privrec.data.synthetic_large import make_synthetic_large

    n = parse_size(args.size)
    users, items = shape_of(n)
    t0 = time.perf_counter()
    split = leave_last_out(make_synthetic_large(users, items, n, seed=args.seed).interactions)
    print(f"data: {n:,} interactions, {users:,} × {items:,}, {time.perf_counter() - t0:.1f} s")
    load = [os.getloadavg()[0]]
    ours: list[float] = []
    theirs: list[float] = []
    threads = 0
    for r in range(args.repeats):
        secs, threads = privrec_epochs(split, args.epochs, args.seed)
        ours += secs[1:]
        print(f"repeat {r + 1}: privrec sparse-adam s/epoch {[round(s, 2) for s in secs]}")
        secs = implicit_epochs(split, args.epochs, args.seed)
        theirs += secs
        print(f"repeat {r + 1}: implicit           s/epoch {[round(s, 2) for s in secs]}")
        load.append(os.getloadavg()[0])
    summary = {
        "interactions": n,
        "train_interactions": len(split.train),
        "users": users,
        "items": items,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "privrec_sparse_adam_epoch_s": median(ours),
        "implicit_epoch_s": median(theirs),
        "ratio": median(ours) / median(theirs),
        "privrec_threads": threads,
        "implicit_threads": os.cpu_count(),
        "privrec_epochs_s": ours,
        "implicit_epochs_s": theirs,
        "loadavg_1min": load,
        "machine": machine_info(),
    }
    print(
        f"median s/epoch: privrec sparse-adam {summary['privrec_sparse_adam_epoch_s']:.2f} "
        f"({threads} threads), implicit {summary['implicit_epoch_s']:.2f} "
        f"({os.cpu_count()} threads); ratio {summary['ratio']:.2f}"
    )
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
