"""Plain BPR-MF on MovieLens 1M under variations of the training defaults, judged on validation.

Each setting is ``TrainConfig``'s defaults (those of ``privrec train``) with the given fields
changed, trained on the leave-last-out split in this process on one torch thread; the model
kept is the best-validation epoch (early stopping as configured). Prints one JSON line per run:
the changed fields, the seed, epochs run, best validation HR@10 and the test HR@10 of the kept
model (both in %), and the training seconds. Choose on validation; the test column is what the
choice would report.

    python benchmarks/train_defaults.py                                   # lr 0.005 / 0.003, seeds 0-2
    python benchmarks/train_defaults.py --size 10 --seeds 0 \\
        --grid '[{}, {"learning_rate": 0.002}, {"reg": 0.0}]'
"""

from __future__ import annotations

import argparse
import json
import time

DEFAULT_GRID = '[{}, {"learning_rate": 0.003}]'


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=10, help="embedding size (default 10)")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    ap.add_argument("--grid", default=DEFAULT_GRID, help="JSON list of TrainConfig overrides")
    args = ap.parse_args()
    try:
        grid = json.loads(args.grid)
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError as err:
        ap.error(f"--grid must be a JSON list of objects and --seeds comma-separated ints ({err})")
    if not isinstance(grid, list) or not all(isinstance(g, dict) for g in grid):
        ap.error("--grid must be a JSON list of objects, e.g. '[{}, {\"learning_rate\": 0.003}]'")

    import dataclasses

    import torch

    from privrec import load_dataset
    from privrec.data.split import leave_last_out
    from privrec.errors import ConfigError
    from privrec.evaluation.protocol import evaluate_split, vectors_scorer
    from privrec.training import TrainConfig, Trainer

    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted({k for g in grid for k in g} - known)
    if unknown:
        ap.error(f"--grid: unknown TrainConfig field(s) {', '.join(unknown)}")
    try:  # every setting checked before the data is loaded
        runs = [
            (over, TrainConfig(embedding_size=args.size, num_threads=1, seed=seed, **over))
            for seed in seeds
            for over in grid
        ]
    except ConfigError as err:
        ap.error(f"--grid: {err}")
    torch.set_num_threads(1)
    split = leave_last_out(load_dataset("ml-1m").interactions)
    for over, cfg in runs:
        t0 = time.perf_counter()
        trained = Trainer(cfg, []).fit(split)
        seconds = time.perf_counter() - t0
        val = max(r.get(f"val_hr@{cfg.k}", 0.0) for r in trained.history)
        scorer = vectors_scorer(trained.user_vectors(), trained.item_vectors(), trained.item_bias())
        test = evaluate_split(scorer, split, "test", cfg.k)[f"hr@{cfg.k}"]
        row = {
            **over,
            "seed": cfg.seed,
            "epochs_run": trained.epochs_run,
            "val_hr": round(100 * val, 2),
            "test_hr": round(100 * test, 2),
            "seconds": round(seconds, 1),
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
