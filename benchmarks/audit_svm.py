"""The audit's RBF SVM on an explicit Gram matrix against libsvm's own RBF kernel, side by side.

Audits the vectors of run directories (both attributes, 5 folds, the run's seed) with the
``rbf_svm`` attacker twice per repeat, alternating the two implementations, and prints the
median seconds and the largest differences in ROC-AUC and balanced accuracy.

    python benchmarks/audit_svm.py RUN_DIR [RUN_DIR ...] --dataset ml-1m --repeats 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
import warnings
from pathlib import Path

from sklearn.svm import SVC

import privrec
from privrec.audit import attackers, audit_vectors, load_vectors


def _libsvm_rbf(seed: int):
    return SVC(kernel="rbf", C=1.0, gamma="scale", cache_size=500, random_state=seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    ds = privrec.load_dataset(args.dataset)
    gram = attackers.ATTACKERS["rbf_svm"]
    libsvm = dataclasses.replace(gram, classifier=_libsvm_rbf)
    rows = []
    for run in args.runs:
        seed = json.loads((run / "config.json").read_text())["spec"]["train"]["seed"]
        uid, X = load_vectors(run)
        times: dict[str, list[float]] = {"libsvm": [], "gram": []}
        tables = {}
        for _ in range(args.repeats):
            for name, spec in (("libsvm", libsvm), ("gram", gram)):
                attackers.ATTACKERS["rbf_svm"] = spec
                try:
                    t = time.perf_counter()
                    res = audit_vectors(
                        uid,
                        X,
                        ds.attributes,
                        names=["gender", "age"],
                        attackers="rbf_svm",
                        seed=seed,
                    )
                    times[name].append(time.perf_counter() - t)
                finally:
                    attackers.ATTACKERS["rbf_svm"] = gram
                tables[name] = res.table.set_index("attribute")
        diff = (
            (
                tables["gram"][["roc_auc", "balanced_accuracy"]]
                - tables["libsvm"][["roc_auc", "balanced_accuracy"]]
            )
            .abs()
            .max()
        )
        row = {
            "run": run.name,
            "dim": int(X.shape[1]),
            "libsvm_s": statistics.median(times["libsvm"]),
            "gram_s": statistics.median(times["gram"]),
            "max_abs_diff_auc": float(diff["roc_auc"]),
            "max_abs_diff_bacc": float(diff["balanced_accuracy"]),
        }
        row["ratio"] = row["gram_s"] / row["libsvm_s"]
        rows.append(row)
        print(
            f"{row['run']}: libsvm {row['libsvm_s']:.1f} s, Gram {row['gram_s']:.1f} s "
            f"({row['ratio']:.2f}x); |ΔAUC| ≤ {row['max_abs_diff_auc']:.1e}, "
            f"|Δbacc| ≤ {row['max_abs_diff_bacc']:.1e}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
