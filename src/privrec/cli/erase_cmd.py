"""``privrec erase``: post-hoc concept erasure (LEACE, INLP) of a run's user vectors."""

from __future__ import annotations

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
    data_url: str | None = common.DataUrlOpt,
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
        from privrec.api import dataset_of_run, load_run
        from privrec.api import erase as erase_run
        from privrec.artifacts import check_writable
        from privrec.cli.options import parse_key_values
        from privrec.defences.erasure.fitting import checked_options, option_types
        from privrec.runs.pipeline import AuditStep, ErasureStep

        names = [n.strip() for n in attributes.split(",") if n.strip()]
        if not names:
            raise ConfigError("--attributes: name at least one attribute (e.g. gender,age)")
        options = parse_key_values(option or [], "--option", option_types(method))
        ErasureStep(method, tuple(names), options, holdout, seed)  # fail before any work
        checked_options(method, options)
        chosen = None if attackers.strip().lower() == "none" else attackers
        if chosen is not None:
            AuditStep(chosen)  # an unknown attacker fails before the work
        check_writable(out, overwrite=overwrite)
        if out.resolve() == run_dir.resolve():
            raise ConfigError("the output directory must differ from the source run directory")
        source = load_run(run_dir)
        name = dataset or source.dataset
        if not name:
            raise ConfigError(f"{run_dir}/config.json records no dataset: pass --dataset")
        if name == "synthetic" and source.spec is not None and source.dataset == "synthetic":
            ds = dataset_of_run(
                source,
                n_users=syn_users,
                n_items=syn_items,
                strength=syn_strength,
                mode=syn_mode,
                seed=syn_seed,
            )
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
                *_synthetic_args(syn_users, syn_items, syn_strength, syn_mode, syn_seed),
                data_url=data_url,
            )
        run = erase_run(
            source,
            ds,
            method=method,
            attributes=names,
            holdout=holdout,
            options=options,
            attackers=chosen,
            folds=folds,
            seed=seed,
            jobs=jobs,
            audit_trained=not no_source_audit,
            progress=not quiet,
        )
        run.save(out, overwrite=overwrite)
        _print_summary(run, k)
        console.print(f"erased run written to [bold]{common.escape(str(out))}[/bold]")


def _synthetic_args(users, items, strength, mode, seed) -> list:
    """The synthetic generator's positional arguments of :func:`common.load` (defaults where
    not given)."""
    given = (users, items, strength, mode, seed)
    defaults = (1000, 400, 0.5, "direction", 0)
    return [d if g is None else g for g, d in zip(given, defaults, strict=True)]


def _print_summary(run, k: int) -> None:
    metrics = run.metrics
    er = run.erasure
    before = metrics["before_erasure"]
    table = Table(
        title=f"{er['method']} erasure of {', '.join(er['attributes'])} "
        f"(rank {er['rank_removed']} of the user space edited)"
    )
    table.add_column("quantity")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    for part in ("validation", "test"):
        for m in (f"hr@{k}", f"ndcg@{k}"):
            table.add_row(
                f"{part} {m.upper()}", _num(before[part][m], 4), _num(metrics[part][m], 4)
            )
    leak = metrics.get("leakage")
    if leak:
        prior = {r["attribute"]: r for r in (before.get("leakage") or [])}
        for r in leak:
            b = prior.get(r["attribute"], {})
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
    if leak is None:
        console.print("no leakage audit (--attackers none)")
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
