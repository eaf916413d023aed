"""Where one step of an MMD / HSIC penalty goes: its parts timed alone, for one attribute.

One penalty (a 7-class attribute, like ML-1M's age groups, over 6,040 users with 10-dimensional
vectors) is applied to the distinct users of a random batch of 4,096 interactions, on one torch
thread; each part is timed over ``--reps`` calls (milliseconds per call, after 10 warm-up calls):
the label lookup and subsampling, the scaled Fourier features (which include the bandwidth),
the estimate, the 8-permutation null, the median-heuristic bandwidth alone, the logged number,
the whole forward, and forward with backward.

    python benchmarks/penalty_step.py                         # MMD and HSIC at the defaults
    python benchmarks/penalty_step.py --family mmd --sample-size 256 --features 32
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable


def timed(fn: Callable[[], object], reps: int) -> float:
    """Milliseconds per call of ``fn`` (10 warm-up calls first)."""
    for _ in range(10):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", choices=["mmd", "hsic", "both"], default="both")
    ap.add_argument("--sample-size", type=int, default=512, help="users per estimate")
    ap.add_argument("--features", type=int, default=128, help="Fourier features per bandwidth")
    ap.add_argument("--reps", type=int, default=100, help="calls timed per part")
    args = ap.parse_args()
    if args.sample_size < 4 or args.features < 1 or args.reps < 1:
        ap.error("--sample-size must be >= 4, --features and --reps >= 1")

    import numpy as np
    import torch

    from privrec.data.attributes import Attribute, UserAttributes
    from privrec.defences import DependenceSpec, build_dependence_penalties

    torch.set_num_threads(1)
    n_users = 6040
    rng = np.random.default_rng(0)
    age = Attribute("age", "categorical", rng.integers(0, 7, n_users), tuple("abcdefg"))
    attributes = UserAttributes(np.arange(n_users), {"age": age})
    users = torch.unique(
        torch.randint(0, n_users, (4096,), generator=torch.Generator().manual_seed(0))
    )
    vecs = torch.randn(len(users), 10, generator=torch.Generator().manual_seed(1))
    families = ["mmd", "hsic"] if args.family == "both" else [args.family]
    for family in families:
        spec = DependenceSpec(
            **{family: {"age": 1e-4}}, sample_size=args.sample_size, n_features=args.features
        )
        (penalty,) = build_dependence_penalties(attributes, spec, 10)
        row = {"family": family, "sample_size": args.sample_size, "features": args.features}
        row.update(measure(penalty, vecs.clone().requires_grad_(), users, args.reps))
        print(json.dumps(row))


def measure(penalty, user_vecs, users, reps: int) -> dict[str, float]:
    """Milliseconds per call of each part of ``penalty``'s step (see the module docstring)."""
    from privrec.defences.dependence import median_bandwidth

    sample, labels = penalty._sample(user_vecs, users)
    rep = penalty.represent(sample)
    values = penalty.statistic(rep, labels)

    def forward_backward() -> None:
        loss, _ = penalty(user_vecs, users, 0.5)
        loss.backward()

    parts = {
        "sample": lambda: penalty._sample(user_vecs, users),
        "features_and_bandwidth": lambda: penalty.represent(sample),
        "bandwidth": lambda: median_bandwidth(sample),
        "estimate": lambda: penalty.statistic(rep, labels),
        "null": lambda: penalty.null_moments(rep, labels),
        "logged_number": lambda: penalty.report(rep, labels, values),
        "forward": lambda: penalty(user_vecs, users, 0.5),
        "forward_backward": forward_backward,
    }
    return {name: round(timed(fn, reps), 3) for name, fn in parts.items()}


if __name__ == "__main__":
    main()
