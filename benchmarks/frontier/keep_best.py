"""Keep the evidence of a frontier sweep's best point per method in the repository.

Run directories hold vectors and caches (megabytes each, and derived from MovieLens), so they
stay on the machine that made them. This copies, for the best point of each series (the least
leaky run keeping ≥ 90 % of plain HR@10, as the sweep report picks it, else the series' most
accurate run) and for the plain run, the small files that say what was run and what it
measured: ``config.json`` (the exact spec), ``metrics.json``, ``audit.md``,
``audit_lists/audit.md`` (the served lists' audit, when made) and ``label_users.txt`` (the
users whose labels the defence used; leakage is on the others). ``DEST/README.md`` lists them.

    python benchmarks/frontier/keep_best.py runs/frontier-e50-refit \
        benchmarks/results/frontier/ml1m-e50-refit --command "privrec sweep -c … -o …"
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from privrec.errors import PrivrecError
from privrec.experiments.frontier import best_points, frontier_points, series_knobs
from privrec.experiments.report_tables import load_sweep
from privrec.experiments.sweep_results import leakage_attributes

KEPT = ("config.json", "metrics.json", "audit.md", "label_users.txt", "audit_lists/audit.md")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep_dir", type=Path)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--command", default="", help="the command that made the sweep")
    args = ap.parse_args()

    try:
        meta, results, records = load_sweep(args.sweep_dir)
    except PrivrecError as exc:
        raise SystemExit(f"error: {exc}") from None
    if "series" not in results.columns:
        raise SystemExit(f"error: {args.sweep_dir}: not a sweep with [[series]] (no frontier)")
    points = frontier_points(results, records, knobs=series_knobs(meta))
    attributes = [a for a in leakage_attributes(records) if f"{a}_value" in points.columns]
    best = best_points(points, attributes)
    lines = [
        f"# Best point per method: `{args.sweep_dir.name}`",
        "",
        f"Made by `{args.command}`." if args.command else "",
        "Per series, the least leaky run keeping ≥ 90 % of plain test HR@10 (else the most",
        "accurate one, marked), with the strongest attacker's figure on the held-out users.",
        "",
        "| series | setting | run | HR@10 % of plain | ≥ 90 %? | "
        + " | ".join(f"{a} ({best[f'{a}_metric'].iloc[0]})" for a in attributes)
        + " |",
        "|---" * (5 + len(attributes)) + "|",
    ]
    for _, p in best.iterrows():
        run = args.sweep_dir / "runs" / p["run_id"]
        out = args.dest / str(p["series"]) / p["run_id"]
        for name in KEPT:
            if (run / name).exists():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run / name, out / name)
        cells = [f"{p[f'{a}_value']:.3f}" for a in attributes]
        lines.append(
            f"| {p['series']} | {p['knob'] or '–'} | `{p['series']}/{p['run_id']}` "
            f"| {p['hr_share']:.1f} | {'yes' if p['kept'] else 'no'} | " + " | ".join(cells) + " |"
        )
    (args.dest / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"kept {len(best)} runs under {args.dest}")


if __name__ == "__main__":
    main()
