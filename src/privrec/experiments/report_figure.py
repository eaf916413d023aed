"""The trade-off figure of ``privrec report``: test HR@k vs leakage, Pareto front highlighted.

:func:`plot_tradeoff` draws one panel per attribute (and one for all attributes together) from a
sweep's context (:class:`~privrec.experiments.report_tables._Ctx`) and writes it as a PNG.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from privrec.experiments.pareto import COMBINED, pareto_front
from privrec.experiments.report_tables import (
    DATASET_LABELS,
    _Ctx,
    _num,
    _strength_label,
    config_table,
)


def plot_tradeoff(ctx: _Ctx, path: Path) -> Path | None:
    """HR@k vs leakage per attribute (and combined), Pareto front highlighted, diverged marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not ctx.attributes:
        return None
    conf = config_table(ctx)
    conf = conf[conf["n_ok"] > 0] if not conf.empty else conf
    targets = list(ctx.attributes) + ([COMBINED] if len(ctx.attributes) > 1 else [])
    fig, axes = plt.subplots(
        1, len(targets), figsize=(5.2 * len(targets), 4.4), squeeze=False, constrained_layout=True
    )
    sizes = sorted(set(_num(ctx.df, "embedding_size").dropna().astype(int)))
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, max(1, len(sizes))))
    methods = list(dict.fromkeys(conf["method"].map(str))) if "method" in conf else [""]
    markers = ["o", "s", "^", "D", "v", "P", "*"]
    diverged = ctx.df[ctx.df["status"].isin(["diverged", "leaky"])]
    for ax, target in zip(axes[0], targets, strict=True):
        if target == COMBINED:
            xcol, xlabel, chance = (
                "leak_combined",
                "leakage, max over attributes (normalised AUC)",
                0.0,
            )
            scale = 1.0
        else:
            xcol, xlabel, chance = (
                f"{target}_max_roc_auc",
                f"{target}: strongest attacker ROC-AUC",
                0.5,
            )
            scale = 1.0
        for si, size in enumerate(sizes):
            for mi, method in enumerate(methods):
                sel = conf[_num(conf, "embedding_size") == size]
                if "method" in conf:
                    sel = sel[sel["method"].map(str) == method]
                if sel.empty:
                    continue
                x = _num(sel, xcol) * scale
                y = _num(sel, ctx.hr) * 100
                label: str | None = f"size {size}" + (f", {method}" if len(methods) > 1 else "")
                ax.errorbar(
                    x,
                    y,
                    xerr=_num(sel, f"{xcol}_std").fillna(0),
                    yerr=_num(sel, f"{ctx.hr}_std").fillna(0) * 100,
                    fmt=markers[mi % len(markers)],
                    color=colours[si],
                    ms=6,
                    capsize=2,
                    lw=0.8,
                    label=label,
                    alpha=0.9,
                )
                for (_, r), xi, yi in zip(sel.iterrows(), x, y, strict=True):
                    if not (math.isnan(xi) or math.isnan(yi)):
                        ax.annotate(
                            _strength_label(r).strip(),
                            (xi, yi),
                            textcoords="offset points",
                            xytext=(4, 3),
                            fontsize=7,
                            color="0.3",
                        )
        front = pareto_front(conf, target, objective=ctx.val_hr) if not conf.empty else conf
        if not front.empty:
            fx = _num(front, xcol) * scale
            fy = _num(front, ctx.hr) * 100
            order = np.argsort(fx.to_numpy())
            ax.plot(
                fx.to_numpy()[order],
                fy.to_numpy()[order],
                "-",
                color="crimson",
                lw=1.5,
                alpha=0.7,
                zorder=1,
            )
            ax.scatter(
                fx,
                fy,
                s=160,
                facecolors="none",
                edgecolors="crimson",
                linewidths=1.8,
                zorder=3,
                label="Pareto front (selected on validation)",
            )
        ax.axvline(chance, color="0.6", ls="--", lw=0.8)
        if not diverged.empty:
            labels = diverged.apply(
                lambda r: f"e{int(r['embedding_size'])}{_strength_label(r)}", axis=1
            )
            kinds = "/".join(sorted(set(diverged["status"].astype(str)))) or "diverged"
            # each marker carries its configuration; the legend only counts them
            label = f"{kinds} (excluded): {len(labels)} run(s)"
            # a reversed run has HR and leakage: show it where it is; others at the bottom edge
            dx = _num(diverged, xcol) * scale if xcol in diverged else None
            dy = _num(diverged, ctx.hr) * 100 if ctx.hr in diverged else None
            placed = (dx.notna() & dy.notna()) if dx is not None and dy is not None else None
            if dx is not None and dy is not None and placed is not None and placed.any():
                ax.scatter(
                    dx[placed], dy[placed], marker="x", s=80, color="red", zorder=4, label=label
                )
                for xv, yv, lab in zip(dx[placed], dy[placed], labels[placed], strict=True):
                    ax.annotate(
                        lab,
                        (xv, yv),
                        xytext=(3, -9),
                        textcoords="offset points",
                        fontsize=7,
                        color="red",
                    )
                label = None
            n_floor = len(diverged) if placed is None else int((~placed).sum())
            if n_floor:
                ax.scatter(  # at the bottom edge: a diverged run without HR or leakage
                    [chance] * n_floor,
                    [0.03] * n_floor,
                    transform=ax.get_xaxis_transform(),
                    marker="x",
                    s=80,
                    color="red",
                    zorder=4,
                    label=label,
                )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"test HR@{ctx.k} (%)")
        ax.set_title(target if target != COMBINED else "all attributes")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(
        f"{DATASET_LABELS.get(ctx.dataset, ctx.dataset)}: recommendation accuracy vs leakage",
        fontsize=11,
    )
    import io

    from privrec.artifacts import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
