"""Shared CLI plumbing: dataset options, error reporting, progress bars."""

from __future__ import annotations

import re
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from privrec.data.dataset import Dataset
from privrec.errors import ConfigError, PrivrecError  # noqa: F401

console = Console()
err_console = Console(stderr=True)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    err_console.print(
        f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False, soft_wrap=True
    )


@contextmanager
def cli_errors():
    """Within one command: privrec's errors become one clear line on stderr and exit status 2,
    and warnings print as one line (the previous warning display is restored afterwards)."""
    previous = warnings.showwarning
    warnings.showwarning = _one_line_warning
    try:
        yield
    except PrivrecError as exc:
        message = with_flags(str(exc))
        err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]")
        raise typer.Exit(130) from None
    finally:
        warnings.showwarning = previous


#: The command-line option of each configuration field (errors name the field; the CLI adds
#: its option).
FIELD_FLAGS: dict[str, str] = {
    "train.model": "--model",
    "train.loss": "--loss",
    "train.embedding_size": "--embedding-size",
    "train.epochs": "--epochs",
    "train.learning_rate": "--lr",
    "train.reg": "--reg",
    "train.batch_size": "--batch-size",
    "train.optimizer": "--optimizer",
    "train.patience": "--patience",
    "train.max_grad_norm": "--max-grad-norm",
    "train.seed": "--seed",
    "train.num_threads": "--threads",
    "train.selection": "--selection",
    "train.collapse_ratio": "--collapse-ratio",
    "train.device": "--device",
    "train.vae_hidden": "--vae-hidden",
    "train.vae_dropout": "--vae-dropout",
    "train.vae_beta": "--vae-beta",
    "train.vae_anneal": "--vae-anneal",
    "train.gcn_layers": "--gcn-layers",
    "label_fraction": "--label-fraction",
    "baseline_check": "--baseline-check",
    "adversary.head": "--adv-head",
    "adversary.n_heads": "--adv-heads",
    "adversary.input_dropout": "--adv-input-dropout",
    "adversary.schedule": "--adv-schedule",
    "adversary.steps": "--adv-steps",
    "adversary.objective": "--adv-objective",
    "adversary.reinit_every": "--adv-reinit",
    "adversary.refit_epochs": "--adv-refit",
    "adversary.probe_attacker": "--adv-probe-attacker",
    "adversary.weights": "--adv",
    "dependence.sample_size": "--dep-sample",
    "dependence.swd_sample_size": "--swd-sample",
    "dependence.pseudo_labels": "--swd-pseudo",
    "dependence.schedule": "--dep-schedule",
    "dependence.mmd": "--mmd",
    "dependence.hsic": "--hsic",
    "dependence.swd": "--swd",
    "data.n_users": "--syn-users",
    "data.n_items": "--syn-items",
    "data.strength": "--syn-strength",
    "data.mode": "--syn-mode",
    "data.seed": "--syn-seed",
}


def with_flags(message: str) -> str:
    """``message`` with the command-line option added after each configuration field it
    names (``'dependence.sample_size'`` → ``'dependence.sample_size' (--dep-sample)``)."""

    def add(match: re.Match[str]) -> str:
        path = match.group(1)
        flag = FIELD_FLAGS.get(path) or FIELD_FLAGS.get(path.rsplit(".", 1)[0])
        return f"{match.group(0)} ({flag})" if flag else match.group(0)

    return re.sub(
        r"'((?:train|adversary|dependence|data)\.[A-Za-z_.]+|label_fraction|baseline_check)'",
        add,
        message,
    )


DatasetOpt = typer.Option("synthetic", "--dataset", "-d", help="synthetic, ml-100k, ml-1m or csv.")
DataDirOpt = typer.Option(
    None,
    "--data-dir",
    help="Folder holding the dataset's files (else $PRIVREC_DATA_DIR/<dataset>/, "
    "else the user cache, else download).",
)
DataUrlOpt = typer.Option(
    None,
    "--data-url",
    metavar="URL",
    help="MovieLens download mirror, used only when no local copy is found: a base URL holding "
    "ml-1m.zip and ml-100k.zip (like https://files.grouplens.org/datasets/movielens) or the "
    "URL of one .zip; https://, http:// or file://. Default: $PRIVREC_DATA_URL, else GroupLens. "
    "The download is verified against the GroupLens checksums whatever the source. Sweeps "
    "load data in worker processes: set $PRIVREC_DATA_URL for them.",
)
InteractionsOpt = typer.Option(None, "--interactions", help="csv dataset: interactions CSV file.")
AttributesOpt = typer.Option(None, "--attributes", help="csv dataset: user-attributes CSV file.")
UserColOpt = typer.Option("user", "--user-col", help="csv dataset: user-id column.")
ItemColOpt = typer.Option("item", "--item-col", help="csv dataset: item-id column.")
TimeColOpt = typer.Option(
    "timestamp", "--time-col", help="csv dataset: timestamp column (optional)."
)
ContinuousOpt = typer.Option(
    None, "--continuous", help="csv dataset: attribute column to treat as continuous (repeatable)."
)
SynUsersOpt = typer.Option(1000, "--syn-users", help="synthetic dataset: number of users.")
SynItemsOpt = typer.Option(400, "--syn-items", help="synthetic dataset: number of items.")
SynStrengthOpt = typer.Option(
    0.5, "--syn-strength", help="synthetic dataset: planted signal in [0,1]."
)
SynModeOpt = typer.Option(
    "direction",
    "--syn-mode",
    help="synthetic dataset: 'direction' (linear) or 'radius' (non-linear).",
)
SynSeedOpt = typer.Option(0, "--syn-seed", help="synthetic dataset: generator seed.")


def load(
    dataset: str,
    data_dir: Path | None = None,
    interactions: Path | None = None,
    attributes: Path | None = None,
    user_col: str = "user",
    item_col: str = "item",
    time_col: str | None = "timestamp",
    continuous: list[str] | None = None,
    syn_users: int = 1000,
    syn_items: int = 400,
    syn_strength: float = 0.5,
    syn_mode: str = "direction",
    syn_seed: int = 0,
    *,
    data_url: str | None = None,
) -> Dataset:
    """Load the dataset the CLI's dataset options describe (``data_url``: ``--data-url``)."""
    from privrec.data.registry import load_dataset

    return load_dataset(
        dataset,
        data_dir,
        progress=sys.stderr.isatty(),
        data_url=data_url,
        synthetic={
            "n_users": syn_users,
            "n_items": syn_items,
            "strength": syn_strength,
            "mode": syn_mode,
            "seed": syn_seed,
        },
        csv=(
            {
                "interactions_path": interactions,
                "attributes_path": attributes,
                "user_col": user_col,
                "item_col": item_col,
                "time_col": time_col,
                "continuous": continuous or [],
            }
            if interactions is not None
            else None
        ),
    )


@contextmanager
def epoch_progress(total: int, label: str = "training", enabled: bool = True):
    """Progress over epochs (:func:`privrec.progress.progress`: a Rich bar on a terminal, one
    line per epoch otherwise); yields a callback for the trainer."""
    from privrec.progress import progress

    with progress(label, total, enabled=enabled) as advance:

        def callback(record: dict) -> None:
            advance(
                "  ".join(
                    f"{k}={v:.4f}"
                    for k, v in record.items()
                    if isinstance(v, float)
                    and (k.startswith("val_") or k.endswith("loss") or k.endswith("_acc"))
                )
            )

        yield callback
