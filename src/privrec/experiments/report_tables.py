"""The tables of ``privrec report``: the sweep's context, the paper's figures and Tables 1–4.

:class:`_Ctx` derives what every table needs from a sweep directory (``sweep.json`` +
``results.json``, read by :func:`load_sweep`); the builders here return :class:`ReportTable`
objects, which :mod:`privrec.experiments.report` assembles, renders and writes:

* Table 1: the attacker suite's accuracy on one purged model (size 10, λ = 0.1, or the closest);
* Table 2/3: gender/age accuracy of the paper's attacker (its softmax readout = our
  ``logistic``) by embedding size × λ; then the strongest attacker's accuracy, balanced accuracy
  and ROC-AUC by size × λ;
* Table 4: accuracy@10 (test HR@10, %) by size × λ;
* the Pareto front (selected on validation HR@10, reported with test metrics);
* the diverged and failed runs, and the compute time.

The paper's published figures (MovieLens 1M only) live here, next to the tables that quote them.
Diverged runs are counted and listed, never averaged into a result.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from privrec.defence_names import PENALTY_FAMILIES
from privrec.errors import DataError
from privrec.experiments.pareto import COMBINED, add_leakage, aggregate_seeds, pareto_front
from privrec.experiments.sweep_results import leakage_attributes

# --- the paper's figures ("Privacy-Adversarial User Representations in Recommender Systems", §4)

PAPER_LAMBDAS: tuple[float, ...] = (0.0, 0.01, 0.1, 1.0, 10.0)
PAPER_SIZE_LAMBDA: dict[str, dict[int, tuple[float, ...]]] = {
    "gender": {
        10: (76.97, 74.21, 71.33, 71.70, 71.60),
        20: (77.55, 74.26, 71.50, 72.30, 71.03),
        50: (77.80, 74.34, 72.24, 86.00, 74.26),
    },
    "age": {
        10: (41.29, 36.28, 34.29, 34.47, 34.31),
        20: (44.16, 36.34, 33.97, 35.70, 38.01),
        50: (44.90, 36.46, 34.62, 70.27, 52.70),
    },
    "hr": {
        10: (3.05, 2.76, 2.88, 2.43, 2.67),
        20: (3.00, 2.68, 2.04, 2.20, 2.07),
        50: (2.65, 2.38, 2.22, 2.22, 2.15),
    },
}
PAPER_MAJORITY: dict[str, float] = {"gender": 71.70, "age": 34.70}
#: Table 1 of the paper (accuracy %, gender and age) keyed by our attacker names.
PAPER_TABLE1: dict[str, tuple[float, float]] = {
    "majority": (71.70, 34.70),
    "logistic": (71.70, 34.47),
    "linear_svm_c0.1": (71.71, 34.62),
    "linear_svm_c1": (71.71, 34.59),
    "linear_svm_c10": (71.71, 34.59),
    "rbf_svm": (71.71, 29.20),
    "decision_tree": (64.00, 25.44),
    "random_forest": (69.80, 29.20),
    "gradient_boosting": (71.79, 33.48),
}
ATTACKER_LABELS: dict[str, str] = {
    "majority": "large class baseline",
    "logistic": "softmax readout (logistic)",
    "linear_svm_c0.1": "SVM (linear; C=.1)",
    "linear_svm_c1": "SVM (linear; C=1)",
    "linear_svm_c10": "SVM (linear; C=10)",
    "rbf_svm": "SVM (RBF kernel)",
    "decision_tree": "Decision Tree",
    "random_forest": "Random Forest",
    "gradient_boosting": "Gradient Boosting",
}
PAPER_ATTACKER = "logistic"
"""The paper's Tables 2–3 use its softmax readout; ours is multinomial logistic regression."""
DATASET_LABELS: dict[str, str] = {
    "ml-1m": "ML-1M (reconstructed ratings.dat)",
    "ml-100k": "ML-100K",
    "synthetic": "synthetic (planted attribute)",
}
_SIZE_KEYS = ("embedding_size", "size", "train.embedding_size")


# --- tables ------------------------------------------------------------------------------------


@dataclass
class ReportTable:
    """A rendered table: header, rows of strings, an optional note."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    note: str = ""
    key: str = ""

    def to_markdown(self) -> str:
        def esc(s: str) -> str:
            return str(s).replace("|", "\\|")

        lines = [f"### {self.title}", ""]
        lines.append("| " + " | ".join(esc(c) for c in self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        for r in self.rows:
            lines.append("| " + " | ".join(esc(c) for c in r) + " |")
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(str(c))}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
            for r in self.rows
        )
        note = f"<p class='note'>{html.escape(self.note)}</p>" if self.note else ""
        return (
            f"<h3>{html.escape(self.title)}</h3>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"
        )

    def to_rich(self):
        from rich.table import Table

        t = Table(title=self.title, title_justify="left")
        for i, c in enumerate(self.columns):
            t.add_column(str(c), justify="left" if i == 0 else "right")
        for r in self.rows:
            t.add_row(*[str(c) for c in r])
        if self.note:
            t.caption = self.note
            t.caption_justify = "left"
        return t


# --- loading -----------------------------------------------------------------------------------


def load_sweep(sweep_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """``(sweep.json content, wide results table, long results records)`` of a sweep
    directory. A sweep written before the long table existed gets it rebuilt from its run
    directories."""
    from privrec.artifacts import read_json
    from privrec.experiments.sweep_results import load_records, load_results

    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / "sweep.json").exists():
        raise DataError(f"{sweep_dir}: no sweep.json (is this a sweep directory?)")
    meta = read_json(sweep_dir / "sweep.json")
    results = load_results(sweep_dir)
    records = load_records(sweep_dir)
    if records.empty and not (sweep_dir / "results_long.json").exists():
        records = _rebuilt_records(sweep_dir, meta, records)
    return meta, results, records


def _rebuilt_records(sweep_dir: Path, meta: dict, empty: pd.DataFrame) -> pd.DataFrame:
    from privrec.experiments.sweep_runner import stored_results

    rows: list[dict] = []
    for point in meta.get("points", []):
        run_dir = sweep_dir / "runs" / str(point.get("run_id"))
        if (run_dir / "summary.json").is_file():
            rows += stored_results(run_dir)["records"]
    return pd.DataFrame(rows, columns=empty.columns) if rows else empty


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    return pd.to_numeric(df[col], errors="coerce")


def _fmt_pct(mean: float, std: float | None = None, n: int = 1, digits: int = 2) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    s = f"{100 * mean:.{digits}f}"
    if n > 1 and std is not None and not math.isnan(std):
        s += f" ± {100 * std:.{digits}f}"
    return s


def _fmt_num(mean: float, std: float | None = None, n: int = 1, digits: int = 3) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    s = f"{mean:.{digits}f}"
    if n > 1 and std is not None and not math.isnan(std):
        s += f" ± {std:.{digits}f}"
    return s


def _strength_label(row) -> str:
    """`` λ=0.1`` (or `` mmd=1``), empty for runs without a tunable defence."""
    knob = row.get("knob", "λ") if hasattr(row, "get") else "λ"
    if not knob or (isinstance(row["lam"], float) and math.isnan(row["lam"])):
        return ""
    return f" {knob}={_lam_label(row['lam'])}"


def _main_knob(rows: pd.DataFrame) -> str:
    knobs = [k for k in rows.get("knob", pd.Series(dtype=str)) if k]
    return max(set(knobs), key=knobs.count) if knobs else "λ"


def _lam_label(v) -> str:
    try:
        return f"{float(v):g}"
    except (TypeError, ValueError):
        return str(v)


# --- the context -------------------------------------------------------------------------------


class _Ctx:
    """Derived facts about a sweep used by every table."""

    def __init__(self, meta: dict, results: pd.DataFrame, records: pd.DataFrame) -> None:
        spec = meta.get("spec", {})
        run = spec.get("run", {})
        self.meta = meta
        self.dataset = run.get("dataset", str(results.get("dataset", pd.Series([""])).iloc[0]))
        self.k = int(run.get("train", {}).get("k", 10))
        self.grid = {k: list(v) for k, v in (spec.get("grid") or {}).items()}
        self.df = results.copy()
        if "status" not in self.df.columns:
            self.df["status"] = "error"
        if "embedding_size" not in self.df.columns:
            self.df["embedding_size"] = run.get("train", {}).get("embedding_size")
        self.records = records
        self.attributes = [
            a for a in leakage_attributes(records) if f"{a}_max_roc_auc" in self.df.columns
        ]
        self.df["lam"], self.df["knob"] = self._strength()
        has_lambda = any(k == "lambda" or k.startswith("lambda.") for k in self.grid)
        strength_keys = ("lambda",) if has_lambda else ("lambda", *PENALTY_FAMILIES)
        self.extras = [
            k
            for k in self.grid
            if k not in (*_SIZE_KEYS, "seed")
            and k.split(".")[0] not in strength_keys
            and len(self.grid[k]) > 1
            and k in self.df.columns
        ]
        if "method" in self.df.columns and self.df["method"].nunique() > 1:
            # the method label already names the erasure method
            self.extras = ["method", *[e for e in self.extras if e not in ("method", "erasure")]]
        self.paper = self.dataset == "ml-1m"
        self.hr = f"test_hr@{self.k}"
        self.val_hr = f"val_hr@{self.k}"
        self.ndcg = f"test_ndcg@{self.k}"
        if self.attributes and (self.df["status"] == "ok").any():
            self.df = add_leakage(self.df, self.attributes)
        self.config_keys = ["embedding_size", "lam", "knob", *self.extras]

    def _strength(self) -> tuple[pd.Series, pd.Series]:
        """Per run, the defence's strength and its symbol: λ of the adversary, else the MMD,
        HSIC or SWD weight (one number when shared by the attributes, else ``attr=w/...``)."""
        df = self.df
        values: list = []
        knobs: list[str] = []
        for _, row in df.iterrows():
            value: float | str = np.nan
            knob = ""
            shared = pd.to_numeric(row.get("lambda", np.nan), errors="coerce")
            for sym, fam in (("λ", "lambda"), *((f, f) for f in PENALTY_FAMILIES)):
                if fam == "lambda" and pd.notna(shared):
                    value, knob = float(shared), sym
                    break
                per = _weights(row, fam, df.columns)
                if not per:
                    continue
                nums = {float(v) for v in per.values()}
                value = (
                    nums.pop()
                    if len(nums) == 1
                    else "/".join(f"{a}={float(v):g}" for a, v in per.items())
                )
                knob = sym
                break
            values.append(value)
            knobs.append(knob)
        lam = pd.Series(values, index=df.index, dtype=object)
        numeric = pd.to_numeric(lam, errors="coerce")
        if numeric.notna().sum() == lam.notna().sum():
            lam = numeric
        return lam, pd.Series(knobs, index=df.index)

    def groups(self) -> list[tuple[str, pd.DataFrame]]:
        """(subtitle, rows) per combination of the extra grid keys."""
        if not self.extras:
            return [("", self.df)]
        out = []
        keys = self.df[self.extras].map(str)
        by = self.extras if len(self.extras) > 1 else self.extras[0]  # scalar keys for one
        for combo, idx in keys.groupby(by, sort=False).groups.items():
            combo = combo if isinstance(combo, tuple) else (combo,)
            label = ", ".join(f"{k}={v}" for k, v in zip(self.extras, combo, strict=True))
            out.append((label, self.df.loc[idx]))
        return out


# --- Table 1 -------------------------------------------------------------------------------


def _closest_config(ctx: _Ctx, rows: pd.DataFrame) -> pd.DataFrame:
    ok = rows[rows["status"] == "ok"]
    if ok.empty:
        return ok
    lam = pd.to_numeric(ok["lam"], errors="coerce")
    purged = ok[lam > 0]
    if not purged.empty:
        ok, lam = purged, lam[lam > 0]
    size = _num(ok, "embedding_size")
    d_size = np.abs(np.log(size.clip(lower=1) / 10.0)).fillna(np.inf)
    d_lam = np.abs(np.log10((lam.fillna(0) + 1e-3) / (0.1 + 1e-3)))
    score = list(zip(d_size, d_lam, strict=True))
    best = min(score)
    pick = [s == best for s in score]
    chosen = ok[pick]
    if ctx.extras:  # one configuration: the first combination of the extra keys
        first = chosen[ctx.extras].map(str).iloc[0]
        chosen = chosen[(chosen[ctx.extras].map(str) == first).all(axis=1)]
    return chosen


def _weights(row: pd.Series, family: str, columns: pd.Index) -> dict:
    """A run's defence weights of ``family`` (``lambda``, ``mmd``, ``hsic``, ``swd``) by attribute,
    from its ``weights`` record; results of privrec 0.1 have only ``<family>_<attr>``
    columns, read as such."""
    record = row.get("weights")
    if isinstance(record, dict):
        return {a: w for a, w in (record.get(family) or {}).items() if w == w}
    return {
        c[len(family) + 1 :]: row[c]
        for c in columns
        if c.startswith(f"{family}_") and pd.notna(pd.to_numeric(row[c], errors="coerce"))
    }


def _attackers_in(ctx: _Ctx, df: pd.DataFrame, attribute: str) -> list[str]:
    """The attackers with an accuracy for ``attribute`` in the runs ``df`` (from the long
    records), in the paper's Table 1 order."""
    rec = ctx.records
    rec = rec[
        (rec["stage"] == "final")
        & (rec["attribute"] == attribute)
        & (rec["metric"] == "accuracy")
        & rec["run_id"].isin(df["run_id"])
        & pd.to_numeric(rec["value"], errors="coerce").notna()
    ]
    names = list(dict.fromkeys(a for a in rec["attacker"] if a))
    order = list(PAPER_TABLE1)
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


def _table1(ctx: _Ctx) -> list[ReportTable]:
    paper_rows = ctx.df
    if "method" in ctx.df.columns:
        adv = ctx.df[ctx.df["method"].map(str).isin(["adversarial", "plain"])]
        if not adv.empty:
            paper_rows = adv
    chosen = _closest_config(ctx, paper_rows)
    if chosen.empty:
        return []
    size = int(_num(chosen, "embedding_size").iloc[0])
    attackers: list[str] = []
    for a in ctx.attributes:
        attackers += [n for n in _attackers_in(ctx, chosen, a) if n not in attackers]
    n = len(chosen)
    strength = _strength_label(chosen.iloc[0]).strip().replace("=", " = ")
    where = ", ".join(x for x in (f"size {size}", strength, f"{n} seed(s)") if x)
    tables = []
    for metric, short, label in (
        ("accuracy", "acc", "accuracy (%)"),
        ("balanced_accuracy", "bacc", "balanced accuracy (%)"),
        ("roc_auc", "auc", "ROC-AUC (%)"),
    ):
        cols = ["classifier"]
        for a in ctx.attributes:
            cols.append(f"{a} (ours)")
            if ctx.paper and metric == "accuracy" and a in PAPER_MAJORITY:
                cols.append(f"{a} (paper)")
        rows = []
        base_row = [ATTACKER_LABELS["majority"]]
        for a in ctx.attributes:
            if metric == "accuracy":
                m = _num(chosen, f"{a}_majority")
                base_row.append(_fmt_pct(m.mean(), m.std(), n))
            elif metric == "balanced_accuracy":
                base_row.append("chance")
            else:
                base_row.append("50.00")
            if ctx.paper and metric == "accuracy" and a in PAPER_MAJORITY:
                base_row.append(f"{PAPER_TABLE1['majority'][_paper_idx(a)]:.2f}")
        rows.append(base_row)
        for att in attackers:
            r = [ATTACKER_LABELS.get(att, att)]
            for a in ctx.attributes:
                v = _num(chosen, f"{a}_{short}_{att}")
                r.append(_fmt_pct(v.mean(), v.std(), int(v.notna().sum())))
                if ctx.paper and metric == "accuracy" and a in PAPER_MAJORITY:
                    p = PAPER_TABLE1.get(att)
                    r.append(f"{p[_paper_idx(a)]:.2f}" if p else "–")
            rows.append(r)
        sub = {"accuracy": "", "balanced_accuracy": "b", "roc_auc": "c"}[metric]
        title = (
            f"Table 1 — attacker suite {label} on one purged model ({where})"
            if metric == "accuracy"
            else f"Table 1{sub} — attacker suite, {label} ({where})"
        )
        note = ""
        if metric == "accuracy":
            note = (
                "The paper's Table 1 model size was lost in the text extraction; it is compared "
                "with size 10, λ = 0.1 here."
                if ctx.paper
                else ""
            )
            if len(attackers) <= 1:
                note += (
                    " Only one attacker was run on this model; run the sweep with "
                    "--attackers paper for the full suite."
                )
        tables.append(ReportTable(title, cols, rows, note.strip(), key=f"table1_{metric}"))
    return tables


def _paper_idx(attribute: str) -> int:
    return 0 if attribute == "gender" else 1


# --- Tables 2–4 ------------------------------------------------------------------------------


def _size_lambda_tables(ctx: _Ctx, rows: pd.DataFrame, sub: str) -> list[ReportTable]:
    sizes = sorted(set(_num(rows, "embedding_size").dropna().astype(int)))
    lam_num = pd.to_numeric(rows["lam"], errors="coerce")
    if lam_num.notna().all():
        lams: list = sorted(set(lam_num))
        lam_key = lam_num
    else:
        lams = list(dict.fromkeys(rows["lam"].map(str)))
        lam_key = rows["lam"].map(str)
    suffix = f" [{sub}]" if sub else ""
    specs: list[tuple[str, str, str, str | None, bool]] = []
    # (key, title, column, paper key, percent)
    number = _table_numbers(ctx)
    for a in ctx.attributes:
        tname = f"Table {number[a]}"
        paper_col = f"{a}_acc_{PAPER_ATTACKER}"
        if paper_col in rows.columns and _num(rows, paper_col).notna().any():
            specs.append(
                (
                    f"{a}_acc_paper_attacker",
                    f"{tname} — {a} prediction accuracy (%), softmax readout (logistic)",
                    paper_col,
                    a if ctx.paper and a in PAPER_SIZE_LAMBDA else None,
                    True,
                )
            )
        specs.append(
            (
                f"{a}_max_accuracy",
                f"{tname}b — {a} accuracy (%), strongest attacker",
                f"{a}_max_accuracy",
                None,
                True,
            )
        )
        specs.append(
            (
                f"{a}_max_balanced_accuracy",
                f"{tname}c — {a} balanced accuracy (%), strongest attacker",
                f"{a}_max_balanced_accuracy",
                None,
                True,
            )
        )
        specs.append(
            (
                f"{a}_max_roc_auc",
                f"{tname}d — {a} ROC-AUC (%), strongest attacker",
                f"{a}_max_roc_auc",
                None,
                True,
            )
        )
    t4 = f"Table {number['hr']}"
    specs.append(
        (
            "hr",
            f"{t4} — accuracy@{ctx.k} (test HR@{ctx.k}, %)",
            ctx.hr,
            "hr" if ctx.paper else None,
            True,
        )
    )
    specs.append(("val_hr", f"{t4}b — validation HR@{ctx.k} (%)", ctx.val_hr, None, True))
    specs.append(("ndcg", f"{t4}c — test NDCG@{ctx.k} (%)", ctx.ndcg, None, True))
    tables = []
    for key, title, col, paper_key, _pct in specs:
        if col not in rows.columns:
            continue
        knob = _main_knob(rows)
        header = ["size", ""] + [
            f"{knob}={_lam_label(v)}" if str(v) != "nan" else "no defence" for v in lams
        ]
        body = []
        for size in sizes:
            cells = [str(size), "ours"]
            for lam in lams:
                g = rows[(_num(rows, "embedding_size") == size) & (lam_key == lam)]
                cells.append(_cell(g, col))
            body.append(cells)
            if paper_key is not None:
                prow = [str(size), "paper"]
                ptab = PAPER_SIZE_LAMBDA[paper_key].get(size)
                for lam in lams:
                    j = _paper_lambda_index(lam)
                    prow.append(f"{ptab[j]:.2f}" if ptab is not None and j is not None else "–")
                body.append(prow)
        note = ""
        attr = key.split("_")[0]
        if attr in ctx.attributes and "roc_auc" not in key and "balanced" not in key:
            maj = _num(rows, f"{attr}_majority")
            naive = [f"naïve (majority): {_fmt_pct(maj.mean())}%"]
            if paper_key in PAPER_MAJORITY:
                naive.append(f"paper {PAPER_MAJORITY[paper_key]:.2f}%")
            note = "; ".join(naive)
        elif "balanced" in key:
            note = "chance = 1 / number of classes"
        elif "roc_auc" in key:
            note = "chance = 50 (one-vs-rest macro AUC for multi-class)"
        tables.append(ReportTable(title + suffix, header, body, note, key=key + suffix))
    return tables


def _table_numbers(ctx: _Ctx) -> dict[str, int]:
    """Table numbers: the paper's (gender 2, age 3, accuracy@10 4) on ML-1M, else in order."""
    fixed = {"gender": 2, "age": 3, "hr": 4} if ctx.paper else {}
    numbers = {k: v for k, v in fixed.items() if k in ctx.attributes or k == "hr"}
    nxt = max(numbers.values(), default=1) + 1
    for a in [*ctx.attributes, "hr"]:
        if a not in numbers:
            numbers[a] = nxt
            nxt += 1
    return numbers


def _paper_lambda_index(lam) -> int | None:
    try:
        v = float(lam)
    except (TypeError, ValueError):
        return None
    for j, p in enumerate(PAPER_LAMBDAS):
        if math.isclose(v, p, rel_tol=1e-9, abs_tol=1e-12):
            return j
    return None


def _cell(g: pd.DataFrame, col: str) -> str:
    if g.empty:
        return "–"
    ok = g[g["status"] == "ok"]
    n_div = int((g["status"] == "diverged").sum())
    n_leaky = int((g["status"] == "leaky").sum())
    n_err = int((~g["status"].isin(["ok", "diverged", "leaky"])).sum())
    if ok.empty:  # name the commonest way these seeds failed
        worst = max(("leaky", n_leaky), ("diverged", n_div), ("failed", n_err), key=lambda t: t[1])
        return f"{worst[0]} ({worst[1]}/{len(g)})"
    n_div += n_leaky
    v = _num(ok, col).dropna()
    s = _fmt_pct(v.mean() if len(v) else float("nan"), v.std(), len(v))
    if n_div or n_err:
        s += f" †{len(ok)}/{len(g)}"
    return s


# --- Pareto ------------------------------------------------------------------------------------


def config_table(ctx: _Ctx) -> pd.DataFrame:
    """Configurations (mean over seeds) with leakage columns, for the front and the figure."""
    keys = [k for k in ctx.config_keys if k in ctx.df.columns]
    return aggregate_seeds(ctx.df, keys, ctx.k, ctx.attributes)


def _config_label(row: pd.Series, extras: Sequence[str]) -> str:
    s = f"e{int(row['embedding_size'])}" + _strength_label(row)
    for e in extras:
        s += f" {row[e]}" if e == "method" else f" {e}={row[e]}"
    return s


def _pareto_tables(ctx: _Ctx) -> list[ReportTable]:
    conf = config_table(ctx)
    if conf.empty or "leak_combined" not in conf.columns:
        return []
    tables = []
    for target in [COMBINED, *ctx.attributes] if len(ctx.attributes) > 1 else ctx.attributes:
        front = pareto_front(conf, target, objective=ctx.val_hr)
        cols = ["configuration", "seeds ok", f"val HR@{ctx.k} % (selection)"]
        cols += [f"test HR@{ctx.k} %", f"test NDCG@{ctx.k} %"]
        cols += [f"{a} AUC %" for a in ctx.attributes]
        cols.append("leakage (normalised)")
        rows = []
        for _, r in front.iterrows():
            n = int(r["n_ok"])
            row = [
                _config_label(r, ctx.extras),
                f"{n}/{int(r['n_runs'])}",
                _fmt_pct(r[ctx.val_hr], r.get(f"{ctx.val_hr}_std"), n),
                _fmt_pct(r[ctx.hr], r.get(f"{ctx.hr}_std"), n),
                _fmt_pct(r[ctx.ndcg], r.get(f"{ctx.ndcg}_std"), n),
            ]
            for a in ctx.attributes:
                c = f"{a}_max_roc_auc"
                row.append(_fmt_pct(r[c], r.get(f"{c}_std"), n))
            lc = f"leak_{target}"
            row.append(_fmt_num(r[lc], r.get(f"{lc}_std"), n))
            rows.append(row)
        what = "all attributes (max over attributes)" if target == COMBINED else target
        tables.append(
            ReportTable(
                f"Pareto front — HR@{ctx.k} vs leakage of {what}",
                cols,
                rows,
                "Configurations (mean over finished seeds) not dominated in (validation "
                f"HR@{ctx.k} ↑, leakage ↓); selected on validation, reported with test metrics. "
                "Leakage = max(0, (AUC − 0.5) / 0.5) of the strongest attacker"
                + (", max over attributes." if target == COMBINED else "."),
                key=f"pareto_{target}",
            )
        )
    return tables


def _diverged_table(ctx: _Ctx) -> ReportTable:
    bad = ctx.df[ctx.df["status"] != "ok"]
    rows = []
    for _, r in bad.iterrows():
        rows.append(
            [
                str(r.get("run_id", "")),
                str(r["status"]),
                str(r.get("reason", "") or ""),
                str(r.get("epochs_run", "")),
            ]
        )
    note = (
        "No run diverged, leaked or failed."
        if not rows
        else "These runs are recorded, never averaged into the tables above (leaky: the "
        "defence check found the defended vectors more readable than the defence claims)."
    )
    return ReportTable(
        "Diverged, leaky and failed runs",
        ["run", "status", "reason", "epochs"],
        rows,
        note,
        key="diverged",
    )


def _timing_table(ctx: _Ctx) -> ReportTable:
    rows = []
    for label, col in (
        ("data loading (imports, dataset, split)", "load_seconds"),
        ("training + evaluation", "train_seconds"),
        ("audit (and erasure)", "audit_seconds"),
        ("whole run", "seconds"),
    ):
        v = _num(ctx.df, col)
        if v.notna().any():
            rows.append([label, f"{v.sum():.0f}", f"{v.mean():.1f}"])
    return ReportTable(
        "Compute (summed over runs, seconds)",
        ["stage", "total s", "mean s/run"],
        rows,
        "Summed worker time; with parallel workers the wall time is lower.",
        key="timing",
    )
