"""Measure each training/evaluation speed-up of privrec on MovieLens 1M, one at a time.

Every variant runs in the same process, interleaved repeat by repeat (so a change in machine
load hits all variants alike), and is reported as the median seconds per epoch over epochs and
repeats, training only (the validation pass is timed separately and subtracted).

    python benchmarks/ablate_training.py --out bench-out/ablation            # ~6-10 min
    python benchmarks/ablate_training.py --out bench-out/ablation --quick    # ~2-3 min

Sections (all in ``ablation.json`` and ``ablation.md`` under ``--out``):

* ``training``: the trainer with optimisations switched off/on (membership test of the
  negative sampler, ``index_select`` lookups, fused pair scoring), batch size and learning
  rate, torch threads, fused Adam, two adversarial heads;
* ``micro``: dense Adam vs sparse embedding gradients with ``SparseAdam``; ``torch.unique`` vs
  ``bincount`` for the batch's distinct users;
* ``sampling``: one epoch of negatives, binary search vs hashed filter vs bitset;
* ``evaluation``: full-ranking validation pass, reference vs fast ``target_ranks``, per chunk
  size.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from _common import (
    cache_ml1m,
    default_data_dir,
    load_cached,
    machine_info,
    median,
    timed_evaluation,
)

import privrec.data.sampling as sampling_mod
import privrec.evaluation.ranking as ranking_mod
import privrec.models.mf as mf_mod
from privrec.defences.adversarial.adversary import AdversarySpec, build_adversaries
from privrec.evaluation.protocol import evaluate_split, model_scorer
from privrec.models import build_model
from privrec.training import TrainConfig, Trainer

BEFORE = dict(membership="search", lookup="embedding", fused=False)
AFTER = dict(membership="bitset", lookup="index_select", fused=True)


def variants(quick: bool) -> dict[str, dict]:
    """Name → switches. ``threads``: torch intra-op threads; ``adam_fused``: Adam(fused=True)."""
    base = dict(batch=4096, lr=0.005, threads=1, adam_fused=False, adv=False)
    v = {
        "before (searchsorted, nn.Embedding, 3 lookups)": {**base, **BEFORE},
        "+ bitset membership": {**base, **BEFORE, "membership": "bitset"},
        "+ index_select lookups": {
            **base,
            **BEFORE,
            "membership": "bitset",
            "lookup": "index_select",
        },
        "after (+ fused pair scoring), batch 4096": {**base, **AFTER},
        "after, batch 16384, lr 0.01": {**base, **AFTER, "batch": 16384, "lr": 0.01},
        "after, batch 65536, lr 0.04": {**base, **AFTER, "batch": 65536, "lr": 0.04},
        "after, batch 16384, fused Adam": {
            **base,
            **AFTER,
            "batch": 16384,
            "lr": 0.01,
            "adam_fused": True,
        },
        "after, batch 16384, 2 torch threads": {
            **base,
            **AFTER,
            "batch": 16384,
            "lr": 0.01,
            "threads": 2,
        },
        "before + 2 adversarial heads, batch 4096": {**base, **BEFORE, "adv": True},
        "after + 2 adversarial heads, batch 4096": {**base, **AFTER, "adv": True},
        "after + 2 adversarial heads, batch 16384": {
            **base,
            **AFTER,
            "adv": True,
            "batch": 16384,
            "lr": 0.01,
        },
    }
    if quick:
        keep = [
            "before (searchsorted, nn.Embedding, 3 lookups)",
            "after (+ fused pair scoring), batch 4096",
            "after, batch 16384, lr 0.01",
            "after, batch 16384, 2 torch threads",
            "after + 2 adversarial heads, batch 16384",
        ]
        v = {k: v[k] for k in keep}
    return v


@contextlib.contextmanager
def switches(sw: dict):
    """Apply a variant's switches by patching the library for the duration of the block."""
    saved = (sampling_mod._contains, mf_mod._rows, torch.optim.Adam)
    try:
        if sw["membership"] == "search":
            sampling_mod._contains = _binary_search
        if sw["lookup"] == "embedding":
            mf_mod._rows = lambda table, index: table(index)
        if sw["adam_fused"]:
            torch.optim.Adam = functools.partial(saved[2], fused=True)
        yield
    finally:
        sampling_mod._contains, mf_mod._rows, torch.optim.Adam = saved


def _binary_search(interactions, users, items):
    """The membership test before the bitset: a binary search over the sorted keys."""
    return interactions.contains(users, items)


def time_training(split, attrs, sw: dict, size: int, epochs: int, seed: int) -> list[float]:
    """Training seconds of each epoch (validation excluded)."""
    cfg = TrainConfig(
        embedding_size=size,
        epochs=epochs,
        batch_size=sw["batch"],
        learning_rate=sw["lr"],
        num_threads=sw["threads"],
        eval_every=10**6,  # only after the last epoch; subtracted below
        patience=0,
        seed=seed,
    )
    with switches(sw):
        model = build_model(
            cfg.model, split.train.n_users, split.train.n_items, size, cfg.init_std, seed
        )
        if not sw["fused"]:
            model.pair_terms = None  # the trainer then calls score() twice + regularization()
        penalties = (
            build_adversaries(attrs, AdversarySpec({"gender": 0.1, "age": 0.1}), size)
            if sw["adv"]
            else ()
        )
        records: list[dict] = []
        with timed_evaluation() as ev:
            Trainer(cfg, penalties, callback=records.append, model=model).fit(split)
    secs = [r["seconds"] for r in records]
    secs[-1] -= sum(ev.calls)
    return secs


def micro_sparse(split, size: int, batch: int, seed: int) -> dict[str, float]:
    """One epoch of a minimal BPR loop: dense Adam vs sparse gradients + SparseAdam."""
    tr = split.train
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(tr))
    u = torch.from_numpy(tr.users[perm])
    i = torch.from_numpy(tr.items[perm])
    j = torch.from_numpy(sampling_mod.sample_negatives(tr, tr.users[perm], rng))
    out = {}
    for sparse in (False, True):
        gen = torch.Generator().manual_seed(seed)
        emb = [
            torch.nn.Embedding(n, d, sparse=sparse)
            for n, d in ((tr.n_users, size), (tr.n_items, size), (tr.n_items, 1))
        ]
        for e in emb:
            torch.nn.init.normal_(e.weight, 0.0, 0.1, generator=gen)
        params = [e.weight for e in emb]
        opt = (
            torch.optim.SparseAdam(params, lr=0.005)
            if sparse
            else torch.optim.Adam(params, lr=0.005)
        )
        user, item, bias = emb
        t0 = time.perf_counter()
        for lo in range(0, len(u), batch):
            bu, bi, bj = u[lo : lo + batch], i[lo : lo + batch], j[lo : lo + batch]
            pv, qi, qj = user(bu), item(bi), item(bj)
            x = (pv * (qi - qj)).sum(-1) + bias(bi).squeeze(-1) - bias(bj).squeeze(-1)
            reg = (pv.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1)).mean()
            loss = -F.logsigmoid(x).mean() + 1e-3 * reg
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        out["sparse_adam" if sparse else "dense_adam"] = time.perf_counter() - t0
    # distinct users of a batch (adversarial heads): sort-based vs counting
    bu = u[:batch]
    reps = 50
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.unique(bu)
    out["torch_unique_ms"] = (time.perf_counter() - t0) / reps * 1e3
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.bincount(bu, minlength=tr.n_users).nonzero().squeeze(1)
    out["bincount_unique_ms"] = (time.perf_counter() - t0) / reps * 1e3
    return out


def time_sampling(split, seed: int) -> dict[str, float]:
    tr = split.train
    users = tr.users[np.random.default_rng(seed).permutation(len(tr))]
    out = {}
    variants = (
        ("searchsorted", _binary_search, sampling_mod.BITSET_MAX_BITS),
        ("hashed filter", sampling_mod._contains, 0),
        ("bitset", sampling_mod._contains, sampling_mod.BITSET_MAX_BITS),
    )
    saved = (sampling_mod._contains, sampling_mod.BITSET_MAX_BITS)
    for name, contains, limit in variants:
        sampling_mod._contains, sampling_mod.BITSET_MAX_BITS = contains, limit
        try:
            sampling_mod.sample_negatives(tr, users[:10], np.random.default_rng(0))  # warm cache
            t0 = time.perf_counter()
            sampling_mod.sample_negatives(tr, users, np.random.default_rng(seed))
            out[name] = time.perf_counter() - t0
        finally:
            sampling_mod._contains, sampling_mod.BITSET_MAX_BITS = saved
    return out


def time_evaluation(split, size: int, seed: int) -> dict[str, float]:
    model = build_model("bpr-mf", split.train.n_users, split.train.n_items, size, 0.1, seed)
    model.eval()
    fast = ranking_mod.target_ranks
    out = {}
    try:
        for name, fn in (("reference", ranking_mod.target_ranks_reference), ("fast", fast)):
            ranking_mod.target_ranks = fn
            for chunk in (256, 1024, 4096):
                t0 = time.perf_counter()
                evaluate_split(model_scorer(model), split, "validation", 10, chunk_size=chunk)
                out[f"{name}_chunk{chunk}"] = time.perf_counter() - t0
    finally:
        ranking_mod.target_ranks = fast
    score = model_scorer(model)
    users = np.arange(split.train.n_users)
    t0 = time.perf_counter()
    for lo in range(0, len(users), 1024):
        score(users[lo : lo + 1024])
    out["scoring_only"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="folder with ML-1M's .dat files (default: $PRIVREC_DATA_DIR/ml-1m, else "
        "../shared/data/ml-1m)",
    )
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--size", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=3, help="epochs per variant and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer variants, 2 epochs, 2 repeats")
    args = ap.parse_args()
    if args.quick:
        args.epochs, args.repeats = 2, 2
    args.out.mkdir(parents=True, exist_ok=True)
    info = machine_info()
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "ml1m.npz"
        info["data"] = cache_ml1m(args.data_dir, cache)
        split, attrs = load_cached(cache)
    vs = variants(args.quick)
    train_secs: dict[str, list[float]] = {k: [] for k in vs}
    micro, samp, evals = [], [], []
    for rep in range(args.repeats):
        for name, sw in vs.items():
            secs = time_training(split, attrs, sw, args.size, args.epochs, seed=rep)
            train_secs[name] += secs
            print(f"[{rep}] {name}: {np.median(secs):.3f} s/epoch", flush=True)
        torch.set_num_threads(1)
        micro.append(micro_sparse(split, args.size, 4096, rep))
        samp.append(time_sampling(split, rep))
        evals.append(time_evaluation(split, args.size, rep))
        print(f"[{rep}] micro {micro[-1]}\n[{rep}] sampling {samp[-1]}\n[{rep}] eval {evals[-1]}")
    n = len(split.train)
    training = {
        name: {
            **vs[name],
            "seconds_per_epoch": median(s),
            "interactions_per_second": n / median(s),
            "samples": len(s),
        }
        for name, s in train_secs.items()
    }

    def med(rows):
        return {k: median([r[k] for r in rows]) for k in rows[0]}

    result = {
        "machine": info,
        "args": {k: str(v) for k, v in vars(args).items()},
        "training": training,
        "micro": med(micro),
        "sampling": med(samp),
        "evaluation": med(evals),
        "loadavg_end": list(os.getloadavg()),
    }
    (args.out / "ablation.json").write_text(json.dumps(result, indent=2))
    md = to_markdown(result)
    (args.out / "ablation.md").write_text(md)
    print(md)


def to_markdown(r: dict) -> str:
    m = r["machine"]
    first = next(iter(r["training"].values()))["seconds_per_epoch"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), torch {m['torch']} (default "
        f"{m['torch_default_threads']} threads), load average {m['loadavg_start'][0]:.1f} at "
        f"start, {r['loadavg_end'][0]:.1f} at end. Size {r['args']['size']}, "
        f"{r['args']['epochs']} epochs × {r['args']['repeats']} repeats per variant.",
        "",
        "| variant | threads | batch | s/epoch (median) | interactions/s | speed-up vs first |",
        "|---|---|---|---|---|---|",
    ]
    for name, t in r["training"].items():
        lines.append(
            f"| {name} | {t['threads']} | {t['batch']} | {t['seconds_per_epoch']:.3f} | "
            f"{t['interactions_per_second']:,.0f} | {first / t['seconds_per_epoch']:.2f}× |"
        )
    mi, sa, ev = r["micro"], r["sampling"], r["evaluation"]
    lines += [
        "",
        f"Sparse gradients (minimal loop, batch 4096, 1 thread): dense Adam "
        f"{mi['dense_adam']:.3f} s/epoch, sparse embeddings + SparseAdam "
        f"{mi['sparse_adam']:.3f} s/epoch.",
        f"Distinct users of a 4096 batch: torch.unique {mi['torch_unique_ms']:.3f} ms, "
        f"bincount {mi['bincount_unique_ms']:.3f} ms.",
        f"Negative sampling, one epoch ({r['machine']['data']['train_interactions']:,} "
        f"negatives): searchsorted {sa['searchsorted']:.3f} s, hashed filter "
        f"{sa.get('hashed filter', float('nan')):.3f} s, bitset {sa['bitset']:.3f} s.",
        "",
        "| validation pass (6,040 users × 3,706 items) | chunk 256 | chunk 1024 | chunk 4096 |",
        "|---|---|---|---|",
    ]
    for name in ("reference", "fast"):
        lines.append(
            f"| {name} target_ranks | "
            + " | ".join(f"{ev[f'{name}_chunk{c}']:.3f} s" for c in (256, 1024, 4096))
            + " |"
        )
    lines.append(f"\nScoring alone (score_all, chunks of 1024): {ev['scoring_only']:.3f} s.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
