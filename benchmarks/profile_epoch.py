"""Where one training epoch's time goes: torch's profiler over one epoch of privrec's BPR-MF on
the synthetic data of ``scaling.py`` (same shapes, seed, batch and embedding size), top
operators by self CPU time.

    python benchmarks/profile_epoch.py --size 1M
    python benchmarks/profile_epoch.py --size 10M --optimizer adam --rows 30

The profiler adds overhead (the epoch runs ~5-10 % slower than in ``scaling.py``); compare
operators between sizes, not the total with ``scaling.py``'s table.
"""

from __future__ import annotations

import argparse
import time

import torch
from scaling import parse_size, shape_of
from torch.profiler import ProfilerActivity, profile


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="1M", help="interactions, e.g. 1M, 10M")
    ap.add_argument("--optimizer", default="sparse-adam")
    ap.add_argument("--batch-size", type=int, default=8192)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, default=20, help="operators listed")
    args = ap.parse_args()

    import privrec.training.trainer as trainer_mod
    from privrec.data.split import leave_last_out
    from privrec.data.synthetic_large import make_synthetic_large
    from privrec.training.config import TrainConfig
    from privrec.training.trainer import Trainer

    torch.set_num_threads(args.threads)
    n = parse_size(args.size)
    users, items = shape_of(n)
    split = leave_last_out(make_synthetic_large(users, items, n, seed=0).interactions)
    # the epoch only: no validation pass
    trainer_mod.evaluate_split = lambda *a, **k: {"hr@10": 0.0, "ndcg@10": 0.0}
    cfg = TrainConfig(
        embedding_size=args.dim,
        batch_size=args.batch_size,
        epochs=1,
        eval_every=10**9,
        patience=0,
        optimizer=args.optimizer,
        seed=0,
    )
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        Trainer(cfg).fit(split)
        seconds = time.perf_counter() - t0
    steps = -(-len(split.train) // args.batch_size)
    print(
        f"{args.size} ({users:,} users x {items:,} items), {args.optimizer}: one epoch of "
        f"{steps:,} steps in {seconds:.2f} s under the profiler"
    )
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
