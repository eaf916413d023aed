"""Cost of each defence: seconds per training epoch on MovieLens 1M, side by side.

Trains BPR-MF (embedding size 10, batch 4096, one torch thread) for a few epochs with no
defence and with each defence of privrec, in one process, the variants interleaved over repeats
(the machine is shared: medians, and ratios to the plain epoch measured in the same run). The
validation pass is timed separately and taken out of the epoch time.

    python benchmarks/defence_cost.py                      # 3 epochs × 2 repeats, every variant
    python benchmarks/defence_cost.py --variants plain,mmd --repeats 3
    python benchmarks/defence_cost.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    cache_ml1m,
    default_data_dir,
    load_cached,
    machine_info,
    median,
    timed_evaluation,
)

ATTRS = ("gender", "age")

VARIANTS = {
    "plain": "no defence",
    "adversarial": "gradient reversal, linear heads, λ = 0.1 (gender, age)",
    "confusion": "confusion objective (the default), linear heads, λ = 0.1 (gender, age)",
    "mmd": "MMD (gender, age), weight 1e-4, 512 users per estimate",
    "mmd-2048": "MMD (gender, age), weight 1e-4, 2048 users per estimate",
    "mmd-256": "MMD (gender, age), weight 1e-4, 256 users per estimate",
    "mmd-256-32": "MMD (gender, age), weight 1e-4, 256 users, 32 Fourier features per bandwidth",
    "hsic": "HSIC (gender, age), weight 1e-4, 512 users per estimate",
    "hsic-256": "HSIC (gender, age), weight 1e-4, 256 users per estimate",
    "swd": "sliced-Wasserstein alignment (gender, age), weight 0.01, 2048 users, 32 directions",
    "confusion-refit": "confusion, MLP heads (32) refitted every epoch, λ = 0.1 (gender, age)",
}

#: Users per estimate and Fourier features per bandwidth of the kernel variants (default 512, 128).
KERNEL_SETTINGS = {
    "mmd-2048": (2048, 128),
    "mmd-256": (256, 128),
    "mmd-256-32": (256, 32),
    "hsic-256": (256, 128),
}


def penalties(variant: str, attributes, dim: int) -> list:
    from privrec.defences import DependenceSpec, build_dependence_penalties
    from privrec.defences.adversarial import AdversarySpec, build_adversaries

    if variant == "plain":
        return []
    if variant in ("adversarial", "confusion"):
        objective = "reverse" if variant == "adversarial" else "confusion"
        spec = AdversarySpec(weights=dict.fromkeys(ATTRS, 0.1), objective=objective)
        return list(build_adversaries(attributes, spec, dim))
    if variant == "confusion-refit":
        spec = AdversarySpec(
            weights=dict.fromkeys(ATTRS, 0.1), head="mlp", hidden=(32,), refit_epochs=1
        )
        return list(build_adversaries(attributes, spec, dim))
    if variant == "swd":
        return build_dependence_penalties(
            attributes, DependenceSpec(swd=dict.fromkeys(ATTRS, 0.01)), dim
        )
    family = "hsic" if variant.startswith("hsic") else "mmd"
    size, features = KERNEL_SETTINGS.get(variant, (512, 128))
    spec = DependenceSpec(
        **{family: dict.fromkeys(ATTRS, 1e-4)}, sample_size=size, n_features=features
    )
    return build_dependence_penalties(attributes, spec, dim)


def measure(variant: str, split, attributes, epochs: int, dim: int) -> list[float]:
    """Seconds of each epoch (validation excluded) of one training with ``variant``."""
    from privrec.training import TrainConfig, Trainer

    cfg = TrainConfig(
        embedding_size=dim, epochs=epochs, patience=0, eval_every=10**9, num_threads=1
    )
    with timed_evaluation() as evals:
        trained = Trainer(cfg, penalties(variant, attributes, dim)).fit(split)
    secs = [float(r["seconds"]) for r in trained.history]
    if evals.calls:
        secs[-1] -= evals.calls[-1]  # the last epoch ran the validation
    return secs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=default_data_dir(), help="folder with ML-1M's files")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--dim", type=int, default=10)
    p.add_argument("--json", type=Path, default=None, help="also write the raw numbers here")
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        p.error(f"unknown variant(s) {', '.join(unknown)}; expected: {', '.join(VARIANTS)}")

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "ml1m.npz"
        cache_ml1m(args.data_dir, cache)
        split, attributes = load_cached(cache)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for rep in range(args.repeats):
        order = variants if rep % 2 == 0 else variants[::-1]
        for v in order:
            secs = measure(v, split, attributes, args.epochs, args.dim)
            times[v] += secs[1:] if len(secs) > 1 else secs  # the first epoch warms up
            print(f"[{rep + 1}/{args.repeats}] {v}: {[round(s, 2) for s in secs]}", flush=True)
    base = median(times["plain"]) if "plain" in times else float("nan")
    lines = [
        f"ML-1M, embedding size {args.dim}, batch 4096, 1 torch thread, {args.epochs} epochs × "
        f"{args.repeats} interleaved repeats (first epoch of each run dropped); "
        f"{machine_info()['cpu_model']}. Command: `python benchmarks/defence_cost.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`.",
        "",
        "| defence | s / epoch (median) | × plain |",
        "|---|---:|---:|",
    ]
    for v in variants:
        m = median(times[v])
        lines.append(f"| {VARIANTS[v]} | {m:.2f} | {m / base:.1f}× |")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"epoch_seconds": times, "table": lines}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
