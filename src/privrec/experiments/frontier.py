"""One accuracy-vs-leakage frontier of several methods (a sweep with ``[[series]]``).

Every finished run of a series is a point: its test HR@k as a share of the plain model of the
same size and seed (the series named ``plain``, else the runs without a defence), against the
leakage of each audited attribute by the strongest attacker — ROC-AUC for a binary attribute,
balanced accuracy for one with more classes — with the 95 % bootstrap interval of that
attacker (:mod:`privrec.audit.uncertainty`). The figures are read from the sweep's long
records, never from column names. :func:`best_points` picks, per series, the least leaky point
that keeps a given share of plain accuracy; with several seeds, :func:`seed_summary` gives each
setting's mean and spread over them, and the best point is picked on those means.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from privrec.defence_names import PENALTY_FAMILIES
from privrec.experiments.report_tables import PAPER_ATTACKER, PAPER_LAMBDAS, PAPER_SIZE_LAMBDA
from privrec.experiments.sweep_results import leakage_attributes

MIN_SHARE = 90.0
"""Share of plain HR@k (%) a point must keep to be a candidate best point."""
TARGETS: dict[str, float] = {"roc_auc": 0.55, "balanced_accuracy": 0.17}
"""Leakage targets drawn on the figure (ROC-AUC of binary attributes, balanced accuracy of the
others)."""


def frontier_points(
    results: pd.DataFrame,
    records: pd.DataFrame,
    k: int = 10,
    knobs: dict[str, list[str]] | None = None,
) -> pd.DataFrame:
    """One row per finished run of a sweep with series: ``series``, ``knob`` (the values of the
    series' own grid keys ``knobs[series]``; default: the grid columns that vary within the
    series), ``embedding_size``, ``seed``, ``run_id``, ``hr`` (test HR@k),
    ``hr_share`` (% of plain), and per attribute ``<a>_metric`` (``roc_auc`` or
    ``balanced_accuracy``), ``<a>_value``, ``<a>_low``, ``<a>_high``, ``<a>_attacker``,
    ``<a>_chance``, ``<a>_p_family``; for runs that audited their served lists
    (``audit_lists``) the same figures of the lists as ``<a>_list_…``. Empty without a
    ``series`` column."""
    if "series" not in results.columns or results.empty:
        return pd.DataFrame()
    ok = results[results["status"] == "ok"].copy()
    attributes = leakage_attributes(records)
    final = records[records["stage"] == "final"] if not records.empty else records
    lists = records[records["stage"] == "lists"] if not records.empty else records
    knob_keys = knobs if knobs is not None else _knob_keys(results)
    rows = []
    for _, r in ok.iterrows():
        row = {
            "series": r["series"],
            "knob": ", ".join(
                f"{key.split('.')[-1]}={_fmt(r[key])}"
                for key in knob_keys.get(r["series"], [])
                if key in r and not _missing(r[key])
            ),
            "embedding_size": int(r["embedding_size"]),
            "seed": int(r["seed"]),
            "run_id": r["run_id"],
            "hr": float(r[f"test_hr@{k}"]),
        }
        mine = final[final["run_id"] == r["run_id"]]
        served = lists[lists["run_id"] == r["run_id"]]
        for a in attributes:
            row.update(_leakage(mine[mine["attribute"] == a], a))
            if not served.empty:
                row.update(_leakage(served[served["attribute"] == a], f"{a}_list"))
        rows.append(row)
    points = pd.DataFrame(rows)
    if points.empty:
        return points
    plain = _plain_hr(points, results)
    points["hr_share"] = [
        100 * p["hr"] / plain[(p["embedding_size"], p["seed"])]
        if plain.get((p["embedding_size"], p["seed"]))
        else math.nan
        for _, p in points.iterrows()
    ]
    return points


def series_knobs(meta: dict) -> dict[str, list[str]] | None:
    """Per series of a sweep's recorded spec (``sweep.json``), its own grid keys (its knob, as
    :func:`frontier_points` takes them); None for a sweep without series."""
    series = meta.get("spec", {}).get("series")
    if not series:
        return None
    return {s["name"]: [k for k in s.get("grid", {}) if k != "seed"] for s in series}


def best_points(
    points: pd.DataFrame, attributes: Sequence[str], min_share: float = MIN_SHARE
) -> pd.DataFrame:
    """Per series and size, the point with the least leakage — the largest normalised leakage
    over ``attributes`` (``(v − chance) / (1 − chance)``) — among those keeping at least
    ``min_share`` % of plain HR@k; ``kept`` is False (and the most accurate point is given)
    when no point keeps that much."""
    if points.empty:
        return points
    out = []
    for (_series, _size), group in points.groupby(["series", "embedding_size"], sort=False):
        leak = group.apply(lambda p: _normalised(p, attributes), axis=1)
        keep = group["hr_share"] >= min_share - 1e-9
        if keep.any():
            best = group.loc[leak[keep].astype(float).idxmin()].copy()  # type: ignore[call-overload]
            best["kept"] = True
        else:
            best = group.loc[group["hr_share"].astype(float).idxmax()].copy()  # type: ignore[call-overload]
            best["kept"] = False
        best["leakage"] = _normalised(best, attributes)
        out.append(best)
    return pd.DataFrame(out).reset_index(drop=True)


def seed_summary(points: pd.DataFrame, attributes: Sequence[str]) -> pd.DataFrame:
    """One row per series, setting and size over its seeds: ``seeds`` (how many), ``hr`` and
    ``hr_share`` (means), ``hr_share_sd``, and per attribute ``<a>_value`` (mean of the
    strongest attacker's figure), ``<a>_sd``, ``<a>_min``, ``<a>_max``, with ``<a>_metric`` and
    ``<a>_chance`` — the columns :func:`best_points` reads, so the best point can be picked on
    seed means. Standard deviations are over seeds (ddof 1; NaN for one seed)."""
    if points.empty:
        return points
    rows = []
    keys = ["series", "knob", "embedding_size"]
    for key, group in points.groupby(keys, sort=False, dropna=False):
        row: dict[str, Any] = dict(zip(keys, key, strict=True))
        row["seeds"] = int(group["seed"].nunique())
        row["hr"] = float(group["hr"].mean())
        row["hr_share"] = float(group["hr_share"].mean())
        row["hr_share_sd"] = _sd(group["hr_share"])
        for a in attributes:
            if f"{a}_value" not in group.columns:
                continue
            v = group[f"{a}_value"].astype(float)
            row[f"{a}_value"] = float(v.mean())
            row[f"{a}_sd"] = _sd(v)
            row[f"{a}_min"], row[f"{a}_max"] = float(v.min()), float(v.max())
            for mean_of in ("readout", "majority"):
                if f"{a}_{mean_of}" in group.columns:
                    row[f"{a}_{mean_of}"] = float(group[f"{a}_{mean_of}"].astype(float).mean())
            for extra in ("metric", "chance"):
                if f"{a}_{extra}" not in group.columns:
                    continue
                known = group[f"{a}_{extra}"].dropna()
                row[f"{a}_{extra}"] = known.iloc[0] if not known.empty else None
        rows.append(row)
    return pd.DataFrame(rows)


def paper_points(size: int) -> pd.DataFrame:
    """The paper's own points for BPR of ``size`` on ML-1M (its Tables 2–4): ``lambda``,
    ``hr_share`` (its HR@10 as % of its λ = 0 run) and per attribute ``<a>_readout`` (its
    softmax readout's accuracy, as a fraction); empty for a size the paper did not run."""
    hr = PAPER_SIZE_LAMBDA["hr"].get(size)
    if hr is None:
        return pd.DataFrame()
    rows = []
    for i, lam in enumerate(PAPER_LAMBDAS):
        row: dict[str, float] = {"lambda": lam, "hr_share": 100 * hr[i] / hr[0]}
        for a in ("gender", "age"):
            row[f"{a}_readout"] = PAPER_SIZE_LAMBDA[a][size][i] / 100
        rows.append(row)
    return pd.DataFrame(rows)


def _sd(values: pd.Series) -> float:
    finite = values.astype(float).dropna()
    return float(finite.std(ddof=1)) if len(finite) > 1 else math.nan


def plot_frontier(
    points: pd.DataFrame,
    attributes: Sequence[str],
    path: Path,
    paper: pd.DataFrame | None = None,
) -> Path | None:
    """Draw HR@k (% of plain) against each attribute's leakage, one series per method, with
    the bootstrap intervals, the chance line and the target region, and (hollow markers) the
    leakage of the served top-k lists where the runs audited them; with several seeds, each
    setting at its means over them (bars: the seeds' range of leakage, the sd of HR@k).
    ``paper`` (:func:`paper_points`) adds a second row in the paper's own metric — the
    accuracy of its softmax readout (ours: multinomial logistic regression) — with the paper's
    points beside ours. ``None`` if nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    attributes = [a for a in attributes if f"{a}_value" in points.columns]
    if points.empty or not attributes:
        return None
    seeds = int(points["seed"].nunique())
    if seeds > 1:  # each setting at its means over seeds, bars spanning the seeds' range
        listed = [f"{a}_list" for a in attributes if f"{a}_list_value" in points.columns]
        points = seed_summary(points, [*attributes, *listed])
        for a in attributes:
            points[f"{a}_low"], points[f"{a}_high"] = points[f"{a}_min"], points[f"{a}_max"]
    readout = [
        a
        for a in attributes
        if paper is not None
        and not paper.empty
        and f"{a}_readout" in paper.columns
        and f"{a}_readout" in points.columns
    ]
    rows = 2 if readout else 1
    fig, axes = plt.subplots(
        rows, len(attributes), figsize=(5.6 * len(attributes), 4.6 * rows), squeeze=False
    )
    series = list(dict.fromkeys(points["series"]))
    style = {
        name: (plt.get_cmap("tab10")(i % 10), _MARKERS[i % len(_MARKERS)])
        for i, name in enumerate(series)
    }
    spread = f"mean of {seeds} seeds, range" if seeds > 1 else "95% CI"
    for ax, a in zip(axes[0], attributes, strict=True):
        metric = str(points[f"{a}_metric"].dropna().iloc[0])
        chance = float(points[f"{a}_chance"].dropna().iloc[0])
        for name in series:
            sel = points[points["series"] == name]
            colour, marker = style[name]
            x = sel[f"{a}_value"].to_numpy(float)
            xerr = np.vstack([x - sel[f"{a}_low"], sel[f"{a}_high"] - x]).clip(min=0)
            _draw_series(ax, sel, x, xerr, seeds, name, colour, marker)
            if f"{a}_list_value" in sel.columns and sel[f"{a}_list_value"].notna().any():
                ax.scatter(
                    sel[f"{a}_list_value"],
                    sel["hr_share"],
                    marker=marker,
                    facecolors="none",
                    edgecolors=colour,
                    s=36,
                    lw=0.9,
                    alpha=0.8,
                    label=f"{name}: served lists" if a == attributes[-1] else None,
                )
        target = TARGETS.get(metric)
        if target is not None:
            ax.axvspan(chance, target, ymin=0, ymax=1, color="green", alpha=0.06, lw=0)
            ax.axhline(MIN_SHARE, color="green", ls=":", lw=0.9)
        ax.axvline(chance, color="0.6", ls="--", lw=0.8)
        what = "ROC-AUC" if metric == "roc_auc" else "balanced accuracy"
        ax.set_xlabel(f"{a}: strongest attacker {what}\n({spread}; chance {chance:.3g})")
        ax.set_ylabel("test HR@10, % of plain (same size, seed)")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="best")
    if readout and paper is not None:
        for ax, a in zip(axes[1], attributes, strict=True):
            if a not in readout:
                ax.set_visible(False)
                continue
            for name in series:
                sel = points[points["series"] == name]
                colour, marker = style[name]
                _draw_series(
                    ax, sel, sel[f"{a}_readout"].to_numpy(float), None, seeds, name, colour, marker
                )
            ax.plot(paper[f"{a}_readout"], paper["hr_share"], "k*--", ms=9, lw=0.8, label="paper")
            for _, p in paper.iterrows():
                ax.annotate(
                    f"λ={p['lambda']:g}",
                    (p[f"{a}_readout"], p["hr_share"]),
                    textcoords="offset points",
                    xytext=(4, -9),
                    fontsize=7,
                )
            majority = points[f"{a}_majority"].dropna()
            if not majority.empty:
                ax.axvline(float(majority.mean()), color="0.6", ls="--", lw=0.8)
            ax.axhline(MIN_SHARE, color="green", ls=":", lw=0.9)
            ax.set_xlabel(
                f"{a}: accuracy of the softmax readout (the paper's metric; ours: "
                f"logistic)\n(dashed: majority-class share; paper: its own split, all users)"
            )
            ax.set_ylabel("test HR@10, % of plain (paper: % of its λ = 0)")
            ax.grid(alpha=0.3)
        axes[1][-1].legend(fontsize=8, loc="best")
    fig.suptitle(
        "Accuracy vs leakage, every method (shaded: target region; dotted: 90 % of plain)",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]


def _draw_series(ax, sel, x, xerr, seeds: int, name: str, colour, marker: str) -> None:
    """One method's points on one panel: markers joined in grid order, the leakage bars
    ``xerr`` (None: none), HR@k's sd over seeds, and each point's knob value."""
    y = sel["hr_share"].to_numpy(float)
    ax.errorbar(
        x,
        y,
        xerr=None if xerr is None else np.nan_to_num(xerr),
        yerr=np.nan_to_num(sel["hr_share_sd"].to_numpy(float)) if seeds > 1 else None,
        fmt=marker + "-",
        color=colour,
        ms=6,
        lw=0.9,
        capsize=2,
        label=name,
        alpha=0.9,
    )
    for (_, p), xi, yi in zip(sel.iterrows(), x, y, strict=True):
        if p["knob"] and np.isfinite(xi) and np.isfinite(yi):
            ax.annotate(
                str(p["knob"]).split("=")[-1],
                (xi, yi),
                textcoords="offset points",
                xytext=(4, 3),
                fontsize=7,
                color="0.35",
            )


def _leakage(rows: pd.DataFrame, attribute: str) -> dict:
    """The strongest attacker's figure of one attribute of one run, from its records."""
    out: dict[str, Any] = {
        f"{attribute}_{k}": math.nan for k in ("value", "low", "high", "chance", "p_family")
    }
    out[f"{attribute}_metric"] = None
    out[f"{attribute}_attacker"] = ""
    if rows.empty:
        return out
    wide = rows.pivot_table(index="attacker", columns="metric", values="value", sort=False)
    chance = float(wide["chance_balanced"].dropna().iloc[0]) if "chance_balanced" in wide else 0.5
    metric = "roc_auc" if abs(chance - 0.5) < 1e-9 else "balanced_accuracy"
    if metric not in wide or wide[metric].isna().all():
        return out
    if PAPER_ATTACKER in wide.index and "accuracy" in wide.columns:  # the paper's metric
        out[f"{attribute}_readout"] = _get(wide, PAPER_ATTACKER, "accuracy")
        out[f"{attribute}_majority"] = _get(wide, PAPER_ATTACKER, "majority")
    best = str(wide[metric].astype(float).idxmax())
    chance_line = 0.5 if metric == "roc_auc" else chance
    out.update(
        {
            f"{attribute}_metric": metric,
            f"{attribute}_attacker": best,
            f"{attribute}_value": _get(wide, best, metric),
            f"{attribute}_low": _get(wide, best, f"{metric}_ci_low"),
            f"{attribute}_high": _get(wide, best, f"{metric}_ci_high"),
            f"{attribute}_chance": chance_line,
            f"{attribute}_p_family": _get(wide, best, "p_value_family"),
        }
    )
    return out


def _get(wide: pd.DataFrame, row: str, col: str) -> float:
    return float(wide.at[row, col]) if col in wide.columns else math.nan  # type: ignore[arg-type]


def _plain_hr(points: pd.DataFrame, results: pd.DataFrame) -> dict[tuple[int, int], float]:
    """Plain HR@k per (size, seed): the ``plain`` series, else runs without a defence."""
    ref = points[points["series"] == "plain"]
    if ref.empty and "method" in results.columns:
        ids = set(results.loc[results["method"] == "plain", "run_id"])
        ref = points[points["run_id"].isin(ids)]
    out: dict[tuple[int, int], float] = {}
    for key, g in ref.groupby(["embedding_size", "seed"]):
        size, seed = key
        out[(int(str(size)), int(str(seed)))] = float(g["hr"].mean())
    return out


def _knob_keys(results: pd.DataFrame) -> dict[str, list[str]]:
    """Per series, the grid keys whose values vary within it (its knob)."""
    skip = {"series", "seed", "embedding_size", "size"}
    out: dict[str, list[str]] = {}
    grid_cols = [c for c in results.columns if c in _grid_columns(results)]
    for name, group in results.groupby("series", sort=False):
        out[str(name)] = [
            c for c in grid_cols if c not in skip and group[c].map(_fmt).nunique(dropna=True) > 1
        ]
    return out


_GRID_SECTIONS = ("lambda", *PENALTY_FAMILIES, "train", "adversary", "dependence", "data")
"""Heads of the dotted grid keys a sweep file may use (``erasure_options.<option>`` too)."""


def _grid_columns(results: pd.DataFrame) -> list[str]:
    """Columns that hold grid values: the shared knobs and the dotted grid keys — not the
    attackers' columns, whose names may hold a dot too (``gender_auc_linear_svm_c0.1``)."""
    knobs = ("lambda", *PENALTY_FAMILIES, "erasure", "erasure_refit_items")
    return [
        c
        for c in results.columns
        if c in knobs or ("." in c and c.split(".")[0] in (*_GRID_SECTIONS, "erasure_options"))
    ]


def _normalised(p: pd.Series, attributes: Sequence[str]) -> float:
    values = []
    for a in attributes:
        v, chance = p.get(f"{a}_value"), p.get(f"{a}_chance")
        if v is None or chance is None or _missing(v) or _missing(chance):
            continue
        values.append(max(0.0, (float(v) - float(chance)) / (1 - float(chance))))
    return max(values) if values else math.nan


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v) -> str:
    if _missing(v):
        return ""
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return str(v)
