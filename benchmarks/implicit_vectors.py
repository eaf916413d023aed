"""Export implicit's BPR vectors for ML-1M as an ``.npz`` that ``privrec purge`` / ``privrec
audit`` read: ``python benchmarks/implicit_vectors.py OUT.npz`` (needs ``pip install implicit``).

The model is implicit's ``BayesianPersonalizedRanking`` with its defaults (``random_state=0``),
trained on privrec's leave-last-out training split, so HR@k under that split is comparable.
implicit keeps its item bias as the last factor (the user side holds a 1 there), so the file
has no ``item_bias``: scores are ``user · item``.
"""

from __future__ import annotations

import sys

import numpy as np


def main(out: str) -> None:
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from privrec import load_dataset
    from privrec.data.split import leave_last_out

    ds = load_dataset("ml-1m")
    split = leave_last_out(ds.interactions)
    model = BayesianPersonalizedRanking(random_state=0)
    model.fit(split.train.csr, show_progress=False)
    np.savez(
        out,
        user_ids=ds.interactions.user_ids,
        user_vectors=model.user_factors,
        item_ids=ds.interactions.item_ids,
        item_vectors=model.item_factors,
    )
    print(f"{out}: {model.user_factors.shape[0]} users, {model.item_factors.shape} items")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "implicit_bpr.npz")
