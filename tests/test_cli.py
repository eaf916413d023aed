import json

import numpy as np
import pytest
from typer.testing import CliRunner

from privrec.cli.app import app

runner = CliRunner()
SMALL = [
    "--dataset",
    "synthetic",
    "--syn-users",
    "300",
    "--syn-items",
    "100",
    "-e",
    "8",
    "--epochs",
    "3",
    "--batch-size",
    "512",
    "-q",
]


def test_train_writes_run_dir(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", *SMALL, "--out", str(out)])
    assert res.exit_code == 0, res.output
    m = json.loads((out / "metrics.json").read_text())
    assert m["status"] == "ok" and 0 <= m["test"]["hr@10"] <= 1
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["spec"]["train"]["embedding_size"] == 8 and cfg["dataset"] == "synthetic"
    with np.load(out / "embeddings.npz", allow_pickle=False) as z:
        assert set(z.files) == {"user_ids", "user_vectors", "item_ids", "item_vectors", "item_bias"}
        assert z["user_vectors"].dtype == np.float32 and z["user_vectors"].shape == (300, 8)


def test_train_bad_options(tmp_path):
    res = runner.invoke(app, ["train", *SMALL, "-e", "0"])
    assert (
        res.exit_code == 2
        and "'train.embedding_size' (--embedding-size) must be > 0, got 0" in res.output
    )
    res = runner.invoke(app, ["train", *SMALL, "--lr", "0"])
    assert res.exit_code == 2 and "'train.learning_rate' (--lr) must be > 0, got 0.0" in res.output
    res = runner.invoke(app, ["train", "--dataset", "nope"])
    assert res.exit_code == 2 and "unknown dataset 'nope'" in res.output
    res = runner.invoke(app, ["train", *SMALL, "--adv", "height=1"])
    assert res.exit_code == 2 and "unknown attribute" in res.output
    res = runner.invoke(app, ["train", *SMALL, "--adv", "attr"])
    assert res.exit_code == 2 and "ATTRIBUTE=WEIGHT" in res.output
    res = runner.invoke(app, ["train", *SMALL, "--mmd", "attr=1", "--dep-sample", "2"])
    assert res.exit_code == 2 and "--dep-sample" in res.output and "got 2" in res.output
    res = runner.invoke(app, ["train", *SMALL, "--mmd", "attr=1", "--dep-schedule", "cosine"])
    assert res.exit_code == 2 and "--dep-schedule" in res.output and "'cosine'" in res.output
    res = runner.invoke(app, ["train", *SMALL, "--adv-probe", "--adv-probe-attacker", "tree"])
    assert res.exit_code == 2 and "(--adv-probe-attacker)" in res.output and "'tree'" in res.output
    assert not any(tmp_path.iterdir())


def test_train_diverged_is_reported(tmp_path):
    out = tmp_path / "run"
    res = runner.invoke(
        app, ["train", *SMALL, "--optimizer", "sgd", "--lr", "1e7", "--out", str(out)]
    )
    assert res.exit_code == 3 and "DIVERGED" in res.output
    assert json.loads((out / "metrics.json").read_text())["status"] == "diverged"
    assert not (out / "embeddings.npz").exists()


def test_data_info_json():
    res = runner.invoke(app, ["data", "info", "--dataset", "synthetic", "--json"])
    assert res.exit_code == 0
    info = json.loads(res.output)
    assert info["counts"]["users"] == 1000 and "attr" in info["attributes"]


@pytest.mark.realdata
def test_data_info_real(ml100k_dir):
    res = runner.invoke(
        app, ["data", "info", "--dataset", "ml-100k", "--data-dir", str(ml100k_dir), "--json"]
    )
    assert res.exit_code == 0, res.output
    info = json.loads(res.output)
    assert (info["counts"]["users"], info["counts"]["items"], info["counts"]["interactions"]) == (
        943,
        1682,
        100_000,
    )
