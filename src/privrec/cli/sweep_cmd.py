"""``privrec sweep``, ``privrec report`` and ``privrec reproduce``."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from privrec.cli import common
from privrec.cli.common import cli_errors, console, err_console
from privrec.errors import ConfigError

ADDRESS_OPTION = typer.Option(
    None,
    "--address",
    help="ray: cluster to run on (ray://head:10001, host:6379 or auto; default $RAY_ADDRESS, "
    "else a local Ray instance).",
)
TASK_CPUS_OPTION = typer.Option(
    None, "--task-cpus", help="ray: CPUs each run reserves (and its thread budget)."
)
TASK_GPUS_OPTION = typer.Option(None, "--task-gpus", help="ray: GPUs each run reserves.")
EXTEND_OPTION = typer.Option(
    False,
    "--extend",
    help="The output directory holds another sweep: run these grid points there too (its "
    "finished runs stay in the results).",
)
REPLACE_OPTION = typer.Option(
    False,
    "--replace",
    help="The output directory holds another sweep: delete what it wrote and start over.",
)


def existing_mode(extend: bool, replace: bool) -> str:
    """The ``existing`` argument of ``run_sweep`` for the --extend/--replace flags."""
    if extend and replace:
        raise ConfigError("--extend and --replace exclude each other")
    return "extend" if extend else "replace" if replace else "resume"


def executor_options(
    executor: str, address: str | None, task_cpus: float | None, task_gpus: float | None
) -> dict:
    """The executor constructor options of the --address/--task-* flags (Ray only)."""
    given = {"--address": address, "--task-cpus": task_cpus, "--task-gpus": task_gpus}
    used = [flag for flag, v in given.items() if v is not None]
    if used and executor != "ray":
        raise ConfigError(f"{', '.join(used)} apply to --executor ray only (got {executor!r})")
    return {"address": address, "num_cpus": task_cpus, "num_gpus": task_gpus}


def register(app: typer.Typer) -> None:
    """Add the ``sweep``, ``report`` and ``reproduce`` commands to ``app``."""
    app.command("sweep")(sweep)
    app.command("report")(report)
    app.command("reproduce")(reproduce)


def _floats(text: str | None, what: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--{what} expects comma-separated numbers, got {text!r}") from None


def _ints(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--{what} expects comma-separated integers, got {text!r}") from None


def sweep(
    out: Path = typer.Option(..., "--out", "-o", help="Sweep directory (resumable)."),
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="TOML sweep file (sections run, grid, series, override; key purge).",
    ),
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="synthetic, ml-100k, ml-1m or csv (default: synthetic)."
    ),
    data_dir: Path | None = common.DataDirOpt,
    sizes: str | None = typer.Option(None, "--sizes", help="Embedding sizes, e.g. 10,20,50."),
    lambdas: str | None = typer.Option(
        None, "--lambdas", help="Adversarial λ values shared by the --purge attributes."
    ),
    seeds: str | None = typer.Option(None, "--seeds", help="Seeds, e.g. 0,1,2."),
    purge: str | None = typer.Option(
        None,
        "--purge",
        help="Attributes λ applies to (default: gender,age for MovieLens, attr for synthetic).",
    ),
    attackers: str | None = typer.Option(
        None,
        "--attackers",
        help="Audit attackers: fast, paper, strong, all or names (default fast).",
    ),
    folds: int | None = typer.Option(None, "--folds", help="Audit cross-validation folds."),
    erasure: str | None = typer.Option(
        None, "--erasure", help="Post-hoc erasure after training: leace or inlp."
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="Recommender: bpr-mf, tower-mf, multvae or lightgcn (its own defaults of batch "
        "size, step size and L2 apply unless given).",
    ),
    device: str | None = typer.Option(
        None, "--device", help="Torch device: auto, cpu, cuda, cuda:N or mps."
    ),
    adv_objective: str | None = typer.Option(
        None,
        "--adv-objective",
        help="Adversarial objective: confusion (default) or reverse (gradient reversal, the "
        "paper's).",
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Maximum epochs."),
    patience: int | None = typer.Option(None, "--patience", help="Early-stopping patience."),
    learning_rate: float | None = typer.Option(None, "--learning-rate", "--lr", help="Step size."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Triples per step (users per step for multvae)."
    ),
    reg: float | None = typer.Option(None, "--reg", help="L2 weight."),
    syn_users: int | None = typer.Option(None, "--syn-users", help="synthetic: users."),
    syn_items: int | None = typer.Option(None, "--syn-items", help="synthetic: items."),
    syn_strength: float | None = typer.Option(
        None, "--syn-strength", help="synthetic: planted signal in [0,1]."
    ),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Parallel runs (default: one per core)."
    ),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="local (processes), serial, or ray (pip install 'privrec[ray]').",
    ),
    address: str | None = ADDRESS_OPTION,
    task_cpus: float | None = TASK_CPUS_OPTION,
    task_gpus: float | None = TASK_GPUS_OPTION,
    no_report: bool = typer.Option(False, "--no-report", help="Do not write the report."),
    extend: bool = EXTEND_OPTION,
    replace: bool = REPLACE_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Run a grid of trainings + audits (resumable: rerun to continue), then report."""
    with cli_errors():
        from privrec.experiments.report import write_report
        from privrec.experiments.sweep_runner import run_sweep
        from privrec.experiments.sweep_spec import SweepSpec, load_sweep_toml
        from privrec.runs.run_spec import RunSpec

        if config is not None:
            spec = load_sweep_toml(config)
            run = spec.base.to_dict()
        else:
            spec = None
            run = RunSpec().to_dict()
        if dataset is not None and dataset != run["dataset"]:
            run["dataset"] = dataset
            run["data"] = {}
        if data_dir is not None:
            run["data_dir"] = str(data_dir)
        syn = {"n_users": syn_users, "n_items": syn_items, "strength": syn_strength}
        for key, v in syn.items():
            if v is not None:
                if run["dataset"] != "synthetic":
                    raise ConfigError("--syn-* options apply to the synthetic dataset only")
                run["data"][key] = v
        if model is not None:
            from privrec.models.registry import MODEL_DEFAULTS

            run["train"]["model"] = model
            run["train"].update(MODEL_DEFAULTS.get(model, {}))
        if device is not None:
            run["train"]["device"] = device
        if adv_objective is not None:
            run["adversary"]["objective"] = adv_objective
        train = {
            "epochs": epochs,
            "patience": patience,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "reg": reg,
        }
        run["train"].update({k: v for k, v in train.items() if v is not None})
        if attackers is not None:
            run["attackers"] = attackers
        if folds is not None:
            run["folds"] = folds
        if erasure is not None:
            run["erasure"] = erasure
        base = RunSpec.from_dict(run)
        grid = dict(spec.grid) if spec is not None else {}
        for key, values in (
            ("embedding_size", _ints(sizes, "sizes")),
            ("lambda", _floats(lambdas, "lambdas")),
            ("seed", _ints(seeds, "seeds")),
        ):
            if values is not None:
                if key == "embedding_size":
                    grid.pop("size", None)
                in_series = [
                    name
                    for name, _, sub in (spec.series if spec is not None else ())
                    if key in sub or (key == "embedding_size" and "size" in sub)
                ]
                if in_series:
                    option = {"embedding_size": "--sizes", "lambda": "--lambdas"}.get(
                        key, "--seeds"
                    )
                    raise ConfigError(
                        f"{option}: the series {', '.join(in_series)} of the sweep file set "
                        f"their own '{key}' values; change them in the file instead"
                    )
                grid[key] = tuple(values)
        purge_attrs = tuple(s.strip() for s in purge.split(",")) if purge else None
        if purge_attrs is None:
            purge_attrs = spec.purge if spec is not None and dataset is None else ()
        spec = SweepSpec(
            base=base,
            grid=grid,
            purge=purge_attrs,
            overrides=spec.overrides if spec is not None else (),
            series=spec.series if spec is not None else (),
            name=spec.name if spec is not None else "sweep",
        )
        n = len(spec.expand())
        err_console.print(f"sweep: {n} run(s) into {out}", highlight=False)
        options = executor_options(executor, address, task_cpus, task_gpus)
        outcome = run_sweep(
            spec,
            out,
            executor=executor,
            workers=workers,
            progress=not quiet,
            executor_options=options,
            existing=existing_mode(extend, replace),
        )
        counts = outcome.counts
        leaky = f"{counts['leaky']} leaky, " if counts["leaky"] else ""
        console.print(
            f"{len(outcome.results)} runs: {counts['ok']} ok, {counts['diverged']} diverged, "
            f"{leaky}{counts['error']} failed ({outcome.computed} computed, "
            f"{outcome.skipped} reused) in {outcome.wall_seconds:.1f} s with {outcome.executor}",
            highlight=False,
            soft_wrap=True,
        )
        console.print(f"results: [bold]{common.escape(str(out / 'results.csv'))}[/bold]")
        if not no_report:
            rep = write_report(out)
            console.print(f"report: [bold]{common.escape(str(rep.files['markdown']))}[/bold]")
        if outcome.failed:
            raise typer.Exit(1)


def report(
    sweep_dir: Path = typer.Argument(
        ..., help="A sweep directory (with sweep.json).", show_default=False
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Where to write report.md/html and tradeoff.png (default: the sweep directory).",
    ),
    show: bool = typer.Option(True, "--print/--no-print", help="Print the tables."),
) -> None:
    """Write the paper-style tables, the trade-off figure and the Pareto front of a sweep."""
    with cli_errors():
        from privrec.experiments.report import print_report, write_report

        rep = write_report(sweep_dir, out)
        if show:
            print_report(rep, console)
        for kind, path in rep.files.items():
            console.print(f"{kind}: [bold]{common.escape(str(path))}[/bold]")


def reproduce(
    dataset: str = typer.Option("ml-1m", "--dataset", "-d", help="ml-1m (the paper) or ml-100k."),
    data_dir: Path | None = common.DataDirOpt,
    out: Path = typer.Option(Path("privrec-reproduce"), "--out", "-o", help="Output directory."),
    seeds: int = typer.Option(3, "--seeds", help="Seeds per grid point."),
    workers: int | None = typer.Option(
        None, "--workers", "-w", help="Parallel runs (default: one per core)."
    ),
    attackers: str = typer.Option(
        "paper", "--attackers", help="Attackers of Table 1's model (size 10, λ=0.1)."
    ),
    grid_attackers: str = typer.Option(
        "fast",
        "--grid-attackers",
        help="Attackers of every other run (fast = the paper's softmax readout; paper = the "
        "full suite everywhere: slower, fills the strongest-attacker tables).",
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Override the 40-epoch cap."),
    executor: str = typer.Option("local", "--executor", help="local, serial, or ray."),
    address: str | None = ADDRESS_OPTION,
    task_cpus: float | None = TASK_CPUS_OPTION,
    task_gpus: float | None = TASK_GPUS_OPTION,
    extend: bool = EXTEND_OPTION,
    replace: bool = REPLACE_OPTION,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Reproduce the paper: sizes 10/20/50 × λ 0/0.01/0.1/1/10 × seeds, audit, report."""
    with cli_errors():
        from privrec.experiments.report import print_report
        from privrec.experiments.reproduce import reproduce as run_reproduce

        start = time.perf_counter()
        res = run_reproduce(
            out,
            dataset=dataset,
            data_dir=data_dir,
            seeds=seeds,
            workers=workers,
            attackers=attackers,
            grid_attackers=grid_attackers,
            executor=executor,
            epochs=epochs,
            progress=not quiet,
            executor_options=executor_options(executor, address, task_cpus, task_gpus),
            existing=existing_mode(extend, replace),
        )
        print_report(res.report, console)
        wall = time.perf_counter() - start
        parts = {
            "data loading": res.load_seconds,
            "training": res.train_seconds,
            "audit": res.audit_seconds,
            "report": res.report_seconds,
        }
        dominant = max(parts, key=parts.__getitem__)
        console.print(
            f"wall time {wall / 60:.1f} min ({res.sweep.executor}); worker time: "
            + ", ".join(f"{k} {v / 60:.1f} min" for k, v in parts.items())
            + f" — dominated by {dominant}",
            highlight=False,
        )
        for kind, path in res.report.files.items():
            console.print(f"{kind}: [bold]{common.escape(str(path))}[/bold]")
        if res.sweep.failed:
            raise typer.Exit(1)
