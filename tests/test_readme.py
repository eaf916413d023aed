"""The README's Python example runs exactly as written, and does what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Python API") :]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "README has no python block under '## Python API'"
    return match.group(1)


@pytest.fixture(scope="module")
def example(tmp_path_factory) -> dict:
    import os

    where = tmp_path_factory.mktemp("readme")
    before = Path.cwd()
    os.chdir(where)
    try:
        namespace: dict = {}
        exec(compile(_python_example(), str(README), "exec"), namespace)
    finally:
        os.chdir(before)
    namespace["__where__"] = where
    return namespace


@pytest.mark.slow
def test_readme_example_runs_as_written(example):
    import privrec

    run, ds = example["run"], example["ds"]
    assert isinstance(run, privrec.Run)
    # as the README says: the default objective hides the attribute and the check agrees
    assert run.status == example["status"] == "ok"
    figures = run.metrics["defence_check"]["attributes"]["attr"]
    assert figures["roc_auc"] < 0.7  # plain vectors of this data: 0.80
    assert isinstance(example["hr"], float) and 0 < example["hr"] <= 1
    vectors = example["vectors"]
    assert isinstance(vectors, pd.DataFrame) and vectors.shape == (len(ds.user_ids), 16)
    np.testing.assert_array_equal(vectors.index.to_numpy(), ds.user_ids)
    audit = example["audit"]
    assert isinstance(audit.table, pd.DataFrame) and isinstance(audit.headline, pd.DataFrame)
    assert list(audit.headline["attribute"]) == ["attr", "noise"]  # every attribute by default


def test_readme_recommendations_survive_save_and_load(example):
    recs, again, run, ds = example["recs"], example["again"], example["run"], example["ds"]
    assert list(recs.columns) == ["user", "rank", "item", "score"]
    assert len(recs) == 5 * 10 and list(recs["rank"][:10]) == list(range(1, 11))
    np.testing.assert_array_equal(recs["user"].unique(), ds.user_ids[:5])
    np.testing.assert_array_equal(again.user_vectors.to_numpy(), run.user_vectors.to_numpy())
    pd.testing.assert_frame_equal(again.recommend(users=ds.user_ids[:5], k=10), recs)
    assert (example["__where__"] / "out" / "run" / "embeddings.npz").is_file()


def test_readme_recommendations_exclude_training_items(example):
    recs, ds, run = example["recs"], example["ds"], example["run"]
    from privrec.data.split import leave_last_out

    train = leave_last_out(ds.interactions).train.csr
    item_pos = {item: j for j, item in enumerate(ds.item_ids.tolist())}
    for row, user in enumerate(ds.user_ids[:5]):
        seen = set(train[row].indices.tolist())
        mine = recs[recs["user"] == user]["item"].map(item_pos)
        assert not seen & set(mine.tolist())
        # the scores are the vectors' dot products plus the item bias, best first
        emb = run.embeddings
        want = emb.user_vectors[row] @ emb.item_vectors[mine.to_numpy()].T
        want += emb.item_bias[mine.to_numpy()]
        np.testing.assert_allclose(recs[recs["user"] == user]["score"], want, rtol=1e-5)
        assert np.all(np.diff(want) <= 1e-6)


def test_readme_erasure_is_a_run(example):
    import privrec

    erased, run = example["erased"], example["run"]
    assert isinstance(erased, privrec.Run) and erased.status == "ok"
    assert erased.erasure["method"] == "leace" and erased.erasure["rank_removed"] == 1
    assert "before_erasure" in erased.metrics
    np.testing.assert_array_equal(erased.embeddings.item_vectors, run.embeddings.item_vectors)
    assert not np.allclose(erased.embeddings.user_vectors, run.embeddings.user_vectors)
    assert len(erased.recommend(users=example["ds"].user_ids[:2], k=3)) == 6


def test_an_embedding_size_given_twice_cannot_disagree():
    """One size: the defences are built from the run's own embedding size."""
    import privrec

    ds = privrec.load_dataset("synthetic", seed=1, n_users=200, n_items=60)
    run = privrec.train(ds, embedding_size=6, epochs=1, adversaries={"attr": 0.1}, patience=0)
    assert run.embedding_size == 6
    with pytest.raises(privrec.ConfigError, match="embeding_size"):
        privrec.train(ds, embeding_size=6, epochs=1)  # a typo is an error, not ignored


@pytest.mark.slow
def test_privrec_audit_is_the_function_even_after_importing_the_package():
    """``privrec.audit`` is both the subpackage and the API function: importing the package
    (as ``from privrec.audit import audit_vectors`` does) must not hide the function."""
    import subprocess
    import sys

    code = (
        "import privrec\n"
        "from privrec.audit import audit_vectors\n"
        "ds = privrec.load_dataset('synthetic', seed=1, n_users=200, n_items=60)\n"
        "run = privrec.train(ds, embedding_size=4, epochs=1, patience=0)\n"
        "res = privrec.audit(run, ds, attackers='fast', attributes=['attr'])\n"
        "assert list(res.headline['attribute']) == ['attr']\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.slow
def test_readme_reversal_counterexample_is_caught(example):
    """The README's negative example: the paper's gradient reversal at the example's λ encodes
    the attribute inverted, and the run's defence check marks it leaky."""
    import privrec

    run = privrec.train(
        example["ds"],
        embedding_size=16,
        epochs=20,
        adversaries={"attr": 0.5},
        adversary={"objective": "reverse"},
        seed=0,
    )
    assert run.status == "leaky"
    figures = run.metrics["defence_check"]["attributes"]["attr"]
    assert figures["roc_auc"] >= 0.95 and figures["head_accuracy"] < figures["majority"]
