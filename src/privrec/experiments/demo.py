"""``privrec demo``: the whole pipeline on a small synthetic dataset, offline, in seconds."""

from __future__ import annotations

from pathlib import Path

from privrec.cli.common import console


def run_demo(out: Path, progress: bool = True) -> Path:
    """Train a plain and a privacy-adversarial model on synthetic data and compare them."""
    from rich.table import Table

    from privrec.adversarial.penalty import AdversarySpec, build_adversaries
    from privrec.data.split import leave_last_out
    from privrec.data.synthetic import make_synthetic
    from privrec.experiments.run import train_and_evaluate, write_run
    from privrec.training.config import TrainConfig

    ds = make_synthetic(n_users=1500, n_items=300, strength=0.5, seed=0)
    split = leave_last_out(ds.interactions)
    cfg = TrainConfig(
        embedding_size=16, epochs=30, learning_rate=0.01, batch_size=1024, patience=5, seed=0
    )
    table = Table(title="privrec demo (synthetic, planted attribute 'attr')")
    for col in ("λ", "val HR@10", "test HR@10", "status"):
        table.add_column(col, justify="right")
    for lam in (0.0, 0.5):
        spec = AdversarySpec(weights={"attr": lam}, seed=0)
        pens = build_adversaries(ds.attributes, spec, cfg.embedding_size)
        metrics, trained = train_and_evaluate(ds, split, cfg, pens)
        write_run(
            out / f"lambda-{lam}",
            ds,
            split,
            cfg,
            metrics,
            trained,
            {"adversary": spec.to_dict()},
            overwrite=True,
        )
        if metrics["status"] == "ok":
            table.add_row(
                f"{lam}",
                f"{metrics['validation']['hr@10']:.3f}",
                f"{metrics['test']['hr@10']:.3f}",
                "ok",
            )
        else:
            table.add_row(f"{lam}", "-", "-", "diverged")
    console.print(table)
    console.print(f"results written to [bold]{out.resolve()}[/bold]")
    return out
