"""privrec's BPR vs implicit's BPR on MovieLens 1M, side by side on one machine and one split.

For each embedding size and repeat, three models are trained one after the other, each in a
fresh subprocess (so peak memory does not mix):

* ``implicit``: ``implicit.cpu.bpr.BayesianPersonalizedRanking`` (factors = size, plus the bias
  factor implicit adds internally), ``--epochs`` epochs (default 100), 2 threads;
* ``privrec``: privrec's BPR-MF trainer with early stopping on validation HR@10;
* ``privrec+adv``: the same with adversarial gender and age heads (λ = 0.1 each).

Both libraries are scored after every epoch with privrec's full-ranking ``evaluate_split`` on
the validation items (implicit's ``user_factors @ item_factors.T``: its last column is the item
bias). Evaluation time is excluded from training time and reported on its own.

    python benchmarks/bench_bpr.py --out bench-out/bpr              # sizes 10,20,50 (~10 min)
    python benchmarks/bench_bpr.py --out bench-out/bpr --quick      # size 10, 1 repeat

Writes ``results.json`` (every epoch of every run plus the summary) and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = ("implicit", "privrec", "privrec+adv")


# ---------------------------------------------------------------------------------- workers
def run_implicit(args, split, attrs) -> dict:
    import torch
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from privrec.evaluation.protocol import evaluate_split, vectors_scorer

    torch.set_num_threads(1)  # privrec's evaluation in this process
    user_items = split.train.csr  # users × items, binary float32 CSR
    model = BayesianPersonalizedRanking(
        factors=args.size,
        learning_rate=args.implicit_lr,
        regularization=args.implicit_reg,
        iterations=args.epochs,
        num_threads=args.implicit_threads,
        random_state=args.seed,
    )
    zero_bias = np.zeros(split.train.n_items, dtype=np.float32)

    def scorer():  # implicit's last item column is its item bias (user column = 1)
        return vectors_scorer(model.user_factors, model.item_factors, zero_bias)

    epochs: list[dict] = []
    last = [time.perf_counter()]

    def callback(iteration, elapsed, correct, skipped):
        train_s = time.perf_counter() - last[0]
        t0 = time.perf_counter()
        val = evaluate_split(scorer(), split, "validation", 10)
        epochs.append(
            {
                "epoch": iteration + 1,
                "train_seconds": train_s,
                "eval_seconds": time.perf_counter() - t0,
                "val_hr": val["hr@10"],
                "implicit_elapsed": elapsed,
                "skipped_share": skipped / max(1, correct + skipped),
            }
        )
        last[0] = time.perf_counter()

    model.fit(user_items, show_progress=False, callback=callback)
    test = evaluate_split(scorer(), split, "test", 10)
    return {
        "epochs": epochs,
        "test_hr": test["hr@10"],
        "test_ndcg": test["ndcg@10"],
        "best_epoch": None,
    }


def run_privrec(args, split, attrs, adversarial: bool) -> dict:
    from _common import timed_evaluation

    from privrec.defences.adversarial.adversary import AdversarySpec, build_adversaries
    from privrec.evaluation.protocol import evaluate_split, model_scorer
    from privrec.training import TrainConfig, Trainer

    cfg = TrainConfig(
        embedding_size=args.size,
        epochs=args.privrec_epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        reg=args.reg,
        patience=args.patience,
        num_threads=args.privrec_threads,
        eval_every=1,
        seed=args.seed,
    )
    penalties = (
        build_adversaries(attrs, AdversarySpec({"gender": 0.1, "age": 0.1}), args.size)
        if adversarial
        else ()
    )
    records: list[dict] = []
    with timed_evaluation() as ev:
        t0 = time.perf_counter()
        tm = Trainer(cfg, penalties, callback=records.append).fit(split)
        wall = time.perf_counter() - t0
    # time outside the epochs (model set-up, optimizer, final restore) goes to epoch 1
    setup = wall - sum(r["seconds"] for r in records)
    epochs = [
        {
            "epoch": r["epoch"],
            "train_seconds": r["seconds"] - e + (setup if k == 0 else 0.0),
            "eval_seconds": e,
            "val_hr": r["val_hr@10"],
        }
        for k, (r, e) in enumerate(zip(records, ev.calls, strict=True))
    ]
    test = evaluate_split(model_scorer(tm.model), split, "test", 10)
    return {
        "epochs": epochs,
        "test_hr": test["hr@10"],
        "test_ndcg": test["ndcg@10"],
        "best_epoch": tm.best_epoch,
        "config": cfg.to_dict(),
    }


def worker(args) -> None:
    from _common import load_cached, peak_rss_mib, reset_peak_rss

    split, attrs = load_cached(args.cache)
    _ = split.train.csr, split.validation.csr  # data preparation, not training
    # torch imports torch._dynamo lazily at the first optimizer step (seconds, once per
    # process): like `import implicit`, it is start-up, not training; timed on its own.
    t0 = time.perf_counter()
    import torch._dynamo  # noqa: F401

    startup_import_seconds = time.perf_counter() - t0
    after_load = peak_rss_mib()
    reset = reset_peak_rss()
    if args.worker == "implicit":
        out = run_implicit(args, split, attrs)
    else:
        out = run_privrec(args, split, attrs, adversarial=args.worker == "privrec+adv")
    rss = peak_rss_mib()
    out.update(
        model=args.worker,
        size=args.size,
        seed=args.seed,
        n_train=len(split.train),
        peak_rss_mib=rss["vmhwm"] if reset else None,
        peak_rss_lifetime_mib=rss["ru_maxrss"],
        rss_after_data_load_mib=after_load["vmhwm"],
        torch_dynamo_import_seconds=startup_import_seconds,
    )
    Path(args.result).write_text(json.dumps(out))


# ---------------------------------------------------------------------------------- parent
def summarise(runs: list[dict], args) -> list[dict]:
    """One row per (size, model): medians over repeats (and over epochs for s/epoch)."""
    by_key: dict[tuple, list[dict]] = {}
    for r in runs:
        by_key.setdefault((r["size"], r["model"]), []).append(r)
    implicit_by = {(r["size"], r["seed"]): r for r in runs if r["model"] == "implicit"}
    rows = []
    for (size, model), rs in sorted(
        by_key.items(), key=lambda kv: (kv[0][0], MODELS.index(kv[0][1]))
    ):
        per_epoch, to_target, ratios, totals, evals = [], [], [], [], []
        to_best, best_ratios = [], []
        for r in rs:
            ep = r["epochs"]
            per_epoch += [e["train_seconds"] for e in ep]
            evals += [e["eval_seconds"] for e in ep]
            totals.append(sum(e["train_seconds"] for e in ep))
            best_k = int(np.argmax([e["val_hr"] for e in ep]))  # first epoch of the best HR
            to_best.append(sum(e["train_seconds"] for e in ep[: best_k + 1]))
            ref = implicit_by.get((size, r["seed"]))
            if ref is None:
                continue
            target = ref["epochs"][-1]["val_hr"]
            implicit_total = sum(e["train_seconds"] for e in ref["epochs"])
            t = _time_to(ep, target)
            r["target_val_hr"], r["time_to_target"] = target, t
            to_target.append(t)
            ratios.append(t / implicit_total if t is not None else None)
            best_ratios.append(to_best[-1] / implicit_total)
        rows.append(
            {
                "size": size,
                "model": model,
                "repeats": len(rs),
                "seconds_per_epoch": _median(per_epoch),
                "interactions_per_second": rs[0]["n_train"] / _median(per_epoch),
                "epochs_run": _median([len(r["epochs"]) for r in rs]),
                "best_epoch": _median([r["best_epoch"] for r in rs]),
                "train_seconds_total": _median(totals),
                "eval_seconds_per_pass": _median(evals),
                "peak_rss_mib": _median([r["peak_rss_mib"] for r in rs]),
                "peak_rss_lifetime_mib": _median([r["peak_rss_lifetime_mib"] for r in rs]),
                "target_val_hr": _median([r.get("target_val_hr") for r in rs]),
                "final_val_hr": _median([r["epochs"][-1]["val_hr"] for r in rs]),
                "best_val_hr": _median([max(e["val_hr"] for e in r["epochs"]) for r in rs]),
                "time_to_target": _median(to_target),
                "reached_target": f"{sum(t is not None for t in to_target)}/{len(to_target)}",
                "ratio_to_implicit_total": _median(ratios),
                "time_to_best": _median(to_best),
                "ratio_best_to_implicit_total": _median(best_ratios),
                "test_hr": _median([r["test_hr"] for r in rs]),
            }
        )
    return rows


def _time_to(epochs: list[dict], target: float) -> float | None:
    cum = 0.0
    for e in epochs:
        cum += e["train_seconds"]
        if e["val_hr"] >= target:
            return cum
    return None


def _median(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return float(np.median(xs)) if xs else None


def _fmt(x, spec: str, none: str = "—") -> str:
    return none if x is None else format(x, spec)


def to_markdown(summary: list[dict], meta: dict) -> str:
    m, a = meta["machine"], meta["args"]
    lines = [
        f"Machine: `nproc` = {m['nproc']}, CPU {m['cpu_model']}; torch {m['torch']} "
        f"(default {m['torch_default_threads']} threads; privrec trained with "
        f"{a['privrec_threads']}), implicit {m['implicit']} with {a['implicit_threads']} threads, "
        f"numpy {m['numpy']}, Python {m['python']}. Load average "
        f"{m['loadavg_start'][0]:.1f} at start, {meta['loadavg_end'][0]:.1f} at end "
        f"(other jobs share the cores). Wall time of the benchmark: "
        f"{meta['wall_seconds'] / 60:.1f} min.",
        "",
        f"Data: ML-1M leave-last-out, {meta['data']['train_interactions']:,} training "
        f"interactions, {meta['data']['users']:,} users × {meta['data']['items']:,} items. "
        f"implicit: lr {a['implicit_lr']}, reg {a['implicit_reg']}, {a['epochs']} epochs. "
        f"privrec: Adam lr {a['lr']}, batch {a['batch_size']}, reg {a['reg']}, at most "
        f"{a['privrec_epochs']} epochs, patience {a['patience']}; +adv: gender and age heads, "
        f"λ = 0.1. Medians over {a['repeats']} repeat(s) (seconds per epoch: over all epochs "
        f"of all repeats).",
        "",
        "Target = implicit's final validation HR@10 (same size and repeat); *time to target* = "
        "training wall time (evaluation excluded) until the validation HR@10 first reaches it; "
        "*ratio* = time to target / implicit's training time for all its epochs; *time to "
        "best* = training time until the epoch of the best validation HR@10 (privrec keeps "
        "those weights; implicit keeps its last epoch).",
        "",
        "| size | model | s/epoch | interactions/s | epochs run (best) | training s | "
        "eval s/pass | peak RSS MiB (training / process) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        best = "" if r["best_epoch"] is None else f" ({r['best_epoch']:.0f})"
        lines.append(
            f"| {r['size']} | {r['model']} | {r['seconds_per_epoch']:.3f} | "
            f"{r['interactions_per_second']:,.0f} | {r['epochs_run']:.0f}{best} | "
            f"{r['train_seconds_total']:.1f} | {r['eval_seconds_per_pass']:.3f} | "
            f"{_fmt(r['peak_rss_mib'], '.0f')} / {r['peak_rss_lifetime_mib']:.0f} |"
        )
    lines += [
        "",
        "| size | model | val HR@10 final (best) | target | time to target s [reached] | "
        "ratio | time to best s | ratio (best) | test HR@10 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['size']} | {r['model']} | {100 * r['final_val_hr']:.2f}% "
            f"({100 * r['best_val_hr']:.2f}%) | {100 * (r['target_val_hr'] or 0):.2f}% | "
            f"{_fmt(r['time_to_target'], '.1f', 'not reached')} [{r['reached_target']}] | "
            f"{_fmt(r['ratio_to_implicit_total'], '.2f')} | {r['time_to_best']:.1f} | "
            f"{_fmt(r['ratio_best_to_implicit_total'], '.2f')} | {100 * r['test_hr']:.2f}% |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    from _common import default_data_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--data-dir",
        default=default_data_dir(),
        help="folder with ML-1M's .dat files (default: $PRIVREC_DATA_DIR/ml-1m, else "
        "../shared/data/ml-1m)",
    )
    ap.add_argument("--out", type=Path, help="output folder (results.json, results.md)")
    ap.add_argument("--sizes", default="10,20,50", help="comma-separated embedding sizes")
    ap.add_argument("--epochs", type=int, default=100, help="implicit's epochs")
    ap.add_argument("--repeats", type=int, default=1, help="repeats (seeds 0..repeats-1)")
    ap.add_argument("--quick", action="store_true", help="size 10 only, 1 repeat")
    ap.add_argument("--implicit-lr", type=float, default=0.01, help="implicit's default")
    ap.add_argument("--implicit-reg", type=float, default=0.01, help="implicit's default")
    ap.add_argument("--implicit-threads", type=int, default=2)
    ap.add_argument("--privrec-epochs", type=int, default=60, help="privrec's epoch cap")
    ap.add_argument("--batch-size", type=int, default=16384)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--reg", type=float, default=1e-3)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--privrec-threads", type=int, default=1)
    ap.add_argument("--models", default=",".join(MODELS), help="subset of " + ",".join(MODELS))
    ap.add_argument(
        "--from-json", type=Path, help="re-summarise an earlier results.json into --out"
    )
    # worker mode (internal)
    ap.add_argument("--worker", choices=MODELS, help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--cache", help=argparse.SUPPRESS)
    ap.add_argument("--result", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if args.out is None:
        ap.error("--out is required")
    if args.from_json:
        old = json.loads(args.from_json.read_text())
        summary = summarise(old["runs"], args)
        args.out.mkdir(parents=True, exist_ok=True)
        old["summary"] = summary
        (args.out / "results.json").write_text(json.dumps(old, indent=1))
        md = to_markdown(summary, old["meta"])
        (args.out / "results.md").write_text(md)
        print(md)
        return
    if args.quick:
        args.sizes, args.repeats = "10", 1
    sizes = [int(s) for s in args.sizes.split(",")]
    models = [m for m in args.models.split(",") if m]
    bad = set(models) - set(MODELS)
    if bad:
        ap.error(f"unknown model(s) {sorted(bad)}; choose from {MODELS}")
    args.out.mkdir(parents=True, exist_ok=True)

    from _common import cache_ml1m, machine_info

    start = time.perf_counter()
    meta = {
        "machine": machine_info(),
        "args": {
            k: v
            for k, v in vars(args).items()
            if k not in ("worker", "size", "seed", "cache", "result", "out")
        },
    }
    runs: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "ml1m.npz"
        print(f"loading and splitting ML-1M from {args.data_dir} ...", flush=True)
        meta["data"] = cache_ml1m(args.data_dir, cache)
        forward = [
            "--epochs",
            args.epochs,
            "--implicit-lr",
            args.implicit_lr,
            "--implicit-reg",
            args.implicit_reg,
            "--implicit-threads",
            args.implicit_threads,
            "--privrec-epochs",
            args.privrec_epochs,
            "--batch-size",
            args.batch_size,
            "--lr",
            args.lr,
            "--reg",
            args.reg,
            "--patience",
            args.patience,
            "--privrec-threads",
            args.privrec_threads,
        ]
        for rep in range(args.repeats):
            for size in sizes:
                for model in models:
                    result = Path(tmp) / f"{model}-{size}-{rep}.json"
                    cmd = [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--worker",
                        model,
                        "--size",
                        str(size),
                        "--seed",
                        str(rep),
                        "--cache",
                        str(cache),
                        "--result",
                        str(result),
                        *map(str, forward),
                    ]
                    t0 = time.perf_counter()
                    proc = subprocess.run(cmd, capture_output=True, text=True)
                    if proc.returncode != 0:
                        sys.stderr.write(proc.stdout + proc.stderr)
                        raise SystemExit(f"{model} size {size} repeat {rep} failed")
                    run = json.loads(result.read_text())
                    runs.append(run)
                    ep = run["epochs"]
                    best_hr = max(e["val_hr"] for e in ep)
                    print(
                        f"[repeat {rep}] size {size} {model}: {len(ep)} epochs, "
                        f"{np.median([e['train_seconds'] for e in ep]):.3f} s/epoch, val HR@10 "
                        f"{100 * ep[-1]['val_hr']:.2f}% (best {100 * best_hr:.2f}%), "
                        f"test HR@10 {100 * run['test_hr']:.2f}%, peak RSS "
                        f"{_fmt(run['peak_rss_mib'], '.0f')} MiB "
                        f"({time.perf_counter() - t0:.0f} s incl. start-up)",
                        flush=True,
                    )
    summary = summarise(runs, args)
    meta["wall_seconds"] = time.perf_counter() - start
    meta["loadavg_end"] = list(os.getloadavg())
    (args.out / "results.json").write_text(
        json.dumps({"meta": meta, "summary": summary, "runs": runs}, indent=1)
    )
    md = to_markdown(summary, meta)
    (args.out / "results.md").write_text(md)
    print(md)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
