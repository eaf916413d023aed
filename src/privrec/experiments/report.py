"""``privrec report``: the paper's tables, the trade-off figure and the Pareto front of a sweep.

Reads a sweep directory (``sweep.json`` + ``results.json``, written by
:func:`~privrec.experiments.sweep_runner.run_sweep`) and writes ``report.md``, ``tradeoff.png`` and a
self-contained ``report.html`` (tables as HTML, the figure embedded as base64).

Tables follow the paper's layout (Tables 1–4), with our mean ± std over seeds next to the paper's
figures (MovieLens 1M only):

* Table 1: the attacker suite's accuracy on one purged model (size 10, λ = 0.1, or the closest);
* Table 2/3: gender/age accuracy of the paper's attacker (its softmax readout = our
  ``logistic``) by embedding size × λ; then the strongest attacker's accuracy, balanced accuracy
  and ROC-AUC by size × λ;
* Table 4: accuracy@10 (test HR@10, %) by size × λ;
* the Pareto front (selected on validation HR@10, reported with test metrics).

Diverged runs are counted and listed, never averaged into a result.

This module is the public entry point: it assembles the :class:`Report` and renders it (markdown,
HTML, Rich). The tables and the sweep's context are built in
:mod:`privrec.experiments.report_tables`, the figure is drawn by
:mod:`privrec.experiments.report_figure`.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from privrec.experiments.report_figure import plot_tradeoff
from privrec.experiments.report_tables import (
    DATASET_LABELS,
    ReportTable,
    _Ctx,
    _diverged_table,
    _num,
    _pareto_tables,
    _size_lambda_tables,
    _table1,
    _timing_table,
    load_sweep,
)

__all__ = ["Report", "ReportTable", "build_report", "print_report", "write_report"]


# --- the report --------------------------------------------------------------------------------


@dataclass
class Report:
    """Everything the report shows; :func:`write_report` renders it to files."""

    title: str
    dataset: str
    summary: list[str]
    tables: list[ReportTable] = field(default_factory=list)
    figure: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def table(self, key: str) -> ReportTable:
        for t in self.tables:
            if t.key == key:
                return t
        raise KeyError(key)


def build_report(sweep_dir: str | Path) -> Report:
    """Compute every table of the report (no files written)."""
    return _build(_Ctx(*load_sweep(sweep_dir)))


def _audited_users(run: dict, grid: dict, series: list) -> str:
    """Which users the sweep's audits score: all of them, or those whose labels the defences
    did not see (``label_fraction`` < 1, in the base run, the grid or a series)."""
    fractions = {float(run.get("label_fraction", 1.0))}
    fractions |= {float(f) for f in grid.get("label_fraction", ())}
    for entry in series:
        if "label_fraction" in (entry.get("set") or {}):
            fractions.add(float(entry["set"]["label_fraction"]))
        fractions |= {float(f) for f in (entry.get("grid") or {}).get("label_fraction", ())}
    if fractions == {1.0}:
        return "all users"
    shown = "/".join(f"{f:g}" for f in sorted(fractions))
    return (
        "the users whose labels the defences did not see (label_fraction "
        f"{shown}; all users where it is 1)"
        if 1.0 in fractions
        else f"the users whose labels the defences did not see (label_fraction {shown})"
    )


def _build(ctx: _Ctx) -> Report:
    meta = ctx.meta
    label = DATASET_LABELS.get(ctx.dataset, ctx.dataset)
    counts = ctx.df["status"].value_counts().to_dict()
    seeds = sorted(set(_num(ctx.df, "seed").dropna().astype(int)))
    run = meta.get("spec", {}).get("run", {})
    train = run.get("train", {})
    summary = [
        f"Dataset: {label}. {len(ctx.df)} runs: {counts.get('ok', 0)} ok, "
        f"{counts.get('leaky', 0)} leaky, {counts.get('diverged', 0)} diverged, "
        f"{counts.get('error', 0)} failed. "
        f"Seeds: {', '.join(map(str, seeds)) or '–'}.",
        f"Training: {train.get('model', 'bpr-mf')}, epochs ≤ {train.get('epochs')}, "
        f"patience {train.get('patience')}, batch {train.get('batch_size')}, "
        f"lr {train.get('learning_rate')}, reg {train.get('reg')}, "
        f"adversary head {run.get('adversary', {}).get('head', 'linear')}. "
        f"Audit: attackers '{_attackers(ctx.df)}', {run.get('folds', 5)}-fold CV over "
        f"{_audited_users(run, ctx.grid, meta.get('spec', {}).get('series') or [])} "
        "(label-based, no test items involved).",
        "Cells are mean ± std over the seeds that finished; † marks cells where some seeds "
        "diverged or were leaky (those seeds are excluded); such runs are never reported as "
        "results.",
    ]
    if ctx.paper:
        summary.append(
            "Paper figures are from the paper's Tables 1–4 (MovieLens 1M, BPR, k = 10); its "
            "Tables 2–3 use its softmax readout, which we reproduce with multinomial logistic "
            "regression ('logistic')."
        )
    rep = Report(
        title=f"privrec sweep report — {label}",
        dataset=ctx.dataset,
        summary=summary,
    )
    if ctx.attributes:
        t1 = _table1(ctx)
        if t1:
            rep.tables += t1
    for sub, rows in ctx.groups():
        rep.tables += _size_lambda_tables(ctx, rows, sub)
    if ctx.attributes:
        rep.tables += _pareto_tables(ctx)
    rep.tables += _frontier_tables(ctx)
    rep.tables.append(_diverged_table(ctx))
    rep.tables.append(_timing_table(ctx))
    return rep


def _frontier_tables(ctx: _Ctx) -> list[ReportTable]:
    """For a sweep with series (:mod:`privrec.experiments.frontier`): the best point per
    method and every point."""
    from privrec.experiments.frontier import (
        MIN_SHARE,
        best_points,
        frontier_points,
        seed_summary,
    )

    points = frontier_points(ctx.df, ctx.records, ctx.k, _series_knobs(ctx))
    if points.empty:
        return []
    attrs = [a for a in ctx.attributes if f"{a}_value" in points.columns]
    cols = ["series", "setting", "size", "seed", f"test HR@{ctx.k} %", "% of plain"]
    listed = [a for a in attrs if f"{a}_list_value" in points.columns]
    for a in attrs:
        cols.append(f"{a} ({_metric_label(points, a)}, 95% CI)")
    cols += [f"{a} from the served lists" for a in listed]

    def cells(p: pd.Series) -> list[str]:
        row = [
            str(p["series"]),
            str(p["knob"]) or "–",
            str(int(p["embedding_size"])),
            str(int(p["seed"])),
            f"{100 * p['hr']:.2f}",
            "–" if pd.isna(p["hr_share"]) else f"{p['hr_share']:.1f}",
        ]
        for a in attrs:
            row.append(_leak_cell(p, a))
        for a in listed:
            row.append(_leak_cell(p, f"{a}_list"))
        return row

    several = points["seed"].nunique() > 1
    summary = seed_summary(points, attrs)
    seed_cols = ["series", "setting", "size", "seeds", f"test HR@{ctx.k} %", "% of plain"]
    seed_cols += [f"{a} ({_metric_label(points, a)}: mean ± sd [min–max])" for a in attrs]

    def seed_cells(p: pd.Series) -> list[str]:
        share = "–" if pd.isna(p["hr_share"]) else f"{p['hr_share']:.1f}"
        if not pd.isna(p["hr_share_sd"]):
            share += f" ± {p['hr_share_sd']:.1f}"
        return [
            str(p["series"]),
            str(p["knob"]) or "–",
            str(int(p["embedding_size"])),
            str(int(p["seeds"])),
            f"{100 * p['hr']:.2f}",
            share,
            *(_spread_cell(p, a) for a in attrs),
        ]

    best = best_points(summary if several else points, attrs, MIN_SHARE)
    best_rows = []
    for _, p in best.iterrows():
        row = seed_cells(p) if several else cells(p)
        if not p["kept"]:
            row[1] += f" (none keeps {MIN_SHARE:g} %: most accurate shown)"
        best_rows.append(row)
    note = (
        f"Per method and size, the point with the least leakage (largest normalised leakage "
        f"over the attributes) among those keeping ≥ {MIN_SHARE:g} % of plain test HR@{ctx.k} "
        "(plain: the series 'plain', same size and seed). Leakage: strongest attacker, "
        "ROC-AUC for binary attributes, balanced accuracy otherwise"
        + (
            "; with several seeds each setting is judged on its means over seeds (spread: "
            "standard deviation and range over seeds)."
            if several
            else ", with its 95 % bootstrap interval over users; ‡ = not distinguishable from "
            "chance at 95 % (permutation test corrected for the maximum over attackers)."
        )
    )
    by_seed = (
        [
            ReportTable(
                "Frontier — mean over seeds",
                seed_cols,
                [seed_cells(p) for _, p in summary.iterrows()],
                "Each setting's test HR@k (% of plain of the same seed) and strongest-attacker "
                "leakage over its seeds: mean ± standard deviation, [min–max].",
                key="frontier_seeds",
            )
        ]
        if several
        else []
    )
    return [
        ReportTable(
            "Frontier — best point per method",
            seed_cols if several else cols,
            best_rows,
            note,
            key="frontier_best",
        ),
        *by_seed,
        ReportTable(
            "Frontier — every point",
            cols,
            [cells(p) for _, p in points.iterrows()],
            "Every finished run of the series (leaky, diverged and failed runs are listed "
            "below, never here).",
            key="frontier_points",
        ),
    ]


def _series_knobs(ctx: _Ctx) -> dict[str, list[str]] | None:
    from privrec.experiments.frontier import series_knobs

    return series_knobs(ctx.meta)


def _metric_label(points: pd.DataFrame, attribute: str) -> str:
    metric = points[f"{attribute}_metric"].dropna()
    return "ROC-AUC" if metric.empty or metric.iloc[0] == "roc_auc" else "balanced acc."


def _leak_format(p: pd.Series, attribute: str):
    """Balanced accuracy as a percentage, ROC-AUC with three decimals."""
    if p.get(f"{attribute}_metric") == "balanced_accuracy":
        return lambda x: f"{100 * x:.1f}%"
    return lambda x: f"{x:.3f}"


def _spread_cell(p: pd.Series, attribute: str) -> str:
    """Mean ± sd [min–max] over seeds of one attribute's leakage (:func:`seed_summary`)."""
    v = p.get(f"{attribute}_value")
    if v is None or pd.isna(v):
        return "–"
    fmt = _leak_format(p, attribute)
    cell = fmt(v)
    sd = p.get(f"{attribute}_sd")
    if sd is not None and not pd.isna(sd):
        cell += f" ± {fmt(sd)} [{fmt(p[f'{attribute}_min'])}–{fmt(p[f'{attribute}_max'])}]"
    return cell


def _leak_cell(p: pd.Series, attribute: str) -> str:
    v = p.get(f"{attribute}_value")
    if v is None or pd.isna(v):
        return "–"
    lo, hi = p.get(f"{attribute}_low"), p.get(f"{attribute}_high")
    fmt = _leak_format(p, attribute)
    cell = fmt(v)
    if lo is not None and hi is not None and not (pd.isna(lo) or pd.isna(hi)):
        cell += f" [{fmt(lo)}–{fmt(hi)}]"
    pf = p.get(f"{attribute}_p_family")
    if pf is not None and not pd.isna(pf) and pf >= 0.05:
        cell += " ‡"
    return cell


def _attackers(df: pd.DataFrame) -> str:
    if "attackers" not in df.columns:
        return "?"
    return ", ".join(sorted(set(df["attackers"].dropna().map(str))))


# --- writing -----------------------------------------------------------------------------------


def write_report(sweep_dir: str | Path, out: str | Path | None = None) -> Report:
    """Write ``report.md``, ``tradeoff.png`` and ``report.html`` (into ``out``, default the
    sweep directory) and return the :class:`Report`.

    All or nothing: the sweep directory is read first (a :class:`~privrec.errors.DataError`
    if it is not one, before anything is created), ``out`` is checked to be writable, every
    file is built in memory, and only then are the files written, together (each to a
    temporary file, all renamed into place at the end)."""
    import tempfile

    from privrec.artifacts import atomic_write_files, check_writable

    sweep_dir = Path(sweep_dir)
    out = Path(out) if out is not None else sweep_dir
    ctx = _Ctx(*load_sweep(sweep_dir))
    check_writable(out / "report.md")
    rep = _build(ctx)
    png = out / "tradeoff.png"
    figure: bytes | None = None
    front_png = out / "frontier.png"
    front: bytes | None = None
    with tempfile.TemporaryDirectory(prefix="privrec-report-") as scratch:
        drawn = plot_tradeoff(ctx, Path(scratch) / png.name)
        if drawn is not None:
            figure = drawn.read_bytes()
        drawn = _plot_frontier(ctx, Path(scratch) / front_png.name)
        if drawn is not None:
            front = drawn.read_bytes()
    if figure is not None:
        rep.figure = png
    md = [f"# {rep.title}", "", *[f"{s}" for s in rep.summary], ""]
    if figure is not None:
        md += [f"![accuracy vs leakage]({png.name})", ""]
    if front is not None:
        md += [f"![frontier of every method]({front_png.name})", ""]
    md += [t.to_markdown() for t in rep.tables]
    files = {
        out / "report.md": "\n".join(md).encode("utf-8"),
        out / "report.html": _html(rep, figure, front).encode("utf-8"),
    }
    if figure is not None:
        files[png] = figure
    if front is not None:
        files[front_png] = front
    atomic_write_files(files)
    rep.files = {"markdown": out / "report.md", "html": out / "report.html"}
    if figure is not None:
        rep.files["figure"] = png
    if front is not None:
        rep.files["frontier"] = front_png
    return rep


def _plot_frontier(ctx: _Ctx, path: Path) -> Path | None:
    from privrec.experiments.frontier import frontier_points, paper_points, plot_frontier

    points = frontier_points(ctx.df, ctx.records, ctx.k, _series_knobs(ctx))
    if points.empty:
        return None
    sizes = points["embedding_size"].unique()
    model = ctx.meta.get("spec", {}).get("run", {}).get("train", {}).get("model", "bpr-mf")
    # the paper's points only where they compare: its dataset, its model, one of its sizes
    bpr = model == "bpr-mf" and len(sizes) == 1
    paper = paper_points(int(sizes[0])) if ctx.paper and bpr else None
    return plot_frontier(points, ctx.attributes, path, paper)


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3} .note{font-size:12px;color:#555;margin-top:-1em}
img{max-width:100%}
"""


def _html(rep: Report, figure: bytes | None = None, frontier: bytes | None = None) -> str:
    """The self-contained HTML page; ``figure`` is the PNG to embed (default: ``rep.figure``
    read from disk, when it exists), ``frontier`` the frontier figure of a sweep with series."""
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(rep.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(rep.title)}</h1>",
    ]
    parts += [f"<p>{html.escape(s)}</p>" for s in rep.summary]
    if figure is None and rep.figure is not None and rep.figure.exists():
        figure = rep.figure.read_bytes()
    if figure is not None:
        data = base64.b64encode(figure).decode("ascii")
        parts.append(f"<img alt='accuracy vs leakage' src='data:image/png;base64,{data}'>")
    if frontier is not None:
        data = base64.b64encode(frontier).decode("ascii")
        parts.append(f"<img alt='frontier of every method' src='data:image/png;base64,{data}'>")
    parts += [t.to_html() for t in rep.tables]
    parts.append("</body></html>")
    return "\n".join(parts)


def print_report(rep: Report, console=None, keys: Sequence[str] | None = None) -> None:
    """Print the report's tables (or those whose key starts with one of ``keys``) with Rich."""
    from rich.console import Console

    console = console or Console()
    console.print(f"[bold]{rep.title}[/bold]")
    for s in rep.summary[:1]:
        console.print(s, highlight=False)
    for t in rep.tables:
        if keys is None or any(t.key.startswith(k) for k in keys):
            console.print(t.to_rich())
