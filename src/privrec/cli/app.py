"""The ``privrec`` command."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from privrec.cli import common
from privrec.cli.common import cli_errors, console, err_console

app = typer.Typer(
    name="privrec",
    help="Privacy-adversarial recommender systems: audit leakage, train purged user vectors, "
    "sweep the accuracy-vs-leakage trade-off.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help text is plain: "privrec[ray]" must not read as markup
)
data_app = typer.Typer(help="Inspect datasets.", no_args_is_help=True, rich_markup_mode=None)


def _show_version(value: bool) -> None:
    if value:
        from privrec._version import __version__

        console.print(f"privrec {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Privacy-adversarial recommender systems: audit leakage, train purged user vectors,
    sweep the accuracy-vs-leakage trade-off."""


app.add_typer(data_app, name="data")


@app.command()
def train(
    dataset: str = common.DatasetOpt,
    data_dir: Path | None = common.DataDirOpt,
    data_url: str | None = common.DataUrlOpt,
    interactions: Path | None = common.InteractionsOpt,
    attributes: Path | None = common.AttributesOpt,
    user_col: str = common.UserColOpt,
    item_col: str = common.ItemColOpt,
    time_col: str = common.TimeColOpt,
    continuous: list[str] | None = common.ContinuousOpt,
    syn_users: int = common.SynUsersOpt,
    syn_items: int = common.SynItemsOpt,
    syn_strength: float = common.SynStrengthOpt,
    syn_mode: str = common.SynModeOpt,
    syn_seed: int = common.SynSeedOpt,
    model: str = typer.Option(
        "bpr-mf",
        help="Recommender: bpr-mf, tower-mf, multvae (Liang et al. 2018) or lightgcn "
        "(He et al. 2020).",
    ),
    loss: str = typer.Option("bpr", help="Recommendation loss of pair-trained models: bpr or bce."),
    embedding_size: int = typer.Option(32, "--embedding-size", "-e", help="Vector dimension."),
    epochs: int | None = typer.Option(
        None, help="Maximum epochs [default: 60].", show_default=False
    ),
    learning_rate: float | None = typer.Option(
        None,
        "--learning-rate",
        "--lr",
        help="Step size [default: 0.005; multvae 0.001].",
        show_default=False,
    ),
    reg: float | None = typer.Option(
        None,
        help="L2 weight on the batch's vectors [default: 0.001; multvae 0 (on all weights); "
        "lightgcn 0.0001 (on the ego embeddings)].",
        show_default=False,
    ),
    batch_size: int | None = typer.Option(
        None,
        help="Training triples per step [default: 4096; lightgcn 8192]; users per step for "
        "multvae [default: 100].",
        show_default=False,
    ),
    device: str = typer.Option(
        "auto", help="Torch device: auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps."
    ),
    vae_hidden: int = typer.Option(600, help="multvae: encoder hidden width."),
    vae_dropout: float = typer.Option(0.5, help="multvae: input dropout while training."),
    vae_beta: float = typer.Option(0.2, help="multvae: final KL weight β."),
    vae_anneal: float = typer.Option(
        0.5, help="multvae: share of the steps over which β rises from 0 (0 = no annealing)."
    ),
    gcn_layers: int = typer.Option(3, help="lightgcn: propagation layers K."),
    optimizer: str = typer.Option(
        "adam",
        help="adam, sgd, or sparse-adam (row-wise Adam: a step costs O(batch), for large data).",
    ),
    patience: int = typer.Option(10, help="Early-stopping patience in evaluations (0 = off)."),
    max_grad_norm: float | None = typer.Option(None, help="Clip the gradient norm."),
    seed: int = typer.Option(0, help="Seed of initialisation, shuffling and sampling."),
    threads: int | None = typer.Option(
        None,
        help="torch threads (default: chosen at start from the cores other processes leave "
        "free; give a number for bit-identical reruns).",
    ),
    adv: list[str] | None = typer.Option(
        None, "--adv", help="ATTRIBUTE=λ: adversarial head for an attribute (repeatable)."
    ),
    adv_head: str = typer.Option("linear", help="Adversarial head: linear or mlp."),
    adv_heads: int = typer.Option(1, help="Parallel adversarial heads per attribute."),
    adv_input_dropout: float = typer.Option(
        0.0, help="Dropout rate on the adversarial heads' input (0 = none)."
    ),
    adv_schedule: str = typer.Option("constant", help="λ schedule: constant or ramp."),
    adv_steps: int = typer.Option(1, help="Head updates per recommender update."),
    adv_objective: str = typer.Option(
        "confusion",
        help="confusion (push the heads' predictions to the prior; cannot invert the "
        "attribute at large λ) or reverse (gradient reversal, the paper's).",
    ),
    adv_reinit: int = typer.Option(0, help="Re-initialise the heads every N steps (0 = never)."),
    adv_refit: int = typer.Option(
        0,
        help="Every N epochs, refit the heads afresh on all label users' vectors (full batch; "
        "0 = never): an attacker trained to convergence in the loop.",
    ),
    mmd: list[str] | None = typer.Option(
        None, "--mmd", help="ATTRIBUTE=w: MMD dependence penalty between groups (repeatable)."
    ),
    hsic: list[str] | None = typer.Option(
        None, "--hsic", help="ATTRIBUTE=w: HSIC dependence penalty (repeatable)."
    ),
    swd: list[str] | None = typer.Option(
        None,
        "--swd",
        help="ATTRIBUTE=w: sliced-Wasserstein alignment of the groups to their barycenter "
        "(repeatable).",
    ),
    dep_sample: int = typer.Option(
        512, "--dep-sample", help="MMD/HSIC: batch users (at most) in each estimate."
    ),
    swd_sample: int = typer.Option(
        2048, "--swd-sample", help="SWD: batch users (at most) in each estimate."
    ),
    swd_pseudo: bool = typer.Option(
        False,
        "--swd-pseudo",
        help="SWD: let the users without a label in, with the class probabilities of a "
        "logistic labeller refitted on the label users every epoch.",
    ),
    dep_schedule: str = typer.Option(
        "constant", "--dep-schedule", help="MMD/HSIC/SWD weight schedule: constant or ramp."
    ),
    adv_probe: bool = typer.Option(
        False, help="Fit a fresh probe of leakage after each epoch (recorded)."
    ),
    adv_probe_attacker: str = typer.Option(
        "logistic",
        "--adv-probe-attacker",
        help="The --adv-probe's attacker, any of the audit's (e.g. mlp, rbf_svm).",
    ),
    selection: str = typer.Option(
        "hr", help="Model selection on validation: hr, or hr_probe (HR × (1 − probe leakage))."
    ),
    collapse_ratio: float = typer.Option(
        0.5, help="Diverged if validation HR@10 falls below this share of its best (0 = off)."
    ),
    label_fraction: float = typer.Option(
        1.0,
        "--label-fraction",
        help="Share of users (stratified, seeded) whose labels the defences may use; the "
        "defence check scores the others (listed in label_users.txt).",
    ),
    baseline_check: str = typer.Option(
        "auto",
        "--baseline-check",
        help="Also train the plain twin (same model, split, seed; no defence) and call the run "
        "leaky if the defended vectors are more readable: auto (MMD/HSIC without heads), "
        "always, never.",
    ),
    out: Path | None = typer.Option(None, "--out", "-o", help="Run directory to write."),
    overwrite: bool = typer.Option(False, help="Replace an existing run directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train a recommender (optionally privacy-adversarial) and evaluate it."""
    with cli_errors():
        from privrec.api import train as train_run
        from privrec.api import train_spec
        from privrec.artifacts import check_writable
        from privrec.cli.options import parse_weights

        options: dict[str, Any] = {
            "embedding_size": embedding_size,
            "adversaries": parse_weights(adv or []),
            "adversary": {
                "head": adv_head,
                "n_heads": adv_heads,
                "input_dropout": adv_input_dropout,
                "schedule": adv_schedule,
                "steps": adv_steps,
                "reinit_every": adv_reinit,
                "refit_epochs": adv_refit,
                "objective": adv_objective,
                "probe": adv_probe,
                "probe_attacker": adv_probe_attacker,
            },
            "mmd": parse_weights(mmd or [], "--mmd"),
            "hsic": parse_weights(hsic or [], "--hsic"),
            "swd": parse_weights(swd or [], "--swd"),
            "dependence": {
                "sample_size": dep_sample,
                "swd_sample_size": swd_sample,
                "pseudo_labels": swd_pseudo,
                "schedule": dep_schedule,
            },
            "seed": seed,
            "model": model,
            "loss": loss,
            **{
                key: value
                for key, value in (
                    ("epochs", epochs),
                    ("learning_rate", learning_rate),
                    ("reg", reg),
                    ("batch_size", batch_size),
                )
                if value is not None
            },
            "device": device,
            "vae_hidden": vae_hidden,
            "vae_dropout": vae_dropout,
            "vae_beta": vae_beta,
            "vae_anneal": vae_anneal,
            "gcn_layers": gcn_layers,
            "optimizer": optimizer,
            "patience": patience,
            "max_grad_norm": max_grad_norm,
            "num_threads": threads,
            "collapse_ratio": collapse_ratio,
            "selection": selection,
            "label_fraction": label_fraction,
            "baseline_check": baseline_check,
        }
        spec = train_spec(None, **options)  # every setting is checked before the data is loaded
        from privrec.training.device import resolve_device

        resolve_device(spec.train.device)  # a named device this machine lacks: error now
        if out is not None:
            check_writable(out, overwrite=overwrite)
        ds = common.load(
            dataset,
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
        with common.epoch_progress(spec.train.epochs, enabled=not quiet) as cb:
            run = train_run(ds, callback=cb, **options)
        if out is not None:
            run.save(out, overwrite=overwrite)
        _print_metrics(run.metrics, run.spec.train.k if run.spec is not None else 10)
        if out is not None:
            console.print(f"run written to [bold]{common.escape(str(out))}[/bold]")
        if run.status == "leaky":
            raise typer.Exit(4)
        if run.status != "ok":
            raise typer.Exit(3)


def _print_metrics(metrics: dict, k: int) -> None:
    if metrics["status"] == "diverged":
        err_console.print(
            f"[red]DIVERGED[/red] ({common.escape(str(metrics['reason']))}): "
            f"{common.escape(str(metrics['message']))} — recorded as status 'diverged', "
            "not a result",
            highlight=False,
        )
        return
    if metrics["status"] == "leaky":
        err_console.print(
            f"[red]LEAKY[/red]: {common.escape(str(metrics['message']))} — recorded as status "
            "'leaky', not a result",
            highlight=False,
        )
    table = Table(title="evaluation (full ranking)")
    table.add_column("split")
    table.add_column(f"HR@{k}", justify="right")
    table.add_column(f"NDCG@{k}", justify="right")
    for part in ("validation", "test"):
        m = metrics[part]
        table.add_row(part, f"{m[f'hr@{k}']:.4f}", f"{m[f'ndcg@{k}']:.4f}")
    console.print(table)
    console.print(
        f"best epoch {metrics['best_epoch']} of {metrics['epochs_run']}, "
        f"{metrics['seconds_per_epoch']:.2f} s/epoch, {metrics['wall_seconds']:.1f} s in all"
        + (f" on {metrics['device']}" if metrics.get("device") else "")
    )
    check = metrics.get("defence_check")
    if check and check.get("attributes"):
        parts = []
        for name, f in check["attributes"].items():
            part = f"{name} AUC {f['roc_auc']:.3f}"
            if "source_roc_auc" in f:
                part += f" ({f['source_roc_auc']:.3f} without the defence)"
            parts.append(part)
        twin = check.get("baseline") or {}
        if twin.get("status") == "ok":
            plain_hr = twin["test"][f"hr@{k}"]
            kept = (
                f" (this run keeps {metrics['test'][f'hr@{k}'] / plain_hr:.0%})" if plain_hr else ""
            )
            parts.append(f"plain twin test HR@{k} {plain_hr:.4f}{kept}")
        elif twin:
            parts.append(f"plain twin {twin['status']}: nothing to compare with")
        console.print(
            f"defence check ({check['verdict']}, fresh probes on {check['population']}): "
            + common.escape("; ".join(parts)),
            highlight=False,
        )


@app.command()
def recommend(
    run_dir: Path = typer.Argument(
        ...,
        help="Run directory (written by train, erase, a sweep or Run.save).",
        show_default=False,
    ),
    users: str | None = typer.Option(
        None, "--users", "-u", help="Comma-separated user ids (default: every user)."
    ),
    k: int = typer.Option(10, "--k", "-k", help="Items per user."),
    include_seen: bool = typer.Option(
        False, "--include-seen", help="Also rank the items of the user's training interactions."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON records instead of a table."),
) -> None:
    """Top-k recommendations of a run's vectors (score = user · item + bias)."""
    with cli_errors():
        from privrec.api import load_run

        wanted = None
        if users is not None:
            wanted = [u.strip() for u in users.split(",") if u.strip()]
            if not wanted:
                raise common.ConfigError("--users: give at least one user id")
        run = load_run(run_dir)
        recs = run.recommend(users=wanted, k=k, exclude_seen=not include_seen)
        if as_json:
            sys.stdout.write(recs.to_json(orient="records") + "\n")
            return
        table = Table(title=f"top-{k} recommendations of {common.escape(str(run_dir))}")
        for col in ("user", "rank", "item", "score"):
            table.add_column(col, justify="right" if col != "item" else "left")
        for rec in recs.itertuples(index=False):
            table.add_row(str(rec.user), str(rec.rank), str(rec.item), f"{rec.score:.4f}")
        console.print(table)


@data_app.command("info")
def data_info(
    dataset: str = common.DatasetOpt,
    data_dir: Path | None = common.DataDirOpt,
    data_url: str | None = common.DataUrlOpt,
    interactions: Path | None = common.InteractionsOpt,
    attributes: Path | None = common.AttributesOpt,
    user_col: str = common.UserColOpt,
    item_col: str = common.ItemColOpt,
    time_col: str = common.TimeColOpt,
    continuous: list[str] | None = common.ContinuousOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Counts, split summary, attribute distributions and majority baselines."""
    with cli_errors():
        from privrec.data.info import dataset_info

        ds = common.load(
            dataset,
            data_dir,
            interactions,
            attributes,
            user_col,
            item_col,
            time_col,
            continuous,
            data_url=data_url,
        )
        info = dataset_info(ds)
        if as_json:
            sys.stdout.write(json.dumps(info, indent=2) + "\n")
            return
        t = Table(title=f"dataset {ds.name}")
        t.add_column("quantity")
        t.add_column("value", justify="right")
        for key, v in {**info["counts"], **info["split"]}.items():
            t.add_row(key, f"{v:.5f}" if isinstance(v, float) else f"{v:,}")
        console.print(t)
        for name, a in info["attributes"].items():
            t = Table(title=f"attribute {name} ({a['kind']}, {a['known']} known)")
            if a["kind"] == "categorical":
                t.add_column("class")
                t.add_column("share", justify="right")
                for c, p in a["distribution"].items():
                    t.add_row(c, f"{p:.2%}")
                t.caption = f"majority baseline: {a['majority_class']} = {a['majority_share']:.2%}"
            else:
                t.add_column("statistic")
                t.add_column("value", justify="right")
                for key in ("mean", "std", "min", "max"):
                    t.add_row(key, f"{a[key]:.3f}")
            console.print(t)


@app.command()
def demo(
    out: Path = typer.Option(Path("privrec-demo"), "--out", "-o", help="Output directory."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Offline demo on synthetic data with a planted attribute (seconds)."""
    with cli_errors():
        from privrec.experiments.demo import DEMO_INTRO, run_demo
        from privrec.experiments.report import print_report

        console.print(f"[bold]privrec demo[/bold]: {DEMO_INTRO}", highlight=False)
        res = run_demo(out, progress=not quiet)
        keys = ("attr_max_roc_auc", "attr_acc", "hr", "pareto", "diverged")
        print_report(res.report, console, keys=keys)
        console.print(
            f"{res.sweep.computed} run(s) computed, {res.sweep.skipped} reused, in "
            f"{res.seconds:.1f} s",
            highlight=False,
        )
        for kind, path in res.report.files.items():
            console.print(f"{kind}: {common.escape(str(path.resolve()))}", highlight=False)
        console.print(f"results written to [bold]{common.escape(str(out.resolve()))}[/bold]")


def _register_extensions() -> None:
    """Commands defined in their own modules (each exposes ``register(app)``)."""
    import importlib

    for name in ("audit_cmd", "sweep_cmd", "erase_cmd"):
        try:
            module = importlib.import_module(f"privrec.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"privrec.cli.{name}":
                raise
            continue
        module.register(app)


_register_extensions()


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
