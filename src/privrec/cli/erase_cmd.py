"""``privrec erase``: post-hoc concept erasure (LEACE, INLP) of a run's user vectors."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import typer
from rich.table import Table

from privrec.cli import common
from privrec.cli.common import cli_errors, console
from privrec.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``erase`` command to ``app``."""
    app.command("erase")(erase)


def erase(
    run_dir: Path = typer.Argument(
        ...,
        help="Run directory to erase (config.json, metrics.json, embeddings.npz).",
        show_default=False,
    ),
    method: str = typer.Option("leace", "--method", "-m", help="leace or inlp."),
    attributes: str = typer.Option(
        ...,
        "--attributes",
        "-a",
        help="Attributes to erase, comma-separated (e.g. gender,age).",
        show_default=False,
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="New run directory to write.", show_default=False
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset of the run (default: the one in its config.json)."
    ),
    data_dir: Path | None = common.DataDirOpt,
    interactions: Path | None = common.InteractionsOpt,
    attributes_csv: Path | None = typer.Option(
        None, "--attributes-csv", help="csv dataset: user-attributes CSV file."
    ),
    user_col: str = common.UserColOpt,
    item_col: str = common.ItemColOpt,
    time_col: str = common.TimeColOpt,
    continuous: list[str] | None = common.ContinuousOpt,
    syn_users: int | None = typer.Option(
        None, "--syn-users", help="synthetic dataset: users (default: as recorded in the run)."
    ),
    syn_items: int | None = typer.Option(
        None, "--syn-items", help="synthetic dataset: items (default: as recorded)."
    ),
    syn_strength: float | None = typer.Option(
        None, "--syn-strength", help="synthetic dataset: planted signal (default: as recorded)."
    ),
    syn_mode: str | None = typer.Option(
        None, "--syn-mode", help="synthetic dataset: direction or radius (default: as recorded)."
    ),
    syn_seed: int | None = typer.Option(
        None, "--syn-seed", help="synthetic dataset: generator seed (default: as recorded)."
    ),
    option: list[str] | None = typer.Option(
        None,
        "--option",
        "-O",
        help="Method option KEY=VALUE (repeatable). leace: strategy=joint|sequential, "
        "projection=leace|orth, shrinkage, svd_tol, constrain_cov_trace. inlp: n_iterations, "
        "classifier=logistic|svm, C, tol, dev_fraction, rank_per_iteration.",
    ),
    attackers: str = typer.Option(
        "paper",
        "--attackers",
        help="Audit preset (paper, strong, all, fast), a comma list of attackers, or 'none'.",
    ),
    folds: int = typer.Option(5, "--folds", help="Audit cross-validation folds."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Audit worker processes."),
    holdout: float = typer.Option(
        0.0,
        "--holdout",
        help="Hide this share of users' labels from the eraser and audit only them "
        "(0: fit and audit on all labelled users).",
    ),
    no_source_audit: bool = typer.Option(
        False, "--no-source-audit", help="Do not audit the source vectors (no 'before' leakage)."
    ),
    k: int = typer.Option(10, "--k", help="Cut-off of HR@k / NDCG@k."),
    seed: int = typer.Option(0, "--seed", help="Seed of the eraser and the audit."),
    overwrite: bool = typer.Option(False, help="Replace an existing output directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Erase private attributes from a run's user vectors (LEACE or INLP) and re-evaluate.

    Writes a new run directory (erased user vectors, unchanged items) with HR@k/NDCG@k before
    and after and, when the audit is available, the leakage audit of both. On an
    adversarially trained run this is the combined defence.
    """
    with cli_errors():
        from privrec.artifacts import read_json
        from privrec.data.registry import load_dataset
        from privrec.defences.erasure import METHODS
        from privrec.experiments.erase_run import erase_run, synthetic_options_from_notes

        if method not in METHODS:
            raise ConfigError(
                f"unknown erasure method {method!r}; expected one of: {', '.join(METHODS)}"
            )
        names = [n.strip() for n in attributes.split(",") if n.strip()]
        if not names:
            raise ConfigError("--attributes: name at least one attribute (e.g. gender,age)")
        options = _parse_options(option or [])
        chosen = None if attackers.strip().lower() == "none" else attackers
        if chosen is not None:
            try:
                from privrec.audit.attackers import resolve_attackers
            except ModuleNotFoundError:
                pass
            else:
                resolve_attackers(chosen)  # fail on a typo before the work
        if out.exists() and not overwrite:
            raise ConfigError(f"{out} already exists (use --overwrite to replace it)")
        config = read_json(run_dir / "config.json")
        name = dataset or config.get("dataset")
        if not name:
            raise ConfigError(f"{run_dir}/config.json records no dataset: pass --dataset")
        if name == "synthetic":
            syn = synthetic_options_from_notes(config.get("dataset_notes", [])) or {}
            given = {
                "n_users": syn_users,
                "n_items": syn_items,
                "strength": syn_strength,
                "mode": syn_mode,
                "seed": syn_seed,
            }
            syn.update({key: v for key, v in given.items() if v is not None})
            ds = load_dataset("synthetic", synthetic=syn)
        else:
            ds = common.load(
                name,
                data_dir,
                interactions,
                attributes_csv,
                user_col,
                item_col,
                time_col,
                continuous,
            )
        summary = erase_run(
            run_dir,
            ds,
            names,
            method,
            out,
            seed=seed,
            attackers=chosen,
            k=k,
            overwrite=overwrite,
            options=options,
            folds=folds,
            jobs=jobs,
            audit_source=not no_source_audit,
            holdout=holdout,
            progress=not quiet,
        )
        _print_summary(summary, k)
        console.print(f"erased run written to [bold]{out}[/bold]")


def _parse_options(items: list[str]) -> dict:
    """``["n_iterations=5", "classifier=svm"]`` → ``{"n_iterations": 5, "classifier": "svm"}``."""
    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--option expects KEY=VALUE, got {item!r}")
        raw = raw.strip()
        low = raw.lower()
        if low in ("true", "false"):
            value: object = low == "true"
        elif low in ("none", "null"):
            value = None
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
            if not isinstance(value, int | float | str):
                value = raw
        out[key] = value
    return out


def _print_summary(summary: dict, k: int) -> None:
    metrics = summary["metrics"]
    er = summary["config"]["erasure"]
    src = metrics["source"]
    table = Table(
        title=f"{er['method']} erasure of {', '.join(er['attributes'])} "
        f"(rank {er['rank_removed']} of the user space edited)"
    )
    table.add_column("quantity")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for part in ("validation", "test"):
        for m in (f"hr@{k}", f"ndcg@{k}"):
            table.add_row(f"{part} {m.upper()}", _num(src[part][m], 4), _num(metrics[part][m], 4))
    leak = metrics.get("leakage")
    if leak:
        before = {r["attribute"]: r for r in (leak.get("before") or [])}
        for r in leak["after"]:
            b = before.get(r["attribute"], {})
            name = r["attribute"]
            if r.get("kind") == "continuous":
                table.add_row(f"{name}: max R²", _num(b.get("max_r2"), 3), _num(r["max_r2"], 3))
                continue
            table.add_row(
                f"{name}: max ROC-AUC (strongest attacker)",
                _with(b.get("max_roc_auc"), b.get("strongest_attacker")),
                _with(r.get("max_roc_auc"), r.get("strongest_attacker")),
            )
            table.add_row(
                f"{name}: max balanced accuracy (chance {_pct(r.get('chance_balanced'))})",
                _pct(b.get("max_balanced_accuracy")),
                _pct(r.get("max_balanced_accuracy")),
            )
    console.print(table)
    if summary.get("audit") is None and leak is None:
        console.print("no leakage audit (--attackers none, or privrec.audit unavailable)")
    elif er.get("holdout"):
        console.print(
            f"leakage measured on the {er['holdout_users']:,} users whose labels the eraser "
            "did not see",
            highlight=False,
        )


def _num(x, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _pct(x) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _with(x, attacker) -> str:
    return _num(x, 3) if not attacker else f"{_num(x, 3)} ({attacker})"
