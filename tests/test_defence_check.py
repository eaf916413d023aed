"""Silent wrong results, family 1: a defence that makes leakage worse is never reported as a
success. Every defended run ends with a post-hoc check by fresh probes (logistic and MLP,
cross-validated over users); a run whose vectors give the attribute away, or fool the
in-training heads but not a fresh probe, gets ``status: "leaky"`` and a non-zero exit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import privrec
from privrec.cli.app import app
from privrec.data.attributes import Attribute, UserAttributes
from privrec.runs.defence_check import check_defence
from privrec.training.penalty import UserPenalty

runner = CliRunner()
SMALL = ["train", "--syn-users", "600", "--syn-items", "150", "-e", "8", "--epochs", "8", "-q"]


def test_family1_absurd_lambda_is_reported_leaky_not_ok(tmp_path):
    out = tmp_path / "run"
    reverse = ["--adv", "attr=1e6", "--adv-objective", "reverse"]  # the paper's objective
    res = runner.invoke(app, [*SMALL, *reverse, "--out", str(out)])
    assert res.exit_code == 4, res.output
    assert "LEAKY" in res.output and "attr" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["status"] == "leaky" and metrics["reason"].startswith("defence check: attr")
    check = metrics["defence_check"]
    assert check["verdict"] == "leaky" and check["probes"] == ["logistic", "mlp"]
    figures = check["attributes"]["attr"]
    # given away, or the heads fooled: either way far above what the heads report
    assert figures["roc_auc"] >= 0.95 or figures["probe_accuracy"] > figures["head_accuracy"]
    # the leaky run keeps its vectors and measurements, but is not a result
    run = privrec.load_run(out)
    assert run.status == "leaky" and run.embeddings is not None


@pytest.mark.slow
def test_family1_a_working_defence_passes_and_records_the_check():
    ds = privrec.load_dataset("synthetic", seed=2, n_users=1200, n_items=200, density=0.08)
    run = privrec.train(
        ds,
        embedding_size=16,
        epochs=25,
        batch_size=1024,
        learning_rate=0.01,
        patience=5,
        adversaries={"attr": 0.2},
        adversary={"steps": 5},
        seed=0,
    )
    check = run.metrics["defence_check"]
    assert run.status == "ok" and check["verdict"] == "ok", check
    figures = check["attributes"]["attr"]
    assert 0.5 <= figures["roc_auc"] < 0.95 and "head_accuracy" in figures
    assert check["population"] == "all labelled users"


def test_family1_no_defence_no_check():
    ds = privrec.load_dataset("synthetic", seed=1, n_users=200, n_items=60)
    run = privrec.train(ds, embedding_size=4, epochs=2, patience=0)
    assert run.status == "ok" and "defence_check" not in run.metrics


def _planted(n: int = 800, shift: float = 1.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int64)
    x = rng.normal(size=(n, 6))
    x[:, 0] += shift * labels
    ids = np.arange(1, n + 1)
    attrs = UserAttributes(ids, {"attr": Attribute("attr", "categorical", labels, ("a", "b"))})
    return ids, x, attrs, labels


@pytest.mark.slow
def test_family1_heads_that_claim_chance_while_a_probe_reads_it_are_caught():
    ids, x, attrs, labels = _planted(shift=2.0)
    majority = max(labels.mean(), 1 - labels.mean())
    fooled = check_defence(ids, x, attrs, ["attr"], {"attr": majority}, 0, "all labelled users")
    assert fooled["verdict"] == "leaky" and "in-training heads claim" in fooled["reason"]
    assert fooled["attributes"]["attr"]["roc_auc"] < 0.95  # not a give-away: the heads rule
    honest = check_defence(ids, x, attrs, ["attr"], {"attr": 0.99}, 0, "all labelled users")
    assert honest["verdict"] == "ok"


def test_family1_heads_below_the_majority_rate_are_no_claim_to_beat():
    """Untrained heads score below the majority rate; a probe that only reaches the majority
    rate reads nothing, so the run is not leaky for that."""
    ids, x, attrs, labels = _planted(shift=0.0)
    majority = max(labels.mean(), 1 - labels.mean())
    check = check_defence(
        ids, x, attrs, ["attr"], {"attr": majority - 0.2}, 0, "all labelled users"
    )
    assert check["verdict"] == "ok", check["reason"]


def test_family1_random_vectors_pass():
    ids, x, attrs, _ = _planted(shift=0.0)
    check = check_defence(ids, x, attrs, ["attr"], {}, 0, "all labelled users")
    assert check["verdict"] == "ok" and abs(check["attributes"]["attr"]["roc_auc"] - 0.5) < 0.1


def _one_signal(n: int, strength: float, seed: int):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 6))
    x[:, 0] += strength * (labels - 0.5)
    attrs = UserAttributes(np.arange(n), {"a": Attribute("a", "categorical", labels, ("x", "y"))})
    return x, attrs


@pytest.mark.slow
def test_family1_a_post_hoc_defence_that_makes_leakage_worse_is_leaky():
    n = 800
    x, attrs = _one_signal(n, 1.2, seed=4)  # readable (AUC ≈ 0.8), far from a give-away
    noise = np.random.default_rng(5).normal(size=x.shape)  # the same users, nothing to read
    worse = check_defence(np.arange(n), x, attrs, ["a"], {}, 0, "all", source_vectors=noise)
    assert worse["verdict"] == "leaky", worse
    assert "made it more readable" in worse["reason"]
    figures = worse["attributes"]["a"]
    assert figures["roc_auc"] < 0.95 and figures["source_roc_auc"] < 0.6
    # the other way round (the defence removed the signal) is no alarm
    better = check_defence(np.arange(n), noise, attrs, ["a"], {}, 0, "all", source_vectors=x)
    assert better["verdict"] == "ok", better
    # and without a source, a readable but not given-away attribute is no alarm either
    plain = check_defence(np.arange(n), x, attrs, ["a"], {}, 0, "all")
    assert plain["verdict"] == "ok" and "source_roc_auc" not in plain["attributes"]["a"]


class _Planting(UserPenalty):
    """A hostile 'defence' for the test: pulls every third user's first coordinate to ±3 by
    their label, so the attribute becomes readable (but not given away: the other users keep
    what a plain model leaks)."""

    name = "planting"

    def __init__(self, labels: np.ndarray):
        super().__init__()
        self.register_buffer("labels", torch.as_tensor(labels, dtype=torch.float32))

    def forward(self, user_vecs, users, progress):
        planted = users % 3 == 0
        target = 3.0 * (2 * self.labels[users] - 1)
        gap = (user_vecs[:, 0] - target) ** 2
        return (gap * planted).sum() / planted.sum().clamp(min=1), {}


@pytest.mark.slow
def test_family1_a_penalty_defence_that_makes_leakage_worse_than_its_plain_twin_is_leaky(
    monkeypatch,
):
    from privrec.runs import pipeline

    def hostile(spec, dataset, attributes=None):
        if spec.dependence is None:  # the plain twin
            return []
        attrs = (attributes or dataset.attributes).align_to(dataset.interactions.user_ids)
        return [_Planting(attrs["attr"].values.clip(min=0))]

    monkeypatch.setattr(pipeline, "build_penalties", hostile)
    ds = privrec.load_dataset("synthetic", seed=3, n_users=900, n_items=150, strength=0.0)
    options = dict(embedding_size=8, epochs=10, learning_rate=0.05, patience=0, mmd={"attr": 1.0})
    run = privrec.train(ds, **options)
    check = run.metrics["defence_check"]
    assert run.status == "leaky", check
    assert check["compared_with"] == "plain twin" and "plain twin" in check["reason"]
    figures = check["attributes"]["attr"]
    assert figures["roc_auc"] < 0.95 and figures["source_roc_auc"] < figures["roc_auc"] - 0.1
    assert check["baseline"]["status"] == "ok" and check["baseline"]["epochs_run"] == 10
    # told not to, the check has no twin to compare with and sees no give-away
    run = privrec.train(ds, **options, baseline_check="never")
    assert run.status == "ok" and "baseline" not in run.metrics["defence_check"]


def test_family1_which_runs_train_a_plain_twin():
    from privrec.api import train_spec
    from privrec.runs.pipeline import baseline_spec, wants_baseline

    spec = train_spec(None, mmd={"attr": 1.0})
    assert wants_baseline(spec)
    twin = baseline_spec(spec)
    assert twin.method == "plain" and twin.train == spec.train and not wants_baseline(twin)
    heads = train_spec(None, adversaries={"attr": 1.0}, mmd={"attr": 1.0})
    assert not wants_baseline(heads)  # the heads make a claim the check tests
    assert wants_baseline(train_spec(None, adversaries={"attr": 1.0}, baseline_check="always"))
    assert not wants_baseline(train_spec(None, mmd={"attr": 1.0}, baseline_check="never"))
    assert not wants_baseline(train_spec(None, baseline_check="always"))  # no defence
    with pytest.raises(privrec.ConfigError, match="baseline_check"):
        train_spec(None, baseline_check="sometimes")
