"""The held-out-label protocol: a defence sees only ``label_fraction`` of the users' labels (a
stratified, seeded draw recorded in ``label_users.txt``); the audit, the defence check and
``privrec audit`` on the run directory score only the other users."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import privrec
from privrec.cli.app import app
from privrec.errors import ConfigError
from privrec.runs.pipeline import label_users_mask

runner = CliRunner()


def test_label_users_are_a_stratified_seeded_draw():
    ds = privrec.load_dataset("synthetic", seed=4, n_users=1000, n_items=80)
    attr = ds.attributes["attr"]
    mask = label_users_mask(ds.attributes, ["attr"], 0.3, seed=0)
    assert mask.sum() == pytest.approx(300, abs=2)
    for c in range(attr.n_classes):  # the same class mix on both sides
        members = attr.values == c
        assert mask[members].mean() == pytest.approx(0.3, abs=0.01)
    np.testing.assert_array_equal(mask, label_users_mask(ds.attributes, ["attr"], 0.3, seed=0))
    assert not np.array_equal(mask, label_users_mask(ds.attributes, ["attr"], 0.3, seed=1))


def test_defences_see_only_label_users_and_the_audit_the_others(tmp_path):
    ds = privrec.load_dataset("synthetic", seed=4, n_users=600, n_items=80)
    run = privrec.train(
        ds, embedding_size=6, epochs=3, patience=0, adversaries={"attr": 0.1},
        attackers="fast", label_fraction=0.5, seed=0,
    )  # fmt: skip
    labelled = set(run.label_users.tolist())
    assert len(labelled) == pytest.approx(300, abs=2)
    n_held = int(ds.attributes["attr"].known.sum()) - len(labelled)
    head = run.audit.headline.set_index("attribute")
    assert int(head.loc["attr", "n_users"]) == n_held  # only the held-out users are scored
    assert run.metrics["defence_check"]["population"] == (
        "users whose labels the defences did not see"
    )
    records = run.stored_results()["records"]
    assert {r["population"] for r in records if r["attribute"]} == {
        "users whose labels the defences did not see, 5-fold CV"
    }
    # the run directory lists them; loading and auditing it keep the protocol
    out = run.save(tmp_path / "run")
    lines = (out / "label_users.txt").read_text().split()
    assert sorted(map(int, lines)) == sorted(labelled)
    assert set(privrec.load_run(out).label_users.tolist()) == labelled
    args = ["audit", str(out), "--dataset", "synthetic", "--syn-users", "600", "--syn-items"]
    args += ["80", "--syn-seed", "4", "--attackers", "fast", "--out", str(tmp_path / "audit")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "did not see" in res.output
    audited = json.loads((tmp_path / "audit" / "audit.json").read_text())["headline"]
    assert {h["attribute"]: h["n_users"] for h in audited}["attr"] == n_held
    config = json.loads((out / "config.json").read_text())
    assert config["spec"]["label_fraction"] == 0.5


def test_label_fraction_default_keeps_run_ids_and_is_validated():
    base = privrec.RunSpec()
    assert "label_fraction" not in base.identity()  # runs of earlier sweeps keep their ids
    assert privrec.RunSpec(label_fraction=0.5).run_id != base.run_id
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError, match="label_fraction"):
            privrec.RunSpec(label_fraction=bad)
    with pytest.raises(ConfigError, match="label_fraction and erasure_holdout"):
        privrec.RunSpec(label_fraction=0.5, erasure="leace", erasure_holdout=0.3)


def test_cli_label_fraction(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--syn-users", "300", "--syn-items", "60", "-e", "4", "--epochs", "2"]
    res = runner.invoke(app, [*args, "-q", "--label-fraction", "0.4", "--adv", "attr=0.1",
                              "--out", str(out)])  # fmt: skip
    assert res.exit_code in (0, 4), res.output
    assert len((out / "label_users.txt").read_text().split()) == pytest.approx(120, abs=2)
    res = runner.invoke(app, [*args, "-q", "--label-fraction", "2"])
    assert res.exit_code == 2 and "--label-fraction" in res.output


@pytest.mark.slow
def test_erasure_of_a_run_keeps_its_label_users_and_a_sweep_takes_the_grid_key(tmp_path):
    from privrec.experiments.sweep_runner import run_sweep
    from privrec.experiments.sweep_spec import SweepSpec
    from privrec.runs.run_spec import RunSpec

    ds = privrec.load_dataset("synthetic", seed=4, n_users=400, n_items=60)
    run = privrec.train(ds, embedding_size=4, epochs=2, patience=0, label_fraction=0.5)
    erased = privrec.erase(run, ds, attributes=["attr"], attackers="fast")
    np.testing.assert_array_equal(erased.label_users, run.label_users)
    n_held = int(ds.attributes["attr"].known.sum()) - len(run.label_users)
    assert int(erased.audit.headline.set_index("attribute").loc["attr", "n_users"]) == n_held
    with pytest.raises(ConfigError, match="without a holdout"):
        privrec.erase(run, ds, attributes=["attr"], holdout=0.3)
    base = RunSpec.from_dict(
        {
            "dataset": "synthetic",
            "data": {"n_users": 200, "n_items": 50},
            "train": {"epochs": 1, "embedding_size": 4, "patience": 0},
        }  # fmt: skip
    )
    spec = SweepSpec(base=base, grid={"label_fraction": (1.0, 0.5)}, purge=("attr",))
    res = run_sweep(spec, tmp_path, executor="serial", progress=False).results
    assert list(res["label_fraction"]) == [1.0, 0.5] and (res["status"] == "ok").all()
    runs = sorted((tmp_path / "runs").iterdir())
    assert sum((r / "label_users.txt").is_file() for r in runs) == 1
