"""``privrec.erase`` and ``privrec erase`` on run directories trained on synthetic data,
including the combined defence (adversarial training, then erasure)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

import privrec
from privrec.artifacts import load_embeddings, save_embeddings
from privrec.cli.app import app
from privrec.data.synthetic import make_synthetic
from privrec.errors import ConfigError, DataError

SYN = {"n_users": 1500, "n_items": 300, "strength": 0.6, "seed": 3}
CFG = dict(
    embedding_size=8,
    epochs=15,
    learning_rate=0.02,
    batch_size=1024,
    patience=0,
    seed=0,
    num_threads=1,
    collapse_ratio=0.0,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def syn():
    return make_synthetic(**SYN)


def _train(ds, root, name, weights=None, status="ok", **options):
    run = privrec.train(ds, adversaries=weights or {}, **CFG, **options)
    assert run.status == status, run.metrics.get("reason")
    return run.save(root / name)


def erase_run(run_dir, ds, names, method, out, *, overwrite=False, **kw):
    """Erase a run directory into ``out`` as ``privrec erase`` does; returns the new run."""
    if not out.resolve() != run_dir.resolve():
        raise ConfigError("the output directory must differ from the source run directory")
    if out.exists() and not overwrite:
        raise DataError(f"{out} already exists")
    run = privrec.erase(privrec.load_run(run_dir), ds, method=method, attributes=names, **kw)
    run.save(out, overwrite=overwrite)
    return run


@pytest.fixture(scope="module")
def plain_run(syn, tmp_path_factory):
    return _train(syn, tmp_path_factory.mktemp("runs"), "plain")


def _headline(run, which: str, attribute: str) -> dict:
    metrics = run.metrics
    rows = metrics["leakage"] if which == "after" else metrics["before_erasure"]["leakage"]
    return next(r for r in rows if r["attribute"] == attribute)


@pytest.mark.slow
def test_erase_run_leace_writes_a_new_run(syn, plain_run, tmp_path):
    out = tmp_path / "leace"
    summary = erase_run(plain_run, syn, ["attr"], "leace", out, attackers="fast", holdout=0.4)
    for f in ("config.json", "metrics.json", "embeddings.npz", "audit.json", "audit.md"):
        assert (out / f).is_file(), f
    assert (out / "audit_trained" / "audit.json").is_file()
    assert json.loads((out / "metrics.json").read_text())["device"] == "cpu"  # scored there
    np.testing.assert_array_equal(
        load_embeddings(out / "embeddings_trained.npz").user_vectors,
        load_embeddings(plain_run).user_vectors,
    )
    assert not list(tmp_path.glob(".*partial"))
    src, new = load_embeddings(plain_run), load_embeddings(out)
    np.testing.assert_array_equal(src.user_ids, new.user_ids)
    np.testing.assert_array_equal(src.item_ids, new.item_ids)
    np.testing.assert_array_equal(src.item_vectors, new.item_vectors)
    np.testing.assert_array_equal(src.item_bias, new.item_bias)
    assert new.user_vectors.shape == src.user_vectors.shape
    assert new.user_vectors.dtype == np.float32
    assert not np.allclose(new.user_vectors, src.user_vectors)

    config = json.loads((out / "config.json").read_text())
    er = config["erasure"]
    assert er["method"] == "leace" and er["attributes"] == ["attr"] and er["seed"] == 0
    assert config["source_run"] == str(plain_run.resolve())
    assert er["rank_removed"] == 1 and er["holdout"] == 0.4 and er["holdout_users"] > 400
    assert (
        config["spec"]["train"]["embedding_size"] == CFG["embedding_size"]
    )  # a run like any other
    assert config["spec"]["erasure"] == "leace" and config["schema_version"] == 2

    metrics = json.loads((out / "metrics.json").read_text())
    src_metrics = json.loads((plain_run / "metrics.json").read_text())
    assert metrics["status"] == "ok"
    # the source vectors, re-evaluated, give the source run's own numbers
    before = metrics["before_erasure"]
    assert before["test"]["hr@10"] == pytest.approx(src_metrics["test"]["hr@10"])
    assert before["recorded"]["test"] == src_metrics["test"]
    # the erased vectors still recommend (the planted attribute is part of the taste)
    assert metrics["test"]["hr@10"] > 0.5 * before["test"]["hr@10"]

    before = _headline(summary, "before", "attr")
    after = _headline(summary, "after", "attr")
    assert before["max_roc_auc"] > 0.85  # positive control
    assert abs(after["max_roc_auc"] - 0.5) < 0.08  # held-out users, logistic attacker


@pytest.mark.slow
def test_erase_run_inlp_and_errors(syn, plain_run, tmp_path):
    out = tmp_path / "inlp"
    run = erase_run(plain_run, syn, "attr", "inlp", out, attackers=None, seed=1)
    assert run.audit is None and "leakage" not in run.metrics
    assert not (out / "audit.json").exists()
    assert run.erasure["fit"]["rank_removed"] >= 1
    with pytest.raises(DataError, match="already exists"):
        erase_run(plain_run, syn, ["attr"], "inlp", out, attackers=None)
    erase_run(plain_run, syn, ["attr"], "leace", out, attackers=None, overwrite=True)
    assert json.loads((out / "config.json").read_text())["erasure"]["method"] == "leace"
    with pytest.raises(ConfigError, match="unknown attribute"):
        erase_run(plain_run, syn, ["gender"], "leace", tmp_path / "x", attackers=None)
    with pytest.raises(ConfigError, match="unknown erasure method"):
        erase_run(plain_run, syn, ["attr"], "lace", tmp_path / "x", attackers=None)
    with pytest.raises(ConfigError, match="differ"):
        erase_run(plain_run, syn, ["attr"], "leace", plain_run, attackers=None, overwrite=True)
    with pytest.raises(ConfigError, match="unknown attacker"):
        erase_run(plain_run, syn, ["attr"], "leace", tmp_path / "x", attackers="oracle")
    with pytest.raises(DataError, match="no such"):
        erase_run(tmp_path / "missing", syn, ["attr"], "leace", tmp_path / "x", attackers=None)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_erase_run_checks_the_dataset(syn, plain_run, tmp_path):
    other_seed = make_synthetic(**{**SYN, "seed": 4})  # same ids, other interactions
    with pytest.raises(DataError, match="split differs"):
        erase_run(plain_run, other_seed, ["attr"], "leace", tmp_path / "a", attackers=None)
    smaller = make_synthetic(**{**SYN, "n_users": 1400})
    with pytest.raises(DataError, match="trained on this dataset"):
        erase_run(plain_run, smaller, ["attr"], "leace", tmp_path / "b", attackers=None)
    # embeddings in another row order: matched by id, written back in the source's order
    shuffled = tmp_path / "shuffled"
    shutil.copytree(plain_run, shuffled)
    emb = load_embeddings(plain_run)
    perm = np.random.default_rng(0).permutation(len(emb.user_ids))
    save_embeddings(
        shuffled / "embeddings.npz",
        type(emb)(
            emb.user_ids[perm],
            emb.user_vectors[perm],
            emb.item_ids,
            emb.item_vectors,
            emb.item_bias,
        ),
    )
    erase_run(shuffled, syn, ["attr"], "leace", tmp_path / "s", attackers=None)
    erase_run(plain_run, syn, ["attr"], "leace", tmp_path / "p", attackers=None)
    a, b = load_embeddings(tmp_path / "s"), load_embeddings(tmp_path / "p")
    np.testing.assert_array_equal(a.user_ids, emb.user_ids[perm])
    np.testing.assert_allclose(a.user_vectors, b.user_vectors[perm], atol=1e-5)
    # a diverged run has nothing to erase
    diverged = tmp_path / "diverged"
    shutil.copytree(plain_run, diverged)
    (diverged / "metrics.json").write_text(json.dumps({"status": "diverged"}))
    with pytest.raises(DataError, match="diverged"):
        erase_run(diverged, syn, ["attr"], "leace", tmp_path / "d", attackers=None)


@pytest.mark.slow
def test_combined_defence(syn, tmp_path):
    """Adversarial training (λ = 1) followed by LEACE: less leakage than either start."""
    # gradient reversal at λ = 1 alone leaves the planted attribute to a fresh MLP (measured
    # ROC-AUC 0.98): the run's own defence check calls it leaky; LEACE afterwards passes it
    reverse = {"objective": "reverse"}
    adv = _train(syn, tmp_path, "adv", {"attr": 1.0}, status="leaky", adversary=reverse)
    run = erase_run(adv, syn, ["attr"], "leace", tmp_path / "adv-leace", attackers="fast")
    config = json.loads((tmp_path / "adv-leace" / "config.json").read_text())
    assert config["spec"]["adversary"]["weights"] == {"attr": 1.0}  # the training is kept
    assert config["erasure"]["method"] == "leace"
    assert run.spec.method == "adversarial+erasure-leace"
    assert run.status == "ok" and run.metrics["defence_check"]["verdict"] == "ok"
    before = _headline(run, "before", "attr")["max_roc_auc"]
    after = _headline(run, "after", "attr")["max_roc_auc"]
    assert after < 0.55 and after < before
    assert run.metrics["test"]["hr@10"] > 0.05
    # erasing again records the chain
    again = erase_run(tmp_path / "adv-leace", syn, ["attr"], "inlp", tmp_path / "x", attackers=None)
    assert again.erasure["source_erasure"]["method"] == "leace"


@pytest.mark.slow
def test_cli_erase(plain_run, tmp_path):
    out = tmp_path / "cli"
    args = ["erase", str(plain_run), "--method", "inlp", "--attributes", "attr,noise"]
    args += ["--out", str(out), "--attackers", "fast", "-q", "-O", "n_iterations=3"]
    res = runner.invoke(app, args)  # dataset and generator options come from the run
    assert res.exit_code == 0, res.output
    for word in ("before", "after", "HR@10", "attr: max ROC-AUC", "noise"):
        assert word in res.output
    config = json.loads((out / "config.json").read_text())
    assert config["erasure"]["options"] == {"n_iterations": 3}
    assert config["erasure"]["attributes"] == ["attr", "noise"]
    assert (out / "audit.json").is_file()

    res = runner.invoke(app, args)
    assert res.exit_code == 2 and "already exists" in res.output
    args = [a for a in args if a not in ("-O", "n_iterations=3")]
    res = runner.invoke(app, [*args, "--overwrite", "--attackers", "none", "-m", "leace"])
    assert res.exit_code == 0, res.output
    assert "no leakage audit" in res.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--method", "pca"], "unknown erasure method"),
        (["--attributes", "gender"], "unknown attribute"),
        (["--attributes", " , "], "at least one"),
        (["-O", "n_iterations"], "KEY=VALUE"),
        (["-O", "bogus=1"], "unknown leace option"),
        (["--attackers", "oracle"], "unknown attacker"),
        (["--syn-users", "900"], "trained on this dataset"),
    ],
)
def test_cli_erase_bad_input(plain_run, tmp_path, extra, message):
    args = ["erase", str(plain_run), "--attributes", "attr", "--out", str(tmp_path / "o")]
    res = runner.invoke(app, [*args, "--attackers", "none", "-q", *extra])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.realdata
def test_cli_erase_other_dataset(plain_run, ml100k_dir, tmp_path):
    args = ["erase", str(plain_run), "--attributes", "gender", "--out", str(tmp_path / "o")]
    res = runner.invoke(app, [*args, "--dataset", "ml-100k", "--data-dir", str(ml100k_dir)])
    assert res.exit_code == 2, res.output
    assert "trained on dataset 'synthetic', not 'ml-100k'" in res.output


def test_cli_erase_missing_run(tmp_path):
    res = runner.invoke(
        app, ["erase", str(tmp_path / "nope"), "--attributes", "attr", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "no such run directory" in res.output
