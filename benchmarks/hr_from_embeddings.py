"""Recompute a run's test HR@10 / NDCG@10 from its ``embeddings.npz`` alone, with NumPy.

Every privrec model exports the layer its ranking scores come from (``score = user · item +
bias``: BPR-MF's embeddings, MultVAE's latent means with its linear decoder, LightGCN's
propagated embeddings with a zero bias), so any outside tool can rank from the file. This
script does it without privrec's models or evaluation code: the vectors come from the
``.npz``; privrec is used only to rebuild the run's leave-last-out split from the data (which
items are held out, which are the user's training items). It prints both numbers and exits
with status 1 when they differ from the run's ``metrics.json``.

Usage::

    PRIVREC_DATA_DIR=../shared/data python benchmarks/hr_from_embeddings.py RUN_DIR [--k 10]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def hr_ndcg(run_dir: Path, k: int = 10) -> dict[str, float]:
    """Test HR@k / NDCG@k of the vectors in ``run_dir/embeddings.npz`` (full ranking over the
    items the user has no training or validation interaction with; ties count against)."""
    import privrec
    from privrec.api import dataset_of_run
    from privrec.data.split import leave_last_out

    emb = np.load(run_dir / "embeddings.npz")
    users, items = emb["user_vectors"].astype(np.float64), emb["item_vectors"].astype(np.float64)
    bias = emb["item_bias"].astype(np.float64)
    run = privrec.load_run(run_dir)
    split = leave_last_out(dataset_of_run(run).interactions)
    if [str(i) for i in emb["item_ids"]] != [str(i) for i in split.train.item_ids]:
        raise SystemExit("embeddings.npz items are not in the dataset's item order")
    seen = (split.train.csr + split.validation.csr).tocsr()
    hits, gains = [], []
    for u, target in zip(split.test.users, split.test.items, strict=True):
        scores = users[u] @ items.T + bias
        candidates = np.ones(len(scores), dtype=bool)
        candidates[seen.indices[seen.indptr[u] : seen.indptr[u + 1]]] = False
        s = scores[candidates]
        rank = int((s > scores[target]).sum() + (s == scores[target]).sum() - 1)
        hits.append(rank < k)
        gains.append(1.0 / np.log2(rank + 2.0) if rank < k else 0.0)
    return {f"hr@{k}": float(np.mean(hits)), f"ndcg@{k}": float(np.mean(gains))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--k", type=int, default=10)
    args = ap.parse_args(argv)
    mine = hr_ndcg(args.run_dir, args.k)
    recorded = json.loads((args.run_dir / "metrics.json").read_text())["test"]
    print(json.dumps({"from_embeddings": mine, "metrics_json": recorded}, indent=2))
    same = all(abs(mine[key] - recorded[key]) < 1e-9 for key in mine)
    print("match" if same else "MISMATCH")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
