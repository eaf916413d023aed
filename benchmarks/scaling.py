"""Scaling benchmark: training epoch time, peak memory and full-ranking evaluation time of
privrec's BPR-MF trainer on synthetic data of 1M, 3M and 10M interactions.

Each size runs in a fresh subprocess (so peak RSS is that size's own), sizes are interleaved
across repeats (the CPU is shared with other jobs: medians over repeats, not a single run), and
the growth exponent of epoch time vs interactions is fitted by least squares on log-log axes.

    python benchmarks/scaling.py                       # 1M, 3M, 10M; 2 repeats; writes SCALING.md
    python benchmarks/scaling.py --sizes 1M,3M --repeats 3 --epochs 3
    python benchmarks/scaling.py --eval-users 20000     # sampled-user evaluation (faster)
    python benchmarks/scaling.py --one 1M --json out.json   # one measurement (what a child runs)

Sizes: ``N`` interactions over ``N/100`` users and ``N/500`` items (10k×2k, 30k×6k, 100k×20k),
from :func:`privrec.data.synthetic_large.make_synthetic_large` (seed 0), split leave-last-out.
Training: ``TrainConfig(embedding_size=32, batch_size=8192, epochs=E, patience=0)``, validation
only after the last epoch; the epoch time excludes that evaluation, which is timed on its own
(full ranking of every user over every non-training item, ``chunk_size`` users at a time).
Peak RSS is the child's ``VmHWM``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- scaling-results:begin -->", "<!-- scaling-results:end -->"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def parse_size(text: str) -> int:
    """``"1M"`` → 1_000_000, ``"300k"`` → 300_000, ``"2500000"`` → 2_500_000."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kKmM]?)\s*", text)
    if not m:
        raise ValueError(f"bad size {text!r} (expected e.g. 1M, 300k, 2500000)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2).lower()]
    return int(round(float(m.group(1)) * scale))


def shape_of(n_interactions: int) -> tuple[int, int]:
    """Users and items for a size: ``N/100`` users, ``N/500`` items."""
    return max(10, n_interactions // 100), max(20, n_interactions // 500)


def label(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


def vm_hwm_mib() -> float | None:
    """Peak resident set of this process (``VmHWM``, Linux), MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def source_digest() -> str:
    """Short hash of privrec's source files (the code measured: others may be changing it)."""
    import hashlib

    import privrec

    root = Path(privrec.__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def fit_exponent(x, y) -> float:
    """Slope of the least-squares line through ``(log x, log y)``."""
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(lx) < 2 or np.ptp(lx) == 0:
        return float("nan")
    return float(np.polyfit(lx, ly, 1)[0])


def median(xs) -> float:
    xs = [float(x) for x in xs if x is not None and math.isfinite(float(x))]
    return float(np.median(xs)) if xs else float("nan")


# ---------------------------------------------------------------------------------------------
# one measurement (a child process)
# ---------------------------------------------------------------------------------------------


def measure(
    n_interactions: int,
    epochs: int = 3,
    batch_size: int = 8192,
    dim: int = 32,
    eval_users: int | None = None,
    threads: int | None = None,
    chunk_size: int = 1024,
    seed: int = 0,
    shape: tuple[int, int] | None = None,
    optimizer: str = "sparse-adam",
) -> dict:
    """Generate, split, train ``epochs`` epochs and evaluate once; timings and memory.

    ``shape`` = ``(users, items)`` overrides :func:`shape_of` (small smoke tests)."""
    import torch

    import privrec.training.trainer as trainer_mod
    from privrec.data.split import leave_last_out
    from privrec.data.synthetic_large import make_synthetic_large
    from privrec.errors import FitError
    from privrec.evaluation.protocol import exclusion_mask, model_scorer
    from privrec.evaluation.ranking import evaluate_ranking
    from privrec.training.config import TrainConfig
    from privrec.training.trainer import Trainer

    if threads:
        torch.set_num_threads(threads)
    n_users, n_items = shape or shape_of(n_interactions)
    out: dict = {
        "interactions": n_interactions,
        "users": n_users,
        "items": n_items,
        "threads": torch.get_num_threads(),
        "epochs": epochs,
        "batch_size": batch_size,
        "embedding_size": dim,
        "optimizer": optimizer,
        "loadavg_start": list(os.getloadavg()),
        "source_digest": source_digest(),
    }
    t0 = time.perf_counter()
    ds = make_synthetic_large(n_users, n_items, n_interactions, seed=seed)
    out["generate_seconds"] = time.perf_counter() - t0
    out["rss_after_data_mib"] = vm_hwm_mib()
    t0 = time.perf_counter()
    split = leave_last_out(ds.interactions)
    out["split_seconds"] = time.perf_counter() - t0
    out["train_interactions"] = len(split.train)
    del ds
    out["rss_after_split_mib"] = vm_hwm_mib()

    # Time the trainer's own validation call so it can be taken out of the epoch time.
    evals: list[float] = []
    original = trainer_mod.evaluate_split

    def timed(*args, **kwargs):
        t = time.perf_counter()
        res = original(*args, **kwargs)
        evals.append(time.perf_counter() - t)
        return res

    cfg = TrainConfig(
        embedding_size=dim,
        batch_size=batch_size,
        epochs=epochs,
        eval_every=10**9,  # validation only after the last epoch
        patience=0,
        learning_rate=0.01,
        seed=seed,
        optimizer=optimizer,
    )
    trainer_mod.evaluate_split = timed
    t0 = time.perf_counter()
    try:
        trained = Trainer(cfg).fit(split)
        history, model = list(trained.history), trained.model
        out["val_hr@10"] = trained.validation.get("hr@10")
        out["status"] = "ok"
    except FitError as exc:  # report what was measured, and why it stopped
        history, model = list(exc.history), None
        out["status"] = f"FitError: {exc}"
    finally:
        trainer_mod.evaluate_split = original
    out["fit_seconds"] = time.perf_counter() - t0
    secs = [float(r["seconds"]) for r in history if "seconds" in r]
    if secs and evals and len(history) == epochs:
        secs[-1] -= evals[-1]  # the last epoch ran the validation
    out["epoch_seconds"] = secs
    out["epoch_seconds_median"] = median(secs)
    out["rec_loss"] = [r.get("rec_loss") for r in history]
    out["rss_after_train_mib"] = vm_hwm_mib()

    if model is not None:
        target = split.test
        users, items = target.users, target.items
        if eval_users is not None and eval_users < len(users):
            pick = np.sort(np.random.default_rng(seed).choice(len(users), eval_users, False))
            users, items = users[pick], items[pick]
        t0 = time.perf_counter()
        res = evaluate_ranking(
            model_scorer(model), users, items, exclusion_mask(split, "test"), 10, chunk_size
        )
        out["eval_seconds"] = time.perf_counter() - t0
        out["eval_users"] = int(len(users))
        out["test_hr@10"] = res["hr@10"]
        out["validation_eval_seconds"] = evals[-1] if evals else None
    out["peak_rss_mib"] = vm_hwm_mib()
    out["loadavg_end"] = list(os.getloadavg())
    return out


# ---------------------------------------------------------------------------------------------
# the driver: sizes in fresh subprocesses, interleaved, then the table
# ---------------------------------------------------------------------------------------------


def run_child(size: int, optimizer: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--one", str(size),
            "--json", str(path), "--epochs", str(args.epochs),
            "--batch-size", str(args.batch_size), "--dim", str(args.dim),
            "--optimizer", optimizer,
        ]  # fmt: skip
        if args.eval_users:
            cmd += ["--eval-users", str(args.eval_users)]
        cmd += ["--threads", str(args.threads)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            return {
                "interactions": size,
                "optimizer": optimizer,
                "status": f"child failed (exit {proc.returncode})",
                "stderr": proc.stderr[-2000:],
            }
        res = json.loads(path.read_text())
        res["child_wall_seconds"] = time.perf_counter() - t0
        return res


def summarise(results: list[dict]) -> dict:
    """Medians per (optimizer, size) and the growth exponents per optimizer."""
    by_key: dict[tuple[str, int], list[dict]] = {}
    for r in results:
        key = (r.get("optimizer", "adam"), int(r["interactions"]))
        by_key.setdefault(key, []).append(r)
    rows = []
    for opt, size in sorted(by_key):
        rs = [r for r in by_key[opt, size] if "epoch_seconds" in r]
        users, items = (rs[0]["users"], rs[0]["items"]) if rs else shape_of(size)
        rows.append(
            {
                "optimizer": opt,
                "interactions": size,
                "users": users,
                "items": items,
                "runs": len(rs),
                "epoch_seconds": median(r["epoch_seconds_median"] for r in rs),
                "epoch_seconds_all": [s for r in rs for s in r["epoch_seconds"]],
                "eval_seconds": median(r.get("eval_seconds") for r in rs),
                "eval_users": max((r.get("eval_users") or 0) for r in rs) if rs else 0,
                "peak_rss_mib": median(r.get("peak_rss_mib") for r in rs),
                "peak_rss_max_mib": max((r.get("peak_rss_mib") or 0) for r in rs) if rs else 0,
                "generate_seconds": median(r.get("generate_seconds") for r in rs),
                "split_seconds": median(r.get("split_seconds") for r in rs),
                "test_hr@10": median(r.get("test_hr@10") for r in rs),
                "status": sorted({r.get("status", "?") for r in by_key[opt, size]}),
            }
        )
    exponents = {}
    for opt in sorted({r["optimizer"] for r in rows}):
        ok = [r for r in rows if r["optimizer"] == opt and math.isfinite(r["epoch_seconds"])]
        timed = [r for r in ok if math.isfinite(r["eval_seconds"])]
        exponents[opt] = {
            "epoch": fit_exponent(
                [r["interactions"] for r in ok], [r["epoch_seconds"] for r in ok]
            ),
            "eval": fit_exponent(
                [r["interactions"] for r in timed], [r["eval_seconds"] for r in timed]
            ),
        }
    return {"rows": rows, "exponents": exponents}


def markdown(summary: dict, meta: dict) -> str:
    lines = [
        f"Measured {meta['date']} on {meta['machine']} ({meta['cores']} cores, shared with other "
        f"jobs: load average {meta['loadavg']}), torch {meta['torch']}, {meta['threads']} torch "
        f"thread(s); {meta['repeats']} repeat(s) per size and optimizer, interleaved, each in a "
        f"fresh process; embedding size {meta['dim']}, batch {meta['batch_size']}, "
        f"{meta['epochs']} epochs per run. Command: `{meta['command']}`.",
        "",
        "| optimizer | interactions | users × items | s / epoch (median) | peak RSS "
        "| full-ranking eval (users) | data generation | split | test HR@10 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in summary["rows"]:
        lines.append(
            f"| `{r['optimizer']}` | {label(r['interactions'])} | {r['users']:,} × {r['items']:,} "
            f"| {r['epoch_seconds']:.2f} | {r['peak_rss_mib'] / 1024:.2f} GiB "
            f"| {r['eval_seconds']:.1f} s ({r['eval_users']:,}) "
            f"| {r['generate_seconds']:.1f} s | {r['split_seconds']:.1f} s "
            f"| {r['test_hr@10']:.3f} |"
        )
    lines.append("")
    for opt, ex in summary["exponents"].items():
        lines.append(
            f"- `{opt}`: growth exponent of epoch time vs interactions (log-log least squares "
            f"over the sizes) **{ex['epoch']:.2f}** (target ≤ 1.1); evaluation time exponent "
            f"{ex['eval']:.2f} (full ranking is users × items: ×100 per ×10 interactions here)."
        )
    return "\n".join(lines)


def write_markdown(path: Path, block: str) -> None:
    """Replace the results block of ``path`` (between the markers), keeping the rest."""
    text = path.read_text() if path.exists() else "# Scaling\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + "\n\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + BEGIN + "\n" + block + "\n" + END + tail)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1M,3M,10M", help="comma-separated interaction counts")
    p.add_argument("--repeats", type=int, default=2, help="runs per size (interleaved)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs per run")
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--dim", type=int, default=32, help="embedding size")
    p.add_argument(
        "--optimizers",
        default="adam,sparse-adam",
        help="comma-separated TrainConfig optimizers, measured side by side (child: one)",
    )
    p.add_argument("--eval-users", type=int, default=None, help="evaluate a sample of users")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: on a shared CPU, more threads than free cores make "
        "OpenMP spin and run many times slower; 0 = torch's default)",
    )
    p.add_argument("--out", type=Path, default=HERE / "scaling_results.json")
    p.add_argument("--markdown", type=Path, default=HERE / "SCALING.md")
    p.add_argument("--no-markdown", action="store_true", help="do not update SCALING.md")
    p.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="re-render the table of a saved results file (--out of an earlier run); no runs",
    )
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    p.add_argument("--optimizer", default="sparse-adam", help=argparse.SUPPRESS)
    p.add_argument("--json", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.one is not None:  # child
        res = measure(
            parse_size(args.one),
            epochs=args.epochs,
            batch_size=args.batch_size,
            dim=args.dim,
            eval_users=args.eval_users,
            threads=args.threads,
            optimizer=args.optimizer,
        )
        text = json.dumps(res, indent=1)
        if args.json:
            args.json.write_text(text)
        else:
            print(text)
        return 0

    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text())
        block = markdown(summarise(saved["runs"]), saved["meta"])
        print(block)
        if not args.no_markdown:
            write_markdown(args.markdown, block)
        return 0

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    jobs = [(size, opt) for size in sizes for opt in optimizers]
    results: list[dict] = []
    for rep in range(args.repeats):
        order = jobs if rep % 2 == 0 else jobs[::-1]  # interleave, alternating direction
        for size, opt in order:
            res = run_child(size, opt, args)
            res["repeat"] = rep
            results.append(res)
            print(
                f"[{rep + 1}/{args.repeats}] {opt} {label(size)}: "
                f"{res.get('epoch_seconds_median', float('nan')):.2f} s/epoch "
                f"{res.get('epoch_seconds')}, eval {res.get('eval_seconds', float('nan')):.1f} s, "
                f"peak {(res.get('peak_rss_mib') or float('nan')) / 1024:.2f} GiB, "
                f"{res.get('status')}",
                flush=True,
            )
    summary = summarise(results)
    import torch

    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _cpu_model(),
        "cores": os.cpu_count(),
        "loadavg": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "torch": torch.__version__,
        "threads": args.threads or torch.get_num_threads(),
        "repeats": args.repeats,
        "dim": args.dim,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "command": "python benchmarks/scaling.py " + " ".join(argv or sys.argv[1:]),
        "python": platform.python_version(),
    }
    args.out.write_text(json.dumps({"meta": meta, "summary": summary, "runs": results}, indent=1))
    block = markdown(summary, meta)
    print(block)
    if not args.no_markdown:
        write_markdown(args.markdown, block)
    return 0


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


if __name__ == "__main__":
    sys.exit(main())
