"""``privrec audit``: run the attacker suite on user vectors (or on their recommendations)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from privrec.cli import common
from privrec.cli.common import cli_errors, console
from privrec.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``audit`` command to ``app``."""
    app.command("audit")(audit)


def audit(
    vectors: Path = typer.Argument(
        ...,
        help="User vectors: a run directory, .npz (user_ids, user_vectors), .npy (with --ids), "
        ".csv or .parquet (id column + numeric columns).",
        show_default=False,
    ),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        "-d",
        help="Dataset whose attributes to audit: synthetic, ml-100k, ml-1m or csv "
        "(with --interactions).",
    ),
    data_dir: Path | None = common.DataDirOpt,
    data_url: str | None = common.DataUrlOpt,
    interactions: Path | None = common.InteractionsOpt,
    attributes: Path | None = typer.Option(
        None,
        "--attributes",
        help="User-attributes CSV (user column + one column per attribute). On its own: the "
        "attributes to audit; with --dataset csv: the csv dataset's attributes file.",
    ),
    user_col: str = common.UserColOpt,
    item_col: str = common.ItemColOpt,
    time_col: str = common.TimeColOpt,
    continuous: list[str] | None = typer.Option(
        None, "--continuous", help="Attributes-CSV column to treat as continuous (repeatable)."
    ),
    syn_users: int = common.SynUsersOpt,
    syn_items: int = common.SynItemsOpt,
    syn_strength: float = common.SynStrengthOpt,
    syn_mode: str = common.SynModeOpt,
    syn_seed: int = common.SynSeedOpt,
    attribute: list[str] | None = typer.Option(
        None, "--attribute", "-a", help="Attribute to audit (repeatable; default: all)."
    ),
    attackers: str = typer.Option(
        "paper",
        "--attackers",
        help="Preset (paper, strong, all, fast) or a comma list of names. With "
        "--from-recommendations, 'paper' means the sparse-capable logistic, linear_svm_c1, "
        "random_forest.",
    ),
    folds: int = typer.Option(5, "--folds", help="Cross-validation folds over users."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and the attackers."),
    jobs: int = typer.Option(1, "--jobs", "-j", help="Worker processes over (attacker, fold)."),
    ids: Path | None = typer.Option(
        None, "--ids", help=".npy vectors: user ids (.npy, or one id per line .txt/.csv)."
    ),
    id_column: str = typer.Option(
        "user_id", "--id-column", help=".csv/.parquet vectors: the user-id column."
    ),
    from_recommendations: bool = typer.Option(
        False,
        "--from-recommendations",
        help="Audit each user's top-k recommendations (bag of items) instead of the vectors; "
        "needs a run directory or embeddings .npz and a dataset.",
    ),
    k: int = typer.Option(10, "--k", help="--from-recommendations: recommendations per user."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Folder for audit.json, audit.csv and audit.md."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Leakage audit: how well can attackers predict each private attribute from user vectors?"""
    with cli_errors():
        from privrec.audit import audit_recommendations, audit_vectors, load_vectors, write_audit
        from privrec.audit.attackers import resolve_attackers
        from privrec.audit.attributes_csv import read_attributes_csv
        from privrec.audit.recommendations import RECOMMENDATION_ATTACKERS

        chosen = resolve_attackers(attackers)  # fail on a typo before loading anything
        _refuse_diverged(vectors)
        attributes_only = attributes is not None and interactions is None
        if attributes_only and dataset not in (None, "csv"):
            raise ConfigError(
                f"give either --dataset {dataset} or --attributes CSV, not both "
                "(--attributes with a dataset needs --dataset csv --interactions FILE)"
            )
        recorded = _recorded_dataset(vectors) if dataset is None and attributes is None else None
        if dataset is None and attributes is None and recorded is None:
            raise ConfigError(
                "say whose attributes to audit: --dataset NAME or --attributes CSV (a run "
                "directory that records its dataset needs neither)"
            )
        ds = None
        if recorded is not None:
            from privrec.api import dataset_of_run

            overrides: dict = {"data_dir": data_dir} if data_dir else {}
            ds = dataset_of_run(recorded, **overrides)
            attrs = ds.attributes
            console.print(
                f"attributes of the run's dataset {recorded.dataset} (from "
                f"{common.escape(str(vectors))}/config.json)",
                highlight=False,
            )
        elif attributes_only:
            assert attributes is not None  # implied by attributes_only
            attrs = read_attributes_csv(attributes, user_col, continuous or [])
        else:
            ds = common.load(
                dataset or "csv",
                data_dir,
                interactions,
                attributes,
                user_col,
                item_col,
                time_col,
                continuous,
                syn_users,
                syn_items,
                syn_strength,
                syn_mode,
                syn_seed,
                data_url=data_url,
            )
            attrs = ds.attributes
        names = list(attribute) if attribute else None
        attrs, held_out = _held_out_labels(vectors, attrs)
        if from_recommendations:
            if ds is None:
                raise ConfigError(
                    "--from-recommendations needs the interactions: give --dataset "
                    "(training items are excluded from the top-k)"
                )
            if ids is not None:
                raise ConfigError("--ids does not apply to --from-recommendations")
            result = audit_recommendations(
                vectors,
                ds,
                attrs,
                k=k,
                names=names,
                attackers=RECOMMENDATION_ATTACKERS if attackers == "paper" else chosen,
                folds=folds,
                seed=seed,
                jobs=jobs,
                progress=not quiet,
            )
        else:
            user_ids, vecs = load_vectors(vectors, ids, id_column)
            result = audit_vectors(
                user_ids,
                vecs,
                attrs,
                names=names,
                attackers=chosen,
                folds=folds,
                seed=seed,
                jobs=jobs,
                progress=not quiet,
            )
        _print_result(result)
        if held_out:
            console.print(
                f"leakage measured on the users whose labels the defences did not see: "
                f"{vectors}/label_users.txt lists the {held_out:,} users whose labels they used",
                highlight=False,
            )
        if out is not None:
            write_audit(result, out)
            console.print(
                f"audit written to [bold]{common.escape(str(out))}[/bold] "
                "(audit.json, audit.csv, audit.md)"
            )


def _refuse_diverged(vectors: Path) -> None:
    """A run directory of a diverged training has no vectors: say so, before any loading."""
    from privrec.artifacts import read_json
    from privrec.errors import DataError

    metrics = vectors / "metrics.json"
    if not (vectors.is_dir() and metrics.is_file() and not (vectors / "embeddings.npz").exists()):
        return
    record = read_json(metrics)
    if isinstance(record, dict) and record.get("status") == "diverged":
        raise DataError(
            f"{vectors} is a diverged run ({record.get('reason') or 'no reason recorded'}): "
            "it has no vectors to audit"
        )


def _recorded_dataset(vectors: Path):
    """The run of a run directory whose config.json records the dataset and its loader
    options (``privrec train``, ``erase``, sweeps); else None."""
    if not (vectors.is_dir() and (vectors / "config.json").is_file()):
        return None
    from privrec.api import load_run

    run = load_run(vectors)
    return run if run.spec is not None and run.dataset else None


def _held_out_labels(vectors: Path, attrs):
    """For a run directory recording which users' labels its defences used
    (``label_users.txt``), the attributes with those users' labels removed — the audit then
    scores only the others — and how many were removed; else ``(attrs, 0)``."""
    import numpy as np

    from privrec.runs.run_directory import read_label_users

    if not vectors.is_dir():
        return attrs, 0
    label_users = read_label_users(vectors)
    if label_users is None:
        return attrs, 0
    ids = np.asarray(attrs.user_ids).astype(str)
    used = np.isin(ids, np.asarray(label_users).astype(str))
    return attrs.without_labels(used), int(used.sum())


def _print_result(result) -> None:
    from privrec.audit import headline_sentence
    from privrec.audit.report import ATTACKER_COLUMNS, attacker_cells

    info = result.info
    source = (
        f"top-{info['k']} recommendations" if info.get("source") == "recommendations" else "vectors"
    )
    console.print(
        f"{info['n_matched']:,} of {info['n_vectors']:,} users matched the attributes "
        f"({source}, {info['dim']} dims, {info['folds']}-fold CV, seed {info['seed']})",
        highlight=False,
    )
    for name in result.attributes:
        t = result.table[result.table["attribute"] == name]
        kind = t["kind"].iloc[0]
        table = Table(title=f"{name} ({kind}, {int(t['n_users'].iloc[0]):,} users)")
        if kind == "categorical":
            table.add_column("attacker", no_wrap=True)
            for col in ATTACKER_COLUMNS:
                table.add_column(col, justify="right")
            for _, r in t.iterrows():
                table.add_row(r["attacker"], *attacker_cells(r))
        else:
            table.add_column("regressor", no_wrap=True)
            for col in ("R²", "MAE", "MAE of mean"):
                table.add_column(col, justify="right")
            for _, r in t.iterrows():
                table.add_row(
                    r["attacker"],
                    f"{_num(r['r2'], 3)} ± {_num(r['r2_std'], 3)}",
                    _num(r["mae"], 3),
                    _num(r["mae_baseline"], 3),
                )
        console.print(table)
        row = result.headline[result.headline["attribute"] == name].iloc[0]
        console.print(
            f"[bold]{common.escape(name)}[/bold]: {common.escape(headline_sentence(row))}",
            highlight=False,
        )
    for name, a in info["attributes"].items():
        if a.get("skipped"):
            console.print(
                f"[yellow]skipped[/yellow] {common.escape(name)}: {common.escape(str(a['skipped']))}",
                highlight=False,
            )


def _num(x: float, digits: int = 2) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
