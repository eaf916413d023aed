"""``privrec erase`` and ``privrec purge``: post-hoc defences of trained user vectors (LEACE,
INLP, the purge), of a privrec run or of any system's vectors in an ``.npz``."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.table import Table

from privrec.cli import common
from privrec.cli.common import cli_errors, console
from privrec.errors import ConfigError


def register(app: typer.Typer) -> None:
    """Add the ``erase`` and ``purge`` commands to ``app``."""
    app.command("erase")(erase)
    app.command("purge")(purge)


SourceArg = typer.Argument(
    ...,
    help="Vectors to defend: a run directory (config.json, metrics.json, embeddings.npz) or an "
    ".npz of any system with arrays user_ids, user_vectors, item_ids, item_vectors and "
    "optionally item_bias (scores user·item + bias).",
    show_default=False,
)
LabelFractionOpt = typer.Option(
    None,
    "--label-fraction",
    help="Share of the users (stratified, seeded; listed in label_users.txt) whose labels the "
    "defence may use; the audit scores the others. Default: the run's own record, else 1.",
)


OutOpt = typer.Option(..., "--out", "-o", help="New run directory to write.", show_default=False)
AttributesCsvOpt = typer.Option(
    None, "--attributes-csv", help="csv dataset: user-attributes CSV file."
)
AttackersOpt = typer.Option(
    "paper",
    "--attackers",
    help="Audit preset (paper, strong, all, fast), a comma list of attackers, or 'none'.",
)
FoldsOpt = typer.Option(5, "--folds", help="Audit cross-validation folds.")
RefitItemsOpt = typer.Option(
    0,
    "--refit-items",
    help="Then re-fit the item vectors and biases on the defended user vectors for at most N "
    "epochs (BPR, user vectors fixed, best validation epoch kept); 0: items unchanged.",
)
JobsOpt = typer.Option(1, "--jobs", "-j", help="Audit worker processes.")
NoSourceAuditOpt = typer.Option(
    False, "--no-source-audit", help="Do not audit the source vectors (no 'before' leakage)."
)
KOpt = typer.Option(10, "--k", help="Cut-off of HR@k / NDCG@k.")
OverwriteOpt = typer.Option(False, help="Replace an existing output directory.")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar.")


def erase(
    run_dir: Path = SourceArg,
    method: str = typer.Option("leace", "--method", "-m", help="leace, inlp or purge."),
    attributes: str = typer.Option(
        ...,
        "--attributes",
        "-a",
        help="Attributes to erase, comma-separated (e.g. gender,age).",
        show_default=False,
    ),
    out: Path = OutOpt,
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset of the run (default: the one in its config.json)."
    ),
    data_dir: Path | None = common.DataDirOpt,
    data_url: str | None = common.DataUrlOpt,
    interactions: Path | None = common.InteractionsOpt,
    attributes_csv: Path | None = AttributesCsvOpt,
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
        "classifier=logistic|svm, C, tol, dev_fraction, rank_per_iteration. purge: see "
        "privrec purge --help.",
    ),
    attackers: str = AttackersOpt,
    folds: int = FoldsOpt,
    jobs: int = JobsOpt,
    holdout: float = typer.Option(
        0.0,
        "--holdout",
        help="Hide this share of users' labels from the eraser and audit only them "
        "(0: fit and audit on all labelled users).",
    ),
    label_fraction: float | None = LabelFractionOpt,
    refit_items: int = RefitItemsOpt,
    no_source_audit: bool = NoSourceAuditOpt,
    k: int = KOpt,
    seed: int = typer.Option(0, "--seed", help="Seed of the eraser and the audit."),
    overwrite: bool = OverwriteOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Erase private attributes from trained user vectors (LEACE, INLP or the purge) and
    re-evaluate.

    Writes a new run directory (erased user vectors; items unchanged unless --refit-items)
    with HR@k/NDCG@k before and after and, when the audit is available, the leakage audit of
    both. On an adversarially trained run this is the combined defence.
    """
    with cli_errors():
        from privrec.cli.options import parse_key_values
        from privrec.defences.erasure.fitting import option_types

        options = parse_key_values(option or [], "--option", option_types(method))
        data = _DataArgs(
            dataset,
            data_dir,
            data_url,
            interactions,
            attributes_csv,
            user_col,
            item_col,
            time_col,
            continuous,
            syn_users,
            syn_items,
            syn_strength,
            syn_mode,
            syn_seed,
        )
        _defend(
            run_dir,
            method,
            attributes,
            options,
            out,
            data,
            attackers,
            folds,
            jobs,
            holdout,
            refit_items,
            label_fraction,
            no_source_audit,
            k,
            seed,
            overwrite,
            quiet,
        )


def purge(
    vectors: Path = SourceArg,
    attributes: str = typer.Option(
        ...,
        "--attributes",
        "-a",
        help="Categorical attributes to purge, comma-separated (e.g. gender,age).",
        show_default=False,
    ),
    out: Path = OutOpt,
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        "-d",
        help="Dataset the vectors were trained on (default: a run directory's own).",
    ),
    data_dir: Path | None = common.DataDirOpt,
    data_url: str | None = common.DataUrlOpt,
    interactions: Path | None = common.InteractionsOpt,
    attributes_csv: Path | None = AttributesCsvOpt,
    user_col: str = common.UserColOpt,
    item_col: str = common.ItemColOpt,
    time_col: str = common.TimeColOpt,
    label_fraction: float | None = LabelFractionOpt,
    leace: bool = typer.Option(
        False, "--leace/--no-leace", help="Follow the purge with LEACE (on the label users)."
    ),
    weight: float = typer.Option(
        3.0, "--weight", help="Weight of the group distance against the ranking loss."
    ),
    steps: int = typer.Option(300, "--steps", help="Optimisation steps of the purge map."),
    top_k: int = typer.Option(10, "--top-k", help="Length of the lists the purge keeps."),
    refit_items: int = RefitItemsOpt,
    option: list[str] | None = typer.Option(
        None,
        "--option",
        "-O",
        help="Other purge option KEY=VALUE (repeatable): learning_rate, hidden, margin, "
        "random_negatives, bandwidths (comma list of median-distance multiples), sample.",
    ),
    attackers: str = AttackersOpt,
    folds: int = FoldsOpt,
    jobs: int = JobsOpt,
    no_source_audit: bool = NoSourceAuditOpt,
    k: int = KOpt,
    seed: int = typer.Option(0, "--seed", help="Seed of the purge, the label draw and the audit."),
    overwrite: bool = OverwriteOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Purge private attributes from trained user vectors (attribute unlearning).

    Only the user vectors move: a learned map makes the attribute's groups indistinguishable
    (multi-bandwidth MMD over all label users) while keeping each user's top-k list (a margin
    hinge); --leace adds LEACE after it. Works on a privrec run or on any system's vectors
    (.npz). Writes a run directory like privrec erase (test HR@k on the dataset's
    leave-last-out split, audits before and after, label_users.txt with --label-fraction).
    """
    with cli_errors():
        from privrec.cli.options import parse_key_values
        from privrec.defences.erasure.fitting import option_types

        types = option_types("purge")
        options = parse_key_values(option or [], "--option", types)
        named = {"weight": weight, "steps": steps, "top_k": top_k, "leace": leace}
        twice = sorted(set(named) & set(options))
        if twice:
            raise ConfigError(f"--option {twice[0]}: give it as --{twice[0].replace('_', '-')}")
        data = _DataArgs(
            dataset,
            data_dir,
            data_url,
            interactions,
            attributes_csv,
            user_col,
            item_col,
            time_col,
            None,
            None,
            None,
            None,
            None,
            None,
        )
        _defend(
            vectors,
            "purge",
            attributes,
            {**named, **options},
            out,
            data,
            attackers,
            folds,
            jobs,
            0.0,
            refit_items,
            label_fraction,
            no_source_audit,
            k,
            seed,
            overwrite,
            quiet,
        )


@dataclass(frozen=True)
class _DataArgs:
    """The dataset options of ``erase`` and ``purge``."""

    dataset: str | None
    data_dir: Path | None
    data_url: str | None
    interactions: Path | None
    attributes_csv: Path | None
    user_col: str
    item_col: str
    time_col: str
    continuous: list[str] | None
    syn_users: int | None
    syn_items: int | None
    syn_strength: float | None
    syn_mode: str | None
    syn_seed: int | None


def _defend(
    source_path: Path,
    method: str,
    attributes: str,
    options: dict,
    out: Path,
    data: _DataArgs,
    attackers: str,
    folds: int,
    jobs: int,
    holdout: float,
    refit_items: int,
    label_fraction: float | None,
    no_source_audit: bool,
    k: int,
    seed: int,
    overwrite: bool,
    quiet: bool,
) -> None:
    """The work of ``erase`` and ``purge``: check everything, load, defend, save, report."""
    from privrec.api import dataset_of_run, source_run
    from privrec.api import erase as erase_run
    from privrec.artifacts import check_writable
    from privrec.defences.erasure.fitting import checked_options
    from privrec.runs.pipeline import AuditStep, ErasureStep
    from privrec.runs.run_spec import RunSpec

    names = [n.strip() for n in attributes.split(",") if n.strip()]
    if not names:
        raise ConfigError("--attributes: name at least one attribute (e.g. gender,age)")
    try:  # fail before any work
        ErasureStep(method, tuple(names), options, holdout, seed, refit_items)
    except ConfigError as exc:
        if str(exc).startswith("refit_items"):
            raise ConfigError(f"--refit-items: {exc}") from None
        raise
    checked_options(method, options)
    if label_fraction is not None:
        RunSpec(label_fraction=label_fraction)  # its range, before any work
    chosen = None if attackers.strip().lower() == "none" else attackers
    if chosen is not None:
        AuditStep(chosen)  # an unknown attacker fails before the work
    check_writable(out, overwrite=overwrite)
    if out.resolve() == source_path.resolve():
        raise ConfigError("the output directory must differ from the source run directory")
    if source_path.is_file() and data.dataset is None:
        raise ConfigError(
            f"{source_path} is not a run directory: pass --dataset (the data its vectors "
            "were trained on)"
        )
    source = source_run(source_path, data.dataset)  # an .npz is checked before data loads
    name = data.dataset or source.dataset
    if not name:
        raise ConfigError(f"{source_path}/config.json records no dataset: pass --dataset")
    syn = (data.syn_users, data.syn_items, data.syn_strength, data.syn_mode, data.syn_seed)
    if name == "synthetic" and source.spec is not None and source.dataset == "synthetic":
        ds = dataset_of_run(
            source,
            n_users=syn[0],
            n_items=syn[1],
            strength=syn[2],
            mode=syn[3],
            seed=syn[4],
        )
    else:
        ds = common.load(
            name,
            data.data_dir,
            data.interactions,
            data.attributes_csv,
            data.user_col,
            data.item_col,
            data.time_col,
            data.continuous,
            *_synthetic_args(*syn),
            data_url=data.data_url,
        )
    if source.spec is None:
        source = dataclasses.replace(source, dataset=ds.name)
    run = erase_run(
        source,
        ds,
        method=method,
        attributes=names,
        holdout=holdout,
        label_fraction=label_fraction,
        options=options,
        refit_items=refit_items,
        attackers=chosen,
        folds=folds,
        seed=seed,
        jobs=jobs,
        audit_trained=not no_source_audit,
        progress=not quiet,
    )
    run.save(out, overwrite=overwrite)
    _print_summary(run, k)
    console.print(f"{method} run written to [bold]{common.escape(str(out))}[/bold]")
    if run.status == "leaky":
        raise typer.Exit(4)


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
    if metrics.get("status") == "leaky":
        common.err_console.print(
            f"[red]LEAKY[/red]: {common.escape(str(metrics['message']))} — recorded as status "
            "'leaky', not a result",
            highlight=False,
        )
    if er.get("rank_removed") is not None:
        edit = f"rank {er['rank_removed']} of the user space edited"
    else:
        kept = [
            f"top-{key[3:-8]} lists {100 * v:.1f}% kept"
            for key, v in metrics["erasure"].items()
            if key.startswith("top") and key.endswith("_overlap")
        ]
        edit = kept[0] if kept else "a non-affine map"
    table = Table(title=f"{er['method']} of {', '.join(er['attributes'])} ({edit})")
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
    refit = metrics["erasure"].get("refit_items")
    if refit:
        chosen = (
            "the items it started from kept (no epoch was better on validation)"
            if refit["best_epoch"] == 0
            else f"the items of epoch {refit['best_epoch']} kept"
        )
        console.print(
            f"items re-fitted on the defended user vectors: {refit['epochs_run']} of "
            f"{refit['epochs']} epochs, {chosen}",
            highlight=False,
        )
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
